"""delete_backup: remove a backup's data from the repository and its row.

Tasks, in order (each has a revert):
  check_deleting        the backup is `deleting` and belongs to this service; a create of it
                        still running here (a force delete of a `creating` backup) is waited
                        for: it stops at its next progress report and removes what it wrote;
                        revert: `error_deleting` with the reason, workers row released, user
                        told why (common/backup_status.py)
  delete_data           the engine deletes the manifest, then its references (chunks nobody
                        else uses go); a missing manifest (a backup that never completed, or a
                        delete retried) is fine; revert: nothing can bring the data back
  drop_source_snapshot  the diff-base snapshot an rbd backup left on its volume is released
                        (volume rpcapi release_backup_source, not kept) when the volume still
                        exists; a failure only leaves a snapshot behind (logged); revert:
                        nothing of its own
  mark_deleted          one transaction: row deleted, quota given back, parent's dependent
                        count - 1 (with [backup] backup_pruning the dependents re-pointed to
                        this backup's parent), workers row released; revert: nothing of its
                        own to undo
"""

import logging

from sqlalchemy import select, update
from taskflow import task
from taskflow.patterns import linear_flow

from backup_worker.chunkstore import ManifestNotFound
from backup_worker.flows import common
from common import backup_status, fault, quota
from common.db import api as db
from common.db import backups_api as states
from common.db import models
from common.db.models import utcnow
from common.db.session import writer
from volume_worker import rpcapi as volume_rpcapi

LOG = logging.getLogger(__name__)
FLOW = "delete_backup"
OPERATION = "delete"


class CheckDeleting(task.Task):
    default_provides = "backup"

    def __init__(self, wait_for_create):
        super().__init__(name="check_deleting")
        self.wait_for_create = wait_for_create

    def execute(self, backup_id, host):
        fault.check(FLOW + ".check_deleting")
        # a create of this backup running here stops at its next progress report (it finds
        # the backup `deleting`) and removes its manifest and references: wait for that, so
        # nothing it writes outlives the row
        self.wait_for_create(backup_id)
        backup = backup_status.db_backup(backup_id)
        common.still(backup, states.DELETING, host)
        common.own_worker(backup_id, OPERATION, host)
        return backup

    def revert(self, ctxt, backup_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_deleting.revert")
        backup_status.fail_delete(ctxt, backup_id, common.failure_reason(flow_failures))


class DeleteData(task.Task):
    def __init__(self, engine):
        super().__init__(name="delete_data")
        self.engine = engine

    def execute(self, backup):
        fault.check(FLOW + ".delete_data")
        try:
            self.engine.delete(backup.id)
        except ManifestNotFound:
            LOG.info("Backup %s has no manifest (never completed or already removed)",
                     backup.id)

    def revert(self, backup, **kwargs):
        LOG.warning("The data of backup %s may be gone while its row stays", backup.id)


class DropSourceSnapshot(task.Task):
    def __init__(self, volume_api):
        super().__init__(name="drop_source_snapshot")
        self.volume_api = volume_api

    def execute(self, ctxt, backup):
        fault.check(FLOW + ".drop_source_snapshot")
        if not backup.source_snapshot:
            return
        volume = db.volume_get_internal(backup.volume_id)
        if volume is None or volume.deleted or not volume.host:
            return  # the snapshot went with the volume
        try:
            self.volume_api.release_backup_source(ctxt, volume.host, volume.id, backup.id,
                                                  False)
        except Exception as exc:
            # a stale diff base costs space on the volume's back end, not correctness
            LOG.warning("Could not drop snapshot %s of volume %s for deleted backup %s: %s",
                        backup.source_snapshot, volume.id, backup.id, exc)

    def revert(self, backup, **kwargs):
        LOG.debug("drop_source_snapshot reverted for backup %s", backup.id)


class MarkDeleted(task.Task):
    def execute(self, backup):
        fault.check(FLOW + ".mark_deleted")
        with writer() as s:
            won = db.conditional_update(
                models.Backup, backup.id,
                {"status": "deleted", "deleted": True, "deleted_at": utcnow()},
                {"status": states.DELETING, "deleted": False}, session=s)
            if not won:
                raise common.BackupStateChanged(reason="backup %s left `deleting` while it "
                                                       "was being deleted" % backup.id)
            quota.release_backup(backup.project_id, backup.size, session=s)
            unlink_from_chain(s, backup)
            db.worker_release("backup", backup.id, session=s)
        LOG.info("Backup %s deleted", backup.id)

    def revert(self, backup, **kwargs):
        LOG.debug("mark_deleted reverted for backup %s", backup.id)


def unlink_from_chain(session, backup):
    """The parent loses a dependent; with pruning, this backup's dependents become its
    parent's (every manifest lists all its chunks, so they restore on their own)."""
    dependents = list(session.scalars(select(models.Backup.id).where(
        models.Backup.parent_id == backup.id, models.Backup.deleted.is_(False))))
    if dependents and common.pruning():
        session.execute(update(models.Backup)
                        .where(models.Backup.id.in_(dependents))
                        .values(parent_id=backup.parent_id)
                        .execution_options(synchronize_session=False))
    else:
        dependents = []
    if backup.parent_id:
        session.execute(update(models.Backup)
                        .where(models.Backup.id == backup.parent_id)
                        .values(num_dependent_backups=models.Backup.num_dependent_backups
                                - 1 + len(dependents))
                        .execution_options(synchronize_session=False))


def build(engine, wait_for_create, volume_api=None):
    volume_api = volume_api or volume_rpcapi.VolumeAPI()
    return linear_flow.Flow(FLOW).add(
        CheckDeleting(wait_for_create),
        DeleteData(engine),
        DropSourceSnapshot(volume_api),
        MarkDeleted(name="mark_deleted"),
    )


def run(ctxt, engine, host, backup_id, wait_for_create=lambda backup_id: None):
    common.run_flow(build(engine, wait_for_create),
                    {"ctxt": ctxt, "backup_id": backup_id, "host": host})
