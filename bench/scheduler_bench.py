"""Scheduler decision time with many pools, in this process.

Pool rows go straight into the database (up, with room); a SchedulerManager reloads its cache
from them; then `place()` (filter + weigh + the claim, one conditional UPDATE), `best()` (the
same choice from the cache's index, no claim) and `candidates()` (every passing pool, weighed
and sorted: what explain needs, O(pools) by definition) are timed call by call."""

import cProfile
import functools
import io
import json
import os
import pstats
import time

from sqlalchemy import delete

from bench.common import RESULTS_DIR, summary_ms

TARGET_MS = 2.0  # scheduler decision at 10,000 pools (issue 14; issue 2 asked 5)
REQUEST = {"size": 1, "availability_zone": None, "extra_specs": {}}


def _pool_rows(count):
    from common.db.models import utcnow

    now = utcnow()
    rows = []
    for i in range(count):
        host = "bench-host%05d@file" % i
        total = 10000.0 + (i * 37) % 5000
        caps = {"volume_backend_name": "file", "pool_name": "pool0",
                "total_capacity_gb": total, "free_capacity_gb": total,
                "thin_provisioning_support": True, "thick_provisioning_support": False,
                "multiattach": True, "reserved_percentage": 0,
                "max_over_subscription_ratio": 20.0, "storage_protocol": "iSCSI",
                "driver_version": "1.0.0", "vendor_name": "Lamina"}
        rows.append({"name": host + "#pool0", "host": host, "pool_name": "pool0",
                     "volume_backend_name": "file", "availability_zone": "nova",
                     "total_capacity_gb": total, "free_capacity_gb": total,
                     "allocated_capacity_gb": 0, "volume_count": 0,
                     "thin_provisioning": True, "max_over_subscription_ratio": 20.0,
                     "reserved_percentage": 0, "capabilities": json.dumps(caps, sort_keys=True),
                     "reported_at": now, "usable_capacity_gb": int(total * 20)})
    return rows


def _load_pools(count):
    from common.db import models
    from common.db.session import writer

    rows = _pool_rows(count)
    with writer() as s:
        s.execute(delete(models.Pool))
    for lo in range(0, len(rows), 5000):
        with writer() as s:
            s.execute(models.Pool.__table__.insert(), rows[lo:lo + 5000])


def _time_calls(fn, samples, warm=3):
    for _ in range(warm):
        fn()
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return summary_ms(times)


def _profile(fn, calls, label, stamp):
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        fn()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).sort_stats("tottime")
    stats.print_stats(15)
    text = out.getvalue()
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, "%s-profile-%s.txt" % (stamp, label))
    with open(path, "w") as f:
        f.write(text)
    print("    cProfile of %d calls written to %s" % (calls, path))
    return text


def run(results, db_kind, pool_counts, samples, workdir, profile=False, stamp="run"):
    from bench.probes import configured_db
    from scheduler.manager import SchedulerManager

    setup = {"sqlite": "in-process, SQLite", "mysql": "in-process, MariaDB",
             "postgresql": "in-process, PostgreSQL"}[db_kind]
    with configured_db(db_kind, workdir):
        for count in pool_counts:
            t = time.perf_counter()
            _load_pools(count)
            load_s = time.perf_counter() - t
            manager = SchedulerManager("bench-scheduler")
            t = time.perf_counter()
            manager.pools.reload()
            reload_ms = (time.perf_counter() - t) * 1000.0
            assert len(manager.pools.snapshot()) == count
            n = samples if count < 10000 else max(samples // 2, 20)
            cand = _time_calls(functools.partial(manager.candidates, REQUEST), n)
            place = _time_calls(functools.partial(manager.place, REQUEST), n)
            best = _time_calls(functools.partial(manager.best, REQUEST), n)
            typed = dict(REQUEST, extra_specs={"volume_backend_name": "file"})
            cand_typed = _time_calls(functools.partial(manager.candidates, typed),
                                     max(n // 2, 10))
            target = TARGET_MS if count >= 10000 else None
            label = "%d pools" % count
            results.add("scheduler", setup, "%s: place() p50" % label, place["p50"], "ms",
                        target, note="filter+weigh+DB claim")
            results.add("scheduler", setup, "%s: place() p99" % label, place["p99"], "ms",
                        target)
            results.add("scheduler", setup, "%s: best() p50" % label, best["p50"], "ms",
                        target, note="filter+weigh from the index, no claim")
            results.add("scheduler", setup, "%s: candidates() p50" % label, cand["p50"],
                        "ms", note="every passing pool, sorted (explain's path)")
            results.add("scheduler", setup, "%s: candidates() p99" % label, cand["p99"],
                        "ms")
            results.add("scheduler", setup, "%s: candidates(), typed p50" % label,
                        cand_typed["p50"], "ms", note="extra_specs volume_backend_name=file")
            results.add("scheduler", setup, "%s: cache reload" % label, reload_ms, "ms")
            detail = {"place_ms": place, "best_ms": best, "candidates_ms": cand,
                      "candidates_typed_ms": cand_typed, "reload_ms": reload_ms, "insert_s": load_s}
            if profile and count == max(pool_counts):
                tag = "scheduler-%s-%d" % (db_kind, count)
                detail["profile_candidates"] = _profile(
                    functools.partial(manager.candidates, REQUEST), 20, tag + "-candidates",
                    stamp)
                detail["profile_place"] = _profile(
                    functools.partial(manager.place, REQUEST), 20, tag + "-place", stamp)
            results.detail("scheduler/%s/%d" % (db_kind, count), detail)
