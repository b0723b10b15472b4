"""reimage_volume: replace a volume's data with an image's (os-reimage, 3.68).

The API checked the image with the user's token (it fits the volume) and moved the volume
`available`/`error` (or, with reimage_reserved, `reserved`: Nova rebuilding a server booted
from it) -> `downloading`, keeping the status it came from as previous_status, with a workers
row. Tasks, in order (each has a revert):
  check_downloading  the row is still `downloading` on this host; revert: `error` (its data
                     may be part-written, as Cinder), workers row released, the user told why,
                     and a rebuild waiting on it told it failed
  fetch_image        the image's record with the user's token, still active; revert: nothing
  write_image_data   the volume zeroed and the image written over it (volume_worker/
                     image_data.py); revert: nothing of its own, the status says it failed
  mark_reimaged      back to `available` (from `available` or `error`) or `reserved`, bootable,
                     the new image's metadata as volume_image_metadata (the old one gone),
                     workers row released, in one transaction; then the rebuild waiting on a
                     reserved volume gets Nova's volume-reimaged event; revert: nothing
"""

import logging

from sqlalchemy import delete
from taskflow import task
from taskflow.patterns import linear_flow

from common import exception, fault, image_service, volume_status
from common.db import api as db
from common.db import attachments_api, models
from common.db.session import writer
from volume_worker import compute_events, image_data
from volume_worker.flows import common

LOG = logging.getLogger(__name__)
FLOW = "reimage_volume"
GiB = 1024 ** 3
REIMAGING = "downloading"


def waiting_instances(volume_id):
    """The instances whose rebuild reserved the volume (its reserved attachments)."""
    return [a.instance_uuid for a in attachments_api.attachments_of_volume(volume_id)
            if a.attach_status == "reserved" and a.instance_uuid]


def fail(ctxt, volume_id, reason):
    """End a failed or interrupted reimage: `error`, user message, rebuild told."""
    volume = db.volume_get_internal(volume_id)
    won = volume_status.fail_operation(ctxt, volume_id, REIMAGING, "error",
                                       volume_status.EVENT_REIMAGE, "reimage volume", reason)
    if won and volume is not None and volume.previous_status == "reserved":
        compute_events.volume_reimaged(volume_id, waiting_instances(volume_id), False)
    return won


class CheckDownloading(task.Task):
    default_provides = "volume"

    def execute(self, volume_id, host):
        fault.check(FLOW + ".check_downloading")
        volume = db.volume_get_internal(volume_id)
        if volume is None or volume.deleted or volume.status != REIMAGING:
            raise exception.InvalidVolume(reason="volume %s is not being reimaged" % volume_id)
        if not volume.host or volume.host.split("#")[0] != host:
            raise exception.InvalidVolume(reason="volume %s is not on %s" % (volume_id, host))
        return volume

    def revert(self, ctxt, volume_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_downloading.revert")
        fail(ctxt, volume_id, common.failure_reason(flow_failures))


class FetchImage(task.Task):
    default_provides = "image"

    def execute(self, ctxt, image_id):
        fault.check(FLOW + ".fetch_image")
        image = image_service.show(ctxt, image_id)
        if image.get("status") != "active":
            raise exception.ImageUnacceptable(image_id=image_id, reason="its status is %s, "
                                              "not active" % image.get("status"))
        return image

    def revert(self, image_id, **kwargs):
        LOG.debug("fetch_image of %s reverted: nothing to undo", image_id)


class WriteImageData(task.Task):
    def __init__(self, driver):
        super().__init__(name="write_image_data")
        self.driver = driver

    def execute(self, ctxt, volume, image):
        fault.check(FLOW + ".write_image_data")
        image_data.write_image(ctxt, image, self.driver.migration_connection(volume),
                               volume.size * GiB, fresh=False)

    def revert(self, volume, **kwargs):
        LOG.warning("Volume %s may hold part of the new image; its status says so", volume.id)


class MarkReimaged(task.Task):
    def execute(self, ctxt, volume, image):
        fault.check(FLOW + ".mark_reimaged")
        back_to = "reserved" if volume.previous_status == "reserved" else "available"
        with writer() as s:
            won = db.conditional_update(models.Volume, volume.id,
                                        {"status": back_to, "bootable": True},
                                        {"status": REIMAGING, "deleted": False}, session=s)
            if won:
                db.worker_release("volume", volume.id, session=s)
                s.execute(delete(models.VolumeGlanceMetadata).where(
                    models.VolumeGlanceMetadata.volume_id == volume.id))
                s.add_all(models.VolumeGlanceMetadata(volume_id=volume.id, key=key, value=value)
                          for key, value in image_data.glance_metadata(image).items())
        if not won:
            raise exception.InvalidVolume(reason="volume %s left `downloading` while it was "
                                                 "being reimaged" % volume.id)
        LOG.info("Volume %s now holds image %s (%s)", volume.id, image["id"], back_to)
        if back_to == "reserved":
            compute_events.volume_reimaged(volume.id, waiting_instances(volume.id), True)

    def revert(self, volume, **kwargs):
        LOG.debug("mark_reimaged reverted for %s", volume.id)


def build(driver):
    return linear_flow.Flow(FLOW).add(
        CheckDownloading(name="check_downloading"),
        FetchImage(name="fetch_image"),
        WriteImageData(driver),
        MarkReimaged(name="mark_reimaged"),
    )


def run(ctxt, driver, host, volume_id, image_id):
    common.run_flow(build(driver), {"ctxt": ctxt, "volume_id": volume_id,
                                    "image_id": image_id, "host": host})
