"""Attach and detach latency through the whole stack (API -> volume service -> driver ->
target, in one process on fake://), one operation at a time (issue 10).

    .venv/bin/python -m bench.attach [--samples 30] [--targets local,iscsi]

`local`: the file back end hands out the file's path; `iscsi`: one tgt target per attachment
(the machine's tgtd, deploy/tgt/tgt-aio.sh). For each sample, from an `available` volume:
  attach   POST /attachments with a connector -> 200 with connection_info (3.27)
  complete os-complete (3.44, built above the advertised maximum, raised in-process here)
  detach   DELETE /attachments/{id} -> 200 (the export removed)
  legacy   os-reserve + os-initialize_connection + os-attach, and os-begin_detaching +
           os-terminate_connection + os-detach (the pre-3.44 compute flow)
Printed: p50 and p90 in ms. No compute service runs here: Nova needs 3.44 advertised (see
docs/benchmarks.md)."""

import argparse
import tempfile
import time

from api import microversion
from bench.common import percentile, quiet_logging_in_process
from tests.stack import Stack

CONNECTOR = {"host": "bench-compute", "initiator": "iqn.2026-12.org.example:bench",
             "ip": "127.0.0.1", "multipath": False}
V = "3.44"


def _timed(rows, name, fn, *args, **kwargs):
    t = time.perf_counter()
    resp = fn(*args, **kwargs)
    rows.setdefault(name, []).append(time.perf_counter() - t)
    if resp.status_code >= 300:
        raise RuntimeError("%s: %s %s" % (name, resp.status_code, resp.text[:300]))
    return resp


def measure(target, samples, workdir):
    backend = {"target_protocol": target}
    if target == "iscsi":
        backend["tgt_state_dir"] = workdir + "/tgt"
    stack = Stack(workdir, backends={"file": backend}).start()
    rows = {}
    try:
        volume = stack.create_volume(size=1)
        stack.wait_volume(volume["id"], ("available",))
        vid = volume["id"]
        act = "/volumes/%s/action" % vid
        for _ in range(samples):
            resp = _timed(rows, "attach (create -> connection_info)", stack.request, "POST",
                          "/attachments", {"attachment": {"volume_uuid": vid,
                                                          "connector": CONNECTOR}},
                          version=V)
            attachment_id = resp.json()["attachment"]["id"]
            _timed(rows, "complete", stack.request, "POST",
                   "/attachments/%s/action" % attachment_id, {"os-complete": None}, version=V)
            _timed(rows, "detach (delete attachment)", stack.request, "DELETE",
                   "/attachments/" + attachment_id, version=V)

            t = time.perf_counter()
            for name, args in (("os-reserve", None),
                               ("os-initialize_connection", {"connector": CONNECTOR}),
                               ("os-attach", {"instance_uuid": None, "host_name":
                                              CONNECTOR["host"], "mountpoint": "/dev/vdb"})):
                _timed({}, name, stack.request, "POST", act, {name: args})
            rows.setdefault("legacy attach (3 calls)", []).append(time.perf_counter() - t)
            t = time.perf_counter()
            for name, args in (("os-begin_detaching", None),
                               ("os-terminate_connection", {"connector": CONNECTOR}),
                               ("os-detach", None)):
                _timed({}, name, stack.request, "POST", act, {name: args})
            rows.setdefault("legacy detach (3 calls)", []).append(time.perf_counter() - t)
        stack.request("DELETE", "/volumes/" + vid)
    finally:
        stack.stop()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--targets", default="local,iscsi")
    args = parser.parse_args()
    quiet_logging_in_process()
    microversion.MAX_VERSION = (3, 44)  # os-complete: built, not advertised yet
    print("%-7s %-36s %10s %10s" % ("target", "%d samples" % args.samples, "p50 ms", "p90 ms"))
    for target in args.targets.split(","):
        rows = measure(target, args.samples, tempfile.mkdtemp(prefix="bench-attach-"))
        for name, values in rows.items():
            print("%-7s %-36s %10.1f %10.1f" % (target, name, percentile(values, 50) * 1000,
                                                percentile(values, 90) * 1000))


if __name__ == "__main__":
    main()
