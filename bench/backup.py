"""Throughput of the backup data engine (backup_worker/engine.py) on a local sparse file and a
POSIX repository, next to the raw sequential read rate of the same source (issue 11).

    .venv/bin/python -m bench.backup                    # 4 GiB source (the issue's figure)
    .venv/bin/python -m bench.backup --size-gib 1       # quicker
    .venv/bin/python -m bench.backup --compressions zstd --workers 2 --dir /var/tmp
    .venv/bin/python -m bench.backup --rbd-only         # the rbd incremental (needs Ceph)

The source holds half random data and half zeros (written zeros, in alternating 64 MiB
regions; --sparse-zeros leaves them unallocated instead). For each compression, in a fresh
repository: full backup, restore to a new sparse file (fsynced), then 1% of the volume's
chunks changed and an incremental backup by block hashes (the file path: every allocated
chunk read and hashed, only the changed ones stored). Before every phase the source's and the
repository's pages are dropped from the page cache (posix_fadvise DONTNEED on those files
only), so reads come from the disk. The durable write rate of the disk (4 MiB files, each
fsynced, as the POSIX store writes) is measured too: with incompressible data it bounds the
backup. MB = 10^6 bytes. Every restore is checked by sha256."""

import argparse
import datetime
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import tempfile
import time

from backup_worker import engine
from backup_worker.chunkstore import posix
from bench.common import RESULTS_DIR, quiet_logging_in_process

MiB = 1024 * 1024
REGION = 64 * MiB


def make_source(path, size, sparse_zeros):
    rng = random.Random(11)
    zeros = bytes(4 * MiB)
    with open(path, "wb") as f:
        f.truncate(size)
        for offset in range(0, size, REGION):
            length = min(REGION, size - offset)
            random_region = (offset // REGION) % 2 == 0
            if not random_region and sparse_zeros:
                continue
            f.seek(offset)
            for piece in range(0, length, 4 * MiB):
                n = min(4 * MiB, length - piece)
                f.write(rng.randbytes(n) if random_region else zeros[:n])
        f.flush()
        os.fsync(f.fileno())


def drop_cache(*paths):
    """Evict these files' pages (only theirs: the machine is shared)."""
    for top in paths:
        walk = [(top, [], [""])] if os.path.isfile(top) else os.walk(top)
        for directory, _dirs, names in walk:
            for name in names:
                path = os.path.join(directory, name) if name else directory
                try:
                    fd = os.open(path, os.O_RDONLY)
                except OSError:
                    continue
                try:
                    os.fdatasync(fd)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 * MiB):
            digest.update(block)
    return digest.hexdigest()


class Phase:
    """Wall time and this process's CPU time of one phase."""

    def __enter__(self):
        self.wall = time.perf_counter()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu = usage.ru_utime + usage.ru_stime
        return self

    def __exit__(self, *exc_info):
        self.wall = time.perf_counter() - self.wall
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu = usage.ru_utime + usage.ru_stime - self.cpu


def raw_read(path, block=4 * MiB):
    drop_cache(path)
    with Phase() as phase, open(path, "rb", buffering=0) as f:
        while f.read(block):
            pass
    return phase


def raw_write(directory, total, block=4 * MiB):
    """Durable write rate of the repository's disk: total bytes of random data in 4 MiB
    files, each fsynced, as the POSIX store writes chunks."""
    data = random.Random(7).randbytes(block)
    os.makedirs(directory)
    with Phase() as phase:
        for number in range(max(1, total // block)):
            fd = os.open(os.path.join(directory, str(number)), os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
    shutil.rmtree(directory)
    return max(1, total // block) * block / phase.wall / 1e6


def change_one_percent(path, chunk_size):
    size = os.path.getsize(path)
    chunks = size // chunk_size
    data_chunks = [i for i in range(chunks) if (i * chunk_size // REGION) % 2 == 0]
    rng = random.Random(5)
    picked = rng.sample(data_chunks, max(1, chunks // 100))
    with open(path, "r+b") as f:
        for index in picked:
            f.seek(index * chunk_size + rng.randrange(0, chunk_size - 4096))
            f.write(rng.randbytes(4096))
        f.flush()
        os.fsync(f.fileno())
    return len(picked)


def run_compression(work, source, compression, args, size):
    repo = os.path.join(work, "repo-" + compression)
    target = os.path.join(work, "restored-" + compression)
    chunk_size = args.chunk_size_mib * MiB
    result = {"compression": compression}
    with posix.PosixChunkStore(repo, compression=compression) as store:
        eng = engine.BackupEngine(store, chunk_size=chunk_size, workers=args.workers)
        drop_cache(source)
        with Phase() as phase, engine.FileReader(source) as reader:
            full = eng.backup(reader, "full")
        result.update(full_s=phase.wall, full_cpu_s=phase.cpu, full_mb_s=size / phase.wall / 1e6,
                      full_new_chunks=full["stats"]["new"],
                      stored_mb=full["stats"]["bytes_stored"] / 1e6)

        drop_cache(repo)
        with Phase() as phase, engine.FileWriter.create(target, size) as writer:
            eng.restore("full", writer)
        result.update(restore_s=phase.wall, restore_cpu_s=phase.cpu,
                      restore_mb_s=size / phase.wall / 1e6,
                      restore_ok=sha256_file(target) == sha256_file(source),
                      restore_allocated_mb=os.stat(target).st_blocks * 512 / 1e6)
        os.unlink(target)

        changed = change_one_percent(source, chunk_size)
        drop_cache(source, repo)
        with Phase() as phase, engine.FileReader(source) as reader:
            incr = eng.backup(reader, "incr", parent_id="full")
        result.update(incr_s=phase.wall, incr_cpu_s=phase.cpu, incr_changed_chunks=changed,
                      incr_new_chunks=incr["stats"]["new"], incr_read_chunks=incr["stats"]["read"])
        with engine.FileWriter.create(target, size) as writer:
            eng.restore("incr", writer)
        result["incr_restore_ok"] = sha256_file(target) == sha256_file(source)
        os.unlink(target)
    shutil.rmtree(repo)
    return result


def rbd_incremental(work, args):
    """The issue's incremental figure: an RBD image of --rbd-size-gib with --rbd-data-gib of
    random data, a full backup from snapshot s1, 4 KiB written into 1% of its chunks,
    snapshot s2, then the incremental from s2 with the diff from s1 (seconds). Needs the
    single-node Ceph of deploy/ceph; the repository is a POSIX directory in `work`."""
    import rados
    import rbd

    from tests.integration import ceph

    chunk_size = args.chunk_size_mib * MiB
    size = int(args.rbd_size_gib * 1024) * MiB
    data = int(args.rbd_data_gib * 1024) * MiB
    name = "bench-backup-%d" % os.getpid()
    cluster = rados.Rados(conffile=ceph.CONF, rados_id=ceph.USER, conf={"keyring": ceph.KEYRING})
    cluster.connect(timeout=10)
    ioctx = cluster.open_ioctx(ceph.POOL)
    rng = random.Random(13)
    result = {"rbd_size_bytes": size, "rbd_data_bytes": data}
    try:
        rbd.RBD().create(ioctx, name, size, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
        with rbd.Image(ioctx, name) as image:
            stride = size // max(1, data // (4 * MiB))  # data spread over the whole image
            for number in range(data // (4 * MiB)):
                image.write(rng.randbytes(4 * MiB), number * stride)
            image.create_snap("s1")
        with posix.PosixChunkStore(os.path.join(work, "repo-rbd")) as store:
            eng = engine.BackupEngine(store, chunk_size=chunk_size, workers=args.workers)
            with rbd.Image(ioctx, name, snapshot="s1", read_only=True) as image, \
                    Phase() as phase:
                eng.backup(engine.RBDReader(image), "full", snapshot="s1")
            result["rbd_full_s"] = phase.wall
            chunks = size // chunk_size
            picked = rng.sample(range(chunks), max(1, chunks // 100))
            with rbd.Image(ioctx, name) as image:
                for index in picked:
                    image.write(rng.randbytes(4096), index * chunk_size + 512)
                image.create_snap("s2")
            with rbd.Image(ioctx, name, snapshot="s2", read_only=True) as image, \
                    Phase() as phase:
                incr = eng.backup(engine.RBDReader(image), "incr", parent_id="full",
                                  snapshot="s2")
            result.update(rbd_incr_s=phase.wall, rbd_incr_cpu_s=phase.cpu,
                          rbd_changed_chunks=len(picked), rbd_incr_read=incr["stats"]["read"],
                          rbd_incr_new=incr["stats"]["new"])
    finally:
        try:
            with rbd.Image(ioctx, name) as image:
                for snap in list(image.list_snaps()):
                    image.remove_snap(snap["name"])
            rbd.RBD().remove(ioctx, name)
        except rbd.ImageNotFound:
            pass
        ioctx.close()
        cluster.shutdown()
    return result


def print_table(raw_mb_s, write_mb_s, results):
    print()
    print("raw sequential read of the source: %.0f MB/s" % raw_mb_s)
    print("durable write rate of the repository's disk (4 MiB files, fsync): %.0f MB/s"
          % write_mb_s)
    print()
    header = ("compression", "full MB/s", "% of raw", "full cpu s", "stored MB", "restore MB/s",
              "incr 1% s", "incr new/changed", "restores ok")
    rows = [(r["compression"], "%.0f" % r["full_mb_s"],
             "%.0f%%" % (100 * r["full_mb_s"] / raw_mb_s),
             "%.1f" % r["full_cpu_s"], "%.0f" % r["stored_mb"], "%.0f" % r["restore_mb_s"],
             "%.2f" % r["incr_s"], "%d/%d" % (r["incr_new_chunks"], r["incr_changed_chunks"]),
             str(r["restore_ok"] and r["incr_restore_ok"])) for r in results]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=4.0)
    parser.add_argument("--compressions", default="zstd,zlib")
    parser.add_argument("--workers", type=int, default=0, help="0: one per core")
    parser.add_argument("--chunk-size-mib", type=int, default=4)
    parser.add_argument("--sparse-zeros", action="store_true")
    parser.add_argument("--dir", help="work directory (default: a new one under /var/tmp)")
    parser.add_argument("--rbd", action="store_true",
                        help="also the rbd incremental (needs deploy/ceph's cluster)")
    parser.add_argument("--rbd-only", action="store_true", help="only the rbd incremental")
    parser.add_argument("--rbd-size-gib", type=float, default=10.0)
    parser.add_argument("--rbd-data-gib", type=float, default=1.0)
    args = parser.parse_args(argv)
    quiet_logging_in_process()

    size = int(args.size_gib * 1024) * MiB
    work = args.dir or tempfile.mkdtemp(prefix="lamina-bench-backup-", dir="/var/tmp")
    os.makedirs(work, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    report = {"started": started.isoformat(), "size_bytes": size, "nproc": os.cpu_count(),
              "workers": args.workers or os.cpu_count(), "chunk_size_mib": args.chunk_size_mib,
              "sparse_zeros": args.sparse_zeros, "commit": commit, "load_before": load_before,
              "results": []}
    try:
        if not args.rbd_only:
            report.update(file_benchmark(work, args, size))
        if args.rbd or args.rbd_only:
            report["rbd"] = rbd_incremental(work, args)
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    report["load_after"] = os.getloadavg()
    print("backup engine, %d cores, commit %s, load average %.1f before / %.1f after"
          % (os.cpu_count(), commit, load_before[0], report["load_after"][0]))
    if not args.rbd_only:
        print("%.1f GiB source (half random, half zeros)" % (size / 1024 ** 3))
        print_table(report["raw_read_mb_s"], report["durable_write_mb_s"], report["results"])
    if "rbd" in report:
        r = report["rbd"]
        print("\nrbd: %.0f GiB image, %.1f GiB data; full backup %.1f s; incremental after "
              "1%% of the chunks changed (%d): %.2f s, %d chunks read, %d written"
              % (r["rbd_size_bytes"] / 1024 ** 3, r["rbd_data_bytes"] / 1024 ** 3,
                 r["rbd_full_s"], r["rbd_changed_chunks"], r["rbd_incr_s"], r["rbd_incr_read"],
                 r["rbd_incr_new"]))
    os.makedirs(RESULTS_DIR, exist_ok=True)
    out = os.path.join(RESULTS_DIR, "backup-%s.json" % started.strftime("%Y%m%dT%H%M%S"))
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print("\nresults: %s" % out)
    return 0 if all(r["restore_ok"] and r["incr_restore_ok"] for r in report["results"]) else 1


def file_benchmark(work, args, size):
    source = os.path.join(work, "source")
    make_source(source, size, args.sparse_zeros)
    raw = raw_read(source)
    write_mb_s = raw_write(os.path.join(work, "write-test"), min(size // 2, 512 * MiB))
    base_copy = os.path.join(work, "source.orig")
    shutil.copyfile(source, base_copy)  # each compression starts from the same data
    results = []
    for compression in args.compressions.split(","):
        shutil.copyfile(base_copy, source)
        results.append(run_compression(work, source, compression, args, size))
    os.unlink(base_copy)
    os.unlink(source)
    return {"raw_read_mb_s": size / raw.wall / 1e6, "raw_read_cpu_s": raw.cpu,
            "durable_write_mb_s": write_mb_s, "results": results}


if __name__ == "__main__":
    raise SystemExit(main())
