"""SQL statements and commits per volume create->available and delete->gone, with every
service in this process (tests.stack.Stack: SQLite, fake://, file driver), counted on the
engine they share. Unlike times, these counts do not move with the machine's load: they say
what a change to the request path saved, and what each guarantee costs in round trips.

    .venv/bin/python -m bench.roundtrips [--volumes 30]

The waits read the volume's row on an engine of their own, so the counts hold only the
POST or DELETE and the services' work. Background work (heartbeats, pool reports) is
counted over an idle pause of the same length as each phase and subtracted. On MariaDB or
PostgreSQL each transaction also sends a pre-ping when it checks out its connection (the
pool's liveness check), which SQLite does not need."""

import argparse
import functools
import sys
import tempfile
import threading
import time

import sqlalchemy
from sqlalchemy import event

from bench.common import quiet_logging_in_process


class Counter:
    def __init__(self, engine):
        self.lock = threading.Lock()
        self.counts = {"statements": 0, "commits": 0}
        event.listen(engine, "before_cursor_execute", lambda *a: self._bump("statements"))
        event.listen(engine, "commit", lambda *a: self._bump("commits"))

    def _bump(self, key):
        with self.lock:
            self.counts[key] += 1

    def measure(self, fn):
        """(counts during fn(), seconds it took)."""
        with self.lock:
            start = dict(self.counts)
        t = time.perf_counter()
        fn()
        took = time.perf_counter() - t
        with self.lock:
            return {k: self.counts[k] - start[k] for k in start}, took


def run(results=None, volumes=30):
    from common.db import session
    from tests.stack import Stack

    quiet_logging_in_process()
    stack = Stack(tempfile.mkdtemp(prefix="lamina-roundtrips-"),
                  overrides={"quota_volumes": -1, "quota_gigabytes": -1}).start()
    quiet_logging_in_process()
    side = sqlalchemy.create_engine(stack.database_url)
    try:
        counter = Counter(session.get_engine())

        def wait_row(volume_id, done):
            deadline = time.monotonic() + 60
            while True:
                with side.connect() as conn:
                    row = conn.execute(sqlalchemy.text(
                        "SELECT status, deleted FROM volumes WHERE id = :i"),
                        {"i": volume_id}).first()
                if done(row):
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError("volume %s stuck: %s" % (volume_id, row))
                time.sleep(0.005)

        ids = []

        def creates():
            for _ in range(volumes):
                volume = stack.create_volume(size=1)
                ids.append(volume["id"])
                wait_row(volume["id"], lambda row: row is not None and row[0] == "available")

        def deletes():
            for volume_id in ids:
                answer = stack.request("DELETE", "/volumes/" + volume_id)
                if answer.status_code != 202:
                    raise RuntimeError("DELETE answered %s" % answer.status_code)
                wait_row(volume_id, lambda row: row is None or row[1])

        figures = {}
        for label, fn in (("create->available", creates), ("delete->gone", deletes)):
            counts, took = counter.measure(fn)
            idle, _ = counter.measure(functools.partial(time.sleep, took))
            per = {k: (counts[k] - idle[k]) / float(volumes) for k in counts}
            figures[label] = per
            print("  %s: %.1f SQL statements, %.1f commits per volume (%d volumes)"
                  % (label, per["statements"], per["commits"], volumes), flush=True)
            if results is not None:
                results.add("round trips", "in-process, SQLite",
                            "%s: SQL statements per volume" % label, per["statements"], "")
                results.add("round trips", "in-process, SQLite",
                            "%s: commits per volume" % label, per["commits"], "")
        return figures
    finally:
        side.dispose()
        stack.stop()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.roundtrips",
                                description=__doc__.split("\n")[0])
    p.add_argument("--volumes", type=int, default=30)
    args = p.parse_args(argv)
    run(volumes=args.volumes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
