"""Inspecting and converting disk images with qemu-img, for volumes made from images (and,
later, volumes uploaded as images).

An image is data a user chose, so it is never trusted: `info` runs ``qemu-img info`` under
CPU and memory limits (a crafted header must not exhaust the host), and refuses what could
make qemu-img read other files of the host than the image itself: a backing file, a qcow2
external data file, a vmdk whose extents live elsewhere; it refuses a format outside
``allowed_image_formats``; and it refuses an image whose detected format differs from the one
its owner claimed (Cinder's rule: a qcow2 uploaded as ``raw`` would otherwise be written
as-is into a volume, and a guest booting it would follow its backing file on the host).
`convert` always names the source format (qemu-img never probes the data) and writes raw,
sparse where the target allows it.

Format names are Glance's ``disk_format`` (``vhd`` is qemu-img's ``vpc``; ``iso``, ``ami``,
``aki``, ``ari`` are raw data to qemu-img). Every command goes through
``execute(*argv, timeout=...) -> stdout`` (injectable, as in the LVM driver), which raises
ImageConversionFailed with the command's stderr."""

import json
import logging
import os
import subprocess
import tempfile

from oslo_config import cfg

from common import exception

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

image_convert_opts = [
    cfg.ListOpt("allowed_image_formats",
                default=["raw", "qcow2", "vmdk", "vdi", "vpc", "vhdx"],
                help="Image formats (qemu-img's names: vpc is Glance's vhd) that volumes may "
                     "be made from. An image of any other format, as qemu-img detects it, is "
                     "refused."),
    cfg.StrOpt("image_conversion_dir",
               help="Directory for the temporary files of image conversions (an image "
                    "downloaded before qemu-img converts it into a volume, a volume "
                    "converted before its upload to the image service). It needs room for "
                    "the largest image converted at once. Default: the system's temporary "
                    "directory."),
    cfg.IntOpt("image_conversion_timeout", default=3600, min=1,
               help="Seconds a qemu-img convert of an image into a volume may take before "
                    "it is killed and the conversion fails."),
]
CONF.register_opts(image_convert_opts)

# qemu-img info reads only headers: these bound what a crafted header can make it consume
INFO_CPU_SECONDS = 30
INFO_ADDRESS_SPACE = 1024 * 1024 * 1024
INFO_TIMEOUT = 60

# Glance disk_format -> the format qemu-img detects for such data
_QEMU_FORMAT = {"vhd": "vpc", "iso": "raw", "ami": "raw", "aki": "raw", "ari": "raw"}
# vmdk create types whose data is all inside the one file
_VMDK_SELF_CONTAINED = ("monolithicSparse", "streamOptimized")


def conversion_dir():
    """Where temporary image files go (created when missing)."""
    path = CONF.image_conversion_dir or tempfile.gettempdir()
    os.makedirs(path, exist_ok=True)
    return path


def qemu_format(disk_format):
    """qemu-img's name for a Glance disk_format."""
    disk_format = (disk_format or "").lower()
    return _QEMU_FORMAT.get(disk_format, disk_format)


def _run(*argv, timeout=None):
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise exception.ImageConversionFailed(
            reason="%s did not finish within %s s" % (" ".join(argv), timeout))
    except OSError as exc:
        raise exception.ImageConversionFailed(reason="%s failed: %s" % (" ".join(argv), exc))
    if result.returncode != 0:
        message = " ".join(line.strip() for line in (result.stderr or result.stdout).splitlines()
                           if line.strip())
        raise exception.ImageConversionFailed(reason="%s failed (exit %d): %s" % (
            " ".join(argv), result.returncode, message or "no output"))
    return result.stdout


def _refuse(image_id, reason):
    raise exception.ImageUnacceptable(image_id=image_id, reason=reason)


def info(path, disk_format=None, image_id=None, allowed_formats=None, execute=None):
    """qemu-img's description of the image at path (its --output=json dict: format,
    virtual-size, actual-size, ...), after the checks above. disk_format: what the image's
    owner claimed it is (Glance's name); None checks only the allowed formats. image_id names
    the image in errors (default: the path)."""
    execute = execute or _run
    image_id = image_id or path
    out = execute("prlimit", "--cpu=%d" % INFO_CPU_SECONDS, "--as=%d" % INFO_ADDRESS_SPACE,
                  "--", "qemu-img", "info", "--output=json", path, timeout=INFO_TIMEOUT)
    try:
        data = json.loads(out)
    except ValueError:
        raise exception.ImageConversionFailed(
            reason="qemu-img info %s answered no JSON: %r" % (path, out[:200]))
    detected = data.get("format")
    if data.get("backing-filename") or data.get("full-backing-filename"):
        _refuse(image_id, "it has a backing file (%s)" % data.get("backing-filename"))
    specific = (data.get("format-specific") or {}).get("data") or {}
    if specific.get("data-file"):
        _refuse(image_id, "it has an external data file (%s)" % specific["data-file"])
    if detected == "vmdk":
        create_type = specific.get("create-type")
        if create_type not in _VMDK_SELF_CONTAINED:
            _refuse(image_id, "vmdk create type %s is not one of %s"
                    % (create_type, ", ".join(_VMDK_SELF_CONTAINED)))
        own = os.path.basename(path)
        for extent in specific.get("extents") or []:
            if os.path.basename(extent.get("filename") or own) != own:
                _refuse(image_id, "its vmdk extent %s is another file" % extent["filename"])
    allowed = [qemu_format(f) for f in
               (allowed_formats if allowed_formats is not None
                else CONF.allowed_image_formats)]
    if detected not in allowed:
        _refuse(image_id, "its format %s is not allowed (allowed: %s)"
                % (detected, ", ".join(allowed)))
    if disk_format is not None and qemu_format(disk_format) != detected:
        _refuse(image_id, "it claims disk_format %s but its data is %s"
                % (disk_format, detected))
    return data


def convert(src, dst, src_format, dst_format="raw", target_exists=False, target_is_zero=False,
            timeout=None, execute=None):
    """Write the image at src (src_format, Glance's or qemu-img's name) into dst as dst_format.

    dst is a new file unless target_exists (a volume's block device or file, written in place
    with ``-n``: qemu-img neither creates nor resizes it). Zero runs of 4 KiB and more are
    not written as data (``-S 4k``): a new file gets holes; an existing target gets them
    zeroed (write-zeroes, or discard where that reads back zeros) unless the caller knows it
    already reads as zeros (target_is_zero: a fresh sparse file or thin volume), when they
    are skipped altogether."""
    execute = execute or _run
    argv = ["qemu-img", "convert", "-f", qemu_format(src_format), "-O", qemu_format(dst_format),
            "-S", "4k"]
    if target_exists:
        argv.append("-n")
        if target_is_zero:
            argv.append("--target-is-zero")
    argv += [src, dst]
    LOG.debug("Converting %s (%s) to %s (%s)", src, src_format, dst, dst_format)
    execute(*argv, timeout=timeout or CONF.image_conversion_timeout)
