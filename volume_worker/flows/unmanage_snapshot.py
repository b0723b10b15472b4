"""unmanage_snapshot: stop managing a snapshot; its storage stays where it is.

Tasks, in order (each has a revert):
  check_unmanaging   the row is `unmanaging` and its volume lives on this host; revert:
                     `error_deleting` (Cinder's status for a failed delete or unmanage), the
                     workers row released, the user told why; it can be unmanaged again
  unmanage_storage   the driver lets go of the snapshot (it stays, under its name); revert:
                     nothing was removed, so nothing to undo
  mark_unmanaged     the row goes (soft delete), its quota and workers row are released, one
                     transaction; revert: nothing to undo (the transaction rolled back)
"""

import logging

from taskflow import task
from taskflow.patterns import linear_flow

from common import exception, fault, quota, volume_status
from common.db import api as db
from common.db import models, quota_api
from common.db.session import writer
from volume_worker.flows import common

LOG = logging.getLogger(__name__)
FLOW = "unmanage_snapshot"


class CheckUnmanaging(task.Task):
    default_provides = ("snapshot", "volume")

    def execute(self, snapshot_id, host):
        fault.check(FLOW + ".check_unmanaging")
        snapshot = db.snapshot_get_internal(snapshot_id)
        if snapshot is None or snapshot.deleted or snapshot.status != "unmanaging":
            raise exception.InvalidSnapshot(reason="snapshot %s is not unmanaging"
                                            % snapshot_id)
        volume = db.volume_get_internal(snapshot.volume_id)
        if volume is None or not volume.host or volume.host.split("#")[0] != host:
            raise exception.InvalidSnapshot(reason="the volume of snapshot %s is not on %s"
                                            % (snapshot_id, host))
        return snapshot, volume

    def revert(self, ctxt, snapshot_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_unmanaging.revert")
        volume_status.fail_snapshot_operation(ctxt, snapshot_id, "unmanaging",
                                              "error_deleting",
                                              volume_status.EVENT_SNAPSHOT_DELETE,
                                              "unmanage snapshot",
                                              common.failure_reason(flow_failures))


class UnmanageStorage(task.Task):
    def __init__(self, driver):
        super().__init__(name="unmanage_storage")
        self.driver = driver

    def execute(self, snapshot, volume):
        fault.check(FLOW + ".unmanage_storage")
        self.driver.unmanage_snapshot(snapshot, volume)

    def revert(self, snapshot, **kwargs):
        LOG.debug("unmanage_storage reverted for snapshot %s: the storage was left in place",
                  snapshot.id)


class MarkUnmanaged(task.Task):
    def execute(self, snapshot_id):
        fault.check(FLOW + ".mark_unmanaged")
        with writer() as s:
            won = db.conditional_update(models.Snapshot, snapshot_id, {"status": "deleted"},
                                        {"status": "unmanaging", "deleted": False}, session=s)
            if not won:
                raise exception.InvalidSnapshot(reason="snapshot %s left `unmanaging`"
                                                % snapshot_id)
            db.snapshot_mark_deleted(snapshot_id, session=s)
            db.worker_release("snapshot", snapshot_id, session=s)
            snapshot = s.get(models.Snapshot, snapshot_id)
            quota.release_snapshot(snapshot.project_id, snapshot.volume_size,
                                   quota_api.volume_type_name(s, snapshot.volume_type_id),
                                   session=s)
        LOG.info("Snapshot %s unmanaged; its storage stays", snapshot_id)

    def revert(self, snapshot_id, **kwargs):
        LOG.debug("mark_unmanaged reverted for snapshot %s", snapshot_id)


def build(driver):
    return linear_flow.Flow(FLOW).add(
        CheckUnmanaging(name="check_unmanaging"),
        UnmanageStorage(driver),
        MarkUnmanaged(name="mark_unmanaged"),
    )


def run(ctxt, driver, host, snapshot_id):
    common.run_flow(build(driver), {"ctxt": ctxt, "snapshot_id": snapshot_id, "host": host})
