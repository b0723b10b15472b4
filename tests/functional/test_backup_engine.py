"""The backup data engine against real sparse files and a real POSIX repository (real zstd,
zlib, sqlite, flock): full and incremental backups, restores checked by checksum, holes,
corruption, pruning, concurrency, compressions and crash safety of manifests."""

import collections
import hashlib
import os
import random
import subprocess
import sys
import threading

import pytest

from backup_worker import engine
from backup_worker.chunkstore import base as chunk_base
from backup_worker.chunkstore import posix
from common import connector

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
KiB = 1024
MiB = 1024 * KiB
CHUNK = 64 * KiB
SIZE = 64 * MiB            # 1024 chunks
DATA_REGIONS = [(0, 8 * MiB), (16 * MiB, 12 * MiB), (40 * MiB, 4 * MiB)]  # 24 MiB of data
ZERO_REGION = (48 * MiB, 4 * MiB)  # allocated, but zeros: must become holes


def write_source(path, seed=1, size=SIZE):
    """A sparse file with a known pattern: random and compressible data, a written zero
    region, holes elsewhere."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        f.truncate(size)
        for number, (offset, length) in enumerate(DATA_REGIONS):
            f.seek(offset)
            if number == 1:  # compressible text: the codecs must shrink it
                text = b"".join(b"lamina backup %d, line %08d\n" % (seed, n)
                                for n in range(length // 28 + 1))
                f.write(text[:length])
            else:
                f.write(rng.randbytes(length))
        f.seek(ZERO_REGION[0])
        f.write(bytes(ZERO_REGION[1]))


def data_chunk_count():
    return sum(length for _o, length in DATA_REGIONS) // CHUNK


def change_one_percent(path, seed=2):
    """Overwrite 4 KiB inside 10 distinct data chunks (1% of the volume's 1024 chunks)."""
    rng = random.Random(seed)
    data_chunks = [i for offset, length in DATA_REGIONS
                   for i in range(offset // CHUNK, (offset + length) // CHUNK)]
    changed = sorted(rng.sample(data_chunks, 10))
    with open(path, "r+b") as f:
        for index in changed:
            f.seek(index * CHUNK + rng.randrange(0, CHUNK - 4 * KiB))
            f.write(rng.randbytes(4 * KiB))
    return changed


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(4 * MiB):
            digest.update(block)
    return digest.hexdigest()


def chunk_files(store):
    return sorted(os.path.join(d, name) for d, _dirs, names in os.walk(store.chunk_dir)
                  for name in names if not name.startswith(".tmp-"))


def allocated_bytes(path):
    return os.stat(path).st_blocks * 512


@pytest.fixture
def store(tmp_path):
    with posix.PosixChunkStore(str(tmp_path / "repo")) as repository:
        yield repository


@pytest.fixture
def eng(store):
    return engine.BackupEngine(store, chunk_size=CHUNK, workers=2, progress_every=64)


@pytest.fixture
def source(tmp_path):
    path = str(tmp_path / "volume")
    write_source(path)
    return path


def backup(eng, path, backup_id, **kwargs):
    with engine.FileReader(path) as reader:
        return eng.backup(reader, backup_id, **kwargs)


def restore_new(eng, backup_id, path, size=SIZE):
    with engine.FileWriter.create(path, size) as writer:
        return eng.restore(backup_id, writer)


def test_full_and_incremental_restore_each_point(eng, store, source, tmp_path):
    full = backup(eng, source, "full")
    sum_full = sha256_file(source)
    assert full["stats"]["new"] == data_chunk_count()
    assert full["chunks"].count(None) == 1024 - data_chunk_count()  # zeros and holes
    files_after_full = len(chunk_files(store))
    assert files_after_full == data_chunk_count()

    changed = change_one_percent(source)
    incremental = backup(eng, source, "incr", parent_id="full")
    sum_incr = sha256_file(source)
    # the block-hash method: every allocated chunk read, only the changed ones written
    assert incremental["stats"]["new"] == len(changed) == 10
    assert incremental["stats"]["reused"] == data_chunk_count() - 10
    assert len(chunk_files(store)) - files_after_full == 10
    assert incremental["parent_id"] == "full"
    assert len(incremental["chunks"]) == 1024  # self-contained: every chunk listed

    for backup_id, expected in (("full", sum_full), ("incr", sum_incr)):
        target = str(tmp_path / ("restored-" + backup_id))
        stats = restore_new(eng, backup_id, target)
        assert sha256_file(target) == expected
        assert stats.holes == 1024 - data_chunk_count()
        # holes stay holes: the zero region and the unallocated space took no blocks
        assert allocated_bytes(target) <= data_chunk_count() * CHUNK + MiB
        assert os.path.getsize(target) == SIZE


def test_unchanged_volume_incremental_writes_nothing(eng, store, source):
    backup(eng, source, "full")
    before = chunk_files(store)
    incremental = backup(eng, source, "incr", parent_id="full")
    assert incremental["stats"]["new"] == 0
    assert chunk_files(store) == before


def test_corrupt_chunk_fails_restore(eng, store, source, tmp_path):
    manifest = backup(eng, source, "full")
    victim = next(d for d in manifest["chunks"] if d)
    path = store.chunk_path(victim)
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(chunk_base.CorruptChunk) as info:
        restore_new(eng, "full", str(tmp_path / "target"))
    assert info.value.digest == victim
    assert victim in str(info.value)
    with pytest.raises(chunk_base.CorruptChunk, match=victim):
        eng.verify("full")


def test_verify_reads_every_chunk(eng, source):
    backup(eng, source, "full")
    stats = eng.verify("full")
    assert stats.read == data_chunk_count() and stats.holes == 1024 - data_chunk_count()


@pytest.mark.parametrize("damage", ["truncate", "garble-header", "remove"])
def test_damaged_chunk_is_a_clear_error(eng, store, source, damage):
    manifest = backup(eng, source, "full")
    victim = next(d for d in manifest["chunks"] if d)
    path = store.chunk_path(victim)
    if damage == "truncate":
        os.truncate(path, os.path.getsize(path) // 3)
    elif damage == "garble-header":
        with open(path, "r+b") as f:
            f.write(b"XXXX")
    else:
        os.unlink(path)
    with pytest.raises(chunk_base.CorruptChunk, match=victim):
        store.get(victim)


def test_prune_full_backup_incremental_still_restores(eng, store, source, tmp_path):
    backup(eng, source, "full")
    change_one_percent(source)
    incremental = backup(eng, source, "incr", parent_id="full")
    expected = sha256_file(source)

    removed = eng.delete("full")
    assert removed == 10  # the old versions of the changed chunks, used by nobody else
    with pytest.raises(chunk_base.ManifestNotFound):
        store.get_manifest("full")
    referenced = {d for d in incremental["chunks"] if d}
    assert len(chunk_files(store)) == len(referenced)
    target = str(tmp_path / "restored")
    restore_new(eng, "incr", target)
    assert sha256_file(target) == expected

    eng.delete("incr")
    assert chunk_files(store) == []
    assert all(store.refcount(d) == 0 for d in referenced)


def test_concurrent_backups_of_two_files_into_one_store(tmp_path):
    repo = str(tmp_path / "repo")
    paths = [str(tmp_path / "a"), str(tmp_path / "b")]
    write_source(paths[0], seed=1)
    write_source(paths[1], seed=1)
    with open(paths[1], "r+b") as f:  # b shares most chunks with a, not all
        f.write(random.Random(9).randbytes(2 * MiB))
    sums = [sha256_file(p) for p in paths]
    manifests, errors = {}, []

    def run(path, backup_id):
        try:  # a store of its own per thread: the flock must separate them
            with posix.PosixChunkStore(repo) as own_store:
                own = engine.BackupEngine(own_store, chunk_size=CHUNK, workers=2)
                manifests[backup_id] = backup(own, path, backup_id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p, "backup-%d" % i))
               for i, p in enumerate(paths)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    with posix.PosixChunkStore(repo) as store:
        slots = collections.Counter(d for m in manifests.values() for d in m["chunks"] if d)
        assert {d: store.refcount(d) for d in slots} == dict(slots)
        assert len(chunk_files(store)) == len(slots)
        eng = engine.BackupEngine(store, chunk_size=CHUNK, workers=2)
        for i, expected in enumerate(sums):
            target = str(tmp_path / ("restored-%d" % i))
            restore_new(eng, "backup-%d" % i, target)
            assert sha256_file(target) == expected
        eng.delete("backup-0")
        target = str(tmp_path / "restored-again")
        restore_new(eng, "backup-1", target)
        assert sha256_file(target) == sums[1]


def test_reference_counts_are_exact_across_processes(store):
    digest = store.put(b"shared chunk")
    script = ("import sys; sys.path.insert(0, %r)\n"
              "from backup_worker.chunkstore import posix\n"
              "s = posix.PosixChunkStore(%r)\n"
              "for _ in range(100): s.incref(%r)\n" % (ROOT, store.root, digest))
    workers = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(3)]
    for _ in range(100):
        store.incref(digest)
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0]
    assert store.refcount(digest) == 400
    store.decref(digest, 399)
    assert store.exists(digest)
    assert store.decref(digest) == 0
    assert not store.exists(digest)


@pytest.mark.parametrize("compression", ["zstd", "zlib", "none"])
def test_compressions(tmp_path, source, compression):
    with posix.PosixChunkStore(str(tmp_path / "repo"), compression=compression) as store:
        eng = engine.BackupEngine(store, chunk_size=CHUNK, workers=2)
        manifest = backup(eng, source, "b")
        text_chunk = manifest["chunks"][DATA_REGIONS[1][0] // CHUNK]
        random_chunk = manifest["chunks"][0]
        with open(store.chunk_path(text_chunk), "rb") as f:
            assert chunk_base.chunk_compression(f.read()) == compression
        with open(store.chunk_path(random_chunk), "rb") as f:
            assert chunk_base.chunk_compression(f.read()) == "none"  # incompressible: raw
        if compression != "none":
            assert os.path.getsize(store.chunk_path(text_chunk)) < CHUNK // 4
    # the repository's default changes later: the old chunks still restore
    other = "zstd" if compression != "zstd" else "zlib"
    with posix.PosixChunkStore(str(tmp_path / "repo"), compression=other) as store:
        target = str(tmp_path / "restored")
        restore_new(engine.BackupEngine(store, chunk_size=CHUNK, workers=2), "b", target)
        assert sha256_file(target) == sha256_file(source)


def test_interrupted_manifest_write_is_not_readable(store, monkeypatch):
    def crash(*args):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(posix.os, "rename", crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.put_manifest("b1", {"chunks": []})
    monkeypatch.undo()
    leftovers = os.listdir(store.manifest_dir)
    with pytest.raises(chunk_base.ManifestNotFound):
        store.get_manifest("b1")
    assert store.list_manifests() == []
    # a crash (unlike this exception) would leave the temp file: it is never read either
    with open(os.path.join(store.manifest_dir, ".tmp-b2.json-dead"), "wb") as f:
        f.write(b'{"chunks": [')
    with pytest.raises(chunk_base.ManifestNotFound):
        store.get_manifest("b2")
    assert store.list_manifests() == []
    assert leftovers == []  # the failed write cleaned up after itself
    stale = os.path.join(store.manifest_dir, ".tmp-b2.json-dead")
    assert store.remove_stale_temp(older_than=3600) == 0  # young: may be a write going on
    os.utime(stale, (0, 0))
    assert store.remove_stale_temp(older_than=3600) == 1
    assert not os.path.exists(stale)


def test_failed_manifest_write_drops_the_backups_references(eng, store, source, monkeypatch):
    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(store, "put_manifest", crash)
    with pytest.raises(OSError, match="disk full"):
        backup(eng, source, "b1")
    assert chunk_files(store) == []  # every chunk it wrote went with its reference
    with pytest.raises(chunk_base.ManifestNotFound):
        store.get_manifest("b1")


class FailingReader(engine.FileReader):
    def read(self, offset, length):
        if offset >= 20 * MiB:
            raise OSError("read error on the volume")
        return super().read(offset, length)


def test_failed_read_leaves_no_backup_and_no_references(eng, store, source):
    backup(eng, source, "full")
    before = {d: store.refcount(d) for d in store.get_manifest("full")["chunks"] if d}
    with FailingReader(source) as reader, pytest.raises(OSError, match="read error"):
        eng.backup(reader, "incr", parent_id="full")
    assert {d: store.refcount(d) for d in before} == before
    assert store.list_manifests() == ["full"]


class DiffReader(engine.FileReader):
    """A file reader that knows what changed since a snapshot, as an RBD image does (the rbd
    reader gets this from diff_iterate; the file stands in for the image here)."""

    def __init__(self, path, changes):
        super().__init__(path)
        self.changes = changes
        self.reads = []

    def read(self, offset, length):
        self.reads.append(offset)
        return super().read(offset, length)

    def changed_ranges(self, since):
        return self.changes.get(since)


def test_incremental_with_changed_ranges_reads_only_those(eng, store, source, tmp_path):
    with DiffReader(source, {}) as reader:
        eng.backup(reader, "full", snapshot="snap-1")
    changed = change_one_percent(source)
    ranges = [(i * CHUNK + 100, 10) for i in changed]
    with DiffReader(source, {"snap-1": ranges}) as reader:
        manifest = eng.backup(reader, "incr", parent_id="full", snapshot="snap-2")
        assert sorted(reader.reads) == [i * CHUNK for i in changed]
    assert manifest["stats"]["read"] == 10 and manifest["stats"]["new"] == 10
    target = str(tmp_path / "restored")
    restore_new(eng, "incr", target)
    assert sha256_file(target) == sha256_file(source)


def test_changed_ranges_reread_chunks_the_parent_lost(eng, store, source, tmp_path):
    with DiffReader(source, {}) as reader:
        full = eng.backup(reader, "full", snapshot="snap-1")
    lost = full["chunks"][3]
    store.delete(lost)  # as if pruned while the incremental was starting
    with DiffReader(source, {"snap-1": []}) as reader:
        manifest = eng.backup(reader, "incr", parent_id="full", snapshot="snap-2")
        assert reader.reads == [3 * CHUNK]
    assert store.exists(lost) and store.refcount(lost) == 1
    assert manifest["chunks"] == full["chunks"]
    target = str(tmp_path / "restored")
    restore_new(eng, "incr", target)
    assert sha256_file(target) == sha256_file(source)


def test_restore_onto_existing_larger_target_and_smaller_refused(eng, source, tmp_path):
    backup(eng, source, "full")
    target = str(tmp_path / "existing")
    with open(target, "wb") as f:  # old data everywhere: holes must not show it through
        for _ in range((SIZE + 8 * MiB) // MiB):
            f.write(b"\xff" * MiB)
    with engine.FileWriter(target) as writer:
        eng.restore("full", writer)
    with open(target, "rb") as restored, open(source, "rb") as original:
        assert restored.read(SIZE) == original.read()
        assert restored.read() == bytes(8 * MiB)

    small = str(tmp_path / "small")
    with open(small, "wb") as f:
        f.truncate(SIZE - MiB)
    with engine.FileWriter(small) as writer, pytest.raises(engine.RestoreTargetTooSmall):
        eng.restore("full", writer)


def test_incremental_of_a_grown_volume(eng, source, tmp_path):
    backup(eng, source, "full")
    with open(source, "r+b") as f:
        f.truncate(SIZE + 3 * MiB + 1000)  # not a whole number of chunks
        f.seek(SIZE + MiB)
        f.write(b"grown" * 1000)
    manifest = backup(eng, source, "incr", parent_id="full")
    assert manifest["size"] == SIZE + 3 * MiB + 1000
    target = str(tmp_path / "restored")
    restore_new(eng, "incr", target, size=manifest["size"])
    assert sha256_file(target) == sha256_file(source)


def test_progress_is_reported_sparingly_and_reaches_100(eng, source):
    reports = []
    backup(eng, source, "full", progress=reports.append)
    assert reports[-1] == 100.0
    assert reports == sorted(reports)
    assert len(reports) <= 1024 // 64 + 2


def test_codec_rejects_what_it_did_not_write():
    codec = chunk_base.Codec("zstd")
    data = b"some data " * 1000
    digest = chunk_base.digest_of(data)
    blob = codec.encode(data)
    assert codec.decode(digest, blob) == data
    for bad in (blob[:5], blob[:-7], b"LMC1" + bytes([9]) + blob[5:],
                blob[:20] + b"\0" * 10 + blob[30:]):
        with pytest.raises(chunk_base.CorruptChunk, match=digest):
            codec.decode(digest, bad)
    with pytest.raises(chunk_base.CorruptChunk, match="hashes to"):
        codec.decode("0" * 64, blob)


def test_volumes_opened_by_the_connector_layer(eng, source, tmp_path):
    """The attach path's connector (common/connector.py) opens source and target."""
    local = lambda path: {"driver_volume_type": "local", "data": {"device_path": path}}
    with engine.ConnectorReader(connector.open_connection(local(source), False)) as reader:
        manifest = eng.backup(reader, "full")
    assert manifest["chunks"].count(None) == 1024 - data_chunk_count()
    target = str(tmp_path / "target")
    with open(target, "wb") as f:
        f.write(b"\xee" * SIZE)
    with engine.ConnectorWriter(connector.open_connection(local(target), True)) as writer:
        eng.restore("full", writer)
    assert sha256_file(target) == sha256_file(source)


def test_many_backups_keep_descriptors_bounded(eng, store, source):
    """A long-running service backs up again and again with one store: every run's pool
    threads must not leave a descriptor or a database connection behind."""
    backup(eng, source, "warm-up")
    before = len(os.listdir("/proc/self/fd"))
    for number in range(5):
        backup(eng, source, "b%d" % number, parent_id="warm-up")
    assert len(os.listdir("/proc/self/fd")) <= before


@pytest.mark.parametrize("direct_io", [True, False])
def test_direct_and_cached_reads_back_up_the_same(tmp_path, source, direct_io):
    """O_DIRECT (backup_direct_io) or the page cache: the same manifest, whatever the size
    (here not a multiple of the block size, so the last chunk is short and unaligned)."""
    with open(source, "r+b") as f:
        f.truncate(SIZE + 5 * KiB + 321)
        f.seek(SIZE)
        f.write(b"tail" * 1000)
    engine.CONF.set_override("backup_direct_io", direct_io, group="backup")
    try:
        with posix.PosixChunkStore(str(tmp_path / "repo")) as store:
            eng = engine.BackupEngine(store, chunk_size=CHUNK, workers=2)
            with engine.FileReader(source) as reader:
                if not direct_io:
                    assert reader._direct_fd is None
                manifest = eng.backup(reader, "full")
            target = str(tmp_path / "restored")
            restore_new(eng, "full", target, size=manifest["size"])
    finally:
        engine.CONF.clear_override("backup_direct_io", group="backup")
    assert sha256_file(target) == sha256_file(source)
    with open(source, "rb") as f:
        expected = [None if block == bytes(len(block)) else chunk_base.digest_of(block)
                    for block in iter(lambda: f.read(CHUNK), b"")]
    assert manifest["chunks"] == expected


def test_read_into_a_buffer_o_direct_refuses(source):
    """An unaligned buffer (O_DIRECT says EINVAL): the reader goes on through the page
    cache and returns the right bytes."""
    import mmap
    with open(source, "rb") as f:
        expected = f.read(3 * CHUNK)
    with engine.FileReader(source) as reader:
        mapping = mmap.mmap(-1, 3 * CHUNK + 1)
        had_direct = reader._direct_fd is not None  # where tmp_path's file system has it
        with memoryview(mapping) as view:
            reader.read_into(0, view[1:], 3 * CHUNK)  # one byte past a page boundary
            assert view[1:3 * CHUNK + 1] == expected
        if had_direct:
            assert reader._direct_fd is None  # refused once: no more tries
        aligned = mmap.mmap(-1, 3 * CHUNK)
        reader.read_into(0, aligned, 3 * CHUNK)
        assert aligned[:] == expected
