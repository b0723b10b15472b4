"""Quota queries: limits (per project and per class), usage rows changed only by conditional
UPDATEs, reservations of operations in flight, and the recount from the resource tables that
proves (and repairs) that usage never drifted. common/quota.py holds the rules."""

import time
import uuid

from sqlalchemy import delete, false, func, select, true, update
from sqlalchemy.exc import IntegrityError, OperationalError

from common.db import models
from common.db.models import utcnow
from common.db.session import reader, writer


def _run(session, fn):
    if session is not None:
        return fn(session)
    with writer() as s:
        return fn(s)


# --- limits ----------------------------------------------------------------------------------

def quota_get_all(project_id, session=None):
    def _get(s):
        return {q.resource: q.hard_limit for q in s.scalars(
            select(models.Quota).where(models.Quota.project_id == project_id))}
    if session is not None:
        return _get(session)
    with reader() as s:
        return _get(s)


def quota_class_get_all(class_name, session=None):
    def _get(s):
        return {q.resource: q.hard_limit for q in s.scalars(
            select(models.QuotaClass).where(models.QuotaClass.class_name == class_name))}
    if session is not None:
        return _get(session)
    with reader() as s:
        return _get(s)


def _upsert(s, model, key_column, key, values):
    rows = {r.resource: r for r in s.scalars(select(model).where(key_column == key))}
    for resource, limit in values.items():
        if resource in rows:
            rows[resource].hard_limit = limit
        else:
            row = model(resource=resource, hard_limit=limit)
            setattr(row, key_column.key, key)
            s.add(row)


def quota_update(project_id, values):
    """Set a project's own limits ({resource: hard_limit})."""
    with writer() as s:
        _upsert(s, models.Quota, models.Quota.project_id, project_id, values)


def quota_destroy_all(project_id):
    """Forget a project's own limits: it gets its class's (defaults) again."""
    with writer() as s:
        s.execute(delete(models.Quota).where(models.Quota.project_id == project_id))


def quota_class_update(class_name, values):
    with writer() as s:
        _upsert(s, models.QuotaClass, models.QuotaClass.class_name, class_name, values)


# --- usage -----------------------------------------------------------------------------------

def usage_get_all(project_id, session=None):
    def _get(s):
        return {u.resource: u.in_use for u in s.scalars(
            select(models.QuotaUsage).where(models.QuotaUsage.project_id == project_id))}
    if session is not None:
        return _get(session)
    with reader() as s:
        return _get(s)


def usage_ensure(session, project_id, resources):
    """Make sure the usage rows exist; a new row starts at the recounted figure (resources
    made before quotas existed). A concurrent insert of the same row is harmless.

    On MariaDB and PostgreSQL missing rows are inserted and committed in a transaction of
    their own before the caller's transaction charges them: two transactions that both
    insert a row and then update it deadlock on InnoDB's duplicate-key locks. (SQLite takes
    the write lock at BEGIN, so there it is done in the caller's transaction, and the recount
    sees what the caller changed before.) Returns the resources whose rows were made in the
    caller's transaction."""
    existing = set(session.scalars(select(models.QuotaUsage.resource).where(
        models.QuotaUsage.project_id == project_id,
        models.QuotaUsage.resource.in_(list(resources)))))
    missing = [r for r in resources if r not in existing]
    if not missing:
        return set()
    if session.get_bind().dialect.name == "sqlite":
        _insert_usage_rows(session, project_id, missing)
        return set(missing)
    for attempt in range(5):
        try:
            with writer() as s:
                _insert_usage_rows(s, project_id, missing)
            return set()
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def _insert_usage_rows(session, project_id, missing):
    counted = recount(session, project_id).get(project_id, {})
    for resource in sorted(missing):
        try:
            with session.begin_nested():
                session.add(models.QuotaUsage(project_id=project_id, resource=resource,
                                              in_use=counted.get(resource, 0)))
        except IntegrityError:
            pass  # another request made it first


def usage_add(session, project_id, resource, delta, limit=None):
    """in_use += delta, only if that stays within limit (None or -1: no limit; a release,
    delta <= 0, always succeeds). Returns whether the row changed."""
    stmt = (update(models.QuotaUsage)
            .where(models.QuotaUsage.project_id == project_id,
                   models.QuotaUsage.resource == resource)
            .values(in_use=models.QuotaUsage.in_use + delta, updated_at=utcnow())
            .execution_options(synchronize_session=False))
    if limit is not None and limit >= 0 and delta > 0:
        stmt = stmt.where(models.QuotaUsage.in_use + delta <= limit)
    return session.execute(stmt).rowcount == 1


def usage_get(session, project_id, resource):
    return session.scalars(select(models.QuotaUsage.in_use).where(
        models.QuotaUsage.project_id == project_id,
        models.QuotaUsage.resource == resource)).first() or 0


def usage_set(project_id, resource, in_use, expected=None):
    """Overwrite one usage figure (lamina-manage quota check --fix), only if it is still
    `expected` when given. Returns whether it changed."""
    with writer() as s:
        stmt = (update(models.QuotaUsage)
                .where(models.QuotaUsage.project_id == project_id,
                       models.QuotaUsage.resource == resource)
                .values(in_use=in_use, updated_at=utcnow()))
        if expected is not None:
            stmt = stmt.where(models.QuotaUsage.in_use == expected)
        return s.execute(stmt).rowcount == 1


def usage_get_everything(session=None):
    """{project_id: {resource: in_use}} of every usage row."""
    def _get(s):
        result = {}
        for u in s.scalars(select(models.QuotaUsage)):
            result.setdefault(u.project_id, {})[u.resource] = u.in_use
        return result
    if session is not None:
        return _get(session)
    with reader() as s:
        return _get(s)


# --- reservations of operations in flight ----------------------------------------------------

def reservation_add(session, project_id, resource_id, deltas):
    for resource, delta in deltas.items():
        if delta:
            session.add(models.QuotaReservation(project_id=project_id, resource_id=resource_id,
                                                resource=resource, delta=delta))


def reservation_pop(session, resource_id):
    """Delete and return ({resource: delta}, project_id) of a resource's reservations."""
    rows = list(session.scalars(select(models.QuotaReservation).where(
        models.QuotaReservation.resource_id == resource_id)))
    deltas, project_id = {}, None
    for row in rows:
        deltas[row.resource] = deltas.get(row.resource, 0) + row.delta
        project_id = row.project_id
    if rows:
        session.execute(delete(models.QuotaReservation).where(
            models.QuotaReservation.resource_id == resource_id))
    return deltas, project_id


def reservation_purge_settled():
    """Delete reservations whose volume is no longer extending (its operation ended and the
    volume row now shows what was reserved); returns how many."""
    with writer() as s:
        pending = select(models.Volume.id).where(models.Volume.status == "extending",
                                                 models.Volume.deleted == false())
        return s.execute(delete(models.QuotaReservation).where(
            models.QuotaReservation.resource_id.not_in(pending))).rowcount


# --- recount ---------------------------------------------------------------------------------

def _add(result, project_id, resource, value):
    per = result.setdefault(project_id, {})
    per[resource] = per.get(resource, 0) + int(value or 0)


def recount(session=None, project_id=None):
    """{project_id: {resource: in_use}} counted from the resource tables, by the rules of
    common/quota.py: a volume counts from its insert until its delete is accepted (status
    `deleting` or `unmanaging`; error_deleting counts again), a snapshot until its row is
    deleted, a backup until its row is deleted, and the extra gigabytes of an extend while
    the volume is `extending`."""
    def _count(s):
        result = {}
        vt = models.VolumeType
        v = models.Volume
        stmt = (select(v.project_id, vt.name, func.count(v.id), func.coalesce(func.sum(v.size), 0))
                .outerjoin(vt, vt.id == v.volume_type_id)
                .where(v.deleted == false(), v.status.not_in(("deleting", "unmanaging")))
                .group_by(v.project_id, vt.name))
        if project_id is not None:
            stmt = stmt.where(v.project_id == project_id)
        for project, type_name, count, size in s.execute(stmt):
            _add(result, project, "volumes", count)
            _add(result, project, "gigabytes", size)
            if type_name:
                _add(result, project, "volumes_" + type_name, count)
                _add(result, project, "gigabytes_" + type_name, size)
        sn = models.Snapshot
        stmt = (select(sn.project_id, vt.name, func.count(sn.id),
                       func.coalesce(func.sum(sn.volume_size), 0))
                .outerjoin(vt, vt.id == sn.volume_type_id)
                .where(sn.deleted == false())
                .group_by(sn.project_id, vt.name))
        if project_id is not None:
            stmt = stmt.where(sn.project_id == project_id)
        for project, type_name, count, size in s.execute(stmt):
            _add(result, project, "snapshots", count)
            _add(result, project, "gigabytes", size)
            if type_name:
                _add(result, project, "snapshots_" + type_name, count)
                _add(result, project, "gigabytes_" + type_name, size)
        g = models.Group
        stmt = (select(g.project_id, func.count(g.id)).where(g.deleted == false())
                .group_by(g.project_id))
        if project_id is not None:
            stmt = stmt.where(g.project_id == project_id)
        for project, count in s.execute(stmt):
            _add(result, project, "groups", count)
        b = models.Backup
        stmt = (select(b.project_id, func.count(b.id), func.coalesce(func.sum(b.size), 0))
                .where(b.deleted == false()).group_by(b.project_id))
        if project_id is not None:
            stmt = stmt.where(b.project_id == project_id)
        for project, count, size in s.execute(stmt):
            _add(result, project, "backups", count)
            _add(result, project, "backup_gigabytes", size)
        r = models.QuotaReservation
        stmt = (select(r.project_id, r.resource, func.sum(r.delta))
                .join(v, v.id == r.resource_id)
                .where(v.status == "extending", v.deleted == false())
                .group_by(r.project_id, r.resource))
        if project_id is not None:
            stmt = stmt.where(r.project_id == project_id)
        for project, resource, delta in s.execute(stmt):
            _add(result, project, resource, delta)
        return result
    if session is not None:
        return _count(session)
    with reader() as s:
        return _count(s)


def volume_type_name(session, type_id):
    if not type_id:
        return None
    return session.scalars(select(models.VolumeType.name).where(
        models.VolumeType.id == type_id)).first()


def volume_quota_row(session, volume_id):
    """(project_id, size, type name) of a volume, read in the caller's transaction."""
    row = session.execute(
        select(models.Volume.project_id, models.Volume.size, models.VolumeType.name)
        .outerjoin(models.VolumeType, models.VolumeType.id == models.Volume.volume_type_id)
        .where(models.Volume.id == volume_id)).first()
    return tuple(row) if row is not None else None


# --- a volume row and its quota in one transaction --------------------------------------------

def volume_create_reserved(values, metadata, reserve):
    """Insert the volume, its metadata and its workers row (as common.db.api.volume_create)
    in the transaction that charges its quota: reserve(session) raises when over quota, and
    then nothing is written."""
    values = dict(values)
    values.setdefault("id", str(uuid.uuid4()))
    with writer() as s:
        reserve(s)
        volume = models.Volume(**values)
        volume.volume_metadata = [models.VolumeMetadata(key=k, value=v)
                                  for k, v in (metadata or {}).items()]
        s.add(volume)
        s.add(models.Worker(resource_type="volume", resource_id=values["id"],
                            operation="create", host=None))
        s.flush()
        from common.db.api import volume_reloaded  # (api imports this module)
        return volume_reloaded(s, values["id"])


# --- access to private volume types (os-volume-type-access) ----------------------------------
# (here with the other multi-tenancy queries)

def type_access_add(type_id, project_id):
    """Give a project access to a type; False when it had it already."""
    with writer() as s:
        exists = s.scalars(select(models.VolumeTypeProject.id).where(
            models.VolumeTypeProject.volume_type_id == type_id,
            models.VolumeTypeProject.project_id == project_id)).first()
        if exists is not None:
            return False
        s.add(models.VolumeTypeProject(volume_type_id=type_id, project_id=project_id))
    return True


def type_access_remove(type_id, project_id):
    """Take a project's access away; False when it had none."""
    with writer() as s:
        return s.execute(delete(models.VolumeTypeProject).where(
            models.VolumeTypeProject.volume_type_id == type_id,
            models.VolumeTypeProject.project_id == project_id)).rowcount == 1


def type_access_list(type_id):
    with reader() as s:
        return list(s.scalars(select(models.VolumeTypeProject.project_id).where(
            models.VolumeTypeProject.volume_type_id == type_id)
            .order_by(models.VolumeTypeProject.project_id)))


def type_accessible(type_id, project_id):
    with reader() as s:
        return s.scalars(select(models.VolumeTypeProject.id).where(
            models.VolumeTypeProject.volume_type_id == type_id,
            models.VolumeTypeProject.project_id == project_id)).first() is not None


def volume_type_get_all_visible(project_id, marker=None, limit=None, sort_keys=("created_at",),
                                sort_dirs=("asc",), extra_specs=None):
    """The types a project sees: public ones and private ones it was given access to."""
    from common import exception
    from common.db import api as db

    vt = models.VolumeType
    granted = select(models.VolumeTypeProject.volume_type_id).where(
        models.VolumeTypeProject.project_id == project_id)
    with reader() as s:
        stmt = select(vt).where(vt.deleted == false(),
                                (vt.is_public == true()) | vt.id.in_(granted))
        stmt = db.volume_types_with_specs(stmt, extra_specs)
        marker_row = None
        if marker is not None:
            marker_row = s.scalars(select(vt).where(vt.id == marker)).first()
            if marker_row is None:
                raise exception.MarkerNotFound(marker=marker)
        stmt = db.paginate(stmt, vt, sort_keys, sort_dirs, marker_row, limit)
        return list(s.scalars(stmt))
