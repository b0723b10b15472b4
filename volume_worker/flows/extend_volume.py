"""extend_volume: grow an `available` volume, or an `in-use` one (3.42), whose extra capacity
the scheduler has claimed. The volume's previous_status says which it was.

Tasks, in order (each has a revert):
  check_extending   the row is `extending` on this host; revert: `error_extending`, release
                    the extra claim and the workers row, tell the user why
  extend_storage    the driver grows the storage; revert: storage cannot be shrunk safely,
                    so it only logs; the status says the extend failed
  mark_extended     size = new size, `extending` -> `available` (or back to `in-use`),
                    release the workers row (one transaction); revert: nothing to undo
  tell_compute      an in-use volume: a volume-extended event to the compute service for
                    each instance it is attached to (volume_worker/compute_events.py); a
                    refusal is logged, never undoes the extend; revert: nothing to undo
"""

import logging

from taskflow.patterns import linear_flow

from common import exception, fault, volume_status
from common.db import api as db
from common.db import attachments_api as attachments
from common.db import models, quota_api
from common.db.session import writer
from volume_worker import compute_events
from volume_worker.flows import common

LOG = logging.getLogger(__name__)
FLOW = "extend_volume"


class CheckExtending(common.Task):
    default_provides = "volume"

    def execute(self, volume_id, host, new_size):
        fault.check(FLOW + ".check_extending")
        volume = db.volume_get_internal(volume_id)
        if volume is None or volume.deleted or volume.status != "extending":
            raise exception.InvalidVolume(reason="volume %s is not extending" % volume_id)
        if not volume.host or volume.host.split("#")[0] != host:
            raise exception.InvalidVolume(reason="volume %s is not on %s" % (volume_id, host))
        if new_size <= volume.size:
            raise exception.InvalidInput(reason="new size %d is not larger than %d"
                                         % (new_size, volume.size))
        return volume

    def revert(self, ctxt, volume_id, new_size, flow_failures, **kwargs):
        fault.check(FLOW + ".check_extending.revert")
        volume_status.fail_operation(ctxt, volume_id, "extending", "error_extending",
                                     volume_status.EVENT_EXTEND, "extend volume",
                                     common.failure_reason(flow_failures),
                                     release=volume_status.release_extra_claim(new_size))


class ExtendStorage(common.Task):
    def __init__(self, driver):
        super().__init__(name="extend_storage")
        self.driver = driver

    def execute(self, volume, new_size):
        fault.check(FLOW + ".extend_storage")
        self.driver.extend_volume(volume, new_size)

    def revert(self, volume, **kwargs):
        LOG.warning("Storage of volume %s may already have its new size; shrinking could lose "
                    "data, so it is left as it is", volume.id)


class MarkExtended(common.Task):
    def execute(self, volume, new_size):
        fault.check(FLOW + ".mark_extended")
        back_to = "in-use" if volume.previous_status == "in-use" else "available"
        with writer() as s:
            won = db.conditional_update(models.Volume, volume.id,
                                        {"status": back_to, "size": new_size},
                                        {"status": "extending", "deleted": False}, session=s)
            if not won:
                raise exception.InvalidVolume(reason="volume %s left `extending`" % volume.id)
            db.worker_release("volume", volume.id, session=s)
            # the row's size holds what was reserved now: the reservation is done with (a
            # later reset or force delete that sees `extending` gives back only a live one)
            quota_api.reservation_pop(s, volume.id)
        LOG.info("Volume %s extended to %d GiB", volume.id, new_size)

    def revert(self, volume, **kwargs):
        LOG.debug("mark_extended reverted for %s", volume.id)


class TellCompute(common.Task):
    def execute(self, volume):
        fault.check(FLOW + ".tell_compute")
        if volume.previous_status != "in-use":
            return
        instances = [a.instance_uuid for a in attachments.attachments_of_volume(
            volume.id, statuses=(attachments.ATTACHED,)) if a.instance_uuid]
        compute_events.volume_extended(volume.id, instances)

    def revert(self, volume, **kwargs):
        LOG.debug("tell_compute reverted for %s", volume.id)


def build(driver):
    return linear_flow.Flow(FLOW).add(
        CheckExtending(name="check_extending"),
        ExtendStorage(driver),
        MarkExtended(name="mark_extended"),
        TellCompute(name="tell_compute"),
    )


def run(ctxt, driver, host, volume_id, new_size):
    flow = common.shared_flow(build, driver)
    common.run_flow(flow, {"ctxt": ctxt, "volume_id": volume_id, "host": host,
                                    "new_size": new_size})
