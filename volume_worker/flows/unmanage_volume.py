"""unmanage_volume: stop managing a volume; its storage stays where it is.

Tasks, in order (each has a revert):
  check_unmanaging   the row is `unmanaging` on this host; revert: `error_unmanaging` (as
                     Cinder), the workers row released, the user told why; the volume can be
                     unmanaged again or reset
  unmanage_storage   the driver lets go of the storage (it stays, under the volume's name);
                     revert: nothing was removed, so nothing to undo
  mark_unmanaged     the row goes (soft delete), its pool claim and workers row are released,
                     one transaction; revert: nothing to undo (the transaction rolled back)
"""

import logging

from taskflow import task
from taskflow.patterns import linear_flow

from common import exception, fault, volume_status
from common.db import api as db
from common.db import models
from common.db import volume_actions_api as adb
from common.db.session import writer
from volume_worker.flows import common

LOG = logging.getLogger(__name__)
FLOW = "unmanage_volume"


class CheckUnmanaging(task.Task):
    default_provides = "volume"

    def execute(self, volume_id, host):
        fault.check(FLOW + ".check_unmanaging")
        volume = db.volume_get_internal(volume_id)
        if volume is None or volume.deleted or volume.status != "unmanaging":
            raise exception.InvalidVolume(reason="volume %s is not unmanaging" % volume_id)
        if not volume.host or volume.host.split("#")[0] != host:
            raise exception.InvalidVolume(reason="volume %s is not on %s" % (volume_id, host))
        return volume

    def revert(self, ctxt, volume_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_unmanaging.revert")
        volume_status.fail_operation(ctxt, volume_id, "unmanaging", "error_unmanaging",
                                     volume_status.EVENT_UNMANAGE, "unmanage volume",
                                     common.failure_reason(flow_failures))


class UnmanageStorage(task.Task):
    def __init__(self, driver):
        super().__init__(name="unmanage_storage")
        self.driver = driver

    def execute(self, volume):
        fault.check(FLOW + ".unmanage_storage")
        self.driver.unmanage(volume)

    def revert(self, volume, **kwargs):
        LOG.debug("unmanage_storage reverted for %s: the storage was left in place",
                  volume.id)


class MarkUnmanaged(task.Task):
    def execute(self, volume):
        fault.check(FLOW + ".mark_unmanaged")
        with writer() as s:
            won = db.conditional_update(models.Volume, volume.id, {"status": "deleted"},
                                        {"status": "unmanaging", "deleted": False}, session=s)
            if not won:
                raise exception.InvalidVolume(reason="volume %s left `unmanaging`"
                                              % volume.id)
            adb.volume_mark_unmanaged(volume.id, session=s)
        LOG.info("Volume %s unmanaged; its storage stays on %s", volume.id, volume.host)

    def revert(self, volume, **kwargs):
        LOG.debug("mark_unmanaged reverted for %s", volume.id)


def build(driver):
    return linear_flow.Flow(FLOW).add(
        CheckUnmanaging(name="check_unmanaging"),
        UnmanageStorage(driver),
        MarkUnmanaged(name="mark_unmanaged"),
    )


def run(ctxt, driver, host, volume_id):
    common.run_flow(build(driver), {"ctxt": ctxt, "volume_id": volume_id, "host": host})
