"""Queries of generic volume groups: group types and their specs, groups, group snapshots.

A check and the write it guards sit in one transaction behind a row lock (a group type's
delete against a group create of that type, a group's delete against a volume created into
it), so the loser gets Cinder's error rather than a half-done change."""

from sqlalchemy import false, select
from sqlalchemy.exc import IntegrityError

from common import exception
from common.db import api as db
from common.db import models
from common.db.models import utcnow
from common.db.session import reader, writer


class GroupTypeNotFound(exception.NotFound):
    message = "Group type %(group_type_id)s could not be found."


class GroupTypeNotFoundByName(exception.NotFound):
    message = "Group type with name %(group_type_name)s could not be found."


class GroupTypeSpecsNotFound(exception.NotFound):
    message = "Group Type %(group_type_id)s has no specs with key %(group_specs_key)s."


class GroupTypeExists(exception.Conflict):
    message = "Group Type %(id)s already exists."


class GroupTypeInUse(exception.BadRequest):
    message = "Group Type %(group_type_id)s deletion is not allowed with groups present with " \
              "the type."


class GroupNotFound(exception.NotFound):
    message = "Group %(group_id)s could not be found."


class InvalidGroup(exception.BadRequest):
    message = "Invalid Group: %(reason)s"


class GroupSnapshotNotFound(exception.NotFound):
    message = "GroupSnapshot %(group_snapshot_id)s could not be found."


class InvalidGroupSnapshot(exception.BadRequest):
    message = "Invalid GroupSnapshot: %(reason)s"


# --- group types -------------------------------------------------------------------------------

def _type_scope(ctx, stmt):
    stmt = stmt.where(models.GroupType.deleted == false())
    if not ctx.is_admin:
        # Private group types are the administrators' (no group type access lists here).
        stmt = stmt.where(models.GroupType.is_public.is_(True))
    return stmt


def group_type_create(name, description=None, is_public=True, specs=None):
    with writer() as s:
        taken = s.scalars(select(models.GroupType.id).where(
            models.GroupType.name == name, models.GroupType.deleted == false())).first()
        if taken is not None:
            raise GroupTypeExists(id=name)
        gtype = models.GroupType(id=db.new_id(), name=name, description=description,
                                 is_public=is_public)
        gtype.group_specs = [models.GroupTypeSpec(key=k, value=v)
                             for k, v in (specs or {}).items()]
        s.add(gtype)
        s.flush()
        s.refresh(gtype)
        return gtype


def group_type_get(ctx, type_id):
    with reader() as s:
        gtype = s.scalars(_type_scope(ctx, select(models.GroupType).where(
            models.GroupType.id == type_id))).first()
        if gtype is None:
            raise GroupTypeNotFound(group_type_id=type_id)
        return gtype


def group_type_get_by_name_or_id(ctx, ident):
    with reader() as s:
        gtype = s.scalars(_type_scope(ctx, select(models.GroupType).where(
            models.GroupType.id == ident))).first()
        if gtype is None:
            gtype = s.scalars(_type_scope(ctx, select(models.GroupType).where(
                models.GroupType.name == ident))).first()
        if gtype is None:
            raise GroupTypeNotFound(group_type_id=ident)
        return gtype


def group_type_get_all(ctx, is_public=None, marker=None, limit=None,
                       sort_keys=("created_at",), sort_dirs=("asc",)):
    with reader() as s:
        stmt = _type_scope(ctx, select(models.GroupType))
        if is_public is not None:
            stmt = stmt.where(models.GroupType.is_public.is_(bool(is_public)))
        marker_row = None
        if marker:
            marker_row = s.get(models.GroupType, marker)
            if marker_row is None:
                raise exception.MarkerNotFound(marker=marker)
        stmt = db.paginate(stmt, models.GroupType, sort_keys, sort_dirs, marker_row, limit)
        return list(s.scalars(stmt))


def group_type_update(ctx, type_id, values):
    with writer() as s:
        gtype = s.get(models.GroupType, type_id, with_for_update=True)
        if gtype is None or gtype.deleted:
            raise GroupTypeNotFound(group_type_id=type_id)
        if values.get("name") and values["name"] != gtype.name:
            taken = s.scalars(select(models.GroupType.id).where(
                models.GroupType.name == values["name"],
                models.GroupType.deleted == false())).first()
            if taken is not None:
                raise GroupTypeExists(id=values["name"])
        for key, value in values.items():
            setattr(gtype, key, value)
        gtype.updated_at = utcnow()
        s.flush()
        s.refresh(gtype)
        return gtype


def group_type_destroy(type_id):
    with writer() as s:
        gtype = s.get(models.GroupType, type_id, with_for_update=True)
        if gtype is None or gtype.deleted:
            raise GroupTypeNotFound(group_type_id=type_id)
        in_use = s.scalars(select(models.Group.id).where(
            models.Group.group_type_id == type_id, models.Group.deleted == false())).first()
        if in_use is not None:
            raise GroupTypeInUse(group_type_id=type_id)
        gtype.deleted = True
        gtype.deleted_at = utcnow()
        gtype.group_specs = []


def group_specs_update(type_id, specs):
    with writer() as s:
        gtype = s.get(models.GroupType, type_id, with_for_update=True)
        if gtype is None or gtype.deleted:
            raise GroupTypeNotFound(group_type_id=type_id)
        current = {spec.key: spec for spec in gtype.group_specs}
        for key, value in specs.items():
            if key in current:
                current[key].value = value
            else:
                gtype.group_specs.append(models.GroupTypeSpec(key=key, value=value))
        try:
            s.flush()
        except IntegrityError:
            raise exception.Conflict("a concurrent request changed the group specs")
        return {spec.key: spec.value for spec in gtype.group_specs}


def group_spec_delete(type_id, key):
    with writer() as s:
        gtype = s.get(models.GroupType, type_id, with_for_update=True)
        if gtype is None or gtype.deleted:
            raise GroupTypeNotFound(group_type_id=type_id)
        for spec in list(gtype.group_specs):
            if spec.key == key:
                gtype.group_specs.remove(spec)
                return
        raise GroupTypeSpecsNotFound(group_type_id=type_id, group_specs_key=key)


# --- groups ------------------------------------------------------------------------------------

def _group_scope(ctx, stmt, all_projects=False):
    stmt = stmt.where(models.Group.deleted == false())
    if not (ctx.is_admin and all_projects):
        stmt = stmt.where(models.Group.project_id == ctx.project_id)
    return stmt


def group_add(session, values, volume_type_ids):
    """Insert the group and the workers row that owns its creation, in the caller's
    transaction."""
    values = dict(values)
    values.setdefault("id", db.new_id())
    group = models.Group(**values)
    group.volume_types = [models.GroupVolumeTypeMapping(volume_type_id=t)
                          for t in volume_type_ids]
    session.add(group)
    session.add(models.Worker(resource_type="group", resource_id=values["id"],
                              operation="create", host=values.get("host")))
    session.flush()
    session.refresh(group)
    return group


def group_get(ctx, group_id):
    """The group (404 outside the caller's project; administrators see every project's)."""
    with reader() as s:
        group = s.scalars(_group_scope(ctx, select(models.Group).where(
            models.Group.id == group_id), all_projects=True)).first()
        if group is None:
            raise GroupNotFound(group_id=group_id)
        return group


def group_get_internal(group_id, session=None):
    def _get(s):
        return s.get(models.Group, group_id)
    if session is not None:
        return _get(session)
    with reader() as s:
        return _get(s)


def group_get_locked(session, group_id):
    group = session.get(models.Group, group_id, with_for_update=True, populate_existing=True)
    if group is None or group.deleted:
        return None
    return group


def group_get_all(ctx, filters=None, all_projects=False, marker=None, limit=None,
                  sort_keys=("created_at",), sort_dirs=("desc",)):
    with reader() as s:
        stmt = _group_scope(ctx, select(models.Group), all_projects=all_projects)
        for key, value in (filters or {}).items():
            stmt = stmt.where(getattr(models.Group, key) == value)
        marker_row = None
        if marker:
            marker_row = s.get(models.Group, marker)
            if marker_row is None:
                raise exception.MarkerNotFound(marker=marker)
        stmt = db.paginate(stmt, models.Group, sort_keys, sort_dirs, marker_row, limit)
        return list(s.scalars(stmt))


def group_update(group_id, values, session=None):
    def _update(s):
        group = s.get(models.Group, group_id)
        for key, value in values.items():
            setattr(group, key, value)
        group.updated_at = utcnow()
        s.flush()
        s.refresh(group)
        return group
    if session is not None:
        return _update(session)
    with writer() as s:
        return _update(s)


def group_mark_deleted(session, group_id):
    group = session.get(models.Group, group_id)
    group.deleted = True
    group.deleted_at = utcnow()
    group.status = "deleted"


def group_volumes(group_id, session=None):
    def _get(s):
        return list(s.scalars(select(models.Volume).where(
            models.Volume.group_id == group_id, models.Volume.deleted == false())
            .order_by(models.Volume.created_at, models.Volume.id)))
    if session is not None:
        return _get(session)
    with reader() as s:
        return _get(s)


def groups_using_type(group_type_id, session):
    return list(session.scalars(select(models.Group.id).where(
        models.Group.group_type_id == group_type_id, models.Group.deleted == false())))


# --- group snapshots ---------------------------------------------------------------------------

def _group_snapshot_scope(ctx, stmt, all_projects=False):
    stmt = stmt.where(models.GroupSnapshot.deleted == false())
    if not (ctx.is_admin and all_projects):
        stmt = stmt.where(models.GroupSnapshot.project_id == ctx.project_id)
    return stmt


def group_snapshot_get(ctx, group_snapshot_id):
    with reader() as s:
        gs = s.scalars(_group_snapshot_scope(ctx, select(models.GroupSnapshot).where(
            models.GroupSnapshot.id == group_snapshot_id), all_projects=True)).first()
        if gs is None:
            raise GroupSnapshotNotFound(group_snapshot_id=group_snapshot_id)
        return gs


def group_snapshot_get_all(ctx, filters=None, all_projects=False, marker=None, limit=None,
                           sort_keys=("created_at",), sort_dirs=("desc",)):
    with reader() as s:
        stmt = _group_snapshot_scope(ctx, select(models.GroupSnapshot),
                                     all_projects=all_projects)
        for key, value in (filters or {}).items():
            stmt = stmt.where(getattr(models.GroupSnapshot, key) == value)
        marker_row = None
        if marker:
            marker_row = s.get(models.GroupSnapshot, marker)
            if marker_row is None:
                raise exception.MarkerNotFound(marker=marker)
        stmt = db.paginate(stmt, models.GroupSnapshot, sort_keys, sort_dirs, marker_row, limit)
        return list(s.scalars(stmt))


def group_snapshot_members(group_snapshot_id, session=None):
    def _get(s):
        return list(s.scalars(select(models.Snapshot).where(
            models.Snapshot.group_snapshot_id == group_snapshot_id,
            models.Snapshot.deleted == false())
            .order_by(models.Snapshot.created_at, models.Snapshot.id)))
    if session is not None:
        return _get(session)
    with reader() as s:
        return _get(s)
