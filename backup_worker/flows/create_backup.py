"""create_backup: copy a volume's (or a snapshot's) data into this service's repository.

Tasks, in order (each has a revert):
  check_still_creating  the backup is still `creating` and belongs to this service; this
                        service owns its workers row; revert: backup `error` with the reason,
                        its source (volume or snapshot) out of `backing-up`, workers row
                        released, user told why (common/backup_status.py)
  prepare_source        the volume service opens a point in time of the volume for reading
                        (volume rpcapi prepare_backup_source); revert: it releases it again
                        (release_backup_source, the diff-base snapshot not kept)
  store_data            the engine reads every chunk, stores the new ones and writes the
                        manifest (with the volume's metadata and bootable flag, which a
                        restore gives the volume it writes), reporting progress on the
                        record (a force delete stops it at the next report); revert: the
                        manifest and its references go (engine.delete; a failed engine run
                        has dropped them itself)
  release_source        the volume service releases the source, keeping the diff base for
                        the next incremental; revert: nothing of its own (prepare_source's
                        revert releases without keeping)
  mark_available        one transaction: backup `available` (object_count, service,
                        service_metadata (the manifest's name), source_snapshot, progress
                        100), the source back to its status, the workers row released;
                        revert: nothing of its own to undo
"""

import logging

from taskflow import task
from taskflow.patterns import linear_flow

from backup_worker import engine as backup_engine
from backup_worker.chunkstore import ManifestNotFound
from backup_worker.flows import common
from common import backup_status, connector, fault
from common.db import api as db
from common.db import backups_api as states
from common.db import models
from common.db.session import writer
from volume_worker import rpcapi as volume_rpcapi

LOG = logging.getLogger(__name__)
FLOW = "create_backup"
OPERATION = "create"
INTERRUPTED = "the backup service stopped during the backup"
LOST = "the backup request was lost (no backup service ran it)"


class CheckStillCreating(task.Task):
    default_provides = ("backup", "volume")

    def execute(self, backup_id, host):
        fault.check(FLOW + ".check_still_creating")
        backup = backup_status.db_backup(backup_id)
        common.still(backup, states.CREATING, host)
        volume = db.volume_get_internal(backup.volume_id)
        if volume is None or volume.deleted or not volume.host:
            raise common.BackupStateChanged(reason="the volume %s of backup %s is gone"
                                            % (backup.volume_id, backup_id))
        common.own_worker(backup_id, OPERATION, host)
        return backup, volume

    def revert(self, ctxt, backup_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_still_creating.revert")
        backup_status.fail_create(ctxt, backup_id, common.failure_reason(flow_failures))


class PrepareSource(task.Task):
    default_provides = ("connection", "source_snapshot")

    def __init__(self, volume_api):
        super().__init__(name="prepare_source")
        self.volume_api = volume_api

    def execute(self, ctxt, backup, volume):
        fault.check(FLOW + ".prepare_source")
        answer = self.volume_api.prepare_backup_source(
            ctxt, volume.host, volume.id, backup.id, snapshot_id=backup.snapshot_id)
        return answer["connection"], answer.get("source_snapshot")

    def revert(self, ctxt, backup, volume, result, **kwargs):
        if not isinstance(result, tuple):
            return  # the volume service refused: it opened nothing
        try:
            self.volume_api.release_backup_source(ctxt, volume.host, volume.id, backup.id,
                                                  False)
        except Exception:
            LOG.exception("Could not release the source of failed backup %s", backup.id)


class StoreData(task.Task):
    default_provides = "manifest"

    def __init__(self, engine):
        super().__init__(name="store_data")
        self.engine = engine

    def execute(self, backup, volume, connection, source_snapshot):
        fault.check(FLOW + ".store_data")
        opened = connector.open_connection(connection, writable=False)
        with backup_engine.ConnectorReader(opened) as reader:
            manifest = self.engine.backup(
                reader, backup.id, parent_id=backup.parent_id, snapshot=source_snapshot,
                progress=common.Progress(FLOW, backup.id, states.CREATING,
                                         getattr(self.engine, "stopping", None)),
                metadata={"volume_id": backup.volume_id, "snapshot_id": backup.snapshot_id,
                          # what a restore gives the volume it writes (as Cinder's backups
                          # carry the volume's metadata)
                          "volume_metadata": {m.key: m.value for m in volume.volume_metadata},
                          "bootable": bool(volume.bootable)})
        fault.check(FLOW + ".store_data.stored")
        return manifest

    def revert(self, backup, result, **kwargs):
        # A failed engine run dropped its references and wrote no manifest; but this task
        # may also have failed after the manifest was written: so look for one either way.
        try:
            self.engine.delete(backup.id)
        except ManifestNotFound:
            return
        LOG.warning("Removed the data of backup %s after a later step failed", backup.id)


class ReleaseSource(task.Task):
    def __init__(self, volume_api):
        super().__init__(name="release_source")
        self.volume_api = volume_api

    def execute(self, ctxt, backup, volume):
        fault.check(FLOW + ".release_source")
        self.volume_api.release_backup_source(ctxt, volume.host, volume.id, backup.id, True)

    def revert(self, backup, **kwargs):
        LOG.debug("release_source reverted for backup %s", backup.id)


class MarkAvailable(task.Task):
    def execute(self, backup, manifest, source_snapshot):
        fault.check(FLOW + ".mark_available")
        values = {"status": states.AVAILABLE, "progress": 100, "fail_reason": None,
                  "object_count": sum(1 for digest in manifest["chunks"] if digest),
                  "service": common.store_kind(), "source_snapshot": source_snapshot,
                  # the manifest's name, carried by an exported record
                  "service_metadata": backup.id}
        with writer() as s:
            won = db.conditional_update(models.Backup, backup.id, values,
                                        {"status": states.CREATING, "deleted": False},
                                        session=s)
            if won:
                backup_status.source_back(s, backup)
                db.worker_release("backup", backup.id, session=s)
        if not won:
            raise common.BackupStateChanged(reason="backup %s left `creating` while it was "
                                                   "being made" % backup.id)
        LOG.info("Backup %s is available (%d chunks stored)", backup.id,
                 values["object_count"])

    def revert(self, backup, **kwargs):
        LOG.debug("mark_available reverted for backup %s", backup.id)


def build(engine, volume_api=None):
    volume_api = volume_api or volume_rpcapi.VolumeAPI()
    return linear_flow.Flow(FLOW).add(
        CheckStillCreating(name="check_still_creating"),
        PrepareSource(volume_api),
        StoreData(engine),
        ReleaseSource(volume_api),
        MarkAvailable(name="mark_available"),
    )


def run(ctxt, engine, host, backup_id):
    common.run_flow(build(engine), {"ctxt": ctxt, "backup_id": backup_id, "host": host})


def end_interrupted(ctxt, engine, backup, reason=INTERRUPTED, volume_api=None):
    """A create this service owned when it stopped: its manifest (if it got that far) and
    references go, the source is released and given back, the backup is `error`. The
    references of chunks a killed engine took are dropped by the repository recount that
    follows at start."""
    try:
        engine.delete(backup.id)
    except ManifestNotFound:
        pass
    except Exception:
        LOG.exception("Could not remove the data of interrupted backup %s", backup.id)
    volume = db.volume_get_internal(backup.volume_id)
    if volume is not None and not volume.deleted and volume.host:
        try:
            (volume_api or volume_rpcapi.VolumeAPI()).release_backup_source(
                ctxt, volume.host, volume.id, backup.id, False)
        except Exception:
            LOG.exception("Could not release the source of interrupted backup %s", backup.id)
    backup_status.fail_create(ctxt, backup.id, reason)
