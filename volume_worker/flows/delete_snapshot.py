"""delete_snapshot: remove a snapshot from storage and its row.

Tasks, in order (each has a revert):
  check_deleting           the snapshot is `deleting` and its volume lives on this host;
                           revert: `error_deleting` (`available` when the back end says
                           others still depend on it), workers row released, user told why
  delete_snapshot_storage  the driver removes it (volumes cloned from it are made independent
                           first); revert: nothing can bring it back, so it only logs
  mark_deleted             soft-delete the row and release the workers row (one transaction);
                           revert: nothing to undo
"""

import logging

from taskflow.patterns import linear_flow

from common import exception, fault, quota, volume_status
from common.db import api as db
from common.db import models, quota_api
from common.db.session import write_once_more_if_lost, writer
from volume_worker.flows import common

LOG = logging.getLogger(__name__)
FLOW = "delete_snapshot"


class CheckDeleting(common.Task):
    default_provides = ("snapshot", "volume")

    def execute(self, snapshot_id, host):
        fault.check(FLOW + ".check_deleting")
        snapshot = db.snapshot_get_internal(snapshot_id)
        if snapshot is None or snapshot.deleted or snapshot.status != "deleting":
            raise exception.InvalidSnapshot(reason="snapshot %s is not deleting" % snapshot_id)
        volume = db.volume_get_internal(snapshot.volume_id)
        if volume is None or not volume.host or volume.host.split("#")[0] != host:
            raise exception.InvalidSnapshot(reason="the volume of snapshot %s is not on %s"
                                            % (snapshot_id, host))
        return snapshot, volume

    def revert(self, ctxt, snapshot_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_deleting.revert")
        # Busy (others depend on it) is not damage: like Cinder, the snapshot stays usable.
        busy = any(f.check(exception.SnapshotIsBusy) for f in flow_failures.values())
        volume_status.fail_snapshot_operation(ctxt, snapshot_id, "deleting",
                                              "available" if busy else "error_deleting",
                                              volume_status.EVENT_SNAPSHOT_DELETE,
                                              "delete snapshot",
                                              common.failure_reason(flow_failures))


class DeleteSnapshotStorage(common.Task):
    def __init__(self, driver):
        super().__init__(name="delete_snapshot_storage")
        self.driver = driver

    def execute(self, snapshot, volume):
        fault.check(FLOW + ".delete_snapshot_storage")
        self.driver.delete_snapshot(snapshot, volume)

    def revert(self, snapshot, **kwargs):
        LOG.warning("Snapshot %s may be partly deleted; its status says so", snapshot.id)


def finish_snapshot_delete(snapshot_id, session):
    """`deleting` -> deleted, workers row and quota released (one transaction); False when
    the row had moved on."""
    won = db.conditional_update(models.Snapshot, snapshot_id, {"status": "deleted"},
                                {"status": "deleting", "deleted": False}, session=session)
    if won:
        db.snapshot_mark_deleted(snapshot_id, session=session)
        db.worker_release("snapshot", snapshot_id, session=session)
        snapshot = session.get(models.Snapshot, snapshot_id)
        quota.release_snapshot(snapshot.project_id, snapshot.volume_size,
                               quota_api.volume_type_name(session, snapshot.volume_type_id),
                               session=session)
    return won


class MarkDeleted(common.Task):
    def execute(self, snapshot_id):
        fault.check(FLOW + ".mark_deleted")

        def mark_deleted():
            with writer() as s:
                if not finish_snapshot_delete(snapshot_id, s):
                    raise exception.InvalidSnapshot(reason="snapshot %s left `deleting`"
                                                    % snapshot_id)

        def landed(s):
            row = s.get(models.Snapshot, snapshot_id)
            return row is not None and row.deleted

        # the storage is gone: a lost connection here is retried, not an error_deleting
        write_once_more_if_lost(mark_deleted, landed)
        LOG.info("Snapshot %s deleted", snapshot_id)

    def revert(self, snapshot_id, **kwargs):
        LOG.debug("mark_deleted reverted for snapshot %s", snapshot_id)


def build(driver):
    return linear_flow.Flow(FLOW).add(
        CheckDeleting(name="check_deleting"),
        DeleteSnapshotStorage(driver),
        MarkDeleted(name="mark_deleted"),
    )


def run(ctxt, driver, host, snapshot_id):
    flow = common.shared_flow(build, driver)
    common.run_flow(flow, {"ctxt": ctxt, "snapshot_id": snapshot_id, "host": host})
