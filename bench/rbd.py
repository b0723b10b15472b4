"""RBD through the whole stack (API -> scheduler -> volume service -> librbd, in one process
on fake://) next to raw librbd, on the single-node Ceph of deploy/ceph (issue 3).

    .venv/bin/python -m bench.rbd [--samples 20]

Prints p50/p90 of: raw librbd create and remove of a 1 GiB image; create->available and
delete->gone of a 1 GiB volume through the API, one at a time (polled every 2 ms)."""

import argparse
import tempfile
import time

from bench.common import percentile, quiet_logging_in_process
from tests.integration import ceph
from tests.stack import Stack

GiB = 1024 ** 3


def raw_librbd(samples):
    import rados
    import rbd

    cluster = rados.Rados(conffile=ceph.CONF, rados_id=ceph.USER, conf={"keyring": ceph.KEYRING})
    cluster.connect()
    ioctx = cluster.open_ioctx(ceph.POOL)
    create, remove = [], []
    try:
        for i in range(samples):
            name = "bench-raw-%d" % i
            t = time.perf_counter()
            rbd.RBD().create(ioctx, name, GiB, old_format=False,
                             features=rbd.RBD_FEATURE_LAYERING)
            create.append(time.perf_counter() - t)
            t = time.perf_counter()
            rbd.RBD().remove(ioctx, name)
            remove.append(time.perf_counter() - t)
    finally:
        ioctx.close()
        cluster.shutdown()
    return create, remove


def whole_stack(samples):
    stack = Stack(tempfile.mkdtemp(prefix="bench-rbd-"),
                  backends={"ceph": ceph.backend_options()}).start()
    try:
        stack.request("POST", "/types", {"volume_type": {
            "name": "ceph", "extra_specs": {"volume_backend_name": "ceph"}}})
        create, delete = [], []
        for _ in range(samples):
            t = time.perf_counter()
            volume = stack.create_volume(size=1, volume_type="ceph")
            while stack.request("GET", "/volumes/" + volume["id"]).json()["volume"][
                    "status"] != "available":
                time.sleep(0.002)
            create.append(time.perf_counter() - t)
            t = time.perf_counter()
            stack.request("DELETE", "/volumes/" + volume["id"])
            while stack.request("GET", "/volumes/" + volume["id"]).status_code != 404:
                time.sleep(0.002)
            delete.append(time.perf_counter() - t)
        return create, delete
    finally:
        stack.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    ceph.require()
    quiet_logging_in_process()
    rows = []
    raw_create, raw_remove = raw_librbd(args.samples)
    rows += [("raw librbd create 1 GiB", raw_create), ("raw librbd remove", raw_remove)]
    stack_create, stack_delete = whole_stack(args.samples)
    rows += [("API create->available", stack_create), ("API delete->gone", stack_delete)]
    print("%-28s %10s %10s" % ("RBD, %d samples" % args.samples, "p50 ms", "p90 ms"))
    for name, values in rows:
        print("%-28s %10.1f %10.1f" % (name, percentile(values, 50) * 1000,
                                         percentile(values, 90) * 1000))


if __name__ == "__main__":
    main()
