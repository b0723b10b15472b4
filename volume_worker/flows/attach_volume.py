"""attach_volume: export a volume to the compute host of one attachment (its connector) and
hand back the connection_info the host opens it with. Runs for the attachments API (create
with a connector, update) and for os-initialize_connection; the caller waits for the answer.

Tasks, in order (each has a revert):
  check_attachment    the attachment is live and its volume on this host; revert: nothing
                      of its own (the caller ends the attachment: api/attachment_requests.py)
  create_export       the driver exports the volume for this attachment (a tgt target with
                      its ACL and CHAP secret, or nothing to make for rbd); revert: the driver
                      removes the export
  describe_connection access mode, front-end QoS specs, encryption and the attachment id
                      added to the driver's connection_info, as Cinder hands them out;
                      revert: nothing to undo
  save_export         connector and connection_info on the attachment, attachment and
                      volume `attaching` (one transaction); an attachment deleted meanwhile
                      fails the flow, so the export is removed; revert: nothing to undo
"""

import logging

from taskflow.patterns import linear_flow

from common import exception, fault
from common.db import api as db
from common.db import attachments_api as attachments
from common.db import types_api
from common.db import volume_actions_api as adb
from volume_worker.flows import common

LOG = logging.getLogger(__name__)
FLOW = "attach_volume"
FRONT_END = ("front-end", "both")


class CheckAttachment(common.Task):
    default_provides = ("attachment", "volume")

    def execute(self, attachment_id, host, connector):
        fault.check(FLOW + ".check_attachment")
        attachment = attachments.attachment_get_internal(attachment_id)
        if attachment is None:
            raise exception.VolumeAttachmentNotFound(attachment_id=attachment_id)
        volume = db.volume_get_internal(attachment.volume_id)
        if volume is None or volume.deleted:
            raise exception.VolumeNotFound(volume_id=attachment.volume_id)
        if not volume.host or volume.host.split("#")[0] != host:
            raise exception.InvalidVolume(reason="volume %s is not on %s" % (volume.id, host))
        if not isinstance(connector, dict):
            raise exception.InvalidInput(reason="the connector must be an object")
        return attachment, volume

    def revert(self, attachment_id, **kwargs):
        LOG.debug("check_attachment reverted for attachment %s", attachment_id)


class CreateExport(common.Task):
    default_provides = "driver_connection"

    def __init__(self, driver):
        super().__init__(name="create_export")
        self.driver = driver

    def execute(self, volume, attachment, connector):
        fault.check(FLOW + ".create_export")
        return self.driver.initialize_connection(volume, connector, attachment.id)

    def revert(self, volume, attachment, connector, result=None, **kwargs):
        fault.check(FLOW + ".create_export.revert")
        LOG.info("Removing the export of volume %s for attachment %s (the attach failed)",
                 volume.id, attachment.id)
        self.driver.terminate_connection(volume, connector, attachment.id)


class DescribeConnection(common.Task):
    default_provides = "connection_info"

    def execute(self, volume, attachment, driver_connection):
        fault.check(FLOW + ".describe_connection")
        info = {"driver_volume_type": driver_connection["driver_volume_type"],
                "data": dict(driver_connection.get("data") or {})}
        data = info["data"]
        readonly = adb.admin_metadata_get(volume.id).get("readonly") == "True"
        data["access_mode"] = "ro" if readonly or attachment.attach_mode == "ro" else "rw"
        data["attachment_id"] = attachment.id
        data.setdefault("volume_id", volume.id)
        data["encrypted"] = bool(volume.volume_type_id and
                                 _encryption_of(volume.volume_type_id))
        data["qos_specs"] = _front_end_qos(volume.volume_type_id)
        return info

    def revert(self, **kwargs):
        LOG.debug("describe_connection reverted")


class SaveExport(common.Task):
    def execute(self, attachment, connector, connection_info):
        fault.check(FLOW + ".save_export")
        if not attachments.attachment_exported(attachment.id, connector, connection_info):
            raise exception.VolumeAttachmentNotFound(attachment_id=attachment.id)

    def revert(self, **kwargs):
        LOG.debug("save_export reverted")


def _encryption_of(type_id):
    try:
        return types_api.encryption_get(type_id)
    except exception.NotFound:
        return None


def _front_end_qos(type_id):
    """The QoS keys of the type's specs when the compute host applies them (Cinder hands
    them out in connection_info; back-end specs stay with the storage)."""
    if not type_id:
        return None
    try:
        vtype = db.volume_type_get(type_id)
    except exception.NotFound:
        return None
    if not vtype.qos_specs_id:
        return None
    specs = types_api.qos_specs_get(vtype.qos_specs_id)
    if specs.consumer not in FRONT_END:
        return None
    return {item.key: item.value for item in specs.keys}


def build(driver):
    return linear_flow.Flow(FLOW).add(
        CheckAttachment(name="check_attachment"),
        CreateExport(driver),
        DescribeConnection(name="describe_connection"),
        SaveExport(name="save_export"),
    )


def run(ctxt, driver, host, attachment_id, connector):
    flow = common.shared_flow(build, driver)
    engine = common.run_flow(flow, {"ctxt": ctxt, "attachment_id": attachment_id,
                                             "host": host, "connector": connector})
    return engine.storage.fetch("connection_info")
