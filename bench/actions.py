"""Snapshot, clone and extend latency through the whole stack (API -> [scheduler ->] volume
service -> driver, in one process on fake://), on the file driver and on rbd (the
single-node Ceph of deploy/ceph), one operation at a time (issue 4).

    .venv/bin/python -m bench.actions [--samples 20] [--backends file,rbd]

Each sample starts from an `available` 1 GiB volume holding 16 MiB of written data and
prints p50/p90 of: snapshot create->available, volume from that snapshot create->available,
clone of the volume create->available, extend 1->2 GiB ->available, snapshot delete->gone.
Status is polled every 2 ms."""

import argparse
import os
import tempfile
import time

from bench.common import percentile, quiet_logging_in_process
from tests.stack import Stack

DATA = os.urandom(16 * 1024 * 1024)


def _wait(stack, path, key, done):
    while True:
        resp = stack.request("GET", path)
        if done(resp, key):
            return
        time.sleep(0.002)


def _status_is(status):
    def done(resp, key):
        if resp.status_code != 200:
            raise RuntimeError(resp.text)
        current = resp.json()[key]["status"]
        if current.startswith("error"):
            raise RuntimeError("%s went %s" % (key, current))
        return current == status
    return done


def _gone(resp, key):
    return resp.status_code == 404


def _fill(stack, backend, volume_id):
    """16 MiB of data at the start of the volume, so copies have something to copy."""
    if backend == "file":
        [path] = [p for p in stack.volume_files() if p.endswith(volume_id)]
        with open(path, "r+b") as f:
            f.write(DATA)
        return
    import rados
    import rbd

    from tests.integration import ceph

    cluster = rados.Rados(conffile=ceph.CONF, rados_id=ceph.USER,
                          conf={"keyring": ceph.KEYRING})
    cluster.connect()
    try:
        with cluster.open_ioctx(ceph.POOL) as ioctx, rbd.Image(ioctx,
                                                              "volume-" + volume_id) as im:
            im.write(DATA, 0)
    finally:
        cluster.shutdown()


def measure(backend, samples):
    backends = {"file": {}}
    if backend == "rbd":
        from tests.integration import ceph

        ceph.require()
        backends = {"ceph": ceph.backend_options()}
    stack = Stack(tempfile.mkdtemp(prefix="bench-actions-"), backends=backends).start()
    rows = {}
    try:
        for _ in range(samples):
            for name, seconds in one_sample(stack, backend):
                rows.setdefault(name, []).append(seconds)
    finally:
        stack.stop()
    return rows


def one_sample(stack, backend):
    """[(operation, seconds)] for one volume's snapshot, clones, extend, snapshot delete."""
    volume = stack.create_volume(size=1)
    vpath = "/volumes/" + volume["id"]
    _wait(stack, vpath, "volume", _status_is("available"))
    _fill(stack, backend, volume["id"])
    timings = []

    t = time.perf_counter()
    snap = stack.create_snapshot(volume["id"])
    _wait(stack, "/snapshots/" + snap["id"], "snapshot", _status_is("available"))
    timings.append(("snapshot create->available", time.perf_counter() - t))

    made = []
    for name, source in (("volume from snapshot", {"snapshot_id": snap["id"]}),
                         ("clone of volume", {"source_volid": volume["id"]})):
        t = time.perf_counter()
        made.append(stack.create_volume(size=None, **source)["id"])
        _wait(stack, "/volumes/" + made[-1], "volume", _status_is("available"))
        timings.append((name, time.perf_counter() - t))

    t = time.perf_counter()
    stack.request("POST", vpath + "/action", {"os-extend": {"new_size": 2}})
    _wait(stack, vpath, "volume", _extended_to(2))
    timings.append(("extend 1->2 GiB", time.perf_counter() - t))

    for vid in made:  # outside the timings: only the snapshot delete is measured
        stack.request("DELETE", "/volumes/" + vid)
        _wait(stack, "/volumes/" + vid, "volume", _gone)
    t = time.perf_counter()
    stack.request("DELETE", "/snapshots/" + snap["id"])
    _wait(stack, "/snapshots/" + snap["id"], "snapshot", _gone)
    timings.append(("snapshot delete->gone", time.perf_counter() - t))

    stack.request("DELETE", vpath)
    _wait(stack, vpath, "volume", _gone)
    return timings


def _extended_to(size):
    available = _status_is("available")

    def done(resp, key):
        return available(resp, key) and resp.json()[key]["size"] == size
    return done


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--backends", default="file,rbd")
    args = parser.parse_args()
    quiet_logging_in_process()
    print("%-8s %-28s %10s %10s" % ("backend", "%d samples" % args.samples, "p50 ms",
                                    "p90 ms"))
    for backend in args.backends.split(","):
        for name, values in measure(backend, args.samples).items():
            print("%-8s %-28s %10.1f %10.1f" % (backend, name, percentile(values, 50) * 1000,
                                                percentile(values, 90) * 1000))


if __name__ == "__main__":
    main()
