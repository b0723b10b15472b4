"""Every query the services run. Callers pass plain values and get detached model objects.

State changes that can race are single conditional UPDATEs (see ``conditional_update``): the
row changes only if it still has the expected values, and the caller learns whether it won.
"""

import datetime
import json
import uuid

from oslo_config import cfg
from sqlalchemy import and_, bindparam, case, delete, exists, false, func, or_, select, true, update
from sqlalchemy.orm import joinedload

from common import exception
from common.db import models
from common.db.models import utcnow
from common.db.session import reader, writer

message_opts = [
    cfg.IntOpt("message_ttl", default=2592000, min=1,
               help="Seconds a user message is kept after it is made (its guaranteed_until in "
                    "the messages API, as Cinder's); an expired message is no longer listed."),
]
cfg.CONF.register_opts(message_opts)


def new_id():
    return str(uuid.uuid4())


# --- generic helpers -------------------------------------------------------------------------

def _expected_clauses(model, expected):
    clauses = []
    for key, value in expected.items():
        column = getattr(model, key)
        if isinstance(value, (list, tuple, set, frozenset)):
            values = [v for v in value if v is not None]
            if len(values) < len(value):  # SQL's IN never matches NULL: say it apart
                clauses.append(or_(column.is_(None), column.in_(values)))
            else:
                clauses.append(column.in_(values))
        elif value is None:
            clauses.append(column.is_(None))
        else:
            clauses.append(column == value)
    return clauses


def conditional_update(model, ident, values, expected, session=None):
    """UPDATE model SET values WHERE id=ident AND every expected condition holds.

    ``expected`` maps a column to a value or to a collection of accepted values. Returns True
    when the row was changed, False when another request got there first or the row is not in
    an expected state. This is the only way statuses change, so two concurrent requests on one
    resource never both win.
    """
    pk = model.__mapper__.primary_key[0]
    stmt = (update(model)
            .where(pk == ident, *_expected_clauses(model, expected))
            .values(**values)
            .execution_options(synchronize_session=False))
    if "updated_at" in model.__table__.c and "updated_at" not in values:
        stmt = stmt.values(updated_at=utcnow())
    if session is not None:
        return session.execute(stmt).rowcount == 1
    with writer() as s:
        return s.execute(stmt).rowcount == 1


def paginate(stmt, model, sort_keys, sort_dirs, marker_row, limit):
    """Marker pagination over sort_keys (id always appended as the tie-breaker)."""
    keys = list(sort_keys)
    dirs = list(sort_dirs)
    if "id" not in keys:
        keys.append("id")
        dirs.append(dirs[0] if dirs else "desc")
    columns = [getattr(model, k) for k in keys]
    for column, direction in zip(columns, dirs):
        stmt = stmt.order_by(column.desc() if direction == "desc" else column.asc())
    if marker_row is not None:
        ors = []
        for i, (column, direction) in enumerate(zip(columns, dirs)):
            marker_value = getattr(marker_row, keys[i])
            ands = [columns[j] == getattr(marker_row, keys[j]) for j in range(i)]
            if marker_value is None:
                # NULLs sort first ascending on every supported database for our keys; only
                # non-null values can come after a null marker in ascending order.
                if direction == "asc":
                    ands.append(column.is_not(None))
                else:
                    continue
            elif direction == "desc":
                ands.append(or_(column < marker_value, column.is_(None))
                            if column.nullable else column < marker_value)
            else:
                ands.append(column > marker_value)
            ors.append(and_(*ands))
        stmt = stmt.where(or_(*ors)) if ors else stmt
    if limit is not None:
        stmt = stmt.limit(limit)
    return stmt


# --- volumes ---------------------------------------------------------------------------------

def _volume_scope(ctx, stmt, project_only=True):
    stmt = stmt.where(models.Volume.deleted == false())
    if project_only or not ctx.is_admin:
        stmt = stmt.where(models.Volume.project_id == ctx.project_id)
    return stmt


def one_volume(stmt):
    """A select of one volume loading everything its views read in one statement (joins
    for its metadata, admin metadata, type, type extra specs and encryption) instead of the
    five the relationships' selectin loads send; lists keep the selectin loads, whose row
    count does not multiply. Read it with .unique()."""
    vtype = joinedload(models.Volume.volume_type)
    return stmt.options(joinedload(models.Volume.volume_metadata),
                        joinedload(models.Volume.volume_admin_metadata),
                        vtype.joinedload(models.VolumeType.extra_specs),
                        vtype.joinedload(models.VolumeType.encryption))


def volume_reloaded(session, volume_id):
    """The volume as now written in the caller's transaction (after a flush), every
    relationship loaded: what session.refresh does, in one statement."""
    return session.scalars(one_volume(select(models.Volume).where(
        models.Volume.id == volume_id)).execution_options(populate_existing=True)).unique().one()


def volume_add(session, values, metadata=None, operation="create"):
    """Insert the volume, its metadata and the workers row that owns its creation, in the
    caller's transaction."""
    values = dict(values)
    values.setdefault("id", new_id())
    volume = models.Volume(**values)
    volume.volume_metadata = [models.VolumeMetadata(key=k, value=v)
                              for k, v in (metadata or {}).items()]
    session.add(volume)
    session.add(models.Worker(resource_type="volume", resource_id=values["id"],
                              operation=operation, host=None))
    session.flush()
    return volume_reloaded(session, values["id"])


def volume_create(values, metadata=None, operation="create"):
    with writer() as s:
        return volume_add(s, values, metadata=metadata, operation=operation)


def volume_get(ctx, volume_id, project_only=True):
    with reader() as s:
        stmt = _volume_scope(ctx, select(models.Volume).where(models.Volume.id == volume_id),
                             project_only=project_only and not ctx.is_admin)
        volume = s.scalars(one_volume(stmt)).unique().first()
        if volume is None:
            raise exception.VolumeNotFound(volume_id=volume_id)
        return volume


def volume_get_internal(volume_id):
    """A volume row by id for the services (no project scope); None when gone."""
    with reader() as s:
        return s.scalars(one_volume(select(models.Volume).where(
            models.Volume.id == volume_id))).unique().first()


class VolumeForScheduling:
    """The columns of a volume the scheduler's placement reads, and its type's name and extra
    specs (``volume_type_name`` None: no type)."""
    __slots__ = ("id", "project_id", "size", "status", "host", "deleted", "availability_zone",
                 "volume_type_id", "snapshot_id", "source_volid", "group_id",
                 "volume_type_name", "extra_specs")

    def __init__(self, row):
        for key in self.__slots__[:-2]:
            setattr(self, key, getattr(row, key))
        self.volume_type_name = row.type_name
        self.extra_specs = {}


_SCHEDULING_COLUMNS = [getattr(models.Volume, key)
                       for key in VolumeForScheduling.__slots__[:-2]]


_VOLUME_FOR_SCHEDULING = None


def volume_get_for_scheduling(volume_id):
    """What placing a volume needs from its row (None when gone): one Core SELECT of a few
    columns joined to its type and the type's extra specs (a row per spec), not the ORM load
    of the volume with its metadata. The type is read now, every time, so a spec changed by
    the types API a moment ago is the one the placement uses (no cache to invalidate)."""
    global _VOLUME_FOR_SCHEDULING
    if _VOLUME_FOR_SCHEDULING is None:  # built once, bound parameter
        spec = models.VolumeTypeExtraSpec
        _VOLUME_FOR_SCHEDULING = (
            select(*_SCHEDULING_COLUMNS, models.VolumeType.name.label("type_name"),
                   spec.key.label("spec_key"), spec.value.label("spec_value"))
            .select_from(models.Volume)
            .outerjoin(models.VolumeType, models.VolumeType.id == models.Volume.volume_type_id)
            .outerjoin(spec, spec.volume_type_id == models.VolumeType.id)
            .where(models.Volume.id == bindparam("b_volume_id")))
    with reader() as s:
        rows = s.connection().execute(_VOLUME_FOR_SCHEDULING, {"b_volume_id": volume_id}).all()
    if not rows:
        return None
    volume = VolumeForScheduling(rows[0])
    volume.extra_specs = {row.spec_key: row.spec_value for row in rows
                          if row.spec_key is not None}
    return volume


_VOLUME_PLACED = None


def volume_set_scheduled_host(session, volume_id, host):
    """Give a new volume the pool it was scheduled to, in the caller's transaction (the
    claim's): only while it is still `creating`, unplaced and not deleted. False otherwise.
    The conditional_update of the create path, built once (Core, bound parameters)."""
    global _VOLUME_PLACED
    if _VOLUME_PLACED is None:
        volumes = models.Volume.__table__.c
        _VOLUME_PLACED = (update(models.Volume.__table__)
                          .where(volumes.id == bindparam("b_volume_id"),
                                 volumes.status == "creating", volumes.host.is_(None),
                                 volumes.deleted == false())
                          .values(host=bindparam("b_host"),
                                  updated_at=bindparam("b_now", type_=volumes.updated_at.type)))
    return session.connection().execute(_VOLUME_PLACED, {
        "b_volume_id": volume_id, "b_host": host, "b_now": utcnow()}).rowcount == 1


# --- the volume service's light statements: Core, on the tables (no ORM compilation per call)

_VOLUME_ROW = {}


def _volume_row_statement(with_dependents):
    stmt = _VOLUME_ROW.get(with_dependents)
    if stmt is None:
        from common.db.attachments_api import LIVE

        volumes = models.Volume.__table__
        columns = [volumes]
        if with_dependents:
            snapshots = models.Snapshot.__table__.c
            attachments = models.VolumeAttachment.__table__.c
            columns.append(exists().where(snapshots.volume_id == volumes.c.id,
                                          snapshots.deleted == false())
                           .label("has_snapshots"))
            columns.append(exists().where(attachments.volume_id == volumes.c.id,
                                          attachments.deleted == false(),
                                          attachments.attach_status.in_(LIVE))
                           .label("has_attachments"))
        stmt = _VOLUME_ROW[with_dependents] = select(*columns).where(
            volumes.c.id == bindparam("volume_id"))
    return stmt


def volume_row(volume_id, with_dependents=False):
    """The volume's own columns by id (deleted or not; none of its type, metadata or admin
    metadata) as a read-only row, or None: one SELECT where volume_get_internal loads the
    ORM object with its relationships in four. What the volume service's flows check a
    volume's state with and hand to the drivers (which read id, size and host).

    with_dependents: also has_snapshots and has_attachments (whether it has any live
    snapshot, any live attachment), in the same SELECT."""
    with reader() as s:
        return s.connection().execute(_volume_row_statement(with_dependents),
                                      {"volume_id": volume_id}).first()


def _volume_move(connection, volume_id, from_status, values):
    volumes = models.Volume.__table__
    values = dict(values)
    values.setdefault("updated_at", utcnow())
    return connection.execute(update(volumes).where(
        volumes.c.id == volume_id, volumes.c.status == from_status,
        volumes.c.deleted == false()).values(**values)).rowcount == 1


def _volume_worker_release(connection, volume_id):
    workers = models.Worker.__table__
    connection.execute(delete(workers).where(workers.c.resource_type == "volume",
                                             workers.c.resource_id == volume_id))


def volume_create_finish(volume_id, values, session):
    """A `creating` volume given values (its status out of `creating`) and its workers row
    released, in the caller's transaction; False (nothing changed) when it is no longer
    `creating`. conditional_update and worker_release as two Core statements."""
    connection = session.connection()
    won = _volume_move(connection, volume_id, "creating", values)
    if won:
        _volume_worker_release(connection, volume_id)
    return won


def volume_delete_finish(volume_id, host, size, session):
    """A `deleting` volume soft-deleted (status `deleted`, deleted_at, terminated_at) in one
    conditional UPDATE, then its pool claim (size on host) and its workers row released, in
    the caller's transaction; False (nothing changed) when it is no longer `deleting`.
    (conditional_update, volume_mark_deleted, pool_release and worker_release in three
    statements.)"""
    now = utcnow()
    connection = session.connection()
    if not _volume_move(connection, volume_id, "deleting",
                        {"status": "deleted", "deleted": True, "deleted_at": now,
                         "terminated_at": now}):
        return False
    pool_release(host, size, session=session)
    _volume_worker_release(connection, volume_id)
    return True


VOLUME_FILTER_COLUMNS = ("name", "status", "availability_zone", "bootable", "host",
                         "volume_type_id", "project_id", "user_id", "size", "attach_status",
                         "migration_status")


def _volume_filters(stmt, filters):
    for key, value in (filters or {}).items():
        if key == "metadata":
            for mkey, mvalue in value.items():
                stmt = stmt.where(models.Volume.id.in_(
                    select(models.VolumeMetadata.volume_id).where(
                        models.VolumeMetadata.key == mkey,
                        models.VolumeMetadata.value == str(mvalue))))
        elif key == "glance_metadata":  # 3.4
            for mkey, mvalue in value.items():
                stmt = stmt.where(models.Volume.id.in_(
                    select(models.VolumeGlanceMetadata.volume_id).where(
                        models.VolumeGlanceMetadata.volume_id.is_not(None),
                        models.VolumeGlanceMetadata.key == mkey,
                        models.VolumeGlanceMetadata.value == str(mvalue))))
        elif key == "consumes_quota":  # 3.65: every Lamina volume consumes quota
            if not value:
                stmt = stmt.where(false())
        elif key.endswith("~"):
            column = getattr(models.Volume, key[:-1])
            stmt = stmt.where(column.like("%" + str(value) + "%"))
        elif key in ("created_at", "updated_at"):
            column = getattr(models.Volume, key)
            for op, when in value:
                stmt = stmt.where({"gt": column > when, "gte": column >= when,
                                   "lt": column < when, "lte": column <= when,
                                   "eq": column == when, "neq": column != when}[op])
        else:
            column = getattr(models.Volume, key)
            if isinstance(value, (list, tuple)):
                stmt = stmt.where(column.in_(value))
            else:
                stmt = stmt.where(column == value)
    return stmt


def volume_get_all(ctx, filters=None, marker=None, limit=None, sort_keys=("created_at",),
                   sort_dirs=("desc",), all_projects=False):
    with reader() as s:
        stmt = _volume_scope(ctx, select(models.Volume),
                             project_only=not (all_projects and ctx.is_admin))
        stmt = _volume_filters(stmt, filters)
        marker_row = None
        if marker is not None:
            marker_stmt = _volume_scope(ctx, select(models.Volume).where(
                models.Volume.id == marker), project_only=not (all_projects and ctx.is_admin))
            marker_row = s.scalars(marker_stmt).first()
            if marker_row is None:
                raise exception.MarkerNotFound(marker=marker)
        stmt = paginate(stmt, models.Volume, sort_keys, sort_dirs, marker_row, limit)
        return list(s.scalars(stmt).unique())


def volume_update(volume_id, values, metadata=None):
    """Update plain fields (not status) and, when given, replace the metadata."""
    with writer() as s:
        volume = s.scalars(select(models.Volume).where(
            models.Volume.id == volume_id, models.Volume.deleted == false())).first()
        if volume is None:
            raise exception.VolumeNotFound(volume_id=volume_id)
        for key, value in values.items():
            setattr(volume, key, value)
        if metadata is not None:
            replace_volume_metadata(s, volume, metadata)
        s.flush()
        return volume_reloaded(s, volume_id)


def replace_volume_metadata(session, volume, metadata):
    """Make the volume's (a row of `session`) metadata exactly `metadata`."""
    existing = {m.key: m for m in volume.volume_metadata}
    for key in set(existing) - set(metadata):
        volume.volume_metadata.remove(existing[key])
    for key, value in metadata.items():
        if key in existing:
            existing[key].value = value
        else:
            volume.volume_metadata.append(models.VolumeMetadata(key=key, value=value))


def volume_metadata_update(volume_id, metadata, delete_others):
    with writer() as s:
        volume = s.scalars(select(models.Volume).where(
            models.Volume.id == volume_id, models.Volume.deleted == false())).first()
        if volume is None:
            raise exception.VolumeNotFound(volume_id=volume_id)
        merged = dict(metadata) if delete_others else {
            **{m.key: m.value for m in volume.volume_metadata}, **metadata}
        replace_volume_metadata(s, volume, merged)
        s.flush()
        return {m.key: m.value for m in volume.volume_metadata}


def volume_metadata_delete(volume_id, key):
    with writer() as s:
        result = s.execute(delete(models.VolumeMetadata).where(
            models.VolumeMetadata.volume_id == volume_id, models.VolumeMetadata.key == key))
        if result.rowcount == 0:
            raise exception.VolumeMetadataNotFound(volume_id=volume_id, key=key)


def volume_mark_deleted(volume_id, session=None):
    values = {"deleted": True, "deleted_at": utcnow(), "status": "deleted",
              "terminated_at": utcnow()}
    if session is not None:
        session.execute(update(models.Volume).where(models.Volume.id == volume_id)
                        .values(**values))
        return
    with writer() as s:
        s.execute(update(models.Volume).where(models.Volume.id == volume_id).values(**values))


def volume_lock(session, volume_id):
    """Lock the volume's row until the transaction ends (SELECT ... FOR UPDATE; SQLite's
    writers are serialised already). Taken by requests that look at a volume's snapshots
    and then act on the volume (snapshot create, volume delete), so under READ COMMITTED
    the second of two such requests sees what the first committed."""
    session.execute(select(models.Volume.id).where(models.Volume.id == volume_id)
                    .with_for_update())


def volumes_creating_from(session, snapshot_id=None, source_volid=None):
    """Is a volume being made from this snapshot or source volume right now?"""
    stmt = select(models.Volume.id).where(models.Volume.deleted == false(),
                                          models.Volume.status == "creating")
    if snapshot_id is not None:
        stmt = stmt.where(models.Volume.snapshot_id == snapshot_id)
    else:
        stmt = stmt.where(models.Volume.source_volid == source_volid)
    return session.scalars(stmt.limit(1)).first() is not None


def volume_get_locked(session, volume_id):
    """volume_lock, then the row as it is now."""
    volume_lock(session, volume_id)
    return session.scalars(select(models.Volume).where(
        models.Volume.id == volume_id, models.Volume.deleted == false())).first()


def snapshots_of_volume_exist(volume_id, session):
    return session.scalars(select(models.Snapshot.id).where(
        models.Snapshot.volume_id == volume_id,
        models.Snapshot.deleted == false()).limit(1)).first() is not None


def volume_summary(ctx, all_projects=False):
    """GET /volumes/summary (3.12, metadata from 3.36): (count, total size in GiB, {key:
    [distinct values]}) over the live volumes in scope (the caller's project, or every project
    for an admin asking all_tenants). Two aggregate queries, no rows loaded."""
    project_only = not (all_projects and ctx.is_admin)
    with reader() as s:
        count, size = s.execute(_volume_scope(ctx, select(
            func.count(models.Volume.id), func.coalesce(func.sum(models.Volume.size), 0)),
            project_only=project_only)).one()
        pairs = s.execute(_volume_scope(ctx, select(
            models.VolumeMetadata.key, models.VolumeMetadata.value).join(
            models.Volume, models.Volume.id == models.VolumeMetadata.volume_id),
            project_only=project_only).distinct().order_by(
            models.VolumeMetadata.key, models.VolumeMetadata.value)).all()
    metadata = {}
    for key, value in pairs:
        metadata.setdefault(key, []).append(value)
    return int(count), int(size), metadata


# --- snapshots -------------------------------------------------------------------------------

def _snapshot_scope(ctx, stmt, project_only=True):
    stmt = stmt.where(models.Snapshot.deleted == false())
    if project_only or not ctx.is_admin:
        stmt = stmt.where(models.Snapshot.project_id == ctx.project_id)
    return stmt


def snapshot_add(session, values, host, metadata=None):
    """Insert a snapshot (status `creating`) and the workers row that gives its creation to
    the volume service `host`, in the caller's transaction."""
    values = dict(values)
    values.setdefault("id", new_id())
    snapshot = models.Snapshot(**values)
    snapshot.snapshot_metadata = [models.SnapshotMetadata(key=k, value=v)
                                  for k, v in (metadata or {}).items()]
    session.add(snapshot)
    session.add(models.Worker(resource_type="snapshot", resource_id=values["id"],
                              operation="create", host=host))
    # the volume's image metadata goes with its data (volumes made from the snapshot get it)
    glance_metadata_copy(session, {"volume_id": values["volume_id"]},
                         {"snapshot_id": values["id"]})
    session.flush()
    session.refresh(snapshot)
    return snapshot


def glance_metadata_copy(session, source, target):
    """Copy the image metadata rows of source ({"volume_id": id} or {"snapshot_id": id}) to
    target (the same form), in the caller's transaction, as Cinder copies them from a
    volume to its snapshots and from either to the volumes made from them."""
    (column, ident), = source.items()
    rows = session.scalars(select(models.VolumeGlanceMetadata).where(
        getattr(models.VolumeGlanceMetadata, column) == ident)
        .order_by(models.VolumeGlanceMetadata.id)).all()
    session.add_all(models.VolumeGlanceMetadata(key=row.key, value=row.value, **target)
                    for row in rows)


def snapshot_get(ctx, snapshot_id, project_only=True):
    with reader() as s:
        stmt = _snapshot_scope(ctx, select(models.Snapshot).where(
            models.Snapshot.id == snapshot_id), project_only=project_only and not ctx.is_admin)
        snapshot = s.scalars(stmt).first()
        if snapshot is None:
            raise exception.SnapshotNotFound(snapshot_id=snapshot_id)
        return snapshot


def snapshot_get_internal(snapshot_id):
    """A snapshot row by id for the services (no project scope); None when gone."""
    with reader() as s:
        return s.scalars(select(models.Snapshot).where(models.Snapshot.id == snapshot_id)
                         ).first()


def _snapshot_filters(stmt, filters):
    for key, value in (filters or {}).items():
        if key == "metadata":
            for mkey, mvalue in value.items():
                stmt = stmt.where(models.Snapshot.id.in_(
                    select(models.SnapshotMetadata.snapshot_id).where(
                        models.SnapshotMetadata.key == mkey,
                        models.SnapshotMetadata.value == str(mvalue))))
        elif key == "consumes_quota":  # 3.65: every Lamina snapshot consumes quota
            if not value:
                stmt = stmt.where(false())
        else:
            stmt = stmt.where(getattr(models.Snapshot, key) == value)
    return stmt


def snapshot_get_all(ctx, filters=None, marker=None, limit=None, sort_keys=("created_at",),
                     sort_dirs=("desc",), all_projects=False):
    project_only = not (all_projects and ctx.is_admin)
    with reader() as s:
        stmt = _snapshot_filters(_snapshot_scope(ctx, select(models.Snapshot),
                                                 project_only=project_only), filters)
        marker_row = None
        if marker is not None:
            marker_row = s.scalars(_snapshot_scope(ctx, select(models.Snapshot).where(
                models.Snapshot.id == marker), project_only=project_only)).first()
            if marker_row is None:
                raise exception.MarkerNotFound(marker=marker)
        stmt = paginate(stmt, models.Snapshot, sort_keys, sort_dirs, marker_row, limit)
        return list(s.scalars(stmt))


def snapshot_get_all_for_volume(volume_id, session=None):
    """The volume's live snapshots, newest first."""
    stmt = (select(models.Snapshot)
            .where(models.Snapshot.volume_id == volume_id, models.Snapshot.deleted == false())
            .order_by(models.Snapshot.created_at.desc(), models.Snapshot.id.desc()))
    if session is not None:
        return list(session.scalars(stmt))
    with reader() as s:
        return list(s.scalars(stmt))


def _live_snapshot(session, snapshot_id):
    snapshot = session.scalars(select(models.Snapshot).where(
        models.Snapshot.id == snapshot_id, models.Snapshot.deleted == false())).first()
    if snapshot is None:
        raise exception.SnapshotNotFound(snapshot_id=snapshot_id)
    return snapshot


def snapshot_update(snapshot_id, values):
    """Update plain fields (name, description), not status."""
    with writer() as s:
        snapshot = _live_snapshot(s, snapshot_id)
        for key, value in values.items():
            setattr(snapshot, key, value)
        s.flush()
        s.refresh(snapshot)
        return snapshot


def snapshot_metadata_update(snapshot_id, metadata, delete_others):
    with writer() as s:
        snapshot = _live_snapshot(s, snapshot_id)
        existing = {m.key: m for m in snapshot.snapshot_metadata}
        if delete_others:
            for key in set(existing) - set(metadata):
                snapshot.snapshot_metadata.remove(existing[key])
        for key, value in metadata.items():
            if key in existing:
                existing[key].value = value
            else:
                snapshot.snapshot_metadata.append(models.SnapshotMetadata(key=key, value=value))
        s.flush()
        return {m.key: m.value for m in snapshot.snapshot_metadata}


def snapshot_metadata_delete(snapshot_id, key):
    with writer() as s:
        result = s.execute(delete(models.SnapshotMetadata).where(
            models.SnapshotMetadata.snapshot_id == snapshot_id,
            models.SnapshotMetadata.key == key))
        if result.rowcount == 0:
            raise exception.SnapshotMetadataNotFound(snapshot_id=snapshot_id, key=key)


def snapshot_mark_deleted(snapshot_id, session=None):
    stmt = (update(models.Snapshot).where(models.Snapshot.id == snapshot_id)
            .values(deleted=True, deleted_at=utcnow(), status="deleted"))
    if session is not None:
        session.execute(stmt)
        return
    with writer() as s:
        s.execute(stmt)


# --- workers (operation ownership) ------------------------------------------------------------

def worker_claim(resource_type, resource_id, operation, host=None, session=None):
    """Record that `host` (None: the schedulers) now owns an operation on a resource.

    Fails (returns False) when another operation already owns it."""
    def _run(s):
        existing = s.scalars(select(models.Worker).where(
            models.Worker.resource_type == resource_type,
            models.Worker.resource_id == resource_id)).first()
        if existing is not None:
            return False
        s.add(models.Worker(resource_type=resource_type, resource_id=resource_id,
                            operation=operation, host=host))
        return True
    if session is not None:
        return _run(session)
    with writer() as s:
        return _run(s)


_WORKER_SET_HOST = None


def worker_set_host(resource_type, resource_id, host, session=None):
    global _WORKER_SET_HOST
    if _WORKER_SET_HOST is None:  # built once (Core, bound parameters): the create path's
        workers = models.Worker.__table__.c
        _WORKER_SET_HOST = (update(models.Worker.__table__)
                            .where(workers.resource_type == bindparam("b_resource_type"),
                                   workers.resource_id == bindparam("b_resource_id"))
                            .values(host=bindparam("b_host"),
                                    updated_at=bindparam("b_now", type_=workers.updated_at.type)))
    params = {"b_resource_type": resource_type, "b_resource_id": resource_id, "b_host": host,
              "b_now": utcnow()}
    if session is not None:
        return session.connection().execute(_WORKER_SET_HOST, params).rowcount == 1
    with writer() as s:
        return s.connection().execute(_WORKER_SET_HOST, params).rowcount == 1


def worker_release(resource_type, resource_id, session=None):
    stmt = delete(models.Worker).where(models.Worker.resource_type == resource_type,
                                       models.Worker.resource_id == resource_id)
    if session is not None:
        session.execute(stmt)
        return
    with writer() as s:
        s.execute(stmt)


def worker_get_all(host=None, unscheduled_before=None):
    with reader() as s:
        stmt = select(models.Worker)
        if host is not None:
            stmt = stmt.where(models.Worker.host == host)
        if unscheduled_before is not None:
            stmt = stmt.where(models.Worker.host.is_(None),
                              models.Worker.created_at < unscheduled_before)
        return list(s.scalars(stmt))


# --- volume types ----------------------------------------------------------------------------

def volume_type_create(name, description=None, is_public=True, extra_specs=None, type_id=None):
    with writer() as s:
        clash = s.scalars(select(models.VolumeType).where(
            models.VolumeType.name == name, models.VolumeType.deleted == false())).first()
        if clash is not None:
            raise exception.VolumeTypeExists(name=name)
        vtype = models.VolumeType(id=type_id or new_id(), name=name, description=description,
                                  is_public=is_public)
        vtype.extra_specs = [models.VolumeTypeExtraSpec(key=k, value=str(v))
                             for k, v in (extra_specs or {}).items()]
        s.add(vtype)
        s.flush()
        s.refresh(vtype)
        return vtype


def _one_type(stmt):
    """A select of one volume type with its extra specs and encryption joined (one
    statement, not three: every create resolves a type)."""
    return stmt.options(joinedload(models.VolumeType.extra_specs),
                        joinedload(models.VolumeType.encryption))


def volume_type_get(type_id):
    with reader() as s:
        vtype = s.scalars(_one_type(select(models.VolumeType).where(
            models.VolumeType.id == type_id,
            models.VolumeType.deleted == false()))).unique().first()
        if vtype is None:
            raise exception.VolumeTypeNotFound(type_id=type_id)
        return vtype


def volume_type_get_by_name(name):
    with reader() as s:
        vtype = s.scalars(_one_type(select(models.VolumeType).where(
            models.VolumeType.name == name,
            models.VolumeType.deleted == false()))).unique().first()
        if vtype is None:
            raise exception.VolumeTypeNotFound(type_id=name)
        return vtype


def volume_type_get_by_name_or_id(ident):
    try:
        return volume_type_get(ident)
    except exception.VolumeTypeNotFound:
        return volume_type_get_by_name(ident)


AZ_SPEC = "RESKEY:availability_zones"


def volume_types_with_specs(stmt, extra_specs):
    """Keep the types having every key=value pair of `extra_specs` (3.52's type list filter).
    RESKEY:availability_zones holds a comma-separated list of zones (a space after a comma
    allowed): a zone matches a type whose list names it, as Cinder's filter does."""
    spec = models.VolumeTypeExtraSpec
    for key, value in (extra_specs or {}).items():
        value = str(value)
        if key == AZ_SPEC:
            matches = or_(spec.value == value,
                          spec.value.startswith(value + ",", autoescape=True),
                          *[test(sep + value + tail, autoescape=True)
                            for sep in (",", ", ")
                            for test, tail in ((spec.value.endswith, ""),
                                               (spec.value.contains, ","))])
        else:
            matches = spec.value == value
        stmt = stmt.where(select(spec.id).where(
            spec.volume_type_id == models.VolumeType.id, spec.key == key, matches).exists())
    return stmt


def volume_type_get_all(is_public=None, marker=None, limit=None, sort_keys=("created_at",),
                        sort_dirs=("asc",), extra_specs=None):
    with reader() as s:
        stmt = select(models.VolumeType).where(models.VolumeType.deleted == false())
        if is_public is not None:
            stmt = stmt.where(models.VolumeType.is_public == (true() if is_public else false()))
        stmt = volume_types_with_specs(stmt, extra_specs)
        marker_row = None
        if marker is not None:
            marker_row = s.scalars(select(models.VolumeType).where(
                models.VolumeType.id == marker)).first()
            if marker_row is None:
                raise exception.MarkerNotFound(marker=marker)
        stmt = paginate(stmt, models.VolumeType, sort_keys, sort_dirs, marker_row, limit)
        return list(s.scalars(stmt))


def volume_type_update(type_id, values):
    with writer() as s:
        vtype = s.scalars(select(models.VolumeType).where(
            models.VolumeType.id == type_id, models.VolumeType.deleted == false())).first()
        if vtype is None:
            raise exception.VolumeTypeNotFound(type_id=type_id)
        if "name" in values and values["name"] != vtype.name:
            clash = s.scalars(select(models.VolumeType).where(
                models.VolumeType.name == values["name"],
                models.VolumeType.deleted == false())).first()
            if clash is not None:
                raise exception.VolumeTypeExists(name=values["name"])
        for key, value in values.items():
            setattr(vtype, key, value)
        s.flush()
        s.refresh(vtype)
        return vtype


def volume_type_destroy(type_id):
    with writer() as s:
        in_use = s.scalar(select(func.count(models.Volume.id)).where(
            models.Volume.volume_type_id == type_id, models.Volume.deleted == false()))
        if in_use:
            raise exception.VolumeTypeInUse(type_id=type_id)
        done = s.execute(update(models.VolumeType).where(
            models.VolumeType.id == type_id, models.VolumeType.deleted == false()).values(
            deleted=True, deleted_at=utcnow())).rowcount
        if not done:
            raise exception.VolumeTypeNotFound(type_id=type_id)


def extra_specs_update(type_id, specs):
    with writer() as s:
        vtype = s.scalars(select(models.VolumeType).where(
            models.VolumeType.id == type_id, models.VolumeType.deleted == false())).first()
        if vtype is None:
            raise exception.VolumeTypeNotFound(type_id=type_id)
        existing = {e.key: e for e in vtype.extra_specs}
        for key, value in specs.items():
            if key in existing:
                existing[key].value = str(value)
            else:
                vtype.extra_specs.append(models.VolumeTypeExtraSpec(key=key, value=str(value)))
        s.flush()
        return {e.key: e.value for e in vtype.extra_specs}


def extra_spec_delete(type_id, key):
    with writer() as s:
        done = s.execute(delete(models.VolumeTypeExtraSpec).where(
            models.VolumeTypeExtraSpec.volume_type_id == type_id,
            models.VolumeTypeExtraSpec.key == key)).rowcount
        if not done:
            raise exception.VolumeTypeExtraSpecNotFound(type_id=type_id, key=key)


# --- services --------------------------------------------------------------------------------

def service_heartbeat(host, binary, topic, availability_zone=None, rpc_version=None):
    """Insert the service row on first call, then bump its heartbeat."""
    now = utcnow()
    with writer() as s:
        done = s.execute(update(models.Service).where(
            models.Service.host == host, models.Service.binary == binary).values(
            heartbeat_at=now, report_count=models.Service.report_count + 1,
            availability_zone=availability_zone, rpc_version=rpc_version)).rowcount
        if not done:
            s.add(models.Service(host=host, binary=binary, topic=topic,
                                 availability_zone=availability_zone, heartbeat_at=now,
                                 report_count=1, rpc_version=rpc_version))


def host_matches(value, wanted):
    """Whether a host (or pool) name `value` is what a client means by `wanted`, as Cinder
    matches them: `host@backend#pool` only itself; `host@backend` also its pools; a plain
    `host` also every `host@backend` and `host#pool` on it. Case-sensitive on every
    database (MariaDB's collation would not be)."""
    if value is None:
        return False
    if value == wanted or "#" in wanted:
        return value == wanted
    if value.startswith(wanted + "#"):
        return True
    return "@" not in wanted and value.startswith(wanted + "@")


def service_get_all(host=None, binary=None):
    """Services by Cinder's host matching (see host_matches) and exact binary. The table
    holds a handful of rows, so the matching is done here rather than with LIKE."""
    with reader() as s:
        rows = list(s.scalars(select(models.Service).order_by(models.Service.id)))
    return [r for r in rows
            if (not host or host_matches(r.host, host)) and (not binary or r.binary == binary)]


def service_frozen(host, binary):
    """Whether the service `binary` on exactly `host` is frozen (two columns, no ORM rows:
    every delete, extend and snapshot request asks)."""
    with reader() as s:
        rows = s.execute(select(models.Service.host, models.Service.frozen).where(
            models.Service.host == host, models.Service.binary == binary))
        # exact, also where MariaDB's collation matched another case
        return any(row.host == host and row.frozen for row in rows)


def service_update(host, binary, values):
    with writer() as s:
        done = s.execute(update(models.Service).where(
            models.Service.host == host, models.Service.binary == binary).values(**values))
        if not done.rowcount:
            raise exception.ServiceNotFound(service="%s on %s" % (binary, host))


# --- pools and placement claims ---------------------------------------------------------------

def usable_capacity_gb(total, free, allocated, thin, ratio, reserved_percentage):
    """The one capacity formula: how many GiB of volumes the pool may hold in all.

    Thin pools may be over-subscribed up to ratio x total; thick pools hold what is allocated
    already plus what is physically free. The reserved percentage of the total is never given
    out. The capacity filter, the weighers and the claim all read this figure."""
    reserved = total * reserved_percentage / 100.0
    if thin:
        usable = total * max(ratio, 1.0) - reserved
        if free - reserved <= 0:
            usable = min(usable, allocated)
    else:
        usable = min(total - reserved, allocated + free - reserved)
    return max(int(usable), 0)


def pools_report(host, pools, availability_zone=None):
    """Store a volume service's pool report. Never touches allocated_capacity_gb."""
    now = utcnow()
    with writer() as s:
        existing = {p.name: p for p in s.scalars(
            select(models.Pool).where(models.Pool.host == host))}
        for report in pools:
            name = "%s#%s" % (host, report["pool_name"])
            pool = existing.pop(name, None)
            if pool is None:
                pool = models.Pool(name=name, host=host, pool_name=report["pool_name"],
                                   allocated_capacity_gb=0, volume_count=0)
                s.add(pool)
            pool.volume_backend_name = report.get("volume_backend_name")
            pool.availability_zone = availability_zone
            pool.total_capacity_gb = float(report.get("total_capacity_gb") or 0)
            pool.free_capacity_gb = float(report.get("free_capacity_gb") or 0)
            pool.thin_provisioning = bool(report.get("thin_provisioning_support"))
            pool.max_over_subscription_ratio = float(
                report.get("max_over_subscription_ratio") or 1.0)
            pool.reserved_percentage = int(report.get("reserved_percentage") or 0)
            pool.capabilities = json.dumps(report, sort_keys=True)
            pool.reported_at = now
            pool.usable_capacity_gb = usable_capacity_gb(
                pool.total_capacity_gb, pool.free_capacity_gb, pool.allocated_capacity_gb or 0,
                pool.thin_provisioning, pool.max_over_subscription_ratio,
                pool.reserved_percentage)
        for gone in existing.values():
            # A pool the back end no longer reports can take no new volumes.
            gone.usable_capacity_gb = 0
            gone.reported_at = now


def pool_get_all(host=None):
    with reader() as s:
        stmt = select(models.Pool).order_by(models.Pool.name)
        if host is not None:
            stmt = stmt.where(models.Pool.host == host)
        return list(s.scalars(stmt))


def pool_get(name):
    with reader() as s:
        return s.get(models.Pool, name)


_POOL_CLAIMS = {}


def _pool_claim_statement(new_volume, enabled_only):
    """The claim's UPDATE, built once per kind: a Core statement with bound parameters, so a
    claim neither rebuilds nor re-keys it, and the ORM's session synchronisation (which on
    MariaDB, where UPDATE has no RETURNING, SELECTs the matched rows first: one more round
    trip) does not run."""
    stmt = _POOL_CLAIMS.get((new_volume, enabled_only))
    if stmt is None:
        pools, services = models.Pool.__table__.c, models.Service.__table__.c
        conditions = [pools.name == bindparam("b_name"),
                      pools.allocated_capacity_gb + bindparam("b_size_gb")
                      <= pools.usable_capacity_gb]
        if enabled_only:
            conditions.append(~exists().where(
                services.host == pools.host, services.binary == "lamina-volume",
                or_(services.disabled == true(), services.frozen == true())))
        stmt = (update(models.Pool.__table__).where(*conditions)
                .values(allocated_capacity_gb=pools.allocated_capacity_gb + bindparam("b_size_gb"),
                        volume_count=pools.volume_count + (1 if new_volume else 0)))
        _POOL_CLAIMS[(new_volume, enabled_only)] = stmt
    return stmt


def pool_claim(name, size_gb, session=None, new_volume=True, enabled_only=False):
    """Claim size_gb on a pool; False when it no longer has room. One conditional UPDATE.

    new_volume=False claims capacity for a volume already counted there (extend).
    enabled_only: also False when the pool's volume service is disabled or frozen (the
    scheduler's placements: a back end disabled a moment ago never gets the volume, whatever
    the scheduler's cache still says)."""
    stmt = _pool_claim_statement(new_volume, enabled_only)
    params = {"b_name": name, "b_size_gb": size_gb}
    if session is not None:
        return session.connection().execute(stmt, params).rowcount == 1
    with writer() as s:
        return s.connection().execute(stmt, params).rowcount == 1


def pool_release(name, size_gb, session=None, volume_gone=True):
    count = models.Pool.volume_count
    stmt = (update(models.Pool).where(models.Pool.name == name)
            .values(allocated_capacity_gb=case(
                        (models.Pool.allocated_capacity_gb >= size_gb,
                         models.Pool.allocated_capacity_gb - size_gb), else_=0),
                    volume_count=case((count >= 1, count - 1), else_=0) if volume_gone
                    else count))
    if session is not None:
        session.execute(stmt)
        return
    with writer() as s:
        s.execute(stmt)


def pools_recount(host):
    """Recompute allocated capacity and volume counts of a host's pools from the volumes that
    live there, so the claims can never drift from the volumes (run when a service starts).

    A volume in `error` holds no claim: a failed create removed its storage and gave its
    claim back. Every other volume on the host (error_deleting and error_extending too)
    may have storage and keeps its claim."""
    with writer() as s:
        rows = s.execute(select(models.Volume.host, func.count(models.Volume.id),
                                func.coalesce(func.sum(models.Volume.size), 0))
                         .where(models.Volume.host.like(host + "#%"),
                                models.Volume.deleted == false(),
                                models.Volume.status != "error")
                         .group_by(models.Volume.host)).all()
        counts = {row[0]: (int(row[1]), int(row[2])) for row in rows}
        for pool in s.scalars(select(models.Pool).where(models.Pool.host == host)):
            count, allocated = counts.get(pool.name, (0, 0))
            pool.volume_count = count
            pool.allocated_capacity_gb = allocated


# --- user messages -----------------------------------------------------------------------------

def message_create(ctx, resource_type, resource_uuid, event_id, detail, level="ERROR",
                   session=None):
    """A user message; in `session` when given (committed with the change it explains)."""
    message_id = new_id()
    row = models.Message(id=message_id, project_id=ctx.project_id, request_id=ctx.request_id,
                         resource_type=resource_type, resource_uuid=resource_uuid,
                         event_id=event_id, message_level=level, detail=detail,
                         expires_at=utcnow() + datetime.timedelta(
                             seconds=cfg.CONF.message_ttl))
    if session is not None:
        session.add(row)
        session.flush()
        return message_id
    with writer() as s:
        s.add(row)
    return message_id


def message_get_all(ctx, resource_uuid=None, marker=None, limit=None):
    with reader() as s:
        stmt = select(models.Message).where(or_(models.Message.expires_at.is_(None),
                                                models.Message.expires_at > utcnow()))
        if not ctx.is_admin:
            stmt = stmt.where(models.Message.project_id == ctx.project_id)
        if resource_uuid:
            stmt = stmt.where(models.Message.resource_uuid == resource_uuid)
        marker_row = None
        if marker is not None:
            marker_row = s.get(models.Message, marker)
            if marker_row is None:
                raise exception.MarkerNotFound(marker=marker)
        stmt = paginate(stmt, models.Message, ("created_at",), ("desc",), marker_row, limit)
        return list(s.scalars(stmt))


def message_get(ctx, message_id):
    with reader() as s:
        msg = s.get(models.Message, message_id)
        expired = msg is not None and msg.expires_at is not None and msg.expires_at <= utcnow()
        if msg is None or expired or (not ctx.is_admin and msg.project_id != ctx.project_id):
            raise exception.MessageNotFound(message_id=message_id)
        return msg


def message_delete(ctx, message_id):
    message_get(ctx, message_id)
    with writer() as s:
        s.execute(delete(models.Message).where(models.Message.id == message_id))


def snapshots_on_backend(backend_host):
    """{snapshot id: volume id} of the live snapshots whose volume is placed on host@backend
    (the manageable snapshot list)."""
    with reader() as s:
        rows = s.execute(select(models.Snapshot.id, models.Snapshot.volume_id)
                         .join(models.Volume, models.Volume.id == models.Snapshot.volume_id)
                         .where(models.Volume.host.like(backend_host + "#%"),
                                models.Snapshot.deleted == false()))
        return {r[0]: r[1] for r in rows}


def volume_count(ctx, filters=None, all_projects=False):
    """with_count (3.45): how many volumes the list's filters match, paging aside."""
    with reader() as s:
        stmt = _volume_filters(_volume_scope(ctx, select(func.count(models.Volume.id)),
                                             project_only=not (all_projects and ctx.is_admin)),
                               filters)
        return s.scalar(stmt)


def snapshot_count(ctx, filters=None, all_projects=False):
    """with_count (3.45): how many snapshots the list's filters match, paging aside."""
    with reader() as s:
        stmt = _snapshot_filters(_snapshot_scope(
            ctx, select(func.count(models.Snapshot.id)),
            project_only=not (all_projects and ctx.is_admin)), filters)
        return s.scalar(stmt)
