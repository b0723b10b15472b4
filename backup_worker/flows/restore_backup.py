"""restore_backup: write a backup's data onto a volume (an existing one, or one made for it).

Tasks, in order (each has a revert):
  check_restoring  the backup is `restoring` onto this volume and belongs to this service,
                   the volume is `restoring-backup`; this service owns the workers row;
                   revert: backup back to `available`, the volume `error_restoring`
                   (existing) or `error` (made for the restore), workers row released, user
                   told why (common/backup_status.py)
  prepare_target   the volume service opens the volume for writing (volume rpcapi
                   prepare_restore_target); revert: nothing to release (the open is ours)
  restore_data     the engine writes every chunk, each verified against its digest (a
                   corrupt one is named in the message), holes and a larger target's tail
                   zeroed, progress on the record; revert: nothing can un-write the volume,
                   which check_restoring's revert marks as failed
  mark_restored    one transaction: backup `available` (restore_volume_id cleared,
                   progress 100), volume `available` with the backed-up volume's metadata
                   and bootable flag (kept in the manifest), workers row released; revert: nothing
                   of its own to undo
"""

import logging

from taskflow import task
from taskflow.patterns import linear_flow

from backup_worker import engine as backup_engine
from backup_worker.flows import common
from common import backup_status, connector, fault
from common.db import api as db
from common.db import backups_api as states
from common.db import models
from common.db.session import writer
from volume_worker import rpcapi as volume_rpcapi

LOG = logging.getLogger(__name__)
FLOW = "restore_backup"
OPERATION = "restore"
INTERRUPTED = "the backup service stopped during the restore; the volume's data is part-way"
LOST = "the restore request was lost (no backup service ran it)"


class CheckRestoring(task.Task):
    default_provides = ("backup", "volume")

    def execute(self, backup_id, volume_id, host):
        fault.check(FLOW + ".check_restoring")
        backup = backup_status.db_backup(backup_id)
        common.still(backup, states.RESTORING, host)
        if backup.restore_volume_id and backup.restore_volume_id != volume_id:
            raise common.BackupStateChanged(reason="backup %s is restoring onto volume %s, "
                                            "not %s" % (backup_id, backup.restore_volume_id,
                                                        volume_id))
        volume = db.volume_get_internal(volume_id)
        if volume is None or volume.deleted or volume.status != states.VOLUME_RESTORING \
                or not volume.host:
            raise common.BackupStateChanged(reason="volume %s is not %s"
                                            % (volume_id, states.VOLUME_RESTORING))
        common.own_worker(backup_id, OPERATION, host)
        return backup, volume

    def revert(self, ctxt, backup_id, volume_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_restoring.revert")
        backup_status.fail_restore(ctxt, backup_id, volume_id,
                                   common.failure_reason(flow_failures))


class PrepareTarget(task.Task):
    default_provides = "connection"

    def __init__(self, volume_api):
        super().__init__(name="prepare_target")
        self.volume_api = volume_api

    def execute(self, ctxt, volume):
        fault.check(FLOW + ".prepare_target")
        answer = self.volume_api.prepare_restore_target(ctxt, volume.host, volume.id)
        # the contract names the answer a connection; accept it wrapped as the source's is
        if "driver_volume_type" not in answer and "connection" in answer:
            answer = answer["connection"]
        return answer

    def revert(self, volume, **kwargs):
        LOG.debug("prepare_target reverted for volume %s", volume.id)


class RestoreData(task.Task):
    def __init__(self, engine):
        super().__init__(name="restore_data")
        self.engine = engine

    def execute(self, backup, volume, connection):
        fault.check(FLOW + ".restore_data")
        opened = connector.open_connection(connection, writable=True)
        # a volume made for this restore reads as zeros: its holes need no writes
        fresh = volume.backup_id == backup.id
        with backup_engine.ConnectorWriter(opened, fresh=fresh) as writer_:
            self.engine.restore(backup.id, writer_,
                                progress=common.Progress(FLOW, backup.id, states.RESTORING,
                                                getattr(self.engine, "stopping", None)))

    def revert(self, backup, volume, **kwargs):
        LOG.warning("Restore of backup %s onto volume %s did not complete; the volume is "
                    "marked failed", backup.id, volume.id)


class MarkRestored(task.Task):
    def __init__(self, engine):
        super().__init__(name="mark_restored")
        self.engine = engine

    def execute(self, backup, volume):
        fault.check(FLOW + ".mark_restored")
        saved = self.engine.store.get_manifest(backup.id).get("metadata") or {}
        with writer() as s:
            won = db.conditional_update(
                models.Backup, backup.id,
                {"status": states.AVAILABLE, "restore_volume_id": None, "progress": 100},
                {"status": states.RESTORING, "deleted": False}, session=s)
            won = won and db.conditional_update(
                models.Volume, volume.id, {"status": "available"},
                {"status": states.VOLUME_RESTORING, "deleted": False}, session=s)
            if not won:  # raised inside the transaction: neither row changes
                raise common.BackupStateChanged(reason="backup %s or volume %s left the "
                                                "restore while it ran" % (backup.id, volume.id))
            restored = s.get(models.Volume, volume.id)
            # the backed-up volume's metadata (its keys win) and bootable flag, as Cinder
            restored.bootable = bool(saved.get("bootable", restored.bootable))
            db.replace_volume_metadata(s, restored, {
                **{m.key: m.value for m in restored.volume_metadata},
                **saved.get("volume_metadata", {})})
            db.worker_release("backup", backup.id, session=s)
        LOG.info("Backup %s restored onto volume %s", backup.id, volume.id)

    def revert(self, backup, **kwargs):
        LOG.debug("mark_restored reverted for backup %s", backup.id)


def build(engine, volume_api=None):
    volume_api = volume_api or volume_rpcapi.VolumeAPI()
    return linear_flow.Flow(FLOW).add(
        CheckRestoring(name="check_restoring"),
        PrepareTarget(volume_api),
        RestoreData(engine),
        MarkRestored(engine),
    )


def run(ctxt, engine, host, backup_id, volume_id):
    common.run_flow(build(engine), {"ctxt": ctxt, "backup_id": backup_id,
                                    "volume_id": volume_id, "host": host})


def end_interrupted(ctxt, backup, reason=INTERRUPTED):
    backup_status.fail_restore(ctxt, backup.id, backup.restore_volume_id, reason)
