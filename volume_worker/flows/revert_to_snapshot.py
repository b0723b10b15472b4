"""revert_to_snapshot: put a volume's latest snapshot's data back into it (3.40).

The API moved the volume `available` -> `reverting` and the snapshot `available` ->
`restoring` in one transaction. Tasks, in order (each has a revert):
  check_reverting  both rows are still in those statuses, on this host; revert: volume
                   `error` (as Cinder: its data may be part-way), snapshot back to
                   `available`, workers row released, user told why
  revert_storage   the driver reverts (the volume keeps its current size); revert: only logs,
                   the status says the revert failed
  mark_reverted    volume and snapshot back to `available`, workers row released (one
                   transaction); revert: nothing to undo
"""

import logging

from taskflow import task
from taskflow.patterns import linear_flow

from common import exception, fault, volume_status
from common.db import api as db
from common.db import models
from common.db.session import writer
from volume_worker.flows import common

LOG = logging.getLogger(__name__)
FLOW = "revert_to_snapshot"


def snapshot_back_to_available(snapshot_id):
    """A release for fail_operation: the snapshot leaves `restoring` with the volume."""
    def release(session, volume):
        db.conditional_update(models.Snapshot, snapshot_id, {"status": "available"},
                              {"status": "restoring", "deleted": False}, session=session)
    return release


class CheckReverting(task.Task):
    default_provides = ("volume", "snapshot")

    def execute(self, volume_id, snapshot_id, host):
        fault.check(FLOW + ".check_reverting")
        volume = db.volume_get_internal(volume_id)
        snapshot = db.snapshot_get_internal(snapshot_id)
        if volume is None or volume.deleted or volume.status != "reverting":
            raise exception.InvalidVolume(reason="volume %s is not reverting" % volume_id)
        if snapshot is None or snapshot.deleted or snapshot.status != "restoring" \
                or snapshot.volume_id != volume_id:
            raise exception.InvalidSnapshot(reason="snapshot %s is not restoring volume %s"
                                            % (snapshot_id, volume_id))
        if not volume.host or volume.host.split("#")[0] != host:
            raise exception.InvalidVolume(reason="volume %s is not on %s" % (volume_id, host))
        return volume, snapshot

    def revert(self, ctxt, volume_id, snapshot_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_reverting.revert")
        volume_status.fail_operation(ctxt, volume_id, "reverting", "error",
                                     volume_status.EVENT_REVERT, "revert volume to snapshot",
                                     common.failure_reason(flow_failures),
                                     release=snapshot_back_to_available(snapshot_id))


class RevertStorage(task.Task):
    def __init__(self, driver):
        super().__init__(name="revert_storage")
        self.driver = driver

    def execute(self, volume, snapshot):
        fault.check(FLOW + ".revert_storage")
        self.driver.revert_to_snapshot(volume, snapshot)

    def revert(self, volume, **kwargs):
        LOG.warning("Volume %s may be partly reverted; its status says so", volume.id)


class MarkReverted(task.Task):
    def execute(self, volume_id, snapshot_id):
        fault.check(FLOW + ".mark_reverted")
        with writer() as s:
            won = db.conditional_update(models.Volume, volume_id, {"status": "available"},
                                        {"status": "reverting", "deleted": False}, session=s)
            if won:
                db.conditional_update(models.Snapshot, snapshot_id, {"status": "available"},
                                      {"status": "restoring"}, session=s)
                db.worker_release("volume", volume_id, session=s)
        if not won:
            raise exception.InvalidVolume(reason="volume %s left `reverting`" % volume_id)
        LOG.info("Volume %s reverted to snapshot %s", volume_id, snapshot_id)

    def revert(self, volume_id, **kwargs):
        LOG.debug("mark_reverted reverted for %s", volume_id)


def build(driver):
    return linear_flow.Flow(FLOW).add(
        CheckReverting(name="check_reverting"),
        RevertStorage(driver),
        MarkReverted(name="mark_reverted"),
    )


def run(ctxt, driver, host, volume_id, snapshot_id):
    common.run_flow(build(driver), {"ctxt": ctxt, "volume_id": volume_id,
                                    "snapshot_id": snapshot_id, "host": host})
