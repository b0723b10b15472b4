"""common/image_convert.py with the real qemu-img on temporary files."""

import hashlib
import json
import os
import shutil
import subprocess

import pytest

from common import exception, image_convert

MiB = 1024 * 1024

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None or
                                shutil.which("qemu-io") is None,
                                reason="qemu-img and qemu-io (apt qemu-utils) are not installed")


def run(*argv):
    subprocess.run(list(argv), check=True, capture_output=True, timeout=60)


@pytest.fixture
def qcow2(tmp_path):
    """A 4 MiB qcow2 whose first MiB is 0x5a, the rest unwritten."""
    path = str(tmp_path / "pattern.qcow2")
    run("qemu-img", "create", "-f", "qcow2", path, "4M")
    run("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 1M", path)
    return path


@pytest.fixture
def raw(tmp_path):
    path = str(tmp_path / "plain.raw")
    with open(path, "wb") as f:
        f.write(bytes(range(256)) * 4096)
    return path


EXPECTED = hashlib.sha256(b"\x5a" * MiB + b"\0" * (3 * MiB)).hexdigest()


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_info_raw_and_qcow2(raw, qcow2):
    got = image_convert.info(raw, disk_format="raw")
    assert (got["format"], got["virtual-size"]) == ("raw", MiB)
    got = image_convert.info(qcow2, disk_format="qcow2", image_id="img-1")
    assert (got["format"], got["virtual-size"]) == ("qcow2", 4 * MiB)
    assert 0 < got["actual-size"] < 4 * MiB
    assert not got.get("backing-filename")


def test_convert_qcow2_to_raw_reads_back_the_pattern(qcow2, tmp_path):
    dst = str(tmp_path / "out.raw")
    image_convert.convert(qcow2, dst, "qcow2")
    assert os.path.getsize(dst) == 4 * MiB
    assert sha256(dst) == EXPECTED
    # the unwritten 3 MiB stay holes in a new file
    assert os.stat(dst).st_blocks * 512 < 2 * MiB
    assert image_convert.info(dst, disk_format="raw")["format"] == "raw"


def test_convert_into_an_existing_target_zeroes_what_the_image_does_not_hold(qcow2, tmp_path):
    # a reused volume: old bytes everywhere; the image's unwritten part must read as zeros
    dst = str(tmp_path / "volume")
    with open(dst, "wb") as f:
        f.write(b"\xff" * (4 * MiB))
    image_convert.convert(qcow2, dst, "qcow2", target_exists=True)
    assert os.path.getsize(dst) == 4 * MiB
    assert sha256(dst) == EXPECTED


def test_convert_into_a_zeroed_target(qcow2, tmp_path):
    dst = str(tmp_path / "thin")
    with open(dst, "wb") as f:
        f.truncate(4 * MiB)
    image_convert.convert(qcow2, dst, "qcow2", target_exists=True, target_is_zero=True)
    assert sha256(dst) == EXPECTED


def test_backing_file_refused(qcow2, tmp_path):
    child = str(tmp_path / "child.qcow2")
    run("qemu-img", "create", "-f", "qcow2", "-b", qcow2, "-F", "qcow2", child)
    with pytest.raises(exception.ImageUnacceptable) as err:
        image_convert.info(child, disk_format="qcow2", image_id="img-2")
    assert "img-2" in str(err.value) and "backing file" in str(err.value)
    assert err.value.code == 400


def test_external_data_file_refused(tmp_path):
    path = str(tmp_path / "data.qcow2")
    run("qemu-img", "create", "-f", "qcow2", "-o", "data_file=" + str(tmp_path / "d.raw"),
        path, "4M")
    with pytest.raises(exception.ImageUnacceptable, match="external data file"):
        image_convert.info(path, disk_format="qcow2")


def test_qcow2_claimed_as_raw_refused(qcow2):
    with pytest.raises(exception.ImageUnacceptable) as err:
        image_convert.info(qcow2, disk_format="raw", image_id="img-3")
    assert "claims disk_format raw but its data is qcow2" in str(err.value)


def test_raw_claimed_as_qcow2_refused(raw):
    with pytest.raises(exception.ImageUnacceptable, match="claims disk_format qcow2"):
        image_convert.info(raw, disk_format="qcow2")


def test_format_not_allowed(qcow2, raw):
    with pytest.raises(exception.ImageUnacceptable, match="format qcow2 is not allowed"):
        image_convert.info(qcow2, allowed_formats=["raw"])
    assert image_convert.info(raw, allowed_formats=["raw"])["format"] == "raw"


def test_glance_names_map_to_qemu_names(tmp_path):
    path = str(tmp_path / "disk.vpc")
    run("qemu-img", "create", "-f", "vpc", path, "4M")
    assert image_convert.info(path, disk_format="vhd")["format"] == "vpc"
    assert image_convert.qemu_format("ISO") == "raw"


def test_qemu_img_failure_surfaced(tmp_path):
    missing = str(tmp_path / "missing.qcow2")
    with pytest.raises(exception.ImageConversionFailed) as err:
        image_convert.info(missing)
    assert "qemu-img info" in str(err.value) and "missing.qcow2" in str(err.value)
    # a raw file read as qcow2: qemu-img's own complaint comes through
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not an image" * 100)
    with pytest.raises(exception.ImageConversionFailed) as err:
        image_convert.convert(str(garbage), str(tmp_path / "out"), "qcow2")
    assert "exit 1" in str(err.value) and "qcow2" in str(err.value).lower()
    assert err.value.code == 500


def test_injected_runner_sees_the_commands():
    calls = []

    def execute(*argv, timeout=None):
        calls.append((argv, timeout))
        return json.dumps({"format": "raw", "virtual-size": MiB, "actual-size": MiB})

    assert image_convert.info("/x", disk_format="ami", execute=execute)["format"] == "raw"
    image_convert.convert("/x", "/dev/vg/lv", "vhd", target_exists=True, timeout=5,
                          execute=execute)
    info_argv, info_timeout = calls[0]
    assert info_argv[0] == "prlimit" and info_argv[-3:] == ("info", "--output=json", "/x")
    assert info_timeout == image_convert.INFO_TIMEOUT
    assert calls[1] == (("qemu-img", "convert", "-f", "vpc", "-O", "raw", "-S", "4k", "-n",
                         "/x", "/dev/vg/lv"), 5)


def test_timeout_surfaced():
    with pytest.raises(exception.ImageConversionFailed, match="did not finish within 0.2 s"):
        image_convert._run("sleep", "5", timeout=0.2)
