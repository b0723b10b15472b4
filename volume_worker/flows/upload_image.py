"""upload_image (copy_volume_to_image): a volume's data into the image the api created in
Glance (queued) for os-volume_upload_image, with the user's token (ctxt.auth_token, carried
over RPC). The volume is `uploading`, its workers row claimed for this service; it came
from `available`, or from `in-use` with force, and goes back to what its attach_status says
(attached: in-use) as Cinder does, whether the upload worked or not.

Tasks, in order (each has a revert):
  check_uploading  the row is `uploading` on this host; revert: back to available / in-use,
                   the workers row released, a user message (Cinder's copy volume to image /
                   failed to upload event), and the image deleted while Glance still has it
                   queued or saving (one that went active is another upload's, untouched)
  copy_to_image    the volume opened read-only (the driver's migration_connection: file, lvm
                   or rbd) and streamed to Glance as it is read (raw), or first converted by
                   qemu-img into a temporary file under image_conversion_dir, which is then
                   uploaded and removed; revert: the image deleted (its data is not the
                   volume's), the temporary file removed
  mark_uploaded    back to available / in-use and the workers row released, in one
                   conditional update; revert: nothing to undo
"""

import logging
import os
import tempfile

from oslo_config import cfg
from taskflow import task
from taskflow.patterns import linear_flow

from common import connector, exception, fault, image_convert, image_service, volume_status
from common import context as lamina_context
from common.db import api as db
from common.db import models
from common.db.session import writer
from volume_worker.flows import common

LOG = logging.getLogger(__name__)
FLOW = "upload_image"
OPERATION = "upload_image"  # the workers row's operation (api/volume_actions.py)
GiB = 1024 ** 3
# Glance statuses of an image whose data never arrived: safe to delete on failure
UNFINISHED = ("queued", "saving", "uploading", "importing")


def back_to(volume):
    """The status an upload ends in: what the volume's attachments say (Cinder's
    volume_update_status_based_on_attachment)."""
    return "in-use" if volume.attach_status == "attached" else "available"


def delete_image(ctxt, image_id, only_unfinished=False):
    """Delete the image of a failed upload; never raises (the failure being handled is the
    one to report). only_unfinished: leave an image that is active."""
    try:
        if only_unfinished:
            status = image_service.show(ctxt, image_id).get("status")
            if status not in UNFINISHED:
                LOG.warning("Image %s is %s: not deleted", image_id, status)
                return
        image_service.delete(ctxt, image_id)
        LOG.info("Deleted image %s of a failed upload", image_id)
    except exception.ImageNotFound:
        pass
    except Exception:
        LOG.exception("Could not delete image %s of a failed upload", image_id)


def fail(ctxt, volume_id, reason):
    """End a failed upload: the volume back to its attachment's status with the message,
    the workers row released. A no-op when it already left `uploading`."""
    volume = db.volume_get_internal(volume_id)
    if volume is None:
        return False
    return volume_status.fail_operation(ctxt, volume_id, "uploading", back_to(volume),
                                        volume_status.EVENT_UPLOAD, "copy volume to image",
                                        reason)


def end_interrupted(ctxt, volume):
    """Start-up cleanup: an upload this service was running when it stopped. Its image may be
    half sent (Glance removes a cut upload's data and leaves it queued): the volume goes back
    to its attachment's status with a message. The image cannot be named from the volume's
    row (Cinder keeps nothing either), so a queued image may stay for the user to delete."""
    # the cleanup's context is an internal admin one without a project: the message is
    # written in the volume's project, where its owner lists it
    owner = lamina_context.RequestContext(user_id=volume.user_id, project_id=volume.project_id,
                                          is_admin=True, roles=["admin"],
                                          request_id=ctxt.request_id, overwrite=False)
    return fail(owner, volume.id, "the upload was interrupted (volume service restart or lost "
                                  "request); upload the volume again")


class CheckUploading(task.Task):
    default_provides = "volume"

    def execute(self, volume_id, host):
        fault.check(FLOW + ".check_uploading")
        volume = db.volume_get_internal(volume_id)
        if volume is None or volume.deleted or volume.status != "uploading":
            raise exception.InvalidVolume(reason="volume %s is not uploading" % volume_id)
        if not volume.host or volume.host.split("#")[0] != host:
            raise exception.InvalidVolume(reason="volume %s is not on %s" % (volume_id, host))
        return volume

    def revert(self, ctxt, volume_id, image_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_uploading.revert")
        fail(ctxt, volume_id, common.failure_reason(flow_failures))
        delete_image(ctxt, image_id, only_unfinished=True)


class CopyToImage(task.Task):
    def __init__(self, driver):
        super().__init__(name="copy_to_image")
        self.driver = driver

    def execute(self, ctxt, volume, image_id):
        fault.check(FLOW + ".copy_to_image")
        image = image_service.show(ctxt, image_id)
        disk_format = image.get("disk_format") or "raw"
        connection = self.driver.migration_connection(volume)
        size = volume.size * GiB
        if disk_format == "raw":
            # streamed as read: nothing of the volume is held but one chunk
            with connector.open_connection(connection, writable=False) as opened:
                image_service.upload(ctxt, image_id, _volume_chunks(opened, size), size)
        else:
            self._upload_converted(ctxt, connection, image_id, disk_format, size)
        LOG.info("Volume %s uploaded to image %s (%s)", volume.id, image_id, disk_format)

    def _upload_converted(self, ctxt, connection, image_id, disk_format, size):
        workdir = image_convert.conversion_dir()
        temps = []
        try:
            source = (connection.get("data") or {}).get("device_path") \
                if connection.get("driver_volume_type") == "local" else None
            if source is None:
                # qemu-img reads paths: an rbd volume is spooled to a raw file first
                source = _temp(workdir, "upload-%s-raw-" % image_id, temps)
                with connector.open_connection(connection, writable=False) as opened, \
                        open(source, "wb") as f:
                    for chunk in _volume_chunks(opened, size):
                        f.write(chunk)
            target = _temp(workdir, "upload-%s-%s-" % (image_id, disk_format), temps)
            fault.check(FLOW + ".convert")
            image_convert.convert(source, target, "raw", disk_format)
            image_service.upload(ctxt, image_id, image_service.file_chunks(target),
                                 os.path.getsize(target))
        finally:
            for path in temps:
                _remove(path)

    def revert(self, ctxt, volume, image_id, **kwargs):
        # execute removed its temporary files in any case; the image has no good data
        delete_image(ctxt, image_id)


class MarkUploaded(task.Task):
    def execute(self, volume_id):
        fault.check(FLOW + ".mark_uploaded")
        volume = db.volume_get_internal(volume_id)
        status = back_to(volume)
        with writer() as s:
            won = db.conditional_update(models.Volume, volume_id, {"status": status},
                                        {"status": "uploading", "deleted": False,
                                         "attach_status": volume.attach_status}, session=s)
            if not won:
                raise exception.InvalidVolume(reason="volume %s left `uploading`" % volume_id)
            db.worker_release("volume", volume_id, session=s)
        LOG.info("Volume %s back to %s after its upload", volume_id, status)

    def revert(self, volume_id, **kwargs):
        LOG.debug("mark_uploaded reverted for %s", volume_id)


def _temp(workdir, prefix, temps):
    fd, path = tempfile.mkstemp(prefix=prefix, dir=workdir)
    os.close(fd)
    temps.append(path)
    return path


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        LOG.exception("Could not remove temporary file %s", path)


def _volume_chunks(opened, size):
    """The first size bytes of an opened volume, read in the image service's chunk size."""
    chunk_size = cfg.CONF[image_service.GROUP].download_chunk_size
    offset = 0
    while offset < size:
        length = min(chunk_size, size - offset)
        yield opened.read(offset, length)
        offset += length


def build(driver):
    return linear_flow.Flow(FLOW).add(
        CheckUploading(name="check_uploading"),
        CopyToImage(driver),
        MarkUploaded(name="mark_uploaded"),
    )


def run(ctxt, driver, host, volume_id, image_id):
    common.run_flow(build(driver), {"ctxt": ctxt, "volume_id": volume_id, "host": host,
                                    "image_id": image_id})
