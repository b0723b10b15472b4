"""The request-handling layer for snapshots: check input against state, write the database,
cast to the volume service that holds the volume. It never touches storage."""

import logging

from api.backends import refuse_if_frozen
from common import exception, quota, volume_status
from common.db import api as db
from common.db import models, quota_api
from common.db.session import writer
from volume_worker import rpcapi as volume_rpcapi

LOG = logging.getLogger(__name__)

DELETABLE_STATUSES = ("available", "error")


class SnapshotRequests:
    def __init__(self):
        self.volume_rpcapi = volume_rpcapi.VolumeAPI()

    def create(self, ctx, volume_id, force=False, name=None, description=None,
               metadata=None, in_use_allowed=False):
        """in_use_allowed: 3.66 and later take snapshots of in-use volumes without force."""
        # 404 for a volume the caller cannot see, then 400 for a frozen back end
        refuse_if_frozen(db.volume_get(ctx, volume_id).host)
        allowed = ("available", "in-use") if (force or in_use_allowed) else ("available",)
        with writer() as s:
            # Locked: a concurrent delete of the volume sees this snapshot, or this sees the
            # volume `deleting` (see VolumeRequests.delete).
            volume = db.volume_get_locked(s, volume_id)
            if volume is None:
                raise exception.VolumeNotFound(volume_id=volume_id)
            if volume.status not in allowed or volume.migration_status not in (None,
                                                                               "success",
                                                                               "error"):
                raise exception.InvalidVolume(
                    reason="Volume %s status must be %s, currently %s%s." % (
                        volume_id, " or ".join(allowed), volume.status,
                        "" if force or volume.status != "in-use"
                        else " (use force=true to snapshot an in-use volume)"))
            if not volume.host:  # (an unplaced volume an admin reset to available)
                raise exception.InvalidVolume(
                    reason="Volume %s is on no back end (it was never placed), so it has no "
                           "storage to snapshot." % volume_id)
            # 413 (and nothing written) when over the snapshots or gigabytes quota.
            quota.reserve_snapshot(ctx.project_id, volume.size,
                                   quota_api.volume_type_name(s, volume.volume_type_id),
                                   session=s)
            snapshot = db.snapshot_add(s, {
                "project_id": ctx.project_id, "user_id": ctx.user_id,
                "volume_id": volume_id, "name": name, "description": description,
                "status": "creating", "progress": "0%", "volume_size": volume.size,
                "volume_type_id": volume.volume_type_id,
            }, host=volume.host.split("#")[0], metadata=metadata)
        try:
            self.volume_rpcapi.create_snapshot(ctx, volume.host, snapshot.id)
        except Exception as exc:
            volume_status.fail_snapshot_operation(
                ctx, snapshot.id, "creating", "error", volume_status.EVENT_SNAPSHOT_CREATE,
                "create snapshot", "the volume service could not be reached (%s)" % exc)
            raise exception.ServiceBusy(service="volume")
        LOG.info("Snapshot %s of volume %s accepted", snapshot.id, volume_id)
        return db.snapshot_get(ctx, snapshot.id)

    def delete(self, ctx, snapshot_id, force=False):
        """force (admin os-force_delete): from any status but `restoring` (a revert owns the
        snapshot then), `deleting` included, as Cinder: a delete that was stuck or reset to
        deleting is sent again (the delete flow finds already-removed storage gone)."""
        snapshot = db.snapshot_get(ctx, snapshot_id)
        volume = db.volume_get_internal(snapshot.volume_id)
        refuse_if_frozen(volume.host)
        host = volume.host.split("#")[0]
        with writer() as s:
            db.volume_lock(s, snapshot.volume_id)
            if db.volumes_creating_from(s, snapshot_id=snapshot_id):
                raise exception.InvalidSnapshot(
                    reason="a volume is being created from snapshot %s; delete it when that "
                           "is done" % snapshot_id)
            # a member of a group snapshot goes only with it (Cinder's rule)
            expected = {"deleted": False, "group_snapshot_id": None,
                        "status": (("available", "error", "error_deleting", "creating", "deleting")
                                   if force else DELETABLE_STATUSES)}
            won = db.conditional_update(models.Snapshot, snapshot_id, {"status": "deleting"},
                                        expected, session=s)
            if won:
                db.worker_release("snapshot", snapshot_id, session=s)
                db.worker_claim("snapshot", snapshot_id, "delete", host=host, session=s)
        if not won:
            raise exception.InvalidSnapshot(
                reason="Snapshot status must be available or error and must not be part of a "
                       "group, currently %s." % snapshot.status)
        self.volume_rpcapi.delete_snapshot(ctx, volume.host, snapshot_id)
        LOG.info("Snapshot %s delete accepted", snapshot_id)

    @staticmethod
    def reset_status(ctx, snapshot_id, status):
        """Admin: set the status without touching storage. An operation the volume service
        still owns is given up, so its cleanup cannot flip the status back later."""
        db.snapshot_get(ctx, snapshot_id)
        with writer() as s:
            db.conditional_update(models.Snapshot, snapshot_id, {"status": status},
                                  {"deleted": False}, session=s)
            db.worker_release("snapshot", snapshot_id, session=s)
        LOG.warning("Snapshot %s status reset to %s by %s", snapshot_id, status, ctx.user_id)
