"""Run the benchmarks and print their figures; also write them to bench/results/<time>.json.

    .venv/bin/python -m bench.run                    # everything (about 5 minutes on 2 cores)
    .venv/bin/python -m bench.run --quick            # small smoke run of everything
    .venv/bin/python -m bench.run --only scheduler   # one benchmark
    .venv/bin/python -m bench.run --only create,delete --targets deployed --profile

Benchmarks: create (create->available throughput), delete (delete throughput), latency
(single volume, unloaded), burst (latency inside a burst), detail (GET /volumes/detail with
many rows), concurrent (64 clients POST /volumes at once: p99), scheduler (decision time with
many pools), probes (one in-process measurement per bottleneck the profiles found; see
bench/probes.py), roundtrips (SQL statements and commits per create and delete; see
bench/roundtrips.py), growth (create, delete and latency again at each detail size: how
they grow with the volumes in the database).

Set-ups: embedded (in-process Stack), aio (lamina-aio subprocess), deployed (processes on
RabbitMQ + MariaDB, Keystone auth), deployed-noauth (the same, noauth; only on request),
cinder (real Cinder 29 on the same RabbitMQ, MariaDB and Keystone, smaller counts of its
own); see bench/targets.py. The run ends with the issue's table: each figure of Lamina
deployed beside its target and, where Cinder was measured, Cinder's and the ratio.
"""

import argparse
import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

from bench import lifecycle, listing, probes, roundtrips, scheduler_bench
from bench.common import SHARED_PROCESSES, CpuMeter, Results, _fmt, quiet_logging_in_process
from bench.profiling import PySpy
from bench.targets import DEFAULT_TARGETS, DESCRIPTIONS, TARGETS

BENCHMARKS = ("create", "delete", "latency", "burst", "detail", "concurrent", "scheduler",
              "probes", "roundtrips", "growth")
LIFECYCLE = ("create", "delete", "latency", "burst", "detail", "concurrent", "growth")


def _ints(text):
    return [int(x) for x in text.split(",") if x.strip()]


def _names(text, allowed, what):
    names = [x.strip() for x in text.split(",") if x.strip()]
    for name in names:
        if name not in allowed:
            raise SystemExit("unknown %s %r (choose from %s)" % (what, name, ", ".join(allowed)))
    return names


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="small counts everywhere: a smoke run of every benchmark")
    p.add_argument("--only", default=",".join(BENCHMARKS),
                   help="comma-separated benchmarks: %s" % ", ".join(BENCHMARKS))
    p.add_argument("--targets", default=",".join(DEFAULT_TARGETS),
                   help="comma-separated set-ups for the API benchmarks: %s (default %s)"
                        % (", ".join(TARGETS), ",".join(DEFAULT_TARGETS)))
    p.add_argument("--volumes", type=int, help="volumes created/deleted (default 1000)")
    p.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients (16)")
    p.add_argument("--latency-samples", type=int, help="unloaded samples (default 100)")
    p.add_argument("--burst", type=int, help="burst size (default 50)")
    p.add_argument("--detail-sizes", type=_ints,
                   help="volumes in the DB for the detail benchmark (default 10000,100000)")
    p.add_argument("--detail-requests", type=int, help="timed detail requests (default 20)")
    p.add_argument("--concurrent-clients", type=int, default=64,
                   help="client threads POSTing at once in the concurrent benchmark (64)")
    p.add_argument("--concurrent-posts", type=int,
                   help="POSTs of each concurrent client, back to back (default 4)")
    p.add_argument("--pools", type=_ints, help="pool counts (default 10,1000,10000)")
    p.add_argument("--scheduler-dbs", default="sqlite,mysql",
                   help="databases of the scheduler benchmark: sqlite, mysql, postgresql")
    p.add_argument("--scheduler-samples", type=int, help="timed calls per figure (200)")
    p.add_argument("--profile", action="store_true",
                   help="py-spy the services during create/delete/detail; cProfile the "
                        "scheduler at the largest pool count (files in bench/results/)")
    p.add_argument("--profile-waits", action="store_true",
                   help="with --profile: sample every thread, waiting ones too (where the "
                        "time goes), not only the one holding the GIL (where the CPU goes)")
    p.add_argument("--at-commit", metavar="REV",
                   help="measure the committed tree REV (e.g. HEAD) rather than the working "
                        "tree, which others may be editing: runs this benchmark code on a "
                        "`git archive` copy of REV")
    p.add_argument("--workdir", help="where the set-ups keep their files (default: a temp "
                                     "directory, removed at the end)")
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {"volumes": (1000, 50), "latency_samples": (100, 10), "burst": (50, 10),
                "detail_sizes": ([10000, 100000], [1000, 5000]), "detail_requests": (20, 5),
                "pools": ([10, 1000, 10000], [10, 1000]), "scheduler_samples": (200, 30),
                "concurrent_posts": (4, 2)}
    # what the command line set: a set-up's own counts (Cinder's) never override those
    args.explicit = sorted(k for k in defaults if getattr(args, k) is not None)
    for key, (full, small) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, small if quick else full)
    args.only = _names(args.only, BENCHMARKS, "benchmark")
    args.targets = _names(args.targets, tuple(TARGETS), "target")
    args.scheduler_dbs = _names(args.scheduler_dbs, ("sqlite", "mysql", "postgresql"),
                                "database")
    return args


def _optional(fn):
    """fn() or None, when fn is None or fails (say MariaDB has no connection left: a figure
    beside the benchmark, never a reason to stop the run)."""
    def call():
        if fn is None:
            return None
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001
            print("    (%s: %r)" % (getattr(fn, "__name__", "probe"), exc), flush=True)
            return None
    return call


@contextlib.contextmanager
def phase(target, label, args, results, stamp):
    """Account the CPU each process uses (and MariaDB connections opened) during a phase;
    py-spy the services too with --profile."""
    pids = dict(target.pids())
    if os.getpid() not in pids.values():
        pids["bench client"] = os.getpid()
    conns = _optional(getattr(target, "db_connections", None))
    conns0 = conns()
    spy = {}
    for name, pid in target.pids().items():  # a service of several processes: each
        if isinstance(pid, list):
            spy.update({name if len(pid) == 1 else "%s-%d" % (name, p): p for p in pid})
        else:
            spy[name] = pid
    with PySpy(spy, "%s-%s" % (target.name, label), stamp, enabled=args.profile,
               gil_only=not args.profile_waits):
        with CpuMeter(pids) as cpu:
            yield
    print("    " + cpu.line(), flush=True)
    info = cpu.report()
    conns1 = conns()
    if conns0 is not None and conns1 is not None:
        info["db_connections_opened"] = conns1 - conns0
        print("    MariaDB connections opened: %d" % info["db_connections_opened"], flush=True)
    results.detail("cpu/%s/%s" % (target.name, label), info)


def target_args(cls, args):
    """args with the set-up's own counts (cls.counts: key -> (full, quick)) where the
    command line gave none; and a line saying which."""
    own = getattr(cls, "counts", None)
    if not own:
        return args, None
    args = argparse.Namespace(**vars(args))
    changed = []
    for key, (full, small) in own.items():
        if key in args.explicit:
            continue
        value = small if args.quick else full
        if getattr(args, key) != value:
            setattr(args, key, value)
            changed.append("%s %s" % (key.replace("_", " "), ",".join(
                str(v) for v in value) if isinstance(value, list) else value))
    return args, ", ".join(changed) or None


def run_target(name, args, results, workdir, stamp):
    wanted = [b for b in LIFECYCLE if b in args.only]
    if not wanted:
        return
    print("\n== %s: %s ==" % (name, DESCRIPTIONS[name]), flush=True)
    args, own = target_args(TARGETS[name], args)
    if own:
        print("  %s uses its own counts (slower system; rates and per-request times still "
              "compare): %s" % (name, own), flush=True)
        results.detail("counts/%s" % name, own)
    target = TARGETS[name](workdir)
    t = time.perf_counter()
    try:
        target.start()
    except Exception as exc:
        results.error("start", name, exc)
        return
    print("  started in %.1f s" % (time.perf_counter() - t), flush=True)
    log0 = target.log_bytes() if hasattr(target, "log_bytes") else None
    errors0 = len(results.errors)
    try:
        ids = None
        if "create" in wanted or "delete" in wanted:
            with phase(target, "create", args, results, stamp):
                ids = _step(results, "create throughput", name, lambda: lifecycle
                            .create_throughput(target, results, args.volumes, args.clients,
                                               setup_only="create" not in wanted))
        if "delete" in wanted and ids:
            with phase(target, "delete", args, results, stamp):
                _step(results, "delete throughput", name, lambda: lifecycle.delete_throughput(
                    target, results, ids, args.clients))
        if "latency" in wanted:
            with phase(target, "latency", args, results, stamp):
                _step(results, "latency unloaded", name, lambda: lifecycle.latency_unloaded(
                    target, results, args.latency_samples))
        if "burst" in wanted:
            with phase(target, "burst", args, results, stamp):
                _step(results, "latency in burst", name, lambda: lifecycle.latency_burst(
                    target, results, args.burst))
        if "detail" in wanted or "growth" in wanted:  # growth runs at the detail's sizes
            with phase(target, "detail", args, results, stamp):
                at_size = None
                if "growth" in args.only and name != "cinder":
                    at_size = functools.partial(_growth_step, target, results)
                _step(results, "detail page", name, lambda: listing.detail_latency(
                    target, results, args.detail_sizes, args.detail_requests, at_size))
        if "concurrent" in wanted:
            with phase(target, "concurrent", args, results, stamp):
                _step(results, "concurrent POST", name, lambda: lifecycle.post_concurrency(
                    target, results, args.concurrent_clients, args.concurrent_posts))
        if log0 is not None:
            results.detail("log_bytes/%s" % name, target.log_bytes() - log0)
    finally:
        if len(results.errors) > errors0 and name != "embedded":
            from bench.common import RESULTS_DIR
            from bench.targets import save_logs

            dest = save_logs(target.workdir, os.path.join(
                RESULTS_DIR, "%s-%s-logs" % (stamp, name)))
            print("  service logs kept in %s" % dest, flush=True)
        try:
            target.stop()
        except Exception as exc:
            results.error("stop", name, exc)


def _growth_step(target, results, size):
    print("  -- with %d volumes in the database:" % size, flush=True)
    _step(results, "growth", target.name, lambda: lifecycle.growth(target, results, size))


def _step(results, benchmark, setup, fn):
    t = time.perf_counter()
    try:
        value = fn()
    except Exception as exc:
        traceback.print_exc()
        results.error(benchmark, setup, exc)
        return None
    took = time.perf_counter() - t
    if took > 1:
        print("  (%s took %.1f s)" % (benchmark, took), flush=True)
    return value


# --- the issue's table -------------------------------------------------------------------------

LAMINA, CINDER = "deployed", "cinder"
SCHEDULER_POOLS = 10000


def _row(results, setup, key):
    for r in results.rows:
        if r["setup"] == setup and r.get("key") == key:
            return r
    return None


def cpu_per_lifecycle(results, setup):
    """CPU seconds the set-up's own processes (not the bench client, the database, broker,
    Keystone or memcached) used in the create and delete phases, per volume created and
    deleted there (the benchmark's volumes plus the warm-up's); None unless both ran."""
    create = results.details.get("cpu/%s/create" % setup)
    delete = results.details.get("cpu/%s/delete" % setup)
    count = results.details.get("create_throughput/%s" % setup)
    if not (create and delete and count):
        return None
    skip = set(SHARED_PROCESSES) | {"bench client", "other processes"}
    own = sum(v for phase in (create, delete) for n, v in phase["cpu_s"].items()
              if n not in skip)
    return own / (count["count"] + count.get("warm_up", 0))


def _scheduler_row(results):
    """Lamina's scheduler decision (place(): filter, weigh, claim) p50 on MariaDB at 10,000
    pools, or at the most pools measured."""
    rows = [r for r in results.rows if r["benchmark"] == "scheduler"
            and r["figure"].endswith("pools: place() p50")]
    if not rows:
        return None, None
    rows.sort(key=lambda r: ("MariaDB" in r["setup"], int(r["figure"].split()[0])))
    best = rows[-1]
    return best, int(best["figure"].split()[0])


def issue_table(results):
    """Every figure of issue 14's table: Lamina deployed, its target, met, Cinder 29 and the
    ratio Lamina/Cinder where Cinder was measured."""
    lines = []

    def fmt(value, unit):
        if value is None:
            return "-"
        return "%s %s" % (_fmt(value), unit)

    def add(figure, lamina, unit, target, better, cinder=None, lamina_text=None,
            cinder_text=None):
        met = ""
        if target is not None and lamina is not None:
            met = "yes" if (lamina <= target if better == "lower" else lamina >= target) \
                else "NO"
        ratio = "%.2fx" % (lamina / cinder) if lamina and cinder else "-"
        tgt = "-" if target is None else "%s %s" % ("<=" if better == "lower" else ">=",
                                                   fmt(target, unit))
        lines.append((figure, lamina_text or fmt(lamina, unit), tgt, met,
                      cinder_text or fmt(cinder, unit), ratio))

    def value(setup, key):
        r = _row(results, setup, key)
        return None if r is None else r["value"]

    add("create->available throughput", value(LAMINA, "create_tp"), "vol/s", 150, "higher",
        value(CINDER, "create_tp"))
    add("create->available p50, unloaded", value(LAMINA, "create_p50"), "ms", 20, "lower",
        value(CINDER, "create_p50"))
    add("delete throughput", value(LAMINA, "delete_tp"), "vol/s", 300, "higher",
        value(CINDER, "delete_tp"))
    cpu_l, cpu_c = cpu_per_lifecycle(results, LAMINA), cpu_per_lifecycle(results, CINDER)
    add("CPU-seconds per create+delete, all service procs",
        None if cpu_l is None else cpu_l * 1000.0, "ms", 15, "lower",
        None if cpu_c is None else cpu_c * 1000.0)
    sizes = {}
    for setup in (LAMINA, CINDER):
        for r in results.rows:
            if r["setup"] == setup and r.get("key", "").startswith("detail_p50_"):
                sizes.setdefault(setup, {})[int(r["key"].rsplit("_", 1)[1])] = r["value"]
    lam, cin = sizes.get(LAMINA, {}), sizes.get(CINDER, {})
    main = 100000 if 100000 in lam or not lam else max(lam)
    cin_text = None
    if main not in cin and cin:
        cin_text = "(%s at %s)" % (fmt(cin[max(cin)], "ms"), "{:,}".format(max(cin)))
    add("GET /volumes/detail?limit=1000 p50 among %s (MariaDB)" % "{:,}".format(main),
        lam.get(main), "ms", 50 if main >= 100000 else None, "lower", cin.get(main),
        cinder_text=cin_text)
    for size in sorted((set(lam) & set(cin)) - {main}):
        add("  same among %s" % "{:,}".format(size), lam[size], "ms", None, "lower",
            cin[size])
    sched, pools = _scheduler_row(results)
    add("scheduler decision at %s pools (place() p50, %s)" % (
        "{:,}".format(pools or SCHEDULER_POOLS), sched["setup"] if sched else "not run"),
        sched and sched["value"], "ms", 2 if (pools or SCHEDULER_POOLS) >= 10000 else None,
        "lower", cinder_text="-")
    lines.append(("attach (connection_info) and snapshot create p50",
                  "see bench.attach / bench.actions", "<= 50 ms", "", "-", "-"))
    add("API under 64 concurrent clients: p99 of POST /volumes", value(LAMINA, "post64_p99"),
        "ms", 100, "lower", value(CINDER, "post64_p99"))

    headers = ("figure", "Lamina deployed", "target", "met", "Cinder 29", "ratio L/C")
    widths = [max([len(h)] + [len(str(line[i])) for line in lines])
              for i, h in enumerate(headers)]
    out = ["Issue 14's figures: Lamina deployed (Keystone, RabbitMQ, MariaDB) against its "
           "targets and real Cinder 29 (same run, broker, database, Keystone, client)",
           " | ".join(h.ljust(w) for h, w in zip(headers, widths)),
           "-+-".join("-" * w for w in widths)]
    for line in lines:
        out.append(" | ".join(str(c).ljust(w) for c, w in zip(line, widths)))
    notes = []
    for setup in (LAMINA, CINDER):
        tp = results.details.get("create_throughput/%s" % setup)
        if tp:
            notes.append("%s: %d volumes created/deleted by %d clients" % (
                setup, tp["count"], tp["threads"]))
        own = results.details.get("counts/%s" % setup)
        if own:
            notes.append("%s's own counts: %s" % (setup, own))
    failed = sorted({e["setup"] for e in results.errors if e["setup"] in (LAMINA, CINDER)})
    for setup in failed:
        notes.append("%s: %s" % (setup, "; ".join(
            "%s failed: %s" % (e["benchmark"], e["error"][:300])
            for e in results.errors if e["setup"] == setup)))
    notes.append("ratio = Lamina / Cinder (above 1 is better for rates, below 1 for times "
                 "and CPU); CPU: the set-up's own processes in the create and delete phases "
                 "(warm-up included) per volume, database, broker and Keystone apart")
    return "\n".join(out + ["  " + n for n in notes])


def run_at_commit(rev, argv):
    """Re-run this command on a snapshot of commit `rev` (the current bench/ code)."""
    from bench.common import RESULTS_DIR

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = subprocess.run(["git", "rev-parse", rev], cwd=repo, check=True, text=True,
                            capture_output=True).stdout.strip()
    snap = tempfile.mkdtemp(prefix="lamina-bench-src-")
    try:
        archive = subprocess.Popen(["git", "archive", commit], cwd=repo,
                                   stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", snap], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise SystemExit("git archive %s failed" % commit)
        shutil.rmtree(os.path.join(snap, "bench"), ignore_errors=True)
        shutil.copytree(os.path.join(repo, "bench"), os.path.join(snap, "bench"),
                        ignore=shutil.ignore_patterns("results", "__pycache__"))
        print("Measuring commit %s (snapshot in %s)" % (commit[:12], snap), flush=True)
        env = dict(os.environ, PYTHONPATH=snap, LAMINA_BENCH_RESULTS=RESULTS_DIR,
                   LAMINA_BENCH_COMMIT=commit)
        return subprocess.call([sys.executable, "-m", "bench.run"] + argv, cwd=snap, env=env)
    finally:
        shutil.rmtree(snap, ignore_errors=True)


def _without_at_commit(argv):
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--at-commit":
            skip = True
        elif not arg.startswith("--at-commit="):
            out.append(arg)
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.at_commit:
        return run_at_commit(args.at_commit, _without_at_commit(argv))
    quiet_logging_in_process()
    results = Results({k: v for k, v in vars(args).items()})
    stamp = results.started.strftime("%Y%m%dT%H%M%S")
    workdir = args.workdir or tempfile.mkdtemp(prefix="lamina-bench-")
    t0 = time.perf_counter()
    print("Lamina benchmarks%s: %s; set-ups %s" % (" (quick)" if args.quick else "",
                                                   ", ".join(args.only),
                                                   ", ".join(args.targets)), flush=True)
    try:
        if "scheduler" in args.only:
            for db_kind in args.scheduler_dbs:
                print("\n== scheduler decision time, %s ==" % db_kind, flush=True)
                _step(results, "scheduler", db_kind, functools.partial(
                    scheduler_bench.run, results, db_kind, args.pools, args.scheduler_samples,
                    os.path.join(workdir, "scheduler"), profile=args.profile, stamp=stamp))
        if "probes" in args.only:
            print("\n== probes ==", flush=True)
            _step(results, "probes", "in-process", functools.partial(
                probes.run, results, os.path.join(workdir, "probes"),
                detail_rows=10000 if args.quick else 100000))
        if "roundtrips" in args.only:
            print("\n== SQL statements and commits per create and delete ==", flush=True)
            _step(results, "round trips", "in-process", functools.partial(
                roundtrips.run, results, volumes=10 if args.quick else 30))
        for name in args.targets:
            run_target(name, args, results, workdir, stamp)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        results.detail("wall_clock_s", time.perf_counter() - t0)
        path = results.write()
    print("\n" + results.table())
    print("\n" + issue_table(results))
    if results.errors:
        print("\n%d benchmark(s) failed:" % len(results.errors))
        for e in results.errors:
            print("  %s on %s: %s" % (e["benchmark"], e["setup"], e["error"]))
    print("\nTook %.0f s. Figures written to %s" % (time.perf_counter() - t0, path))
    # The reference (Cinder) may not install or run on every machine: its errors are
    # recorded and printed above, and fail nothing.
    reference = {n for n, cls in TARGETS.items() if getattr(cls, "reference", False)}
    return 1 if [e for e in results.errors if e["setup"] not in reference] else 0


if __name__ == "__main__":
    sys.exit(main())
