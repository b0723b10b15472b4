"""manage_existing: bring storage the back end already holds under management as a volume.

The API wrote the volume row (`managing`, no pool, size 0) and its workers row owned by this
service. Tasks, in order (each has a revert):
  check_managing    the row is still `managing` and unplaced; revert: `error_managing`, the
                    workers row released, the user told why
  get_size          the driver measures the storage named by the reference (GiB, rounded up);
                    revert: nothing was changed
  claim_capacity    pool and size set on the row and that much claimed on the pool (one
                    transaction; no room: the manage fails); revert: claim released, row back to
                    no pool and size 0
  manage_storage    the driver takes the storage over (renames it to the volume's own name);
                    revert: the driver gives it its old name back
  mark_managed      `managing` -> `available`, the workers row released (one transaction);
                    revert: nothing to undo
A failed manage ends in `error_managing` holding no claim; the storage is where it was.
"""

import logging
import types

from sqlalchemy import update
from taskflow import task
from taskflow.patterns import linear_flow

from common import exception, fault, quota, volume_status
from common.db import api as db
from common.db import models
from common.db import volume_actions_api as adb
from common.db.models import utcnow
from common.db.session import writer
from volume_worker.flows import common

LOG = logging.getLogger(__name__)
FLOW = "manage_existing"
ACTION = "manage existing volume"


def release_managed_claim(session, volume):
    """fail_operation's release: the claim a failed manage held, and the row back to no pool
    (so the error_managing volume holds nothing and deleting it touches no storage)."""
    if volume.host:
        db.pool_release(volume.host, volume.size, session=session)
        quota.release_size(session, volume.id, volume.size)
    session.execute(update(models.Volume).where(models.Volume.id == volume.id)
                    .values(host=None, size=0))


def end_interrupted(ctxt, volume):
    """A manage interrupted by a restart or a lost request."""
    volume_status.fail_operation(
        ctxt, volume.id, "managing", "error_managing", volume_status.EVENT_MANAGE, ACTION,
        "the operation was interrupted (volume service restart or lost request); the storage "
        "may already be named volume-%s" % volume.id, release=release_managed_claim)


class CheckManaging(task.Task):
    default_provides = "volume"

    def execute(self, volume_id, host, pool):
        fault.check(FLOW + ".check_managing")
        volume = db.volume_get_internal(volume_id)
        if volume is None or volume.deleted or volume.status != "managing" or volume.host:
            raise exception.InvalidVolume(reason="volume %s is no longer waiting to be "
                                                 "managed" % volume_id)
        if pool.split("#")[0] != host:
            raise exception.InvalidVolume(reason="pool %s is not on %s" % (pool, host))
        return volume

    def revert(self, ctxt, volume_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_managing.revert")
        volume_status.fail_operation(ctxt, volume_id, "managing", "error_managing",
                                     volume_status.EVENT_MANAGE, ACTION,
                                     common.failure_reason(flow_failures),
                                     release=release_managed_claim)


class GetSize(task.Task):
    default_provides = "size"

    def __init__(self, driver):
        super().__init__(name="get_size")
        self.driver = driver

    def execute(self, volume, pool, ref):
        fault.check(FLOW + ".get_size")
        name = ref.get("source-name") if isinstance(ref, dict) else None
        if isinstance(name, str) and name.startswith("volume-") and \
                adb.volume_ids_alive([name[len("volume-"):]]):
            raise exception.InvalidVolume(reason="%s belongs to a managed volume" % name)
        placed = types.SimpleNamespace(id=volume.id, host=pool, size=volume.size)
        size = int(self.driver.manage_existing_get_size(placed, ref))
        if size < 1:
            raise exception.DriverError(reason="the storage named by %s is empty" % ref)
        return size

    def revert(self, volume, **kwargs):
        LOG.debug("get_size reverted for %s: nothing changed", volume.id)


class ClaimCapacity(task.Task):
    def execute(self, volume, pool, size):
        fault.check(FLOW + ".claim_capacity")
        if not adb.volume_claim_managed(volume.id, pool, size):
            raise exception.NoValidBackend(
                reason="pool %s has no room for %d GiB more (or the volume changed)"
                       % (pool, size))
        LOG.info("Claimed %d GiB on %s for managed volume %s", size, pool, volume.id)

    def revert(self, volume, pool, size, result, **kwargs):
        if adb.volume_unclaim_managed(volume.id, pool, size):
            LOG.info("Released the %d GiB claim on %s of volume %s", size, pool, volume.id)


class ManageStorage(task.Task):
    default_provides = "model_update"

    def __init__(self, driver):
        super().__init__(name="manage_storage")
        self.driver = driver

    def execute(self, volume_id, ref):
        fault.check(FLOW + ".manage_storage")
        volume = db.volume_get_internal(volume_id)  # now with its pool and size
        return self.driver.manage_existing(volume, ref) or {}

    def revert(self, volume_id, pool, ref, result, **kwargs):
        if result is None or not isinstance(result, dict):
            return  # the driver raised: it left the storage as it was
        placed = types.SimpleNamespace(id=volume_id, host=pool)
        LOG.warning("Giving the storage of volume %s its old name back (%s)", volume_id, ref)
        self.driver.manage_existing_undo(placed, ref)


class MarkManaged(task.Task):
    def execute(self, volume_id, model_update):
        fault.check(FLOW + ".mark_managed")
        values = dict(model_update, status="available", launched_at=utcnow())
        with writer() as s:
            won = db.conditional_update(models.Volume, volume_id, values,
                                        {"status": "managing", "deleted": False}, session=s)
            if won:
                db.worker_release("volume", volume_id, session=s)
        if not won:
            raise exception.InvalidVolume(reason="volume %s left `managing`" % volume_id)
        LOG.info("Volume %s is managed and available", volume_id)

    def revert(self, volume_id, **kwargs):
        LOG.debug("mark_managed reverted for %s", volume_id)


def build(driver):
    return linear_flow.Flow(FLOW).add(
        CheckManaging(name="check_managing"),
        GetSize(driver),
        ClaimCapacity(name="claim_capacity"),
        ManageStorage(driver),
        MarkManaged(name="mark_managed"),
    )


def run(ctxt, driver, host, volume_id, pool, ref):
    common.run_flow(build(driver), {"ctxt": ctxt, "volume_id": volume_id, "host": host,
                                    "pool": pool, "ref": ref})
