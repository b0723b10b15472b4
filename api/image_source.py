"""The image a new volume is made from (POST /volumes with imageRef), checked before anything
is written, as Cinder checks it: asked of the image service with the caller's own token (an
image the caller may not see does not exist), active, and fitting in the volume: its data,
its virtual size when the image service knows it, and its min_disk. A volume size left out
becomes the smallest that fits.

3.46: an image of size 0 whose block_device_mapping names a snapshot (what Nova's snapshot of
a server booted from a volume leaves in the image service) means that snapshot: the volume
is made from the snapshot. Below 3.46 such an image is refused: it holds no data."""

import json
import logging

from api import microversion
from common import exception, image_service
from common.db import api as db

LOG = logging.getLogger(__name__)
GiB = 1024 ** 3


def _gib(size_bytes):
    return (int(size_bytes) + GiB - 1) // GiB


def _snapshot_of_nova_image(image):
    """The snapshot id of the boot device (source_type snapshot, boot_index 0) of what Nova
    recorded in the image's block_device_mapping, or None."""
    mappings = image["properties"].get("block_device_mapping")
    if isinstance(mappings, str):  # Glance v2 keeps properties as strings
        try:
            mappings = json.loads(mappings)
        except ValueError:
            return None
    for mapping in mappings if isinstance(mappings, list) else ():
        if isinstance(mapping, dict) and mapping.get("source_type") == "snapshot" and \
                str(mapping.get("boot_index")) == "0" and mapping.get("snapshot_id"):
            return mapping["snapshot_id"]
    return None


def checked_image(ctx, image_id, size, for_reimage=False):
    """(image, size, snapshot_id): the image record (image_service.show's dict), the volume
    size in GiB, and, for a 3.46 Nova snapshot image, the snapshot to make the volume from
    (then the image's data is not used). 400 with Cinder's message when it does not fit.
    for_reimage: the image replaces an existing volume's data, so it must hold data."""
    try:
        image = image_service.show(ctx, image_id)
    except (exception.ImageNotFound, exception.ImageNotAuthorized):
        raise exception.InvalidInput(
            reason="Invalid image identifier or unable to access requested image.")
    snapshot_id = _snapshot_of_nova_image(image)
    if snapshot_id is not None and microversion.at_least((3, 46)) and not for_reimage:
        try:
            db.snapshot_get(ctx, snapshot_id)
        except exception.SnapshotNotFound:
            raise exception.InvalidInput(
                reason="Nova specific image is found, but boot volume snapshot id:%s not "
                       "found." % snapshot_id)
        LOG.info("Image %s is Nova's snapshot %s of a server booted from a volume: the "
                 "volume is made from that snapshot", image_id, snapshot_id)
        return image, size, snapshot_id
    if image.get("status") != "active":
        raise exception.InvalidInput(reason="Image %s is not active." % image_id)
    if not image.get("size"):
        raise exception.InvalidInput(
            reason="Image %s has no data%s." % (image_id, (
                ": it is a snapshot of a server booted from a volume; a volume is made from "
                "it with microversion 3.46 or later" if snapshot_id else "")))
    data_gib = _gib(image["size"])
    virtual_gib = _gib(image["virtual_size"]) if image.get("virtual_size") else 0
    min_disk = int(image.get("min_disk") or 0)
    if size is None:
        size = max(data_gib, virtual_gib, min_disk, 1)
    if data_gib > size:
        raise exception.InvalidInput(
            reason="Size of specified image %sGB is larger than volume size %sGB."
                   % (data_gib, size))
    if virtual_gib > size:
        raise exception.InvalidInput(
            reason="Image virtual size is %dGB and doesn't fit in a volume of size %dGB."
                   % (virtual_gib, size))
    if min_disk > size:
        raise exception.InvalidInput(
            reason="Volume size %sGB cannot be smaller than the image minDisk size %sGB."
                   % (size, min_disk))
    return image, size, None
