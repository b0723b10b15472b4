"""The compute side of seed 001, as the tests play it: open what connection_info describes the
way a hypervisor does (qemu's iscsi, rbd or file block drivers, through qemu-io) and read and
write patterns through it.

    disk = compute_client.connect(connection_info, initiator="iqn.1994-05.com.example:c1")
    disk.write_pattern(0x5a, 0, 4 * MiB)
    assert disk.read_pattern(0x5a, 0, 4 * MiB)

Errors (a refused login, a missing image) raise ConnectError with qemu's message."""

import hashlib
import os
import subprocess

DEFAULT_INITIATOR = "iqn.1994-05.com.example:lamina-compute"
QEMU_TIMEOUT = 120
MiB = 1024 * 1024


class ConnectError(Exception):
    """qemu could not open or use the volume; the message is qemu's."""


def _qemu_io(open_args, command, secret_objects=()):
    argv = ["qemu-io"]
    for object_spec in secret_objects:
        argv += ["--object", object_spec]
    argv += list(open_args) + ["-c", command]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=QEMU_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise ConnectError("qemu-io %r timed out after %ss" % (command, exc.timeout))
    return result


def _opts(values):
    # --image-opts syntax: key=value pairs split by commas; a comma inside a value doubles.
    return ",".join("%s=%s" % (k, str(v).replace(",", ",,")) for k, v in values.items())


class Disk:
    """A volume opened by qemu as a raw disk."""

    def __init__(self, open_args, secret_objects=(), description=""):
        self.open_args = list(open_args)
        self.secret_objects = list(secret_objects)
        self.description = description

    def _run(self, command):
        result = _qemu_io(self.open_args, command, self.secret_objects)
        output = (result.stdout + result.stderr).strip()
        if result.returncode != 0 and "Pattern verification failed" not in output:
            raise ConnectError("%s: %s" % (self.description, output))
        return result, output

    def write_pattern(self, byte, offset, length):
        result, output = self._run("write -P 0x%02x %d %d" % (byte, offset, length))
        if result.returncode != 0 or "wrote %d/%d bytes" % (length, length) not in output:
            raise ConnectError("%s: write failed: %s" % (self.description, output))

    def read_pattern(self, byte, offset, length):
        """True when every byte of [offset, offset+length) is `byte`."""
        result, output = self._run("read -P 0x%02x %d %d" % (byte, offset, length))
        if "Pattern verification failed" in output:
            return False
        if "read %d/%d bytes" % (length, length) not in output:
            raise ConnectError("%s: read failed: %s" % (self.description, output))
        return True

    def checksum(self, length):
        """SHA-256 of the first `length` bytes (a whole number of MiB), read through qemu:
        qemu-img dd copies them out to a temporary file."""
        import tempfile

        if length % MiB:
            raise ValueError("checksum length must be a multiple of 1 MiB")
        with tempfile.TemporaryDirectory(prefix="lamina-compute-") as tmp:
            out = os.path.join(tmp, "data.raw")
            argv = ["qemu-img", "dd"]
            for object_spec in self.secret_objects:
                argv += ["--object", object_spec]
            if self.open_args[0] == "--image-opts":
                argv += ["--image-opts", "if=" + self.open_args[1]]
            else:
                argv += ["-f", "raw", "if=" + self.open_args[-1]]
            argv += ["-O", "raw", "bs=1M", "count=%d" % (length // MiB), "of=" + out]
            result = subprocess.run(argv, capture_output=True, text=True,
                                    timeout=QEMU_TIMEOUT)
            if result.returncode != 0:
                raise ConnectError("%s: %s" % (self.description,
                                               (result.stdout + result.stderr).strip()))
            digest = hashlib.sha256()
            with open(out, "rb") as f:
                for chunk in iter(lambda: f.read(MiB), b""):
                    digest.update(chunk)
            return digest.hexdigest()


def connect(connection_info, initiator=None):
    """A Disk for what connection_info ({"driver_volume_type", "data"}) describes."""
    kind = connection_info.get("driver_volume_type")
    data = connection_info.get("data") or {}
    if kind == "iscsi":
        return _iscsi(data, initiator or DEFAULT_INITIATOR)
    if kind == "rbd":
        return _rbd(data)
    if kind == "local":
        path = data["device_path"]
        if not os.path.exists(path):
            raise ConnectError("local volume %s does not exist" % path)
        return Disk(["-f", "raw", path], description="local %s" % path)
    raise ConnectError("unknown driver_volume_type %r" % kind)


def _iscsi(data, initiator):
    # The secret goes in a qemu secret object, not the URL (as libvirt configures qemu).
    options = {"driver": "iscsi", "transport": "tcp", "portal": data["target_portal"],
               "target": data["target_iqn"], "lun": data.get("target_lun", 0),
               "initiator-name": initiator}
    secrets = []
    if data.get("auth_method") == "CHAP" and data.get("auth_username") is not None:
        options["user"] = data["auth_username"]
        options["password-secret"] = "sec0"
        secrets.append("secret,id=sec0,data=%s" % data.get("auth_password", ""))
    return Disk(["--image-opts", _opts(options)], secrets,
                description="iscsi %s/%s as %s" % (data["target_portal"],
                                                  data["target_iqn"], initiator))


def _rbd(data):
    # The test Ceph of tests/integration/ceph.py: its conf and the keyring of the user the
    # connection data names (a real compute host has both from its own configuration; the
    # connection data carries only the monitors and the user).
    from tests.integration import ceph

    user = data.get("auth_username") or ceph.USER
    hosts = "\\;".join("%s\\:%s" % (h, p) for h, p in zip(data.get("hosts", []),
                                                             data.get("ports", [])))
    filename = "rbd:%s:id=%s:conf=%s:keyring=%s" % (data["name"], user, ceph.CONF,
                                                   ceph.KEYRING)
    if hosts:
        filename += ":mon_host=" + hosts
    return Disk(["-f", "raw", filename], description="rbd %s" % data["name"])
