"""Opening a volume's data from its connection info, for every path inside Lamina that reads
or writes it: migration (volume_worker/flows/migrate_volume.py) and, with the backup issue,
backup and restore. A `local` connection is a file or block device path; an `rbd` one is a
librbd image (the rados/rbd bindings). An `iscsi` connection is for compute hosts: Lamina's
own services open volumes on their host (local) or in Ceph.

Each opened volume offers size(), read(offset, length), write(offset, data), flush(), close().
"""

import os

from common import exception

CHUNK = 4 * 1024 * 1024


class _LocalFile:
    def __init__(self, data, writable):
        self.fd = os.open(data["device_path"], os.O_RDWR if writable else os.O_RDONLY)

    def size(self):
        return os.fstat(self.fd).st_size

    def read(self, offset, length):
        return os.pread(self.fd, length, offset)

    def write(self, offset, data):
        os.pwrite(self.fd, data, offset)

    def flush(self):
        os.fsync(self.fd)

    def close(self):
        os.close(self.fd)


class _RBDImage:
    def __init__(self, data, writable):
        import rados
        import rbd

        conf = {"keyring": data["keyring"]} if data.get("keyring") else {}
        self.cluster = rados.Rados(conffile=data["conf"], rados_id=data["user"],
                                   clustername=data.get("cluster_name", "ceph"), conf=conf)
        self.cluster.connect(timeout=data.get("timeout", 10))
        try:
            self.ioctx = self.cluster.open_ioctx(data["pool"])
            self.image = rbd.Image(self.ioctx, data["image"], read_only=not writable)
        except Exception:
            self.cluster.shutdown()
            raise

    def size(self):
        return self.image.size()

    def read(self, offset, length):
        return self.image.read(offset, length)

    def write(self, offset, data):
        self.image.write(data, offset)

    def flush(self):
        self.image.flush()

    def close(self):
        self.image.close()
        self.ioctx.close()
        self.cluster.shutdown()


def open_connection(connection, writable):
    kind = connection.get("driver_volume_type")
    if kind == "local":
        return _LocalFile(connection["data"], writable)
    if kind == "rbd":
        return _RBDImage(connection["data"], writable)
    raise exception.DriverError(reason="cannot open a %s connection for copying" % kind)


def copy_volume(source_connection, target_connection, size_bytes):
    src = open_connection(source_connection, writable=False)
    try:
        dst = open_connection(target_connection, writable=True)
        try:
            offset = 0
            while offset < size_bytes:
                data = src.read(offset, min(CHUNK, size_bytes - offset))
                if not data:
                    break
                if data.count(0) != len(data):  # the fresh target reads zeros already
                    dst.write(offset, data)
                offset += len(data)
            dst.flush()
        finally:
            dst.close()
    finally:
        src.close()
