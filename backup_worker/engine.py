"""Backup and restore of a volume's data into a chunk store.

A volume is cut into fixed-size chunks (`backup_chunk_size`). A backup's manifest lists every
chunk of the volume: the digest of a stored chunk, or None for a hole (all zeros or never
allocated), so each backup restores on its own whatever happens to its parent. A manifest
slot holds one reference on its chunk; deleting a backup drops them and the store removes the
chunks nobody references any more, so any backup of a chain can be deleted.

Incremental backups, given the parent's manifest:
- with `changed_ranges` (rbd diff between the parent's snapshot and this one), only the
  chunks that changed are read; the others are the parent's entries;
- without it (files, block devices), every allocated chunk is read and hashed, and only the
  chunks whose digest the repository does not hold yet (in particular: that differ from the
  parent's) are compressed and written.

The work runs as a pipeline: reads on an I/O pool, hashing and compression on a CPU pool
(hashlib, zlib and zstandard release the GIL, so the pool uses every core), writes on an I/O
pool, with at most a few chunks per worker in flight, so memory stays bounded whatever the
volume size.

Volume data goes through a reader and a writer (the interface below) over a volume that
common/connector.py opens, the one connector layer of Lamina (ConnectorReader,
ConnectorWriter): files and block devices with SEEK_DATA/SEEK_HOLE and hole punching, RBD
images with diff_iterate and discard. FileReader/FileWriter (a path) and RBDReader/RBDWriter
(an open rbd.Image) are the same adapters opened for the caller."""

import collections
import concurrent.futures
import dataclasses
import errno
import logging
import mmap
import os
import threading
import time

from oslo_config import cfg

from backup_worker.chunkstore import base as chunk_base
from common import connector, exception

LOG = logging.getLogger(__name__)
MiB = 1024 * 1024

engine_opts = [
    cfg.IntOpt("backup_chunk_size", default=4 * MiB, min=64 * 1024,
               help="Bytes of volume data per chunk. Incremental backups keep their parent's "
                    "chunk size. Smaller chunks make incrementals finer and manifests larger."),
    cfg.IntOpt("backup_workers", default=0, min=0,
               help="Threads in each of the read, compress and store-lookup pools of one "
                    "backup or restore, twice as many in its write pool (0: one per core). "
                    "At most eight chunks per worker are in memory at once."),
    cfg.BoolOpt("backup_direct_io", default=True,
                help="Read local volumes (files, block devices) with O_DIRECT, past the page "
                     "cache, where the file system allows it: a backup reads each block once, "
                     "and through the cache that costs about as much CPU as hashing it, and "
                     "evicts what the host had cached."),
    cfg.IntOpt("backup_progress_chunks", default=32, min=1,
               help="Report a backup's or restore's progress at most once per this many "
                    "chunks (and at the end)."),
]

CONF = cfg.CONF
CONF.register_opts(engine_opts, group="backup")

MANIFEST_FORMAT = 1
_DIRECT_ALIGN = 4096  # O_DIRECT offsets and lengths: a multiple of any logical block size


class RestoreTargetTooSmall(exception.InvalidVolume):
    message = "Invalid volume: the backup holds %(backup_size)d bytes, the target only %(size)d."


# --- volume access ---------------------------------------------------------------------------

class VolumeReader:
    """What a backup reads. `size` in bytes; `read` returns exactly `length` bytes."""

    size = 0

    def read(self, offset, length):
        raise NotImplementedError

    def read_into(self, offset, buffer, length):
        """Put the `length` bytes at `offset` at the start of `buffer` (writable, page
        aligned, at least `length` long; the rest of it may be overwritten). The engine
        reads into buffers it reuses, so a reader that can fill them directly saves a copy
        and an allocation per chunk. This default copies what read() returns."""
        with memoryview(buffer) as view:
            view[:length] = self.read(offset, length)

    def allocated_ranges(self):
        """[(offset, length)] holding data, or None when unknown (everything is read)."""
        return None

    def changed_ranges(self, since):
        """[(offset, length)] changed since the point `since` names (a snapshot), or None
        when this reader cannot tell (the engine then compares block hashes)."""
        return None

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class VolumeWriter:
    """What a restore writes. `fresh`: the target is known to read as zeros (a new sparse
    file, a new image), so holes need no work."""

    size = 0
    fresh = False

    def write(self, offset, data):
        raise NotImplementedError

    def punch_hole(self, offset, length):
        """Make the range read as zeros, deallocated where the target can."""
        raise NotImplementedError

    def flush(self):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class ConnectorReader(VolumeReader):
    """A volume opened by common.connector.open_connection: every back end a backup reads
    goes through the connector layer. Its allocation map (SEEK_DATA/SEEK_HOLE of a file, the
    rbd object map) decides which chunks are read, and an rbd image at a snapshot tells what
    changed since an older snapshot (diff_iterate); an opened volume without these (None)
    has every chunk read and incrementals compare block hashes."""

    def __init__(self, opened):
        self.opened = opened
        self.size = opened.size()
        self._fd = self._direct_fd = None
        self._refused_fds = []
        if isinstance(opened, connector.LocalVolume):
            self._open_local(opened.path)

    def read(self, offset, length):
        data = self.opened.read(offset, length)
        return data if len(data) == length else data + bytes(length - len(data))

    def _open_local(self, path):
        """Descriptors of our own on a local file or device, for preadv into the engine's
        buffers: one with O_DIRECT where the file system takes it (backup_direct_io), which
        costs next to no CPU (the device writes into the buffer; through the page cache,
        every byte is copied once more and every page allocated, charged and reclaimed,
        several CPU-seconds per 4 GiB, as much as the hashing), and a buffered one for what
        O_DIRECT refuses (an unaligned offset or length)."""
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            LOG.debug("Reading %s through its connection (%s)", path, exc)
            return
        os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)  # read once, in order
        if CONF.backup.backup_direct_io and hasattr(os, "O_DIRECT"):
            try:
                self._direct_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECT)
            except OSError as exc:  # e.g. tmpfs, some FUSE file systems
                LOG.debug("No O_DIRECT on %s (%s): reading through the page cache", path, exc)

    def read_into(self, offset, buffer, length):
        # a subclass that wraps read() (fault injection, accounting) keeps seeing every read
        if self._fd is None or type(self).read is not ConnectorReader.read:
            return super().read_into(offset, buffer, length)
        with memoryview(buffer) as view:
            got = 0
            if self._direct_fd is not None and offset % _DIRECT_ALIGN == 0:
                got = self._read_direct(view, offset, length)
            while got < length:
                n = os.preadv(self._fd, [view[got:length]], offset + got)
                if n == 0:  # past the end: the rest reads as zeros
                    view[got:length] = bytes(length - got)
                    break
                got += n
        return None

    def _read_direct(self, view, offset, length):
        """Bytes read with O_DIRECT into view (from its start), which may stop short of
        `length` where an aligned read cannot go on: the buffered descriptor reads the rest."""
        want = min(-(-length // _DIRECT_ALIGN) * _DIRECT_ALIGN, len(view))
        want -= want % _DIRECT_ALIGN
        got = 0
        try:
            while got < want:
                n = os.preadv(self._direct_fd, [view[got:want]], offset + got)
                got += n
                if n == 0 or n % _DIRECT_ALIGN:  # the end of the file, or a short read
                    break
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            # the buffer's address or the device's block size does not suit O_DIRECT; the
            # descriptor stays open until close(), another thread may be reading with it
            LOG.debug("O_DIRECT read refused on %s (%s): reading through the page cache",
                      self.opened.path, exc)
            self._direct_fd, fd = None, self._direct_fd
            self._refused_fds.append(fd)
            return 0
        return got

    def allocated_ranges(self):
        ranges = getattr(self.opened, "allocated_ranges", None)
        return ranges() if ranges is not None else None

    def changed_ranges(self, since):
        changed = getattr(self.opened, "changed_ranges", None)
        if since is None or changed is None:
            return None
        return changed(since)

    def close(self):
        for fd in (self._fd, self._direct_fd, *self._refused_fds):
            if fd is not None:
                os.close(fd)
        self._fd = self._direct_fd = None
        self._refused_fds = []
        self.opened.close()


class ConnectorWriter(VolumeWriter):
    """A volume opened writable by common.connector. Holes are punched (fallocate on a file,
    discard on rbd), or written as zeros where the opened volume cannot; none of it when the
    target is `fresh` (a new volume reads as zeros)."""

    def __init__(self, opened, fresh=False):
        self.opened = opened
        self.size = opened.size()
        self.fresh = fresh

    def write(self, offset, data):
        self.opened.write(offset, data)

    def punch_hole(self, offset, length):
        length = min(length, self.size - offset)
        if length <= 0:
            return
        punch = getattr(self.opened, "punch_hole", None)
        if punch is not None:
            punch(offset, length)
            return
        zeros = bytes(min(length, 4 * MiB))
        end = offset + length
        while offset < end:
            piece = min(len(zeros), end - offset)
            self.opened.write(offset, zeros if piece == len(zeros) else zeros[:piece])
            offset += piece

    def flush(self):
        self.opened.flush()

    def close(self):
        self.opened.close()


class FileReader(ConnectorReader):
    """A regular file or a block device of this host, by path (a local connection)."""

    def __init__(self, path):
        self.path = path
        super().__init__(connector.LocalVolume(path, writable=False))


class FileWriter(ConnectorWriter):
    """An existing file or block device (`FileWriter(path)`), or a new sparse file of a
    given size (`FileWriter.create(path, size)`)."""

    def __init__(self, path, fresh=False):
        self.path = path
        super().__init__(connector.LocalVolume(path, writable=True), fresh=fresh)

    @classmethod
    def create(cls, path, size):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
        return cls(path, fresh=True)


class RBDReader(ConnectorReader):
    """An open rbd.Image (at the snapshot being backed up) that the caller closes."""

    def __init__(self, image):
        self.image = image
        super().__init__(connector.RBDVolume.of_image(image))


class RBDWriter(ConnectorWriter):
    """An open rbd.Image (its head) that the caller closes."""

    def __init__(self, image, fresh=False):
        self.image = image
        super().__init__(connector.RBDVolume.of_image(image), fresh=fresh)


# --- the engine ------------------------------------------------------------------------------

@dataclasses.dataclass
class Stats:
    chunks: int = 0          # slots in the manifest
    holes: int = 0           # zero or unallocated chunks (not stored)
    read: int = 0            # chunks read from the volume (backup) or the store (restore)
    new: int = 0             # chunks this backup compressed and wrote
    reused: int = 0          # chunks the repository already held (parent's or duplicates)
    bytes_read: int = 0
    bytes_stored: int = 0    # encoded bytes written to the store
    seconds: float = 0.0

    def as_dict(self):
        return dataclasses.asdict(self)


class _Progress:
    """Calls callback(percent) at most once per `every` chunks, in increasing order."""

    def __init__(self, total, every, callback):
        self.total = max(total, 1)
        self.every = every
        self.callback = callback
        self._done = 0
        self._last = 0
        self._reported = -1.0
        self._lock = threading.Lock()
        self._report_lock = threading.Lock()

    def step(self, count=1):
        if self.callback is None:
            return
        with self._lock:
            self._done += count
            if self._done - self._last < self.every and self._done < self.total:
                return
            self._last = self._done
            percent = round(100.0 * self._done / self.total, 1)
        self._report(percent)

    def finish(self):
        if self.callback is not None:
            self._report(100.0)

    def _report(self, percent):
        with self._report_lock:
            if percent > self._reported:
                self._reported = percent
                self.callback(percent)


class _Pipeline:
    """Items go through stages, each stage on its own thread pool; a stage returns the next
    stage's input, or None when the item is done. At most `depth` items are in flight, so a
    fast reader cannot fill memory ahead of a slow store. The first error stops the feeding;
    items in flight drain without further work and join() raises it."""

    def __init__(self, stages, depth):
        self._stages = stages
        self._slots = threading.Semaphore(depth)
        self._cond = threading.Condition()
        self._in_flight = 0
        self.error = None

    def submit(self, item):
        self._slots.acquire()
        if self.error is not None:
            self._slots.release()
            raise self.error
        with self._cond:
            self._in_flight += 1
        self._schedule(0, item)

    def _schedule(self, index, item):
        try:
            self._stages[index][0].submit(self._run, index, item)
        except BaseException as exc:  # a pool shut down under us
            self._fail(exc)
            self._done()

    def _run(self, index, item):
        result = None
        if self.error is None:
            try:
                result = self._stages[index][1](item)
            except BaseException as exc:
                self._fail(exc)
        if result is not None and self.error is None and index + 1 < len(self._stages):
            self._schedule(index + 1, result)
        else:
            self._done()

    def _fail(self, exc):
        with self._cond:
            if self.error is None:
                self.error = exc

    def _done(self):
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()
        self._slots.release()

    def join(self):
        with self._cond:
            self._cond.wait_for(lambda: self._in_flight == 0)
        if self.error is not None:
            raise self.error


class _Pools:
    """The read, cpu, write and store-lookup pools of one operation.

    Writes wait on fsync (the POSIX store syncs every chunk file and its directory), not
    on a core, so the write pool has two threads per worker, and the lookups (a reference
    taken, does the chunk exist) have their own pool, so that they do not queue behind the
    syncs: a backup then reads and hashes on while the chunks before are being made
    durable, and with eight chunks per worker in flight it reads through a run of zeros (or
    of chunks the repository holds) while the run of new data before it is written."""

    def __init__(self, workers):
        self.workers = workers
        self.read = concurrent.futures.ThreadPoolExecutor(workers, "backup-read")
        self.cpu = concurrent.futures.ThreadPoolExecutor(workers, "backup-cpu")
        self.write = concurrent.futures.ThreadPoolExecutor(2 * workers, "backup-write")
        self.lookup = concurrent.futures.ThreadPoolExecutor(workers, "backup-lookup")

    @property
    def depth(self):
        return 8 * self.workers  # enough to keep every pool busy, bounded whatever the size

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        for pool in (self.read, self.cpu, self.write, self.lookup):
            pool.shutdown(wait=True)


def _chunk_indexes(ranges, chunk_size, count):
    """Indexes of the chunks that the byte ranges touch."""
    touched = set()
    for offset, length in ranges:
        if length <= 0:
            continue
        first = offset // chunk_size
        last = min((offset + length - 1) // chunk_size, count - 1)
        touched.update(range(first, last + 1))
    return touched


class BackupEngine:
    def __init__(self, store, chunk_size=None, workers=None, progress_every=None):
        conf = CONF.backup
        self.store = store
        self.chunk_size = chunk_size or conf.backup_chunk_size
        self.workers = workers or conf.backup_workers or os.cpu_count() or 1
        self.progress_every = progress_every or conf.backup_progress_chunks

    # --- backup ------------------------------------------------------------------------------

    def backup(self, reader, backup_id, parent_id=None, snapshot=None, since=None,
               progress=None, metadata=None):
        """Back up what `reader` reads as `backup_id`; incremental over `parent_id` when
        given. `snapshot` names the point in time the reader reads (kept in the manifest:
        the next incremental's `since`, which defaults to the parent's). Returns the manifest
        written; on failure every reference taken is dropped again and no manifest exists."""
        chunk_base.check_backup_id(backup_id)
        parent = self.store.get_manifest(parent_id) if parent_id else None
        job = _BackupJob(self, reader, backup_id, parent, since, progress)
        try:
            job.run()
            manifest = job.manifest(snapshot, metadata)
            self.store.sync()  # chunks and counts durable before a manifest names them
            self.store.put_manifest(backup_id, manifest)
        except BaseException:
            self._drop_references(backup_id, job.taken)
            raise
        job.meter.finish()
        stats = job.stats
        LOG.info("Backup %s: %d chunks, %d new, %d reused, %d holes, %.1f s", backup_id,
                 stats.chunks, stats.new, stats.reused, stats.holes, stats.seconds)
        return manifest

    def _drop_references(self, backup_id, taken):
        held = {digest: n for digest, n in taken.items() if n > 0}
        if not held:
            return
        try:
            self.store.decref_many(held)
        except Exception:  # the original failure matters more; the counts leak (safe)
            LOG.exception("Backup %s failed and its chunk references could not be dropped",
                          backup_id)

    # --- restore -----------------------------------------------------------------------------

    def restore(self, backup_id, writer, progress=None):
        """Write the backup onto `writer` (at least as large); every chunk verified. A
        corrupt or missing chunk raises CorruptChunk: the target is then half-written and
        the caller must mark it so. Returns the Stats."""
        started = time.monotonic()
        manifest = self.store.get_manifest(backup_id)
        size, chunk_size, chunks = manifest["size"], manifest["chunk_size"], manifest["chunks"]
        if writer.size < size:
            raise RestoreTargetTooSmall(backup_size=size, size=writer.size)
        stats = Stats(chunks=len(chunks))
        meter = _Progress(len(chunks), self.progress_every, progress)
        lock = threading.Lock()
        codec = self.store.codec

        def fetch_stage(index):
            return index, self.store.get_encoded(chunks[index])

        def decode_stage(item):
            index, blob = item
            data = codec.decode(chunks[index], blob)
            expected = min(chunk_size, size - index * chunk_size)
            if len(data) != expected:
                raise chunk_base.CorruptChunk(chunks[index], "%d bytes where slot %d holds %d"
                                              % (len(data), index, expected))
            return index, data

        def write_stage(item):
            index, data = item
            writer.write(index * chunk_size, data)
            with lock:
                stats.read += 1
                stats.bytes_read += len(data)
            meter.step()
            return None

        holes = [i for i, digest in enumerate(chunks) if digest is None]
        stats.holes = len(holes)
        if not writer.fresh:
            for start, length in _runs(holes, chunk_size, size):
                writer.punch_hole(start, length)
            if writer.size > size:
                writer.punch_hole(size, writer.size - size)
        meter.step(len(holes))
        with _Pools(self.workers) as pools:
            pipeline = _Pipeline([(pools.read, fetch_stage), (pools.cpu, decode_stage),
                                  (pools.write, write_stage)], pools.depth)
            try:
                for index, digest in enumerate(chunks):
                    if digest is not None:
                        pipeline.submit(index)
            finally:
                pipeline.join()
        writer.flush()
        meter.finish()
        stats.seconds = round(time.monotonic() - started, 3)
        LOG.info("Restored backup %s: %d chunks, %d holes, %.1f s", backup_id, stats.chunks,
                 stats.holes, stats.seconds)
        return stats

    def verify(self, backup_id, progress=None):
        """Read and check every chunk of a backup without writing anywhere (CorruptChunk on
        the first bad one); the Stats."""
        size = self.store.get_manifest(backup_id)["size"]
        return self.restore(backup_id, _Discard(size), progress)

    # --- copy ------------------------------------------------------------------------------

    def copy(self, source_id, backup_id):
        """Make `backup_id` a backup of the same data as `source_id` (an imported record
        under a new id): its own manifest and a reference on each chunk, taken first, so
        either backup can be deleted without breaking the other. Returns the manifest."""
        chunk_base.check_backup_id(backup_id)
        manifest = dict(self.store.get_manifest(source_id), backup_id=backup_id)
        counts = dict(collections.Counter(d for d in manifest["chunks"] if d))
        if counts:
            self.store.incref_many(counts)
        try:
            self.store.sync()
            self.store.put_manifest(backup_id, manifest)
        except BaseException:
            self._drop_references(backup_id, counts)
            raise
        LOG.info("Backup %s now also holds the data of backup %s (%d chunks)", backup_id,
                 source_id, len(counts))
        return manifest

    # --- delete ------------------------------------------------------------------------------

    def delete(self, backup_id):
        """Delete a backup: its manifest, then its references; chunks no other backup uses go.
        The manifest goes first, so a crash in between leaks references (space, safe) rather
        than leaving a manifest naming deleted chunks."""
        manifest = self.store.get_manifest(backup_id)
        counts = collections.Counter(d for d in manifest["chunks"] if d)
        self.store.delete_manifest(backup_id)
        left = self.store.decref_many(dict(counts)) if counts else {}
        removed = sum(1 for n in left.values() if n == 0)
        LOG.info("Deleted backup %s: %d chunks referenced, %d removed", backup_id,
                 len(counts), removed)
        return removed


class _BackupJob:
    """One backup run: which chunks to read, the pipeline stages, the manifest's slots."""

    def __init__(self, engine, reader, backup_id, parent, since, progress):
        self.engine = engine
        self.store = engine.store
        self.reader = reader
        self.backup_id = backup_id
        self.parent = parent
        self.parent_chunks = parent["chunks"] if parent else []
        self.since = parent.get("snapshot") if parent and since is None else since
        self.chunk_size = parent["chunk_size"] if parent else engine.chunk_size
        self.size = reader.size
        self.count = -(-self.size // self.chunk_size)
        self.chunks = [None] * self.count
        self.stats = Stats(chunks=self.count)
        self.taken = collections.Counter()  # references this backup holds, dropped on failure
        self.lock = threading.Lock()
        self.meter = _Progress(self.count, engine.progress_every, progress)
        self.zero_chunk = bytes(self.chunk_size)
        # read buffers of chunks that are done, for the next reads: memory touched for the
        # first time costs far more than the copy into it (page faults, and on a VM the
        # hypervisor backing each page), so a new 4 MiB per chunk halved the read rate. No
        # more buffers are ever alive than chunks in flight (the pipeline's depth).
        self._free_buffers = collections.deque()
        self.started = time.monotonic()

    # --- planning ----------------------------------------------------------------------------

    def _parent_entry_usable(self, index):
        # a parent's last chunk that was shorter (the volume grew since) must be read
        return (index < len(self.parent_chunks)
                and (index + 1) * self.chunk_size <= min(self.size, self.parent["size"]))

    def _plan(self):
        """(indexes to read, {index: parent entry} for the unchanged ones)."""
        changed = None
        if self.parent and self.since is not None:
            changed = self.reader.changed_ranges(self.since)
        if changed is None:
            allocated = self.reader.allocated_ranges()
            to_read = (set(range(self.count)) if allocated is None
                       else _chunk_indexes(allocated, self.chunk_size, self.count))
            return to_read, {}
        # the diff says what changed: nothing else is read (nor an allocation map asked for,
        # which costs a stat of every object on an image without object map)
        changed_indexes = _chunk_indexes(changed, self.chunk_size, self.count)
        reuse = {i: self.parent_chunks[i] for i in range(self.count)
                 if i not in changed_indexes and self._parent_entry_usable(i)}
        return set(range(self.count)) - set(reuse), reuse

    def _take_parent_entries(self, reuse):
        """Reference the parent's chunks for the ranges that did not change. A chunk that is
        gone (the parent deleted meanwhile) goes back to the read set, which is returned."""
        wanted = collections.Counter(d for d in reuse.values() if d)
        counts = self.store.incref_many(dict(wanted)) if wanted else {}
        self.taken.update(wanted)
        # only a count no higher than ours can mean the chunk went (nobody else holds it)
        missing = {d for d, n in counts.items() if n <= wanted[d] and not self.store.exists(d)}
        reread = {index for index, digest in reuse.items() if digest in missing}
        if missing:
            LOG.warning("%d chunks of the parent backup are gone: reading them again",
                        len(missing))
            dropped = {d: wanted[d] for d in missing}
            self.store.decref_many(dropped)  # the re-read takes its own references
            self.taken.subtract(dropped)
        for index in reread:
            del reuse[index]
        for index, digest in reuse.items():
            if digest is None:
                self.stats.holes += 1
            else:
                self.chunks[index] = digest
                self.stats.reused += 1
        return reread

    def run(self):
        to_read, reuse = self._plan()
        to_read |= self._take_parent_entries(reuse)
        holes = self.count - len(to_read) - len(reuse)
        self.stats.holes += holes
        self.meter.step(holes + len(reuse))
        with _Pools(self.engine.workers) as pools:
            pipeline = _Pipeline([(pools.read, self._read), (pools.cpu, self._hash),
                                  (pools.lookup, self._reference), (pools.cpu, self._encode),
                                  (pools.write, self._write)], pools.depth)
            try:
                for index in sorted(to_read):
                    pipeline.submit(index)
            finally:
                pipeline.join()
        self.stats.seconds = round(time.monotonic() - self.started, 3)

    def manifest(self, snapshot, metadata):
        return {
            "format": MANIFEST_FORMAT, "backup_id": self.backup_id,
            "parent_id": self.parent["backup_id"] if self.parent else None,
            "snapshot": snapshot, "size": self.size, "chunk_size": self.chunk_size,
            "chunks": self.chunks, "compression": self.store.codec.compression,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "stats": self.stats.as_dict(), "metadata": metadata or {},
        }

    # --- pipeline stages ---------------------------------------------------------------------

    def _read(self, index):
        offset = index * self.chunk_size
        length = min(self.chunk_size, self.size - offset)
        try:
            buffer = self._free_buffers.pop()
        except IndexError:
            buffer = mmap.mmap(-1, self.chunk_size)  # page aligned, as O_DIRECT wants
        read_into = getattr(self.reader, "read_into", None)
        if read_into is None:  # a reader of the older interface (read() only)
            buffer[:length] = self.reader.read(offset, length)
        else:
            read_into(offset, buffer, length)
        data = buffer if length == self.chunk_size else memoryview(buffer)[:length]
        return index, data, buffer

    def _hash(self, item):
        index, data, buffer = item
        with self.lock:
            self.stats.read += 1
            self.stats.bytes_read += len(data)
        # a memcmp whatever data is (== on a memoryview or an mmap compares item by item,
        # 40 times slower); a prefix of the zero chunk is all zeros
        if self.zero_chunk.startswith(data):
            self._free_buffers.append(buffer)
            with self.lock:
                self.stats.holes += 1
            self.meter.step()
            return None
        digest = chunk_base.digest_of(data)
        self.chunks[index] = digest
        return digest, data, buffer

    def _reference(self, item):
        # on an I/O pool: for rados these are round trips to the OSDs
        digest, _data, buffer = item
        # the reference first: from here on no delete can remove this chunk
        self.store.incref(digest)
        with self.lock:
            self.taken[digest] += 1
        if self.store.exists(digest):
            self._free_buffers.append(buffer)
            with self.lock:
                self.stats.reused += 1
            self.meter.step()
            return None
        return item

    def _encode(self, item):
        digest, data, buffer = item
        blob = self.store.codec.encode(data)  # new bytes: a header, then the payload
        self._free_buffers.append(buffer)
        return digest, blob

    def _write(self, item):
        digest, blob = item
        written = self.store.put_encoded(digest, blob)
        with self.lock:
            if written:
                self.stats.new += 1
                self.stats.bytes_stored += written
            else:
                self.stats.reused += 1  # a concurrent backup stored it first
        self.meter.step()
        return None


class _Discard(VolumeWriter):
    fresh = True

    def __init__(self, size):
        self.size = size

    def write(self, offset, data):
        pass


def _runs(indexes, chunk_size, size):
    """Consecutive chunk indexes as (offset, length) byte ranges, clipped to size."""
    runs = []
    for index in indexes:
        start = index * chunk_size
        end = min(start + chunk_size, size)
        if runs and runs[-1][0] + runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end - runs[-1][0])
        else:
            runs.append((start, end - start))
    return runs
