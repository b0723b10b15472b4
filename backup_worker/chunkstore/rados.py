"""A chunk repository in a Ceph pool (default `backups`), through the rados Python bindings.

Objects:
  chunk.<digest>         the encoded chunk; its omap key `refs` is its reference count
  manifest.<backup_id>   the manifest JSON; readable only once its `complete` xattr is set

A count changes with the OSD class `numops` (`add`, one atomic omap update on the OSD, the
object created in the same operation when missing). A chunk whose count reaches zero is
removed by one compound operation guarded by `omap_cmp` on the count it read: if another
backup took a reference in between, the guard fails and the chunk stays. A manifest is
written whole and then marked `complete` with its length, so a write cut short (or a
manifest being replaced) is never read as complete.

Not run on the development machine when this was written (its Ceph was busy with another
run): tests/integration/test_backup_rados.py covers it against a real cluster."""

import concurrent.futures
import errno
import json
import logging
import struct

from oslo_config import cfg

from backup_worker.chunkstore import base
from common import exception

LOG = logging.getLogger(__name__)

rados_opts = [
    cfg.StrOpt("backup_ceph_pool", default="backups",
               help="Ceph pool of the RADOS backup repository."),
    cfg.StrOpt("backup_ceph_user", default="lamina", help="Cephx user (without `client.`)."),
    cfg.StrOpt("backup_ceph_keyring",
               help="Keyring of backup_ceph_user; default: what backup_ceph_conf names."),
    cfg.StrOpt("backup_ceph_conf", default="/etc/ceph/ceph.conf",
               help="Ceph configuration file (monitors, cluster fsid)."),
    cfg.StrOpt("backup_ceph_cluster_name", default="ceph", help="Ceph cluster name."),
    cfg.IntOpt("backup_rados_connect_timeout", default=5, min=1,
               help="Seconds to wait for the Ceph monitors when connecting."),
    cfg.IntOpt("backup_rados_op_timeout", default=30, min=1,
               help="Seconds one Ceph operation may take before it fails (instead of hanging "
                    "while the cluster is unreachable)."),
]

CONF = cfg.CONF
CONF.register_opts(rados_opts, group="backup")

REFS_KEY = "refs"
COMPLETE_XATTR = "complete"
_PARALLEL_OPS = 16  # reference count updates in flight at once
_MANIFEST_PIECE = 32 * 1024 * 1024  # under the OSDs' default osd_max_write_size (90 MiB)


def _import_rados():
    try:
        import rados
    except ImportError as exc:
        raise exception.LaminaException(
            "the rados Python bindings are not importable (%s); install Debian's python3-rados "
            "and link it into the venv (deploy/ceph/ceph-aio.sh pybind)" % exc)
    return rados


def _ceph_string(value):
    """Ceph's encoding of a std::string: little-endian u32 length, then the bytes."""
    data = value.encode()
    return struct.pack("<I", len(data)) + data


class RadosChunkStore(base.ChunkStore):
    def __init__(self, pool=None, compression=None, compression_level=None, client=None,
                 namespace=None):
        """`client`: a connected rados.Rados to use (else one is made from [backup]);
        `namespace`: a RADOS namespace inside the pool (separate repositories, tests)."""
        super().__init__(compression, compression_level)
        self._rados = _import_rados()
        conf = CONF.backup
        self.pool = pool or conf.backup_ceph_pool
        self._own_client = client is None
        self._client = client if client is not None else self._connect()
        try:
            self._ioctx = self._client.open_ioctx(self.pool)
            if namespace:
                self._ioctx.set_namespace(namespace)
        except Exception as exc:
            self.close()
            raise exception.LaminaException("cannot open Ceph pool %s: %s" % (self.pool, exc))

    def _connect(self):
        conf = CONF.backup
        options = {"rados_osd_op_timeout": str(conf.backup_rados_op_timeout),
                   "rados_mon_op_timeout": str(conf.backup_rados_op_timeout),
                   "client_mount_timeout": str(conf.backup_rados_connect_timeout)}
        if conf.backup_ceph_keyring:
            options["keyring"] = conf.backup_ceph_keyring
        client = self._rados.Rados(conffile=conf.backup_ceph_conf, rados_id=conf.backup_ceph_user,
                                   clustername=conf.backup_ceph_cluster_name, conf=options)
        try:
            client.connect(timeout=conf.backup_rados_connect_timeout)
        except Exception as exc:
            client.shutdown()
            raise exception.LaminaException("cannot connect to Ceph cluster %s as %s: %s"
                                            % (conf.backup_ceph_cluster_name,
                                               conf.backup_ceph_user, exc))
        return client

    @staticmethod
    def chunk_object(digest):
        return "chunk." + base.check_digest(digest)

    @staticmethod
    def manifest_object(backup_id):
        return "manifest." + base.check_backup_id(backup_id)

    def _size(self, oid):
        try:
            size, _mtime = self._ioctx.stat(oid)
        except self._rados.ObjectNotFound:
            return None
        return size

    # --- chunks ------------------------------------------------------------------------------

    def exists(self, digest):
        # an object that only holds a count (incref made it, no data written yet) is no chunk
        return bool(self._size(self.chunk_object(digest)))

    def _read_chunk(self, digest):
        oid = self.chunk_object(digest)
        size = self._size(oid)
        if not size:
            return None
        try:
            return self._ioctx.read(oid, size, 0)
        except self._rados.ObjectNotFound:
            return None

    def _write_chunk(self, digest, blob):
        oid = self.chunk_object(digest)
        if self._size(oid):
            return 0
        self._ioctx.write_full(oid, bytes(blob))  # the omap (its count) is left as it is
        return len(blob)

    def delete(self, digest):
        try:
            self._ioctx.remove_object(self.chunk_object(digest))
        except self._rados.ObjectNotFound:
            pass

    # --- reference counts --------------------------------------------------------------------

    def _add(self, oid, n):
        op = self._ioctx.create_write_op()
        try:
            op.new(self._rados.LIBRADOS_CREATE_IDEMPOTENT)
            op.execute("numops", "add", _ceph_string(REFS_KEY) + _ceph_string(str(n)))
            self._ioctx.operate_write_op(op, oid)
        finally:
            self._ioctx.release_write_op(op)

    def _read_count(self, oid):
        """(count, the raw omap value) ; (0, None) when there is no count."""
        op = self._ioctx.create_read_op()
        try:
            values, _ret = self._ioctx.get_omap_vals_by_keys(op, (REFS_KEY,))
            try:
                self._ioctx.operate_read_op(op, oid)
            except self._rados.ObjectNotFound:
                return 0, None
            raw = dict(values).get(REFS_KEY)
        finally:
            self._ioctx.release_read_op(op)
        if raw is None:
            return 0, None
        text = raw.decode() if isinstance(raw, bytes) else raw
        return int(float(text)), text

    def _each(self, function, counts):
        """function(digest, n) for every entry; many at once, since each is two round trips
        to an OSD (an incremental of a 10 GiB image references some 2,500 chunks) and
        librados releases the GIL while it waits."""
        if len(counts) <= 1:
            return {digest: function(digest, n) for digest, n in counts.items()}
        with concurrent.futures.ThreadPoolExecutor(min(_PARALLEL_OPS, len(counts))) as pool:
            futures = {digest: pool.submit(function, digest, n) for digest, n in counts.items()}
            return {digest: future.result() for digest, future in futures.items()}

    def _incref_one(self, digest, n):
        oid = self.chunk_object(digest)
        self._add(oid, n)
        return self._read_count(oid)[0]

    def _decref_one(self, digest, n):
        oid = self.chunk_object(digest)
        self._add(oid, -n)
        left, raw = self._read_count(oid)
        if left <= 0:
            self._remove_if_count(oid, raw)
            left = 0
        return left

    def incref_many(self, counts):
        return self._each(self._incref_one, counts)

    def decref_many(self, counts):
        return self._each(self._decref_one, counts)

    def _remove_if_count(self, oid, raw):
        """Remove the chunk only if its count is still what we read (zero)."""
        op = self._ioctx.create_write_op()
        try:
            if raw is not None:
                op.omap_cmp(REFS_KEY, raw, self._rados.LIBRADOS_CMPXATTR_OP_EQ)
            op.remove()
            self._ioctx.operate_write_op(op, oid)
        except self._rados.ObjectNotFound:
            pass  # a racing decref removed it
        except self._rados.Error as exc:
            if getattr(exc, "errno", None) not in (errno.ECANCELED, -errno.ECANCELED):
                raise
            LOG.debug("chunk %s was referenced again before its removal", oid)
        finally:
            self._ioctx.release_write_op(op)

    def refcount(self, digest):
        return self._read_count(self.chunk_object(digest))[0]

    def list_chunks(self):
        return sorted(obj.key[len("chunk."):] for obj in self._ioctx.list_objects()
                      if obj.key.startswith("chunk."))

    # --- manifests ---------------------------------------------------------------------------

    def put_manifest(self, backup_id, manifest):
        oid = self.manifest_object(backup_id)
        data = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
        try:
            self._ioctx.rm_xattr(oid, COMPLETE_XATTR)  # a replaced manifest: unreadable first
        except (self._rados.ObjectNotFound, self._rados.NoData):
            pass
        self._ioctx.write_full(oid, data[:_MANIFEST_PIECE])
        for offset in range(_MANIFEST_PIECE, len(data), _MANIFEST_PIECE):
            self._ioctx.write(oid, data[offset:offset + _MANIFEST_PIECE], offset)
        self._ioctx.set_xattr(oid, COMPLETE_XATTR, str(len(data)).encode())

    def get_manifest(self, backup_id):
        oid = self.manifest_object(backup_id)
        try:
            complete = self._ioctx.get_xattr(oid, COMPLETE_XATTR)
        except (self._rados.ObjectNotFound, self._rados.NoData):
            raise base.ManifestNotFound(backup_id=backup_id)
        length = int(complete)
        data = self._ioctx.read(oid, length, 0) if length else b""
        if len(data) != length:
            raise base.CorruptManifest(backup_id=backup_id,
                                       reason="%d bytes, %d expected" % (len(data), length))
        try:
            return json.loads(data)
        except ValueError as exc:
            raise base.CorruptManifest(backup_id=backup_id, reason=str(exc))

    def delete_manifest(self, backup_id):
        try:
            self._ioctx.remove_object(self.manifest_object(backup_id))
        except self._rados.ObjectNotFound:
            raise base.ManifestNotFound(backup_id=backup_id)

    def list_manifests(self):
        names = []
        for obj in self._ioctx.list_objects():
            if obj.key.startswith("manifest."):
                backup_id = obj.key[len("manifest."):]
                try:
                    self._ioctx.get_xattr(obj.key, COMPLETE_XATTR)
                except (self._rados.ObjectNotFound, self._rados.NoData):
                    continue
                names.append(backup_id)
        return sorted(names)

    def close(self):
        ioctx = getattr(self, "_ioctx", None)
        if ioctx is not None:
            ioctx.close()
            self._ioctx = None
        if self._own_client and self._client is not None:
            self._client.shutdown()
        self._client = None
