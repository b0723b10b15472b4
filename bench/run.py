"""Run the benchmarks and print their figures; also write them to bench/results/<time>.json.

    .venv/bin/python -m bench.run                    # everything (about 5 minutes on 2 cores)
    .venv/bin/python -m bench.run --quick            # small smoke run of everything
    .venv/bin/python -m bench.run --only scheduler   # one benchmark
    .venv/bin/python -m bench.run --only create,delete --targets deployed --profile

Benchmarks: create (create->available throughput), delete (delete throughput), latency
(single volume, unloaded), burst (latency inside a burst), detail (GET /volumes/detail with
many rows), scheduler (decision time with many pools), probes (one in-process measurement
per bottleneck the profiles found; see bench/probes.py). Set-ups: embedded (in-process Stack),
aio (lamina-aio subprocess), deployed (processes on RabbitMQ + MariaDB); see bench/targets.py.
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

from bench import lifecycle, listing, probes, scheduler_bench
from bench.common import CpuMeter, Results, quiet_logging_in_process
from bench.profiling import PySpy
from bench.targets import DESCRIPTIONS, TARGETS

BENCHMARKS = ("create", "delete", "latency", "burst", "detail", "scheduler", "probes")
LIFECYCLE = ("create", "delete", "latency", "burst", "detail")


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
    p.add_argument("--targets", default=",".join(TARGETS),
                   help="comma-separated set-ups for the API benchmarks: %s"
                        % ", ".join(TARGETS))
    p.add_argument("--volumes", type=int, help="volumes created/deleted (default 1000)")
    p.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients (16)")
    p.add_argument("--latency-samples", type=int, help="unloaded samples (default 100)")
    p.add_argument("--burst", type=int, help="burst size (default 50)")
    p.add_argument("--detail-sizes", type=_ints,
                   help="volumes in the DB for the detail benchmark (default 10000,100000)")
    p.add_argument("--detail-requests", type=int, help="timed detail requests (default 20)")
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
                "pools": ([10, 1000, 10000], [10, 1000]), "scheduler_samples": (200, 30)}
    for key, (full, small) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, small if quick else full)
    args.only = _names(args.only, BENCHMARKS, "benchmark")
    args.targets = _names(args.targets, tuple(TARGETS), "target")
    args.scheduler_dbs = _names(args.scheduler_dbs, ("sqlite", "mysql", "postgresql"),
                                "database")
    return args


@contextlib.contextmanager
def phase(target, label, args, results, stamp):
    """Account the CPU each process uses (and MariaDB connections opened) during a phase;
    py-spy the services too with --profile."""
    pids = dict(target.pids())
    if os.getpid() not in pids.values():
        pids["bench client"] = os.getpid()
    conns = getattr(target, "db_connections", None)
    conns0 = conns() if conns else None
    with PySpy(target.pids(), "%s-%s" % (target.name, label), stamp, enabled=args.profile,
               gil_only=not args.profile_waits):
        with CpuMeter(pids) as cpu:
            yield
    print("    " + cpu.line(), flush=True)
    info = cpu.report()
    if conns:
        info["db_connections_opened"] = conns() - conns0
        print("    MariaDB connections opened: %d" % info["db_connections_opened"], flush=True)
    results.detail("cpu/%s/%s" % (target.name, label), info)


def run_target(name, args, results, workdir, stamp):
    wanted = [b for b in LIFECYCLE if b in args.only]
    if not wanted:
        return
    print("\n== %s: %s ==" % (name, DESCRIPTIONS[name]), flush=True)
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
        if "detail" in wanted:
            with phase(target, "detail", args, results, stamp):
                _step(results, "detail page", name, lambda: listing.detail_latency(
                    target, results, args.detail_sizes, args.detail_requests))
        if log0 is not None:
            results.detail("log_bytes/%s" % name, target.log_bytes() - log0)
    finally:
        if len(results.errors) > errors0 and name != "embedded":
            from bench.common import RESULTS_DIR
            from bench.targets import save_logs

            dest = save_logs(target.workdir, os.path.join(
                RESULTS_DIR, "%s-%s-logs" % (stamp, name)))
            print("  service logs kept in %s" % dest, flush=True)
        target.stop()


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
        for name in args.targets:
            run_target(name, args, results, workdir, stamp)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        results.detail("wall_clock_s", time.perf_counter() - t0)
        path = results.write()
    print("\n" + results.table())
    if results.errors:
        print("\n%d benchmark(s) failed:" % len(results.errors))
        for e in results.errors:
            print("  %s on %s: %s" % (e["benchmark"], e["setup"], e["error"]))
    print("\nTook %.0f s. Figures written to %s" % (time.perf_counter() - t0, path))
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
