"""Writing an image's data into a volume (a volume made from an image, a reimage), through the
connector layer every path that moves volume data shares (common/connector.py).

A raw image streams from the image service straight into the volume, chunk by chunk, its hash
checked as it goes (common/image_service.download); zero chunks are not written to a volume
that reads as zeros already. Its first bytes are looked at first: data that is really another
format (a qcow2 uploaded as raw) is refused before anything is written, as Cinder refuses it,
because a guest booting it would make the hypervisor follow the image's own header (its
backing file) on the host. Any other format is downloaded to a temporary file under
[DEFAULT] image_conversion_dir, inspected (common/image_convert.info: no backing file, the
format it claims, a virtual size that fits) and converted to raw with qemu-img: into the
volume's own file or device where the volume is local, else into a second temporary file
that is then copied into the volume. Temporary files go whatever happens."""

import logging
import os
import tempfile

from common import connector, exception, image_convert, image_service

LOG = logging.getLogger(__name__)

# Headers of formats that must not be taken for raw data: (offset, magic, qemu-img's name)
_SIGNATURES = (
    (0, b"QFI\xfb", "qcow2"),
    (0, b"QED\x00", "qed"),
    (0, b"KDMV", "vmdk"),
    (0, b"# Disk DescriptorFile", "vmdk"),
    (0, b"vhdxfile", "vhdx"),
    (0, b"conectix", "vpc"),
    (0, b"LUKS\xba\xbe", "luks"),
    (64, b"\x7f\x10\xda\xbe", "vdi"),
)
SNIFF_BYTES = 512
WRITE_SIZE = 4 * 1024 * 1024


def detected_format(head):
    """The non-raw format whose header `head` (the first bytes of an image) starts with, or
    None: raw as far as its header tells."""
    for offset, magic, name in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return name
    return None


class _RawWriter:
    """download()'s write callable: the image's bytes gathered into WRITE_SIZE blocks (an RBD
    object each; a fraction of the round trips of the download's chunks), each written at
    its offset of the opened volume unless it is all zeros (the volume reads as zeros)."""

    def __init__(self, image_id, volume):
        self.image_id = image_id
        self.volume = volume
        self.offset = 0  # of the block being gathered
        self.block = bytearray()
        self.head_checked = False

    def __call__(self, chunk):
        self.block += chunk
        if not self.head_checked and len(self.block) >= SNIFF_BYTES:
            self._check_head()
        while len(self.block) >= WRITE_SIZE:
            self._write(bytes(self.block[:WRITE_SIZE]))
            del self.block[:WRITE_SIZE]

    def _check_head(self):
        self.head_checked = True
        found = detected_format(bytes(self.block[:SNIFF_BYTES]))
        if found:
            raise exception.ImageUnacceptable(
                image_id=self.image_id,
                reason="it claims disk_format raw but its data is %s" % found)

    def _write(self, data):
        if data.count(0) != len(data):
            self.volume.write(self.offset, data)
        self.offset += len(data)

    def finish(self):
        if not self.head_checked:
            self._check_head()
        if self.block:
            self._write(bytes(self.block))
            self.block = bytearray()


def write_image(ctx, image, connection, volume_bytes, fresh=True):
    """Write the image (image_service.show's dict) into the volume behind connection (a
    driver's migration_connection), from the volume's start. fresh: the volume reads as zeros
    (just made); otherwise (a reimage) it is zeroed first, so nothing of the old data stays
    past the image's end."""
    image_id = image["id"]
    disk_format = image.get("disk_format") or "raw"
    if image_convert.qemu_format(disk_format) == "raw":
        if (image.get("size") or 0) > volume_bytes:
            raise exception.ImageUnacceptable(
                image_id=image_id, reason="its %d bytes do not fit in a volume of %d bytes"
                % (image["size"], volume_bytes))
        with connector.open_connection(connection, writable=True) as volume:
            if not fresh:
                volume.punch_hole(0, volume_bytes)
            writer = _RawWriter(image_id, volume)
            written = image_service.download(ctx, image_id, writer, image=image)
            writer.finish()
            volume.flush()
        LOG.info("Wrote raw image %s (%d bytes) into %s", image_id, written,
                 _describe(connection))
        return
    with tempfile.TemporaryDirectory(prefix="image-", dir=image_convert.conversion_dir()) \
            as tmp:
        downloaded = os.path.join(tmp, "image")
        image_service.download(ctx, image_id, downloaded, image=image)
        info = image_convert.info(downloaded, disk_format=disk_format, image_id=image_id)
        virtual = int(info.get("virtual-size") or 0)
        if virtual > volume_bytes:
            raise exception.ImageUnacceptable(
                image_id=image_id, reason="its virtual size of %d bytes does not fit in a "
                "volume of %d bytes" % (virtual, volume_bytes))
        if connection.get("driver_volume_type") == "local" and fresh:
            image_convert.convert(downloaded, connection["data"]["device_path"], disk_format,
                                  target_exists=True, target_is_zero=True)
        else:
            converted = os.path.join(tmp, "raw")
            image_convert.convert(downloaded, converted, disk_format)
            os.unlink(downloaded)  # room for the copy
            if not fresh:
                with connector.open_connection(connection, writable=True) as volume:
                    volume.punch_hole(0, volume_bytes)
            connector.copy_volume(connector.local_connection(converted), connection,
                                  min(virtual, volume_bytes))
    LOG.info("Wrote image %s (%s, %d bytes virtual) into %s", image_id, disk_format, virtual,
             _describe(connection))


def _describe(connection):
    data = connection.get("data") or {}
    if connection.get("driver_volume_type") == "rbd":
        return "rbd image %s/%s" % (data.get("pool"), data.get("image"))
    return data.get("device_path") or "the volume"


def glance_metadata(image):
    """What a volume made from the image keeps as its volume_image_metadata (Cinder's keys:
    the image's identity and format, then its properties), all strings."""
    values = {"image_id": image["id"], "image_name": image.get("name") or "",
              "checksum": image.get("checksum"), "container_format":
              image.get("container_format"), "disk_format": image.get("disk_format"),
              "min_disk": image.get("min_disk") or 0, "min_ram": image.get("min_ram") or 0,
              "size": image.get("size")}
    for key, value in (image.get("properties") or {}).items():
        values.setdefault(key, value)
    return {key: value if isinstance(value, str) else str(value)
            for key, value in values.items() if value is not None}
