"""manage_existing_snapshot: bring a snapshot the back end already holds of a volume under
management as a snapshot row.

The API wrote the snapshot row (`creating`, volume_size the volume's, that much quota
charged) and its workers row (operation `manage`) owned by this service. Tasks, in order (each
has a revert):
  check_creating   the row is still `creating` and its volume lives on this host; revert:
                   `error` (as Cinder), the workers row released, the user told why
  get_size         the driver measures the snapshot the reference names (GiB, rounded up);
                   revert: nothing was changed
  charge_size      the row's size set to the measured one and the quota charge moved by the
                   difference (one transaction; over quota: the manage fails); revert: size
                   and charge back
  manage_storage   the driver takes the snapshot over (renames it to the snapshot's own name);
                   revert: the driver gives it its old name back
  mark_available   `creating` -> `available`, progress 100%, the workers row released (one
                   transaction); revert: nothing to undo
A failed manage ends in `error` holding the charge the API made (deleting the row gives it
back and touches no storage: the snapshot is under its old name again).
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
FLOW = "manage_existing_snapshot"
ACTION = "manage existing snapshot"
OPERATION = "manage"  # the workers row's operation: a `creating` snapshot with no storage


def end_interrupted(ctxt, snapshot):
    """A manage interrupted by a restart or a lost request: the storage is left alone (it
    may still be under its old name, or already under the snapshot's)."""
    volume_status.fail_snapshot_operation(
        ctxt, snapshot.id, "creating", "error", volume_status.EVENT_SNAPSHOT_CREATE, ACTION,
        "the operation was interrupted (volume service restart or lost request); the storage "
        "may already be named snapshot-%s" % snapshot.id)


def _move_charge(session, snapshot, delta):
    """Charge (delta > 0) or give back (delta < 0) |delta| GiB of snapshot gigabytes."""
    if not delta:
        return
    type_name = quota_api.volume_type_name(session, snapshot.volume_type_id)
    deltas = quota.snapshot_deltas(abs(delta), type_name, count=0)
    deltas = {k: v for k, v in deltas.items() if v}
    if delta > 0:
        quota.reserve(snapshot.project_id, deltas, session=session)
    else:
        quota.release(snapshot.project_id, deltas, session=session)


class CheckCreating(task.Task):
    default_provides = ("snapshot", "volume")

    def execute(self, snapshot_id, host):
        fault.check(FLOW + ".check_creating")
        snapshot = db.snapshot_get_internal(snapshot_id)
        if snapshot is None or snapshot.deleted or snapshot.status != "creating":
            raise exception.InvalidSnapshot(reason="snapshot %s is no longer waiting to be "
                                                   "managed" % snapshot_id)
        volume = db.volume_get_internal(snapshot.volume_id)
        if volume is None or not volume.host or volume.host.split("#")[0] != host:
            raise exception.InvalidSnapshot(reason="the volume of snapshot %s is not on %s"
                                            % (snapshot_id, host))
        return snapshot, volume

    def revert(self, ctxt, snapshot_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_creating.revert")
        volume_status.fail_snapshot_operation(ctxt, snapshot_id, "creating", "error",
                                              volume_status.EVENT_SNAPSHOT_CREATE, ACTION,
                                              common.failure_reason(flow_failures))


class GetSize(task.Task):
    default_provides = "size"

    def __init__(self, driver):
        super().__init__(name="get_size")
        self.driver = driver

    def execute(self, snapshot, volume, ref):
        fault.check(FLOW + ".get_size")
        name = ref.get("source-name") if isinstance(ref, dict) else None
        if isinstance(name, str) and name.startswith("snapshot-"):
            owner = db.snapshot_get_internal(name[len("snapshot-"):])
            if owner is not None and not owner.deleted and owner.id != snapshot.id:
                raise exception.InvalidSnapshot(reason="%s belongs to a managed snapshot"
                                                % name)
        size = int(self.driver.manage_existing_snapshot_get_size(snapshot, volume, ref))
        if size < 1:
            raise exception.DriverError(reason="the snapshot named by %s is empty" % ref)
        return size

    def revert(self, snapshot, **kwargs):
        LOG.debug("get_size reverted for snapshot %s: nothing changed", snapshot.id)


class ChargeSize(task.Task):
    default_provides = "charged_from"

    def execute(self, snapshot_id, size):
        fault.check(FLOW + ".charge_size")
        with writer() as s:
            row = s.get(models.Snapshot, snapshot_id)
            old = row.volume_size
            if not db.conditional_update(models.Snapshot, snapshot_id, {"volume_size": size},
                                         {"status": "creating", "deleted": False}, session=s):
                raise exception.InvalidSnapshot(reason="snapshot %s left `creating`"
                                                % snapshot_id)
            _move_charge(s, row, size - old)  # 413 rolls the size back too
        LOG.info("Snapshot %s is %d GiB (charged %+d GiB)", snapshot_id, size, size - old)
        return old

    def revert(self, snapshot_id, size, result, **kwargs):
        if not isinstance(result, int):
            return  # it rolled back
        with writer() as s:
            row = s.get(models.Snapshot, snapshot_id)
            if row is None or row.volume_size != size:
                return
            row.volume_size = result
            _move_charge(s, row, result - size)


class ManageStorage(task.Task):
    default_provides = "model_update"

    def __init__(self, driver):
        super().__init__(name="manage_storage")
        self.driver = driver

    def execute(self, snapshot, volume, ref):
        fault.check(FLOW + ".manage_storage")
        return self.driver.manage_existing_snapshot(snapshot, volume, ref) or {}

    def revert(self, snapshot, volume, ref, result, **kwargs):
        if not isinstance(result, dict):
            return  # the driver raised: it left the storage as it was
        LOG.warning("Giving snapshot %s's storage its old name back (%s)", snapshot.id, ref)
        self.driver.manage_existing_snapshot_undo(snapshot, volume, ref)


class MarkAvailable(task.Task):
    def execute(self, snapshot_id, model_update):
        fault.check(FLOW + ".mark_available")
        values = dict(model_update, status="available", progress="100%")
        with writer() as s:
            won = db.conditional_update(models.Snapshot, snapshot_id, values,
                                        {"status": "creating", "deleted": False}, session=s)
            if won:
                db.worker_release("snapshot", snapshot_id, session=s)
        if not won:
            raise exception.InvalidSnapshot(reason="snapshot %s left `creating`" % snapshot_id)
        LOG.info("Snapshot %s is managed and available", snapshot_id)

    def revert(self, snapshot_id, **kwargs):
        LOG.debug("mark_available reverted for snapshot %s", snapshot_id)


def build(driver):
    return linear_flow.Flow(FLOW).add(
        CheckCreating(name="check_creating"),
        GetSize(driver),
        ChargeSize(name="charge_size"),
        ManageStorage(driver),
        MarkAvailable(name="mark_available"),
    )


def run(ctxt, driver, host, snapshot_id, ref):
    common.run_flow(build(driver), {"ctxt": ctxt, "snapshot_id": snapshot_id, "host": host,
                                    "ref": ref})
