"""Queries of the volume-type family: QoS specs and their association with types, volume type
encryption specs, per-project default volume types.

Rows are read and changed in one transaction each. Where two requests could race (associate
against a delete of the same QoS specs, two creates of one name, a type's encryption against
volumes of the type) the check and the write sit in the same transaction behind a row lock or
a unique constraint, so the loser gets Cinder's error rather than a half-done change.
"""

from sqlalchemy import delete, false, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from common import exception, extra_specs
from common.db import api as db
from common.db import models
from common.db.models import utcnow
from common.db.session import reader, writer

QOS_CONSUMERS = ("front-end", "back-end", "both")


class QoSSpecsNotFound(exception.NotFound):
    message = "QoS Specs %(specs_id)s could not be found."


class QoSSpecsKeyNotFound(exception.NotFound):
    message = "QoS spec %(specs_id)s has no spec with key %(specs_key)s."


class QoSSpecsExists(exception.Conflict):
    message = "QoS Specs %(specs_id)s already exists."


class QoSSpecsInUse(exception.BadRequest):
    message = "Qos specs still in use."


class VolumeTypeEncryptionNotFound(exception.NotFound):
    message = "Volume type encryption for type %(type_id)s does not exist."


class VolumeTypeEncryptionExists(exception.BadRequest):
    message = "Volume type encryption for type %(type_id)s already exists."


class EncryptedTypeInUse(exception.BadRequest):
    message = "Cannot %(action)s encryption specs. Volume type in use."


class VolumeTypeProjectDefaultNotFound(exception.NotFound):
    message = "Default type for project %(project_id)s not found."


# --- QoS specs -------------------------------------------------------------------------------

QOS_SORT_KEYS = ("id", "name", "consumer", "created_at", "updated_at")


def _qos_get(s, specs_id, lock=False):
    stmt = select(models.QualityOfServiceSpecs).where(models.QualityOfServiceSpecs.id == specs_id)
    if lock:
        # Associate and delete both lock the specs row first, so a delete never misses an
        # association made while it ran.
        stmt = stmt.with_for_update()
    row = s.scalars(stmt).first()
    if row is None:
        raise QoSSpecsNotFound(specs_id=specs_id)
    return row


def _live_type(s, type_id, lock=False):
    stmt = select(models.VolumeType).where(models.VolumeType.id == type_id,
                                           models.VolumeType.deleted == false())
    if lock:
        stmt = stmt.with_for_update()
    vtype = s.scalars(stmt).first()
    if vtype is None:
        raise exception.VolumeTypeNotFound(type_id=type_id)
    return vtype


def qos_specs_create(name, consumer, specs):
    """A new QoS specs row with its keys; QoSSpecsExists (409) when the name is taken."""
    try:
        with writer() as s:
            clash = s.scalars(select(models.QualityOfServiceSpecs.id).where(
                models.QualityOfServiceSpecs.name == name)).first()
            if clash is not None:
                raise QoSSpecsExists(specs_id=name)
            row = models.QualityOfServiceSpecs(id=db.new_id(), name=name, consumer=consumer)
            row.keys = [models.QualityOfServiceSpecsKey(key=k, value=v)
                        for k, v in specs.items()]
            s.add(row)
            s.flush()
            s.refresh(row)
            return row
    except IntegrityError:  # a concurrent create of the same name committed first
        raise QoSSpecsExists(specs_id=name)


def qos_specs_get(specs_id):
    with reader() as s:
        return _qos_get(s, specs_id)


def qos_specs_get_all(filters=None, marker=None, limit=None, offset=0, sort_keys=("created_at",),
                      sort_dirs=("asc",)):
    qs = models.QualityOfServiceSpecs
    with reader() as s:
        stmt = select(qs)
        for key, value in (filters or {}).items():
            stmt = stmt.where(getattr(qs, key) == value)
        marker_row = None
        if marker is not None:
            marker_row = s.scalars(select(qs).where(qs.id == marker)).first()
            if marker_row is None:
                raise exception.MarkerNotFound(marker=marker)
        stmt = db.paginate(stmt, qs, sort_keys, sort_dirs, marker_row, limit)
        if offset:
            stmt = stmt.offset(offset)
        return list(s.scalars(stmt))


def qos_specs_update(specs_id, consumer=None, specs=None):
    """Set the consumer and add or change keys; the keys not named stay as they are."""
    with writer() as s:
        row = _qos_get(s, specs_id)
        if consumer is not None:
            row.consumer = consumer
        existing = {k.key: k for k in row.keys}
        for key, value in (specs or {}).items():
            if key in existing:
                existing[key].value = value
            else:
                row.keys.append(models.QualityOfServiceSpecsKey(key=key, value=value))
        row.updated_at = utcnow()
        s.flush()
        s.refresh(row)
        return row


def qos_specs_delete_keys(specs_id, keys):
    """Remove keys; a key the specs do not have is 404 and then none is removed (Cinder
    removes the ones before it)."""
    with writer() as s:
        row = _qos_get(s, specs_id)
        existing = {k.key: k for k in row.keys}
        for key in keys:
            if key not in existing:
                raise QoSSpecsKeyNotFound(specs_id=specs_id, specs_key=key)
        row.keys = [k for k in row.keys if k.key not in set(keys)]
        row.updated_at = utcnow()


def _associated(s, specs_id):
    vt = models.VolumeType
    return list(s.scalars(select(vt).where(vt.qos_specs_id == specs_id, vt.deleted == false())
                          .order_by(vt.name, vt.id)))


def qos_specs_associations(specs_id):
    """The live volume types associated with the specs (404 when the specs do not exist)."""
    with reader() as s:
        _qos_get(s, specs_id)
        return _associated(s, specs_id)


def qos_specs_delete(specs_id, force=False):
    """Delete the specs; associated with a type: refused (400) unless force, which first
    takes the association off every type."""
    with writer() as s:
        row = _qos_get(s, specs_id, lock=True)
        if _associated(s, specs_id) and not force:
            raise QoSSpecsInUse(specs_id=specs_id)
        # Deleted types keep no pointer to a row that is gone either.
        s.execute(update(models.VolumeType).where(models.VolumeType.qos_specs_id == specs_id)
                  .values(qos_specs_id=None, updated_at=utcnow())
                  .execution_options(synchronize_session=False))
        s.delete(row)


def qos_specs_associate(specs_id, type_id):
    """Associate the specs with a type. A type carries at most one QoS specs: one already
    associated with other specs is refused (400); with these, nothing changes."""
    with writer() as s:
        _qos_get(s, specs_id, lock=True)
        vtype = _live_type(s, type_id)
        done = s.execute(update(models.VolumeType).where(
            models.VolumeType.id == vtype.id, models.VolumeType.deleted == false(),
            or_(models.VolumeType.qos_specs_id.is_(None),
                models.VolumeType.qos_specs_id == specs_id))
            .values(qos_specs_id=specs_id, updated_at=utcnow())
            .execution_options(synchronize_session=False)).rowcount
        if not done:
            current = s.scalar(select(models.VolumeType.qos_specs_id).where(
                models.VolumeType.id == vtype.id))
            raise exception.InvalidVolumeType(
                reason="Type %s is already associated with another qos specs: %s"
                       % (type_id, current))


def qos_specs_disassociate(specs_id, type_id):
    """Take the association off one type; a type not associated with these specs is left as
    it is (as Cinder)."""
    with writer() as s:
        _qos_get(s, specs_id)
        vtype = _live_type(s, type_id)
        s.execute(update(models.VolumeType).where(
            models.VolumeType.id == vtype.id, models.VolumeType.qos_specs_id == specs_id)
            .values(qos_specs_id=None, updated_at=utcnow())
            .execution_options(synchronize_session=False))


def qos_specs_disassociate_all(specs_id):
    with writer() as s:
        _qos_get(s, specs_id)
        s.execute(update(models.VolumeType).where(models.VolumeType.qos_specs_id == specs_id)
                  .values(qos_specs_id=None, updated_at=utcnow())
                  .execution_options(synchronize_session=False))


# --- volume type encryption ------------------------------------------------------------------

def _type_in_use(s, type_id):
    return bool(s.scalar(select(func.count(models.Volume.id)).where(
        models.Volume.volume_type_id == type_id, models.Volume.deleted == false())))


def _encryption(s, type_id):
    return s.scalars(select(models.VolumeTypeEncryption).where(
        models.VolumeTypeEncryption.volume_type_id == type_id)).first()


def encryption_get(type_id):
    """The type's encryption specs, or None (404 when the type does not exist)."""
    with reader() as s:
        _live_type(s, type_id)
        return _encryption(s, type_id)


def encryption_changed(old_type_id, new_type_id):
    """Whether volumes of the two types differ in their encryption specs (a type without
    specs, or no type at all, is unencrypted): Cinder's test for a retype that would have to
    re-encrypt the data."""
    def specs(s, type_id):
        found = _encryption(s, type_id) if type_id else None
        return None if found is None else (found.provider, found.cipher, found.key_size,
                                           found.control_location)

    with reader() as s:
        return specs(s, old_type_id) != specs(s, new_type_id)


def multiattach(vtype):
    """Whether volumes of the type (a loaded VolumeType) are multiattach: its `multiattach`
    extra spec, as the create reads it (api/volume_requests.py)."""
    return extra_specs.is_true({e.key: e.value for e in vtype.extra_specs}.get("multiattach"))


def encryption_create(type_id, values):
    """Encryption specs for a type without volumes and without specs yet (Cinder's order of
    checks: in use, type exists, specs exist)."""
    try:
        with writer() as s:
            if _type_in_use(s, type_id):
                raise EncryptedTypeInUse(action="create")
            _live_type(s, type_id, lock=True)
            if _encryption(s, type_id) is not None:
                raise VolumeTypeEncryptionExists(type_id=type_id)
            row = models.VolumeTypeEncryption(encryption_id=db.new_id(),
                                              volume_type_id=type_id, **values)
            s.add(row)
            s.flush()
            s.refresh(row)
            return row
    except IntegrityError:  # a concurrent create for the same type committed first
        raise VolumeTypeEncryptionExists(type_id=type_id)


def encryption_update(type_id, values):
    with writer() as s:
        _live_type(s, type_id, lock=True)
        if _type_in_use(s, type_id):
            raise EncryptedTypeInUse(action="update")
        row = _encryption(s, type_id)
        if row is None:
            raise VolumeTypeEncryptionNotFound(type_id=type_id)
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        s.flush()
        s.refresh(row)
        return row


def encryption_delete(type_id):
    with writer() as s:
        if _type_in_use(s, type_id):
            raise EncryptedTypeInUse(action="delete")
        done = s.execute(delete(models.VolumeTypeEncryption).where(
            models.VolumeTypeEncryption.volume_type_id == type_id)).rowcount
        if not done:
            raise VolumeTypeEncryptionNotFound(type_id=type_id)


# --- per-project default volume types --------------------------------------------------------

def default_type_set(project_id, type_id):
    """Set (or replace) a project's default type; returns the row."""
    dvt = models.DefaultVolumeType
    for _attempt in range(2):
        try:
            with writer() as s:
                row = s.scalars(select(dvt).where(dvt.project_id == project_id)).first()
                if row is None:
                    row = dvt(project_id=project_id, volume_type_id=type_id)
                    s.add(row)
                else:
                    row.volume_type_id = type_id
                    row.updated_at = utcnow()
                s.flush()
                s.refresh(row)
                return row
        except IntegrityError:
            continue  # a concurrent set inserted the row first: update it instead
    raise exception.Conflict("The default type of project %s changed concurrently; retry."
                             % project_id)


def _live_defaults():
    # A default whose type was deleted since is no default any more.
    dvt, vt = models.DefaultVolumeType, models.VolumeType
    return select(dvt).join(vt, vt.id == dvt.volume_type_id).where(vt.deleted == false())


def default_type_get(project_id):
    """The project's default type row, or None."""
    with reader() as s:
        return s.scalars(_live_defaults().where(
            models.DefaultVolumeType.project_id == project_id)).first()


def default_type_get_all():
    with reader() as s:
        return list(s.scalars(_live_defaults().order_by(models.DefaultVolumeType.project_id)))


def default_type_unset(project_id):
    with writer() as s:
        s.execute(delete(models.DefaultVolumeType).where(
            models.DefaultVolumeType.project_id == project_id))


def projects_with_default_type(type_id):
    """The projects whose default is the type (Cinder refuses to delete such a type:
    VolumeTypeDefaultDeletionError; api/routes/types.py delete is where that check belongs)."""
    with reader() as s:
        return list(s.scalars(select(models.DefaultVolumeType.project_id).where(
            models.DefaultVolumeType.volume_type_id == type_id)
            .order_by(models.DefaultVolumeType.project_id)))
