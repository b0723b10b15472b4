"""Ending a backup operation in failure, the same way everywhere.

The backup flows, the backup service's start-up cleanup and a refused request (full work
pool) all end a failed backup operation like this: one transaction of conditional UPDATEs
(the backup out of its transitional status with a fail_reason, what the operation held given
back: the source volume or snapshot out of `backing-up`, the restore target out of
`restoring-backup`), the workers row ("backup", id) released and a user message saying why
(GET /messages) written. If another path already moved the backup (a force delete, a reset), the
backup is left alone and nothing is released twice; the source or target, which only this
operation could have put in its status, is still given back.

The states: common/db/backups_api.py."""

import logging

from sqlalchemy import select

from common import volume_status
from common.db import api as db
from common.db import backups_api as states
from common.db import models
from common.db.session import writer

LOG = logging.getLogger(__name__)

# Cinder's user message event ids: VOLUME_<resource>_<action>_<detail> (action 013 create
# backup, 014 delete backup, 015 restore backup; detail 001 unknown error).
EVENT_BACKUP_CREATE = "VOLUME_VOLUME_BACKUP_013_001"
EVENT_BACKUP_DELETE = "VOLUME_VOLUME_BACKUP_014_001"
EVENT_BACKUP_RESTORE = "VOLUME_VOLUME_BACKUP_015_001"
RESOURCE = "VOLUME_BACKUP"

# fail_reason is a String(255) column
_REASON_LENGTH = 255


def _short(reason):
    reason = str(reason)
    return reason if len(reason) <= _REASON_LENGTH else reason[:_REASON_LENGTH - 3] + "..."


def record_user_message(ctxt, backup_id, event_id, detail, session=None):
    return volume_status.record_user_message(ctxt, backup_id, event_id, detail,
                                             resource_type=RESOURCE, session=session)


def source_back(session, backup):
    """The source a backup read goes back: its snapshot to `available`, or its volume to
    the status it had (previous_status). Conditional on `backing-up`, so a source some other
    path has moved since is not touched, nor one another backup is reading now."""
    source = (models.Backup.snapshot_id == backup.snapshot_id if backup.snapshot_id else
              (models.Backup.volume_id == backup.volume_id) & models.Backup.snapshot_id.is_(None))
    reading = (select(models.Backup.id)
               .join(models.Worker, (models.Worker.resource_type == "backup")
                     & (models.Worker.resource_id == models.Backup.id)
                     & (models.Worker.operation == "create"))  # not an import's row
               .where(source, models.Backup.id != backup.id,
                      models.Backup.status == states.CREATING,
                      models.Backup.deleted.is_(False)))
    if session.scalars(reading).first() is not None:
        return
    if backup.snapshot_id:
        db.conditional_update(models.Snapshot, backup.snapshot_id, {"status": "available"},
                              {"status": states.SNAPSHOT_BACKING_UP}, session=session)
        return
    volume = session.get(models.Volume, backup.volume_id)
    if volume is None or volume.deleted or volume.status != states.VOLUME_BACKING_UP:
        return
    db.conditional_update(models.Volume, volume.id,
                          {"status": volume.previous_status or "available",
                           "previous_status": None},
                          {"status": states.VOLUME_BACKING_UP, "deleted": False},
                          session=session)


def restore_target_failed(session, backup_id, volume_id):
    """A volume a restore was writing: `error` when it was made for this restore (its
    backup_id names the backup), `error_restoring` when it existed before. Left alone when
    another backup is restoring onto it (a stale request for this one failed)."""
    volume = session.get(models.Volume, volume_id) if volume_id else None
    if volume is None or volume.deleted:
        return
    other = session.scalars(select(models.Backup.id).where(
        models.Backup.restore_volume_id == volume_id, models.Backup.id != backup_id,
        models.Backup.status == states.RESTORING, models.Backup.deleted.is_(False))).first()
    if other is not None:
        return
    to_status = "error" if volume.backup_id == backup_id else states.VOLUME_RESTORE_FAILED
    db.conditional_update(models.Volume, volume_id, {"status": to_status},
                          {"status": states.VOLUME_RESTORING, "deleted": False},
                          session=session)


def fail_create(ctxt, backup_id, reason, give_source_back=True):
    """A backup (or an import) that did not complete: `creating` -> `error` with the reason,
    its source given back, the workers row released. Returns whether the backup moved."""
    backup = db_backup(backup_id)
    if backup is None:
        return False
    with writer() as s:
        won = db.conditional_update(
            models.Backup, backup_id,
            {"status": states.ERROR, "fail_reason": _short(reason), "progress": 0},
            {"status": states.CREATING, "deleted": False}, session=s)
        current = s.get(models.Backup, backup_id)
        if give_source_back and (won or (current is not None and
                                         current.status == states.DELETING)):
            # also when the backup was force-deleted under us: only this operation put the
            # source in backing-up (a backup that had ended already gave it back)
            source_back(s, backup)
        if won:
            db.worker_release("backup", backup_id, session=s)
            record_user_message(ctxt, backup_id, EVENT_BACKUP_CREATE,
                                "create backup: %s" % reason, session=s)
    if won:
        LOG.error("create backup %s failed: %s", backup_id, reason)
    return won


def fail_restore(ctxt, backup_id, volume_id, reason):
    """A restore that did not complete: the backup back to `available` (its data is intact),
    the volume to `error_restoring` (existing) or `error` (made for the restore), the workers
    row released, a message on both the backup and the volume, in one transaction."""
    detail = "restore backup: %s" % reason
    with writer() as s:
        won = db.conditional_update(
            models.Backup, backup_id,
            {"status": states.AVAILABLE, "restore_volume_id": None, "progress": 0},
            {"status": states.RESTORING, "deleted": False}, session=s)
        restore_target_failed(s, backup_id, volume_id)
        if won:
            db.worker_release("backup", backup_id, session=s)
            record_user_message(ctxt, backup_id, EVENT_BACKUP_RESTORE, detail, session=s)
            if volume_id:
                volume_status.record_user_message(ctxt, volume_id, EVENT_BACKUP_RESTORE,
                                                  detail, session=s)
    if won:
        LOG.error("restore of backup %s onto volume %s failed: %s", backup_id, volume_id,
                  reason)
    return won


def fail_delete(ctxt, backup_id, reason):
    """A delete that did not complete: `deleting` -> `error_deleting`, workers row released.
    The backup still counts in the quotas (its row lives)."""
    with writer() as s:
        won = db.conditional_update(
            models.Backup, backup_id,
            {"status": states.ERROR_DELETING, "fail_reason": _short(reason)},
            {"status": states.DELETING, "deleted": False}, session=s)
        if won:
            db.worker_release("backup", backup_id, session=s)
            record_user_message(ctxt, backup_id, EVENT_BACKUP_DELETE,
                                "delete backup: %s" % reason, session=s)
    if won:
        LOG.error("delete backup %s failed: %s", backup_id, reason)
    return won


def db_backup(backup_id):
    """A backup row by id for the services (no project scope); None when gone."""
    from common.db.session import reader

    with reader() as s:
        return s.get(models.Backup, backup_id)
