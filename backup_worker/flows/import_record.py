"""import_record: make an imported backup record usable, once its data is found.

The api inserted the row from an exported record (`creating`); the data must already be in
this service's repository (a record names a manifest, it does not carry the chunks).

Tasks, in order (each has a revert):
  check_importing    the backup is still `creating` and belongs to this service; this
                     service owns its workers row; revert: backup `error` with the reason,
                     workers row released, user told why (common/backup_status.py)
  check_repository   the manifest the record names (service_metadata, else the backup's
                     id) is in the repository, is the manifest of a volume of the record's
                     size, and every chunk it names is there; revert: nothing of its own
  take_data          a record imported under another id than its manifest's (Tempest does
                     this) gets its own copy of the manifest, with a reference on each chunk,
                     so deleting one of the two backups never breaks the other; revert: that
                     copy deleted
  mark_available     `creating` -> `available` (object_count, service, service_metadata,
                     progress 100) and the workers row released, one transaction; revert:
                     nothing of its own
"""

import logging

from taskflow import task
from taskflow.patterns import linear_flow

from backup_worker.chunkstore import ChunkNotFound, ManifestNotFound
from backup_worker.flows import common
from common import backup_status, fault
from common.db import api as db
from common.db import backups_api as states
from common.db import models
from common.db.session import writer

LOG = logging.getLogger(__name__)
FLOW = "import_record"
OPERATION = "import"
GiB = 1024 ** 3


class CheckImporting(task.Task):
    default_provides = "backup"

    def execute(self, backup_id, host):
        fault.check(FLOW + ".check_importing")
        backup = backup_status.db_backup(backup_id)
        common.still(backup, states.CREATING, host)
        common.own_worker(backup_id, OPERATION, host)
        return backup

    def revert(self, ctxt, backup_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_importing.revert")
        backup_status.fail_create(ctxt, backup_id, common.failure_reason(flow_failures),
                                  give_source_back=False)


class CheckRepository(task.Task):
    default_provides = "object_count"

    def __init__(self, engine):
        super().__init__(name="check_repository")
        self.engine = engine

    def execute(self, backup):
        fault.check(FLOW + ".check_repository")
        store = self.engine.store
        name = manifest_name(backup)
        manifest = store.get_manifest(name)  # ManifestNotFound says what is missing
        if manifest.get("backup_id", name) != name or \
                -(-manifest["size"] // GiB) > (backup.size or 0):
            raise common.BackupStateChanged(
                reason="the manifest %s in the repository is of another backup "
                       "(%s, %d bytes)" % (name, manifest.get("backup_id"),
                                           manifest["size"]))
        digests = {digest for digest in manifest["chunks"] if digest}
        for digest in sorted(digests):
            if not store.exists(digest):
                raise ChunkNotFound(digest)
        return sum(1 for digest in manifest["chunks"] if digest)

    def revert(self, backup, **kwargs):
        LOG.debug("check_repository reverted for backup %s", backup.id)


def manifest_name(backup):
    return backup.service_metadata or backup.id


class TakeData(task.Task):
    default_provides = "copied"

    def __init__(self, engine):
        super().__init__(name="take_data")
        self.engine = engine

    def execute(self, backup):
        fault.check(FLOW + ".take_data")
        if manifest_name(backup) == backup.id:
            return False
        try:
            self.engine.store.get_manifest(backup.id)
            return False  # copied by an earlier run of this import
        except ManifestNotFound:
            pass
        self.engine.copy(manifest_name(backup), backup.id)
        fault.check(FLOW + ".take_data.copied")
        return True

    def revert(self, backup, result, **kwargs):
        if result is True or (result is not False and manifest_name(backup) != backup.id):
            try:
                self.engine.delete(backup.id)
            except ManifestNotFound:
                pass


class MarkAvailable(task.Task):
    def execute(self, backup, object_count):
        fault.check(FLOW + ".mark_available")
        values = {"status": states.AVAILABLE, "progress": 100, "fail_reason": None,
                  "object_count": object_count, "service": common.store_kind(),
                  "service_metadata": backup.id}
        with writer() as s:
            won = db.conditional_update(models.Backup, backup.id, values,
                                        {"status": states.CREATING, "deleted": False},
                                        session=s)
            if not won:
                raise common.BackupStateChanged(reason="backup %s left `creating` while it "
                                                       "was imported" % backup.id)
            db.worker_release("backup", backup.id, session=s)
        LOG.info("Imported backup %s is available", backup.id)

    def revert(self, backup, **kwargs):
        LOG.debug("mark_available reverted for imported backup %s", backup.id)


def build(engine):
    return linear_flow.Flow(FLOW).add(
        CheckImporting(name="check_importing"),
        CheckRepository(engine),
        TakeData(engine),
        MarkAvailable(name="mark_available"),
    )


def run(ctxt, engine, host, backup_id):
    common.run_flow(build(engine), {"ctxt": ctxt, "backup_id": backup_id, "host": host})
