"""The chunk store interface and the chunk encoding every repository shares.

A chunk is named by the sha256 of its uncompressed bytes. It is stored as a 13-byte header
(magic, compression, uncompressed length) followed by the payload, so a repository can mix
compressions: a backup made with zlib restores after the default became zstd. A chunk that a
codec cannot shrink is stored raw (random data costs nothing to decompress then).

Reference counts say how many manifest slots point at a chunk. A backup takes a reference
before it checks whether the chunk exists, and a delete removes the chunk only when its count
reaches zero, both under the repository's lock: so a concurrent delete never removes a chunk
that a running backup has just decided to reuse."""

import hashlib
import re
import struct
import threading
import zlib

from oslo_config import cfg

from common import exception

chunkstore_opts = [
    cfg.StrOpt("backup_chunk_store", default="posix", choices=["posix", "rados"],
               help="Repository the backup service stores chunks and manifests in: a POSIX "
                    "directory (backup_posix_path) or a Ceph pool (backup_ceph_pool)."),
    cfg.StrOpt("backup_compression", default="zstd", choices=["zstd", "zlib", "none"],
               help="Compression of new chunks. Each chunk records its own, so changing this "
                    "never breaks the restore of older backups."),
    cfg.IntOpt("backup_compression_level", min=-7, max=22,
               help="Compression level; unset: the codec's default (zstd 3, zlib 6). zstd "
                    "levels above 3 cost much more CPU for a few percent."),
]

CONF = cfg.CONF
CONF.register_opts(chunkstore_opts, group="backup")

_HEADER = struct.Struct(">4sBQ")
_MAGIC = b"LMC1"
COMPRESSIONS = {"none": 0, "zlib": 1, "zstd": 2}
_COMPRESSION_NAMES = {v: k for k, v in COMPRESSIONS.items()}
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_BACKUP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
_SAMPLE = 16 * 1024


class CorruptChunk(exception.LaminaException):
    message = "Backup chunk %(digest)s is corrupt: %(reason)s"

    def __init__(self, digest, reason):
        self.digest = digest
        super().__init__(digest=digest, reason=reason)


class ChunkNotFound(CorruptChunk):
    """A manifest names a chunk the repository does not hold: as fatal as a corrupt one."""

    def __init__(self, digest):
        super().__init__(digest, "missing from the repository")


class ManifestNotFound(exception.LaminaException):
    code = 404
    fault = "itemNotFound"
    message = "Backup manifest %(backup_id)s not found (never completed, or deleted)."


class CorruptManifest(exception.LaminaException):
    message = "Backup manifest %(backup_id)s is unreadable: %(reason)s"


def check_digest(digest):
    """Digests become file and object names: refuse anything but 64 hex digits."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise exception.InvalidInput(reason="not a sha256 chunk digest: %r" % (digest,))
    return digest


def check_backup_id(backup_id):
    if not isinstance(backup_id, str) or not _BACKUP_ID_RE.match(backup_id):
        raise exception.InvalidInput(reason="not a usable backup id: %r" % (backup_id,))
    return backup_id


def digest_of(data):
    return hashlib.sha256(data).hexdigest()  # releases the GIL for buffers over 2 KiB


class Codec:
    """Encodes and decodes chunks. zstandard's (de)compressor objects must not be shared by
    threads running at once, so each thread gets its own."""

    def __init__(self, compression="zstd", level=None):
        if compression not in COMPRESSIONS:
            raise exception.InvalidInput(reason="unknown backup compression %r" % compression)
        self.compression = compression
        self.level = level
        self._local = threading.local()
        if compression == "zstd":
            _zstd()  # fail at start, clearly, when the package is missing

    def _compress(self, data):
        if self.compression == "zstd":
            compressor = getattr(self._local, "zstd_c", None)
            if compressor is None:
                level = 3 if self.level is None else self.level
                compressor = self._local.zstd_c = _zstd().ZstdCompressor(level=level)
            return compressor.compress(data)
        if self.compression == "zlib":
            return zlib.compress(data, 6 if self.level is None else max(0, min(self.level, 9)))
        return None

    def _looks_incompressible(self, data):
        """Compress three 16 KiB samples at the fastest level: random or already compressed
        data (most of a volume full of media or encrypted blocks) then skips the codec,
        which on such data costs seconds per GiB (zlib: ~20 MB/s a core) for nothing."""
        if len(data) < 4 * _SAMPLE:
            return False
        view = memoryview(data)
        middle = len(data) // 2
        samples = b"".join((view[:_SAMPLE], view[middle:middle + _SAMPLE], view[-_SAMPLE:]))
        if self.compression == "zstd":
            probe = getattr(self._local, "zstd_probe", None)
            if probe is None:
                probe = self._local.zstd_probe = _zstd().ZstdCompressor(level=1)
            packed = probe.compress(samples)
        else:
            packed = zlib.compress(samples, 1)
        return len(packed) >= 0.97 * len(samples)

    def encode(self, data):
        compression = self.compression
        if compression != "none" and self._looks_incompressible(data):
            return _HEADER.pack(_MAGIC, COMPRESSIONS["none"], len(data)) + data
        payload = self._compress(data)
        if payload is None or len(payload) >= len(data):
            payload, compression = data, "none"
        return _HEADER.pack(_MAGIC, COMPRESSIONS[compression], len(data)) + payload

    def decode(self, digest, blob):
        """The chunk's bytes, checked against its name: CorruptChunk on any mismatch."""
        if len(blob) < _HEADER.size:
            raise CorruptChunk(digest, "truncated header (%d bytes)" % len(blob))
        magic, compression_id, length = _HEADER.unpack_from(blob)
        if magic != _MAGIC:
            raise CorruptChunk(digest, "bad header magic %r" % magic)
        compression = _COMPRESSION_NAMES.get(compression_id)
        if compression is None:
            raise CorruptChunk(digest, "unknown compression id %d" % compression_id)
        payload = memoryview(blob)[_HEADER.size:]
        try:
            data = self._decompress(compression, payload, length)
        except CorruptChunk:
            raise
        except Exception as exc:  # zlib.error, zstd.ZstdError, MemoryError on a wild length
            raise CorruptChunk(digest, "%s payload does not decompress: %s" % (compression, exc))
        if len(data) != length:
            raise CorruptChunk(digest, "%d bytes after decompression, header says %d"
                               % (len(data), length))
        actual = digest_of(data)
        if actual != digest:
            raise CorruptChunk(digest, "content hashes to %s" % actual)
        return data

    def _decompress(self, compression, payload, length):
        if compression == "none":
            return bytes(payload)
        if compression == "zlib":
            decompressor = zlib.decompressobj()
            data = decompressor.decompress(payload, length + 1)
            if not decompressor.eof:
                raise ValueError("zlib stream incomplete")
            return data
        decompressor = getattr(self._local, "zstd_d", None)
        if decompressor is None:
            decompressor = self._local.zstd_d = _zstd().ZstdDecompressor()
        return decompressor.decompress(payload, max_output_size=length + 1)


def chunk_compression(blob):
    """Name of the compression a stored chunk uses (for tests and repository tools)."""
    return _COMPRESSION_NAMES.get(_HEADER.unpack_from(blob)[1])


def _zstd():
    try:
        import zstandard
    except ImportError as exc:
        raise exception.LaminaException("backup_compression = zstd needs the zstandard "
                                        "package (%s)" % exc)
    return zstandard


class ChunkStore:
    """A repository of chunks, their reference counts and backup manifests.

    Subclasses implement the storage primitives (`_read_chunk`, `_write_chunk`, `exists`,
    `delete`, `incref_many`, `decref_many`, the manifest calls); encoding and verification
    live here so every repository checks chunks the same way."""

    def __init__(self, compression=None, compression_level=None):
        conf = CONF.backup
        self.codec = Codec(compression or conf.backup_compression,
                           conf.backup_compression_level if compression_level is None
                           else compression_level)

    # --- chunks ------------------------------------------------------------------------------

    def put(self, data):
        """Store data; its sha256 digest. An existing chunk is not rewritten."""
        digest = digest_of(data)
        if not self.exists(digest):
            self.put_encoded(digest, self.codec.encode(data))
        return digest

    def put_encoded(self, digest, blob):
        """Store an already encoded chunk (the engine compresses in its own pool); returns
        the bytes written, 0 when the chunk was already there."""
        check_digest(digest)
        return self._write_chunk(digest, blob)

    def get(self, digest):
        """The chunk's bytes, verified: CorruptChunk (ChunkNotFound) when they are not."""
        return self.codec.decode(digest, self.get_encoded(digest))

    def get_encoded(self, digest):
        """The stored blob, unchecked (the engine decodes it in its own pool)."""
        check_digest(digest)
        blob = self._read_chunk(digest)
        if blob is None:
            raise ChunkNotFound(digest)
        return blob

    def exists(self, digest):
        raise NotImplementedError

    def delete(self, digest):
        """Remove a chunk and its count whatever the count is (repository repair)."""
        raise NotImplementedError

    def _read_chunk(self, digest):
        """The stored blob, None when there is no such chunk."""
        raise NotImplementedError

    def _write_chunk(self, digest, blob):
        raise NotImplementedError

    # --- reference counts --------------------------------------------------------------------

    def incref(self, digest, count=1):
        return self.incref_many({digest: count})[digest]

    def decref(self, digest, count=1):
        """Drop references; the chunk is removed when none is left. The new count."""
        return self.decref_many({digest: count})[digest]

    def incref_many(self, counts):
        """{digest: n} -> {digest: count after adding n}, atomically per chunk."""
        raise NotImplementedError

    def decref_many(self, counts):
        """{digest: n} -> {digest: count after}; chunks reaching 0 are deleted."""
        raise NotImplementedError

    def refcount(self, digest):
        raise NotImplementedError

    def sync(self):
        """Make every chunk and count written so far durable (before a manifest names them)."""

    def list_chunks(self):
        """Digests of every chunk (or count) the repository holds (repository checks)."""
        raise NotImplementedError

    def referenced_counts(self):
        """{digest: manifest slots naming it} over every complete manifest."""
        counts = {}
        for backup_id in self.list_manifests():
            try:
                manifest = self.get_manifest(backup_id)
            except ManifestNotFound:
                continue  # deleted while we listed
            for digest in manifest["chunks"]:
                if digest:
                    counts[digest] = counts.get(digest, 0) + 1
        return counts

    def recount_references(self):
        """Set every chunk's count to the manifest slots naming it and remove the chunks no
        manifest names: what a backup killed mid-way (references taken, no manifest written)
        leaked comes back. Only safe while no backup runs on the repository (a running one
        holds references no manifest shows yet): the backup service runs it at start,
        before it takes work. Returns (counts corrected, chunks removed)."""
        wanted = self.referenced_counts()
        fixed = removed = 0
        for digest in set(self.list_chunks()) | set(wanted):
            have = self.refcount(digest)
            want = wanted.get(digest, 0)
            if have < want:
                self.incref_many({digest: want - have})
                fixed += 1
            elif want == 0:
                self.delete(digest)
                removed += 1
            elif have > want:
                self.decref_many({digest: have - want})
                fixed += 1
        return fixed, removed

    # --- manifests ---------------------------------------------------------------------------

    def put_manifest(self, backup_id, manifest):
        """Write atomically: a reader sees the whole manifest or none."""
        raise NotImplementedError

    def get_manifest(self, backup_id):
        """The manifest dict; ManifestNotFound unless a complete one was written."""
        raise NotImplementedError

    def delete_manifest(self, backup_id):
        raise NotImplementedError

    def list_manifests(self):
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
