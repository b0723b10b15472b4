"""Opening a volume's data from its connection info, for every path inside Lamina that reads
or writes it: migration (volume_worker/flows/migrate_volume.py), backup and restore
(backup_worker/engine.py: its readers and writers are these opened volumes). A `local`
connection is a file or block device path on one host; an `rbd` one is a librbd image (the
rados/rbd bindings), optionally at one of its snapshots. An `iscsi` connection is for compute
hosts: Lamina's own services open volumes on their host (local) or in Ceph.

Connection data:
  local  device_path; host: the host the path is on (a volume service's [DEFAULT] host). On
         another host the path opens only where it is shared (the same machine, a shared
         file system); otherwise the open is refused naming the host that holds the data
         (the backup service of a file or lvm volume runs on its storage host). Connections
         without a host (made before hosts were named) open as local.
  rbd    pool, image, user, conf, keyring, cluster_name, timeout (to connect), op_timeout
         (of each operation); snapshot: open the image at that snapshot, read-only.

Each opened volume offers size(), read(offset, length) (exactly `length` bytes; past the end
reads as zeros), write(offset, data), punch_hole(offset, length) (the range reads as zeros
afterwards, deallocated where the storage can), allocated_ranges() ([(offset, length)] that
may hold data, or None when unknown), changed_ranges(since_snapshot) ([(offset, length)]
changed since that snapshot of the same image, or None when it cannot tell: local volumes
never can), flush() and close(); `with` closes it."""

import ctypes
import ctypes.util
import errno
import logging
import os
import socket
import stat

from oslo_config import cfg

from common import exception

LOG = logging.getLogger(__name__)
CHUNK = 4 * 1024 * 1024


def this_host():
    """This process's host name ([DEFAULT] host, registered by common.service)."""
    return cfg.CONF.host if "host" in cfg.CONF else socket.gethostname()


def local_connection(path, **extra):
    """The connection of a path on this host (what the drivers hand out)."""
    return {"driver_volume_type": "local",
            "data": dict(extra, device_path=path, host=this_host())}


# --- local files and block devices -----------------------------------------------------------

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_libc = None


def _fallocate(fd, mode, offset, length):
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    if _libc.fallocate(fd, mode, offset, length) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class LocalVolume:
    """A regular file or a block device on this host."""

    def __init__(self, path, writable):
        self.path = path
        self.writable = writable
        self._fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)
        mode = os.fstat(self._fd).st_mode
        self.is_block_device = stat.S_ISBLK(mode)
        self._can_punch = True

    def size(self):
        if self.is_block_device:  # st_size of a device node is 0
            return os.lseek(self._fd, 0, os.SEEK_END)
        return os.fstat(self._fd).st_size

    def read(self, offset, length):
        data = os.pread(self._fd, length, offset)
        if len(data) == length:
            return data
        pieces = [data]
        got = len(data)
        while got < length:
            piece = os.pread(self._fd, length - got, offset + got)
            if not piece:  # past the end: the rest reads as zeros
                pieces.append(bytes(length - got))
                break
            pieces.append(piece)
            got += len(piece)
        return b"".join(pieces)

    def write(self, offset, data):
        with memoryview(data) as view:
            written = 0
            while written < len(view):
                written += os.pwrite(self._fd, view[written:], offset + written)

    def allocated_ranges(self):
        """Data extents by SEEK_DATA/SEEK_HOLE; None where the file system has no such idea.
        (A block device reports itself all data: every chunk is read, zeros still become
        holes in a backup.)"""
        size = self.size()
        ranges = []
        offset = 0
        try:
            while offset < size:
                try:
                    start = os.lseek(self._fd, offset, os.SEEK_DATA)
                except OSError as exc:
                    if exc.errno == errno.ENXIO:  # only a hole remains
                        break
                    raise
                end = min(os.lseek(self._fd, start, os.SEEK_HOLE), size)
                if end > start:
                    ranges.append((start, end - start))
                offset = max(end, start + 1)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTTY):
                return None
            raise
        return ranges

    def changed_ranges(self, since):
        return None  # a file keeps no history: the backup engine compares block hashes

    def punch_hole(self, offset, length):
        length = min(length, self.size() - offset)
        if length <= 0:
            return
        if self._can_punch:
            try:
                _fallocate(self._fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset,
                           length)
                return
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    raise
                # e.g. a file system or an old kernel's block device without it: zeros
                LOG.debug("No hole punching on %s (%s): writing zeros", self.path, exc)
                self._can_punch = False
        _write_zeros(self, offset, length)

    def flush(self):
        os.fsync(self._fd)

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _write_zeros(volume, offset, length):
    zeros = bytes(min(length, CHUNK))
    end = offset + length
    while offset < end:
        piece = min(len(zeros), end - offset)
        volume.write(offset, zeros if piece == len(zeros) else zeros[:piece])
        offset += piece


def open_local(data, writable):
    host = data.get("host")
    path = data["device_path"]
    if host and host != this_host() and not os.path.exists(path):
        # Another host's path is usable only where the two share it (one machine, a shared
        # file system); elsewhere say where the data is rather than "no such file".
        raise exception.DriverError(
            reason="the local connection to %s is on host %s, and this is %s, which does not "
                   "see that path: a file or lvm volume can only be opened on its storage "
                   "host or where its directory is shared" % (path, host, this_host()))
    return LocalVolume(path, writable)


# --- rbd images ------------------------------------------------------------------------------

class RBDVolume:
    """An RBD image, at a snapshot (read-only) or its head. librbd releases the GIL in read
    and write, so threads sharing one opened image overlap their round trips to the OSDs."""

    def __init__(self, image, owned=None):
        self.image = image
        self._owned = owned  # (cluster, ioctx) this object opened, closed with it

    @classmethod
    def open(cls, data, writable):
        import rados
        import rbd

        snapshot = data.get("snapshot")
        if snapshot and writable:
            raise exception.DriverError(reason="RBD snapshot %s@%s is read-only"
                                        % (data.get("image"), snapshot))
        conf = {"keyring": data["keyring"]} if data.get("keyring") else {}
        if data.get("op_timeout"):
            # a cluster that stops answering fails the copy instead of hanging it for ever
            conf.update(rados_osd_op_timeout=str(data["op_timeout"]),
                        rados_mon_op_timeout=str(data["op_timeout"]))
        cluster = rados.Rados(conffile=data["conf"], rados_id=data["user"],
                              clustername=data.get("cluster_name", "ceph"), conf=conf)
        cluster.connect(timeout=data.get("timeout", 10))
        ioctx = None
        try:
            ioctx = cluster.open_ioctx(data["pool"])
            image = rbd.Image(ioctx, data["image"], snapshot=snapshot or None,
                              read_only=not writable)
        except Exception:
            if ioctx is not None:
                ioctx.close()
            cluster.shutdown()
            raise
        return cls(image, owned=(cluster, ioctx))

    @classmethod
    def of_image(cls, image):
        """An image the caller opened (and closes)."""
        return cls(image)

    def size(self):
        return self.image.size()

    def read(self, offset, length):
        data = self.image.read(offset, length)
        return data if len(data) == length else data + bytes(length - len(data))

    def write(self, offset, data):
        self.image.write(bytes(data), offset)

    def _extents(self, since, only_existing):
        ranges = []

        def collect(offset, length, exists):
            if exists or not only_existing:
                if ranges and ranges[-1][0] + ranges[-1][1] == offset:
                    ranges[-1] = (ranges[-1][0], ranges[-1][1] + length)
                else:
                    ranges.append((offset, length))
            return 0

        # whole_object: whole RADOS objects, from the object map when the image has one
        # (cheap), never finer than what a chunk of a backup is anyway
        self.image.diff_iterate(0, self.size(), since, collect, include_parent=True,
                                whole_object=True)
        return ranges

    def allocated_ranges(self):
        return self._extents(None, only_existing=True)

    def changed_ranges(self, since):
        if since is None:
            return None
        import rbd

        try:
            # discarded ranges (exists False) changed too: they are read again, as zeros
            return self._extents(since, only_existing=False)
        except (rbd.ImageNotFound, rbd.ObjectNotFound, rbd.InvalidArgument) as exc:
            # the snapshot is gone: the caller compares block hashes instead
            LOG.warning("No rbd diff from snapshot %s (%s)", since, exc)
            return None

    def punch_hole(self, offset, length):
        length = min(length, self.size() - offset)
        if length > 0:
            self.image.discard(offset, length)

    def flush(self):
        self.image.flush()

    def close(self):
        if self._owned is None:
            return
        cluster, ioctx = self._owned
        self._owned = None
        try:
            self.image.close()
            ioctx.close()
        finally:
            cluster.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def open_connection(connection, writable):
    kind = connection.get("driver_volume_type")
    if kind == "local":
        return open_local(connection["data"], writable)
    if kind == "rbd":
        return RBDVolume.open(connection["data"], writable)
    raise exception.DriverError(reason="cannot open a %s connection for copying" % kind)


def copy_volume(source_connection, target_connection, size_bytes):
    """Copy size_bytes of the source onto a fresh target (one that reads as zeros): only
    what the source's allocation map names is read, and zero blocks are not written."""
    src = open_connection(source_connection, writable=False)
    try:
        dst = open_connection(target_connection, writable=True)
        try:
            ranges = src.allocated_ranges()
            for start, length in ([(0, size_bytes)] if ranges is None else ranges):
                offset, end = start, min(start + length, size_bytes)
                while offset < end:
                    data = src.read(offset, min(CHUNK, end - offset))
                    if data.count(0) != len(data):
                        dst.write(offset, data)
                    offset += len(data)
            dst.flush()
        finally:
            dst.close()
    finally:
        src.close()
