"""volume_worker/image_data.py's raw writer: the image's bytes in 4 MiB blocks at their
offsets, zero blocks skipped, and another format's header refused before any write."""

import os

import pytest

from common import exception
from volume_worker import image_data

MiB = 1024 * 1024


class RecordingVolume:
    """An opened volume that keeps what was written where (a bytearray of the volume)."""

    def __init__(self, size):
        self.data = bytearray(size)
        self.writes = []

    def write(self, offset, data):
        self.writes.append((offset, len(data)))
        self.data[offset:offset + len(data)] = data


def feed(writer, data, chunk):
    for start in range(0, len(data), chunk):
        writer(data[start:start + chunk])
    writer.finish()


@pytest.mark.parametrize("chunk", [4096, MiB, 3 * MiB + 17])
def test_blocks_land_at_their_offsets_and_zero_blocks_are_not_written(chunk):
    image = os.urandom(3 * MiB) + bytes(5 * MiB) + os.urandom(100)
    volume = RecordingVolume(16 * MiB)
    feed(image_data._RawWriter("img", volume), image, chunk)
    assert bytes(volume.data[:len(image)]) == image
    assert (4 * MiB, 4 * MiB) not in volume.writes  # the all-zero block
    assert volume.writes == [(0, 4 * MiB), (8 * MiB, 100)]


@pytest.mark.parametrize("head, name", [
    (b"QFI\xfb\x00\x00\x00\x03", "qcow2"), (b"KDMV", "vmdk"), (b"vhdxfile", "vhdx"),
    (b"conectix", "vpc"), (bytes(64) + b"\x7f\x10\xda\xbe", "vdi"), (b"LUKS\xba\xbe", "luks"),
])
def test_another_formats_header_is_refused_before_anything_is_written(head, name):
    volume = RecordingVolume(MiB)
    writer = image_data._RawWriter("img", volume)
    with pytest.raises(exception.ImageUnacceptable, match="its data is %s" % name):
        feed(writer, head + bytes(1024), 100)
    assert volume.writes == []


def test_raw_data_and_a_tiny_image_pass():
    assert image_data.detected_format(os.urandom(512).replace(b"Q", b"q")) is None
    volume = RecordingVolume(MiB)
    feed(image_data._RawWriter("img", volume), b"boot", 4)
    assert bytes(volume.data[:4]) == b"boot"


def test_glance_metadata_is_strings_with_cinders_keys_and_the_properties():
    meta = image_data.glance_metadata({
        "id": "i", "name": "n", "checksum": "c", "container_format": "bare",
        "disk_format": "qcow2", "min_disk": 2, "min_ram": 0, "size": 10,
        "properties": {"hw_disk_bus": "scsi", "os_distro": "debian"}})
    assert meta == {"image_id": "i", "image_name": "n", "checksum": "c",
                    "container_format": "bare", "disk_format": "qcow2", "min_disk": "2",
                    "min_ram": "0", "size": "10", "hw_disk_bus": "scsi",
                    "os_distro": "debian"}
