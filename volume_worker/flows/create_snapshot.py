"""create_snapshot: make a point-in-time copy of a volume on its back end.

Tasks, in order (each has a revert):
  check_still_creating     the snapshot is still `creating` and its volume lives on this host;
                           revert: snapshot `error`, workers row released, user told why
  create_snapshot_storage  the driver makes the snapshot; revert: the driver removes it
  mark_available           `creating` -> `available` and the workers row released (one
                           transaction); revert: nothing of its own to undo
The volume's status never changes: a snapshot does not stop the volume being used.
"""

import logging

from taskflow.patterns import linear_flow

from common import exception, fault, volume_status
from common.db import api as db
from common.db import models
from common.db.session import committed_despite, writer
from volume_worker.flows import common

LOG = logging.getLogger(__name__)
FLOW = "create_snapshot"


class CheckStillCreating(common.Task):
    default_provides = ("snapshot", "volume")

    def execute(self, snapshot_id, host):
        fault.check(FLOW + ".check_still_creating")
        snapshot = db.snapshot_get_internal(snapshot_id)
        if snapshot is None or snapshot.deleted or snapshot.status != "creating":
            raise exception.InvalidSnapshot(reason="snapshot %s is no longer creating"
                                            % snapshot_id)
        volume = db.volume_get_internal(snapshot.volume_id)
        if volume is None or not volume.host or volume.host.split("#")[0] != host:
            raise exception.InvalidSnapshot(reason="the volume of snapshot %s is not on %s"
                                            % (snapshot_id, host))
        return snapshot, volume

    def revert(self, ctxt, snapshot_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_still_creating.revert")
        volume_status.fail_snapshot_operation(ctxt, snapshot_id, "creating", "error",
                                              volume_status.EVENT_SNAPSHOT_CREATE,
                                              "create snapshot",
                                              common.failure_reason(flow_failures))


class CreateSnapshotStorage(common.Task):
    default_provides = "model_update"

    def __init__(self, driver):
        super().__init__(name="create_snapshot_storage")
        self.driver = driver

    def execute(self, snapshot, volume):
        fault.check(FLOW + ".create_snapshot_storage")
        return self.driver.create_snapshot(snapshot, volume) or {}

    def revert(self, snapshot, volume, result, **kwargs):
        if not isinstance(result, dict):
            return  # the driver raised and cleaned up its own partial work
        LOG.warning("Removing snapshot %s from storage after a later step failed", snapshot.id)
        self.driver.delete_snapshot(snapshot, volume)


class MarkAvailable(common.Task):
    def execute(self, snapshot_id, model_update):
        fault.check(FLOW + ".mark_available")
        values = dict(model_update, status="available", progress="100%")
        try:
            with writer() as s:
                won = db.conditional_update(models.Snapshot, snapshot_id, values,
                                            {"status": "creating", "deleted": False},
                                            session=s)
                if won:
                    db.worker_release("snapshot", snapshot_id, session=s)
        except Exception as exc:
            # The commit may have landed before the connection went: then the snapshot is
            # available and its storage must stay.
            def landed(s):
                row = s.get(models.Snapshot, snapshot_id)
                return row is not None and not row.deleted and row.status == "available"

            if not committed_despite(exc, landed):
                raise
            LOG.warning("Snapshot %s: the database went away under the commit making it "
                        "available, which had landed", snapshot_id)
            won = True
        if not won:
            raise exception.InvalidSnapshot(reason="snapshot %s left `creating` while it was "
                                                   "being made" % snapshot_id)
        LOG.info("Snapshot %s is available", snapshot_id)

    def revert(self, snapshot_id, **kwargs):
        LOG.debug("mark_available reverted for snapshot %s", snapshot_id)


def build(driver):
    return linear_flow.Flow(FLOW).add(
        CheckStillCreating(name="check_still_creating"),
        CreateSnapshotStorage(driver),
        MarkAvailable(name="mark_available"),
    )


def run(ctxt, driver, host, snapshot_id):
    flow = common.shared_flow(build, driver)
    common.run_flow(flow, {"ctxt": ctxt, "snapshot_id": snapshot_id, "host": host})
