"""detach_volume: remove the export one attachment had (attachment delete, os-detach,
os-terminate_connection, os-force_detach). The caller then ends the attachment's row.

Tasks (each has a revert):
  check_volume   the volume lives on this host; revert: nothing of its own
  remove_export  the driver removes the attachment's target (gone already is fine);
                 revert: nothing can be put back that a compute host could still trust, so
                 it only logs: the caller keeps the attachment and reports the failure
"""

import logging

from taskflow.patterns import linear_flow

from common import exception, fault
from common.db import api as db
from volume_worker.flows import common

LOG = logging.getLogger(__name__)
FLOW = "detach_volume"


class CheckVolume(common.Task):
    default_provides = "volume"

    def execute(self, volume_id, host):
        fault.check(FLOW + ".check_volume")
        volume = db.volume_get_internal(volume_id)
        if volume is None:
            raise exception.VolumeNotFound(volume_id=volume_id)
        if not volume.host or volume.host.split("#")[0] != host:
            raise exception.InvalidVolume(reason="volume %s is not on %s" % (volume_id, host))
        return volume

    def revert(self, volume_id, **kwargs):
        LOG.debug("check_volume reverted for %s", volume_id)


class RemoveExport(common.Task):
    def __init__(self, driver):
        super().__init__(name="remove_export")
        self.driver = driver

    def execute(self, volume, connector, attachment_id):
        fault.check(FLOW + ".remove_export")
        self.driver.terminate_connection(volume, connector, attachment_id)
        LOG.info("Removed the export of volume %s for attachment %s", volume.id,
                 attachment_id)

    def revert(self, volume, attachment_id, **kwargs):
        LOG.error("The export of volume %s for attachment %s may still be there; the "
                  "attachment is kept so the detach can be retried", volume.id, attachment_id)


def build(driver):
    return linear_flow.Flow(FLOW).add(CheckVolume(name="check_volume"), RemoveExport(driver))


def run(ctxt, driver, host, volume_id, attachment_id, connector):
    flow = common.shared_flow(build, driver)
    common.run_flow(flow, {"ctxt": ctxt, "volume_id": volume_id, "host": host,
                                    "attachment_id": attachment_id, "connector": connector})
