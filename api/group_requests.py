"""The request-handling layer for generic volume groups and group snapshots: check input
against state, write the database, cast to the volume service of the group's back end. It
never touches storage.

A group lives on one back end (host@backend), chosen at create among the back ends that are
up in the zone and have a pool for every one of its volume types; its volumes are created
there. The groups quota is charged with the row and given back when the row goes."""

import datetime
import json
import logging

from oslo_config import cfg

from common import exception, quota
from common.db import api as db
from common.db import groups_api as gdb
from common.db import models
from common.db.models import utcnow
from common.db.session import writer
from scheduler import filters
from volume_worker import rpcapi as volume_rpcapi

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

# A group may be deleted from these; the transitional ones belong to a flow.
DELETABLE = ("available", "error", "error_deleting")
MEMBER_DELETABLE = ("available", "error", "error_restoring", "error_extending",
                    "error_managing")
EVENT_GROUP_CREATE = "VOLUME_GROUP_002_003"
EVENT_GROUP_DELETE = "VOLUME_GROUP_003_004"
EVENT_GROUP_SNAPSHOT_CREATE = "VOLUME_GROUP_SNAPSHOT_004_005"
EVENT_GROUP_SNAPSHOT_DELETE = "VOLUME_GROUP_SNAPSHOT_005_006"


class GroupLimitExceeded(exception.OverLimit):
    message = "Maximum number of groups allowed (%(allowed)d) exceeded"


def _capabilities(pool):
    try:
        return json.loads(pool.capabilities or "{}")
    except ValueError:
        return {}


def choose_backend(zone, volume_types):
    """host@backend of an up back end in `zone` with a pool for each type, or None."""
    cutoff = utcnow() - datetime.timedelta(seconds=CONF.service_down_time)
    by_host = {}
    for pool in db.pool_get_all():
        caps = _capabilities(pool)
        if caps.get("backend_state", "up") != "up" or pool.reported_at is None \
                or pool.reported_at < cutoff or pool.availability_zone != zone:
            continue
        by_host.setdefault(pool.host, []).append(caps)
    for host in sorted(by_host):
        pools = by_host[host]
        if all(any(_matches(caps, vtype) for caps in pools) for vtype in volume_types):
            return host
    return None


def _matches(caps, vtype):
    class _Pool:
        capabilities = caps
    specs = {e.key: e.value for e in vtype.extra_specs}
    return filters.capabilities_filter(_Pool, {"extra_specs": specs})


class GroupRequests:
    def __init__(self):
        self.volume_rpcapi = volume_rpcapi.VolumeAPI()

    # --- groups ------------------------------------------------------------------------------

    def create(self, ctx, name, description, group_type, volume_types, availability_zone,
               zone_default, known_zones):
        gtype = gdb.group_type_get_by_name_or_id(ctx, group_type)
        vtypes = []
        for ident in volume_types:
            vtype = db.volume_type_get_by_name_or_id(ident)
            if vtype.id not in [v.id for v in vtypes]:
                vtypes.append(vtype)
        zone = availability_zone or zone_default
        if zone not in known_zones:
            raise exception.InvalidInput(reason="Availability zone '%s' is invalid." % zone)
        host = choose_backend(zone, vtypes)
        values = {"project_id": ctx.project_id, "user_id": ctx.user_id, "name": name,
                  "description": description, "group_type_id": gtype.id,
                  "availability_zone": zone, "host": host,
                  "status": "creating" if host else "error"}
        group = self._insert(ctx, values, [v.id for v in vtypes])
        if host is None:
            self._message(ctx, group.id, EVENT_GROUP_CREATE,
                          "create group: No valid backend was found: no back end in zone %s "
                          "is up with a pool for every volume type of the group" % zone)
            return group
        try:
            self.volume_rpcapi.create_group(ctx, host, group.id)
        except Exception as exc:
            self._fail_unsent(ctx, group.id, "creating", "error", EVENT_GROUP_CREATE,
                              "create group", exc)
            raise exception.ServiceBusy(service="volume")
        LOG.info("Group %s (type %s) accepted on %s", group.id, gtype.name, host)
        return group

    @staticmethod
    def _insert(ctx, values, volume_type_ids):
        with writer() as s:
            try:
                quota.reserve(ctx.project_id, {"groups": 1}, session=s)
            except exception.OverLimit:
                raise GroupLimitExceeded(allowed=quota.project_limits(
                    ctx.project_id, ["groups"], session=s).get("groups", -1))
            group = gdb.group_add(s, values, volume_type_ids)
            if values["host"] is None:
                db.worker_release("group", group.id, session=s)
            return group

    @staticmethod
    def _message(ctx, group_id, event, detail):
        try:
            db.message_create(ctx, "GROUP", group_id, event, detail)
        except Exception:
            LOG.exception("Could not record the user message of group %s", group_id)

    def _fail_unsent(self, ctx, group_id, from_status, to_status, event, action, exc):
        with writer() as s:
            won = db.conditional_update(models.Group, group_id, {"status": to_status},
                                        {"status": from_status, "deleted": False}, session=s)
            if won:
                db.worker_release("group", group_id, session=s)
        if won:
            self._message(ctx, group_id, event, "%s: the volume service could not be reached "
                                                "(%s)" % (action, exc))

    def update(self, ctx, group_id, values, add_ids, remove_ids):
        """Name, description and membership. Membership is a database change only: no
        Lamina driver keeps groups on storage apart from their members."""
        group = gdb.group_get(ctx, group_id)
        if set(add_ids) & set(remove_ids):
            raise gdb.InvalidGroup(reason="a volume cannot be both added to and removed from "
                                          "group %s" % group_id)
        with writer() as s:
            group = gdb.group_get_locked(s, group_id)
            if group is None:
                raise gdb.GroupNotFound(group_id=group_id)
            if (add_ids or remove_ids) and group.status != "available":
                raise gdb.InvalidGroup(reason="Group %s status must be available to add or "
                                              "remove volumes, currently %s."
                                              % (group_id, group.status))
            type_ids = {m.volume_type_id for m in group.volume_types}
            for volume_id in add_ids:
                volume = db.volume_get_locked(s, volume_id)
                if volume is None or volume.project_id != group.project_id:
                    raise exception.InvalidVolume(
                        reason="Cannot add volume %s to group %s because volume cannot be "
                               "found." % (volume_id, group_id))
                if volume.group_id:
                    raise exception.InvalidVolume(
                        reason="Cannot add volume %s to group %s because it is already in "
                               "group %s." % (volume_id, group_id, volume.group_id))
                if volume.status not in ("available", "in-use"):
                    raise exception.InvalidVolume(
                        reason="Cannot add volume %s to group %s because volume is in an "
                               "invalid state: %s. Valid states are: available, in-use."
                               % (volume_id, group_id, volume.status))
                if volume.volume_type_id not in type_ids:
                    raise exception.InvalidVolume(
                        reason="Cannot add volume %s to group %s because volume type %s is "
                               "not supported by the group." % (volume_id, group_id,
                                                                volume.volume_type_id))
                if not volume.host or volume.host.split("#")[0] != group.host:
                    raise exception.InvalidVolume(
                        reason="Cannot add volume %s to group %s because volume and group "
                               "are not on the same back end." % (volume_id, group_id))
                volume.group_id = group_id
            for volume_id in remove_ids:
                volume = db.volume_get_locked(s, volume_id)
                if volume is None or volume.group_id != group_id:
                    raise exception.InvalidVolume(
                        reason="Cannot remove volume %s from group %s because it is not in "
                               "the group." % (volume_id, group_id))
                if volume.status not in ("available", "in-use", "error", "error_deleting"):
                    raise exception.InvalidVolume(
                        reason="Cannot remove volume %s from group %s because volume is in "
                               "an invalid state: %s." % (volume_id, group_id, volume.status))
                volume.group_id = None
            if values:
                gdb.group_update(group_id, values, session=s)
        LOG.info("Group %s updated", group_id)

    def delete(self, ctx, group_id, delete_volumes):
        group = gdb.group_get(ctx, group_id)
        with writer() as s:
            group = gdb.group_get_locked(s, group_id)
            if group is None:
                raise gdb.GroupNotFound(group_id=group_id)
            if group.status not in DELETABLE:
                raise gdb.InvalidGroup(reason="Group status must be available or error or "
                                              "error_deleting, but current status is: %s"
                                              % group.status)
            if s.query(models.GroupSnapshot).filter_by(group_id=group_id,
                                                       deleted=False).first():
                raise gdb.InvalidGroup(reason="Group %s still has dependent group snapshots."
                                              % group_id)
            volumes = gdb.group_volumes(group_id, session=s)
            if volumes and not delete_volumes:
                raise gdb.InvalidGroup(reason="Group %s still contains volumes. The "
                                              "delete-volumes flag is required to delete it."
                                              % group_id)
            for volume in volumes:
                self._mark_member_deleting(s, group_id, volume)
            if group.host is None:
                # Never placed: nothing on storage, and no member could be created into it.
                gdb.group_mark_deleted(s, group_id)
                quota.release(group.project_id, {"groups": 1}, session=s)
                db.worker_release("group", group_id, session=s)
                return
            group.status = "deleting"
            db.worker_release("group", group_id, session=s)
            db.worker_claim("group", group_id, "delete", host=group.host, session=s)
        try:
            self.volume_rpcapi.delete_group(ctx, group.host, group_id)
        except Exception as exc:
            self._fail_unsent(ctx, group_id, "deleting", "error_deleting", EVENT_GROUP_DELETE,
                              "delete group", exc)
            raise exception.ServiceBusy(service="volume")
        LOG.info("Group %s delete accepted (%d volumes)", group_id, len(volumes))

    @staticmethod
    def _mark_member_deleting(s, group_id, volume):
        if volume.status == "deleting":
            return  # a delete of its own is under way; the group's flow waits for none
        if db.snapshots_of_volume_exist(volume.id, s):
            raise gdb.InvalidGroup(reason="Volume %s in group %s has snapshots; delete them "
                                          "first." % (volume.id, group_id))
        won = db.conditional_update(
            models.Volume, volume.id, {"status": "deleting"},
            {"status": MEMBER_DELETABLE, "attach_status": "detached", "deleted": False,
             "migration_status": (None, "deleting", "error", "success")}, session=s)
        if not won:
            raise gdb.InvalidGroup(reason="Volume %s in group %s is %s (attached or busy); "
                                          "a group delete takes available or error volumes."
                                          % (volume.id, group_id, volume.status))
        quota.release_volume(s, volume)  # charged again if its delete fails
        db.worker_release("volume", volume.id, session=s)
        if volume.host:
            db.worker_claim("volume", volume.id, "delete", host=volume.host.split("#")[0],
                            session=s)
        else:
            db.volume_mark_deleted(volume.id, session=s)

    @staticmethod
    def reset_status(ctx, group_id, status):
        gdb.group_get(ctx, group_id)
        with writer() as s:
            db.conditional_update(models.Group, group_id, {"status": status},
                                  {"deleted": False}, session=s)
            db.worker_release("group", group_id, session=s)
        LOG.warning("Group %s status reset to %s by %s", group_id, status, ctx.user_id)

    @staticmethod
    def check_volume_into_group(ctx, group_id, vtype):
        """POST /volumes with group_id: the group must be the caller's, available, and take
        the volume's type; the volume is made on the group's back end."""
        group = gdb.group_get(ctx, group_id)
        if group.status != "available":
            raise gdb.InvalidGroup(reason="Group %s status must be available, currently %s."
                                          % (group_id, group.status))
        if vtype.id not in {m.volume_type_id for m in group.volume_types}:
            raise exception.InvalidInput(
                reason="Invalid volume_type provided: %s (requested type must be supported by "
                       "group %s)." % (vtype.name, group_id))
        return group

    # --- group snapshots (3.14) ------------------------------------------------------------

    def create_group_snapshot(self, ctx, group_id, name, description):
        """A snapshot of each member, one row each (group_snapshot_id set), charged to the
        snapshots quota as single snapshots are; the volume service takes them together."""
        gdb.group_get(ctx, group_id)
        with writer() as s:
            group = gdb.group_get_locked(s, group_id)
            if group is None:
                raise gdb.GroupNotFound(group_id=group_id)
            if group.status != "available":
                raise gdb.InvalidGroup(reason="Group %s status must be available, currently "
                                              "%s." % (group_id, group.status))
            volumes = gdb.group_volumes(group_id, session=s)
            if not volumes:
                raise gdb.InvalidGroup(reason="Group %s has no volumes to snapshot."
                                              % group_id)
            gs = models.GroupSnapshot(id=db.new_id(), group_id=group_id,
                                      project_id=ctx.project_id, user_id=ctx.user_id,
                                      name=name, description=description, status="creating",
                                      group_type_id=group.group_type_id)
            s.add(gs)
            for volume in volumes:
                locked = db.volume_get_locked(s, volume.id)
                if locked.status not in ("available", "in-use") or \
                        locked.migration_status not in (None, "success", "error"):
                    raise exception.InvalidVolume(
                        reason="Volume %s in group %s must be available or in-use, currently "
                               "%s." % (volume.id, group_id, locked.status))
                quota.reserve_snapshot(ctx.project_id, locked.size,
                                       quota_api_type_name(s, locked.volume_type_id),
                                       session=s)
                snapshot = db.snapshot_add(s, {
                    "project_id": ctx.project_id, "user_id": ctx.user_id,
                    "volume_id": locked.id, "name": name, "description": description,
                    "status": "creating", "progress": "0%", "volume_size": locked.size,
                    "volume_type_id": locked.volume_type_id, "group_snapshot_id": gs.id,
                }, host=group.host)
                # The group's flow owns the members' creation, not the snapshot reaper.
                db.worker_release("snapshot", snapshot.id, session=s)
            s.add(models.Worker(resource_type="group_snapshot", resource_id=gs.id,
                                operation="create", host=group.host))
            s.flush()
            gs_id, host = gs.id, group.host
        try:
            self.volume_rpcapi.create_group_snapshot(ctx, host, gs_id)
        except Exception as exc:
            from volume_worker.flows import create_group_snapshot as flow

            flow.end_failed(ctx, None, gs_id, "the volume service could not be reached (%s)"
                            % exc)
            raise exception.ServiceBusy(service="volume")
        LOG.info("Group snapshot %s of group %s accepted (%d members)", gs_id, group_id,
                 len(volumes))
        return gdb.group_snapshot_get(ctx, gs_id)

    def delete_group_snapshot(self, ctx, group_snapshot_id):
        gs = gdb.group_snapshot_get(ctx, group_snapshot_id)
        group = gdb.group_get_internal(gs.group_id)
        with writer() as s:
            if group is not None:
                gdb.group_get_locked(s, group.id)
            for snapshot in gdb.group_snapshot_members(group_snapshot_id, session=s):
                if db.volumes_creating_from(s, snapshot_id=snapshot.id):
                    raise gdb.InvalidGroupSnapshot(
                        reason="a volume is being created from group snapshot %s; delete it "
                               "when that is done" % group_snapshot_id)
            won = db.conditional_update(models.GroupSnapshot, group_snapshot_id,
                                        {"status": "deleting"},
                                        {"status": ("available", "error", "error_deleting"),
                                         "deleted": False}, session=s)
            if won:
                for snapshot in gdb.group_snapshot_members(group_snapshot_id, session=s):
                    db.conditional_update(models.Snapshot, snapshot.id, {"status": "deleting"},
                                          {"deleted": False}, session=s)
                s.add(models.Worker(resource_type="group_snapshot",
                                    resource_id=group_snapshot_id, operation="delete",
                                    host=group.host if group else None))
        if not won:
            raise gdb.InvalidGroupSnapshot(
                reason="Group snapshot status must be available or error, currently %s."
                       % gs.status)
        try:
            self.volume_rpcapi.delete_group_snapshot(ctx, group.host, group_snapshot_id)
        except Exception as exc:
            from volume_worker.flows import delete_group_snapshot as flow

            flow.end_failed(ctx, None, group_snapshot_id,
                            "the volume service could not be reached (%s)" % exc)
            raise exception.ServiceBusy(service="volume")
        LOG.info("Group snapshot %s delete accepted", group_snapshot_id)

    @staticmethod
    def reset_group_snapshot_status(ctx, group_snapshot_id, status):
        gdb.group_snapshot_get(ctx, group_snapshot_id)
        with writer() as s:
            db.conditional_update(models.GroupSnapshot, group_snapshot_id, {"status": status},
                                  {"deleted": False}, session=s)
            db.worker_release("group_snapshot", group_snapshot_id, session=s)
        LOG.warning("Group snapshot %s status reset to %s by %s", group_snapshot_id, status,
                    ctx.user_id)

    # --- a group from a group snapshot or from another group (3.14) ----------------------

    def create_from_src(self, ctx, name, description, group_snapshot_id, source_group_id):
        """The new group is of the source's types on the source's back end; each member is
        made from one snapshot of the group snapshot (or cloned from one volume of the
        source group) in the source member's pool, which is claimed here."""
        if bool(group_snapshot_id) == bool(source_group_id):
            raise exception.InvalidInput(reason="Either 'group_snapshot_id' or "
                                                "'source_group_id' must be provided to create "
                                                "group %s from source." % name)
        if group_snapshot_id:
            gs = gdb.group_snapshot_get(ctx, group_snapshot_id)
            source = gdb.group_get_internal(gs.group_id)
        else:
            source = gdb.group_get(ctx, source_group_id)
        if source is None or source.deleted or not source.host:
            raise gdb.InvalidGroup(reason="the source group is gone or was never placed")
        with writer() as s:
            if group_snapshot_id:
                locked = s.get(models.GroupSnapshot, group_snapshot_id, with_for_update=True)
                if locked is None or locked.deleted or locked.status != "available":
                    raise gdb.InvalidGroupSnapshot(
                        reason="Group snapshot status must be available, currently %s."
                               % (locked.status if locked else "deleted"))
                sources = [(snap, db.volume_get_locked(s, snap.volume_id))
                           for snap in gdb.group_snapshot_members(group_snapshot_id, s)]
            else:
                locked = gdb.group_get_locked(s, source_group_id)
                if locked is None or locked.status != "available":
                    raise gdb.InvalidGroup(reason="Source group status must be available, "
                                                  "currently %s."
                                           % (locked.status if locked else "deleted"))
                sources = [(None, db.volume_get_locked(s, v.id))
                           for v in gdb.group_volumes(source_group_id, session=s)]
                for _, volume in sources:
                    if volume.status not in ("available", "in-use"):
                        raise exception.InvalidVolume(
                            reason="Source volume %s must be available or in-use, currently "
                                   "%s." % (volume.id, volume.status))
            try:
                quota.reserve(ctx.project_id, {"groups": 1}, session=s)
            except exception.OverLimit:
                raise GroupLimitExceeded(allowed=quota.project_limits(
                    ctx.project_id, ["groups"], session=s).get("groups", -1))
            group = gdb.group_add(s, {
                "project_id": ctx.project_id, "user_id": ctx.user_id, "name": name,
                "description": description, "group_type_id": source.group_type_id,
                "availability_zone": source.availability_zone, "host": source.host,
                "status": "creating", "group_snapshot_id": group_snapshot_id or None,
                "source_group_id": source_group_id or None,
            }, [m.volume_type_id for m in source.volume_types])
            for snapshot, source_volume in sources:
                size = snapshot.volume_size if snapshot else source_volume.size
                values = {
                    "project_id": ctx.project_id, "user_id": ctx.user_id,
                    "name": source_volume.name, "description": source_volume.description,
                    "size": size, "status": "creating", "attach_status": "detached",
                    "availability_zone": source.availability_zone,
                    "volume_type_id": source_volume.volume_type_id,
                    "snapshot_id": snapshot.id if snapshot else None,
                    "source_volid": None if snapshot else source_volume.id,
                    "group_id": group.id, "host": source_volume.host,
                }
                quota.charge_new_volume(s, values)  # 413, nothing written, if over quota
                if not db.pool_claim(source_volume.host, size, session=s):
                    raise exception.NoValidBackend(
                        reason="pool %s has no room for %d GiB" % (source_volume.host, size))
                volume = db.volume_add(s, values)
                # The group's flow owns the members' creation, not the volume reaper.
                db.worker_release("volume", volume.id, session=s)
            group_id, host = group.id, group.host
        try:
            self.volume_rpcapi.create_group_from_src(ctx, host, group_id)
        except Exception as exc:
            from volume_worker.flows import create_group_from_src as flow

            flow.end_failed(ctx, None, group_id, "the volume service could not be reached (%s)"
                            % exc)
            raise exception.ServiceBusy(service="volume")
        LOG.info("Group %s from %s accepted (%d members)", group_id,
                 group_snapshot_id or source_group_id, len(sources))
        return gdb.group_get(ctx, group_id)


def quota_api_type_name(session, volume_type_id):
    from common.db import quota_api

    return quota_api.volume_type_name(session, volume_type_id)
