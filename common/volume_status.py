"""Ending an operation on a volume in failure, the same way everywhere.

The api, the scheduler, the volume flows and the volume service's start-up cleanup all end a
failed operation like this: one conditional UPDATE out of the transitional status, what the
operation held (capacity claim, workers row) given back and a user message that says why
(GET /messages) written in the same transaction, so whoever sees the failed status finds the
message, and a call that loses the race leaves none. If another path already moved the
volume, nothing happens and nothing is released twice."""

import logging

from common import quota
from common.db import api as db
from common.db import models
from common.db.session import writer

LOG = logging.getLogger(__name__)

# Cinder's user message event ids: VOLUME_<resource>_<action>_<detail>.
EVENT_SCHEDULE = "VOLUME_VOLUME_001_002"
EVENT_CREATE = "VOLUME_VOLUME_001_003"
EVENT_DELETE = "VOLUME_VOLUME_003_004"
# Cinder's COPY_VOLUME_TO_IMAGE (003) with FAILED_TO_UPLOAD_VOLUME (004): the same id as
# EVENT_DELETE above, whose number Cinder's message_field does not have
EVENT_UPLOAD = "VOLUME_VOLUME_003_004"
EVENT_EXTEND_NO_ROOM = "VOLUME_VOLUME_006_002"
EVENT_EXTEND = "VOLUME_VOLUME_006_004"
# manage / unmanage (volume actions slice of issue 4)
EVENT_MANAGE = "VOLUME_VOLUME_020_004"
EVENT_UNMANAGE = "VOLUME_VOLUME_021_004"
EVENT_RETYPE = "VOLUME_VOLUME_022_004"
EVENT_MIGRATE = "VOLUME_VOLUME_023_004"
EVENT_REVERT = "VOLUME_VOLUME_027_001"
EVENT_REIMAGE = "VOLUME_VOLUME_031_004"
EVENT_SNAPSHOT_CREATE = "VOLUME_VOLUME_SNAPSHOT_018_001"
EVENT_SNAPSHOT_DELETE = "VOLUME_VOLUME_SNAPSHOT_019_001"


def record_user_message(ctxt, volume_id, event_id, detail, resource_type="VOLUME",
                        session=None):
    """Store the why of a failed operation where the user can read it; its id, or None.

    With `session`, in a savepoint of the transaction that changes the status, so both land
    together (and a message that cannot be written does not undo the status change)."""
    try:
        if session is None:
            return db.message_create(ctxt, resource_type, volume_id, event_id, detail)
        with session.begin_nested():
            return db.message_create(ctxt, resource_type, volume_id, event_id, detail,
                                     session=session)
    except Exception:  # losing the message must not mask the failure being handled
        LOG.exception("Could not record user message for %s %s", resource_type, volume_id)
        return None


def fail_operation(ctxt, volume_id, from_status, to_status, event_id, action, reason,
                   release=None, expected=None):
    """Move the volume from `from_status` to `to_status`; returns whether this call did.

    release(session, volume), when given, gives back what the operation claimed; it runs in
    the same transaction as the status change. `expected` adds conditions to the UPDATE."""
    volume = db.volume_get_internal(volume_id)
    conditions = {"status": from_status, "deleted": False, **(expected or {})}
    with writer() as s:
        won = db.conditional_update(models.Volume, volume_id, {"status": to_status},
                                    conditions, session=s)
        if won:
            record_user_message(ctxt, volume_id, event_id, "%s: %s" % (action, reason),
                                session=s)
            if release is not None and volume is not None and volume.host:
                release(s, volume)
            # quota: a failed extend gives back its extra gigabytes, a failed delete
            # charges the volume again (common/quota.py)
            quota.on_operation_failed(s, volume, from_status, to_status)
            db.worker_release("volume", volume_id, session=s)
            if from_status == "creating" and volume is not None and volume.backup_id:
                # A volume made from a backup that will not be: the backup is free again.
                db.conditional_update(models.Backup, volume.backup_id,
                                      {"status": "available", "restore_volume_id": None},
                                      {"status": "restoring", "restore_volume_id": volume_id},
                                      session=s)
    if won:
        LOG.error("%s of volume %s failed: %s", action, volume_id, reason)
    return won


def release_volume_claim(session, volume):
    """The whole volume's claim (a create that did not happen)."""
    db.pool_release(volume.host, volume.size, session=session)


def release_extra_claim(new_size):
    """The extra capacity an extend to new_size claimed."""
    def release(session, volume):
        db.pool_release(volume.host, new_size - volume.size, session=session,
                        volume_gone=False)
    return release


def fail_snapshot_operation(ctxt, snapshot_id, from_status, to_status, event_id, action,
                            reason):
    """fail_operation for a snapshot: status out of the transitional one and its workers row
    released and its user message written in one transaction."""
    with writer() as s:
        won = db.conditional_update(models.Snapshot, snapshot_id, {"status": to_status},
                                    {"status": from_status, "deleted": False}, session=s)
        if won:
            record_user_message(ctxt, snapshot_id, event_id, "%s: %s" % (action, reason),
                                resource_type="VOLUME_SNAPSHOT", session=s)
            db.worker_release("snapshot", snapshot_id, session=s)
    if won:
        LOG.error("%s of snapshot %s failed: %s", action, snapshot_id, reason)
    return won
