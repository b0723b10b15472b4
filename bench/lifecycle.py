"""Volume lifecycle through the API: create->available throughput, single-volume latency
(unloaded and inside a burst) and delete throughput.

Clients poll the way a careful Cinder client does: one list request per interval
(`GET /volumes?status=creating`) for many volumes, not one GET per volume, so the poller does
not dominate what is measured. Server-side figures come from the volumes' own timestamps
(created_at is set when the API inserts the row, updated_at by the last status change), which
no poll interval blurs."""

import concurrent.futures
import threading
import time

from bench.common import parse_time, summary_ms, wait_until

TARGET_THROUGHPUT = 150.0  # volumes/s, deployed (issues 2 and 14)
TARGET_P50_MS = 20.0  # unloaded create->available p50 (issues 2 and 14)
TARGET_DELETE = 300.0  # volumes/s, deployed (issue 14)
TARGET_CONCURRENT_P99_MS = 100.0  # POST /volumes p99 under 64 concurrent clients (issue 14)
WARM_UP = 10  # volumes created and deleted before the create benchmark (its CPU phase)


def _target(target, value):
    """The issue's target for Lamina's set-ups; none for the reference (Cinder)."""
    return None if getattr(target, "reference", False) else value


def _deployed_target(target, value):
    """Targets the issue sets for the deployed Lamina only."""
    return value if target.name == "deployed" else None


def _count(client, status, limit=1000):
    """How many volumes of the project have `status`, and their ids (`limit` caps it)."""
    resp = client.get("/volumes?status=%s&limit=%d" % (status, limit))
    if resp.status_code != 200:
        raise RuntimeError("list %s: %s %s" % (status, resp.status_code, resp.text[:200]))
    return {v["id"] for v in resp.json()["volumes"]}


def _stuck(client, status):
    """Where the volumes left in `status` are: scheduled (a host) or not, by host."""
    hosts = {}
    for v in client.list_ids(status=status, detail=True).values():
        host = v.get("os-vol-host-attr:host") or "(not scheduled)"
        hosts[host] = hosts.get(host, 0) + 1
    return hosts


def _server_side(volumes):
    """create->available seconds per volume from its timestamps, and the span of the run.

    Nothing when the database keeps whole seconds only (MariaDB DATETIME without fractional
    digits): those figures would be noise."""
    lat, first, last = [], None, None
    volumes = list(volumes)
    if all(v["created_at"].endswith(".000000") for v in volumes):
        return [], None, None
    for v in volumes:
        if v["status"] != "available" or not v.get("updated_at"):
            continue
        created, done = parse_time(v["created_at"]), parse_time(v["updated_at"])
        lat.append(done - created)
        first = created if first is None else min(first, created)
        last = done if last is None else max(last, done)
    return lat, first, last


def warm_up(client, count=WARM_UP):
    ids = [client.create_volume(1, "warm-%d" % i)["id"] for i in range(count)]
    wait_until(lambda: not _count(client, "creating"), 120, what="warm-up creates")
    for vid in ids:
        client.delete_volume(vid)
    wait_until(lambda: not client.list_ids(), 120, what="warm-up deletes")


def _parallel(fn, items, threads):
    """Run fn(item) on `threads` threads; returns the futures (in item order)."""
    pool = concurrent.futures.ThreadPoolExecutor(threads)
    futures = [pool.submit(fn, item) for item in items]
    pool.shutdown(wait=False)
    return futures


def create_throughput(target, results, count, threads, poll_interval=0.05, setup_only=False):
    """Create `count` 1 GiB volumes from `threads` concurrent clients; time until all are
    available. Returns their ids (for the delete benchmark)."""
    client = target.client("bench-create")
    warm_up(client)
    accept = []

    def post(i):
        t = time.perf_counter()
        vid = client.create_volume(1, "tp-%d" % i)["id"]
        accept.append(time.perf_counter() - t)
        return vid

    polls = 0
    t0 = time.perf_counter()
    futures = _parallel(post, range(count), threads)
    posted_at = None
    deadline = time.monotonic() + max(180, count * 0.3)
    while True:
        all_posted = all(f.done() for f in futures)
        if all_posted and posted_at is None:
            posted_at = time.perf_counter()
        creating = _count(client, "creating")
        polls += 1
        if all_posted and not creating:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("%d volumes still creating after %.0f s: %s" % (
                len(creating), time.perf_counter() - t0, _stuck(client, "creating")))
        time.sleep(poll_interval)
    elapsed = time.perf_counter() - t0
    ids = [f.result() for f in futures]
    volumes = client.list_ids(detail=True)
    statuses = {}
    for vid in ids:
        status = volumes.get(vid, {}).get("status", "missing")
        statuses[status] = statuses.get(status, 0) + 1
    if setup_only:
        return ids
    server_lat, first, last = _server_side([volumes[v] for v in ids if v in volumes])
    setup = target.name
    target_tp = _deployed_target(target, TARGET_THROUGHPUT)
    results.add("create throughput", setup, "%d vols, %d clients: vol/s" % (count, threads),
                count / elapsed, "vol/s", target_tp, better="higher",
                note="first POST to last volume seen available by the poller",
                key="create_tp")
    if first is not None:
        results.add("create throughput", setup, "same, server timestamps: vol/s",
                    len(server_lat) / (last - first), "vol/s", target_tp, better="higher",
                    note="first created_at to last updated_at")
    results.add("create throughput", setup, "POST accept rate", count / (posted_at - t0),
                "req/s")
    acc = summary_ms(accept)
    results.add("create throughput", setup, "POST /volumes p50 under load", acc["p50"], "ms")
    results.add("create throughput", setup, "POST /volumes p99 under load", acc["p99"], "ms")
    srv = summary_ms(server_lat)
    if srv:
        results.add("create throughput", setup, "create->available p50 under load",
                    srv["p50"], "ms", note="server timestamps")
    results.add("create throughput", setup, "not available at the end",
                count - statuses.get("available", 0), "vols", 0)
    results.detail("create_throughput/%s" % setup,
                   {"count": count, "threads": threads, "elapsed_s": elapsed,
                    "warm_up": WARM_UP,
                    "post_phase_s": posted_at - t0, "polls": polls, "statuses": statuses,
                    "accept_ms": acc, "server_latency_ms": srv})
    return ids


def delete_throughput(target, results, ids, threads, poll_interval=0.05):
    client = target.client("bench-create")
    t0 = time.perf_counter()
    futures = _parallel(client.delete_volume, ids, threads)
    deadline = time.monotonic() + max(180, len(ids) * 0.3)
    polls = 0
    while True:
        all_sent = all(f.done() for f in futures)
        deleting = _count(client, "deleting")
        polls += 1
        if all_sent and not deleting:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("%d volumes still deleting after %.0f s: %s" % (
                len(deleting), time.perf_counter() - t0, _stuck(client, "deleting")))
        time.sleep(poll_interval)
    elapsed = time.perf_counter() - t0
    for f in futures:
        f.result()
    left = client.list_ids(detail=True)
    results.add("delete throughput", target.name, "%d vols, %d clients: vol/s"
                % (len(ids), threads), len(ids) / elapsed, "vol/s",
                _deployed_target(target, TARGET_DELETE), better="higher",
                note="first DELETE to last volume gone", key="delete_tp")
    results.add("delete throughput", target.name, "left behind (error_deleting, ...)",
                len(left), "vols", 0)
    results.detail("delete_throughput/%s" % target.name,
                   {"count": len(ids), "elapsed_s": elapsed, "polls": polls,
                    "left": sorted({v["status"] for v in left.values()})})


def _delete_and_wait(client, ids):
    for vid in ids:
        client.delete_volume(vid)
    wait_until(lambda: not client.list_ids(), 300, what="volumes to be deleted")


def latency_unloaded(target, results, samples, poll_interval=0.005):
    """One volume at a time: POST, then GET it every `poll_interval` until available."""
    client = target.client("bench-latency")
    observed, finished, ids = [], [], []
    for i in range(samples + 3):
        t0 = time.perf_counter()
        vid = client.create_volume(1, "lat-%d" % i)["id"]
        deadline = time.monotonic() + 120
        while True:
            volume = client.get("/volumes/" + vid).json()["volume"]
            if volume["status"] != "creating":
                break
            if time.monotonic() > deadline:
                raise RuntimeError("volume %s still creating after 120 s" % vid)
            time.sleep(poll_interval)
        elapsed = time.perf_counter() - t0
        ids.append(vid)
        if volume["status"] != "available":
            raise RuntimeError("volume %s went %s" % (vid, volume["status"]))
        if i < 3:
            continue  # warm-up
        observed.append(elapsed)
        finished.append(volume)
    obs, srv = summary_ms(observed), summary_ms(_server_side(finished)[0])
    results.add("latency unloaded", target.name, "create->available p50 (client)", obs["p50"],
                "ms", _target(target, TARGET_P50_MS), note="poll GET /volumes/{id} every 5 ms",
                key="create_p50")
    results.add("latency unloaded", target.name, "create->available p99 (client)", obs["p99"],
                "ms")
    if srv:
        results.add("latency unloaded", target.name, "create->available p50 (server)",
                    srv["p50"], "ms", _target(target, TARGET_P50_MS),
                    note="updated_at - created_at")
        results.add("latency unloaded", target.name, "create->available p99 (server)",
                    srv["p99"], "ms")
    results.detail("latency_unloaded/%s" % target.name, {"client_ms": obs, "server_ms": srv})
    _delete_and_wait(client, ids)


def latency_burst(target, results, size, poll_interval=0.01):
    """`size` creates sent at once (one thread each); a single poller lists the creating
    volumes and notes when each one leaves the list."""
    client = target.client("bench-burst")
    barrier = threading.Barrier(size + 1)
    sent, accepted, done = {}, {}, {}
    lock = threading.Lock()

    def post(i):
        barrier.wait()
        t = time.perf_counter()
        vid = client.create_volume(1, "burst-%d" % i)["id"]
        with lock:
            sent[vid], accepted[vid] = t, time.perf_counter()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(size)]
    for t in threads:
        t.start()
    barrier.wait()
    deadline = time.monotonic() + 300
    while len(done) < size:
        t_send = time.perf_counter()
        creating = _count(client, "creating")
        t_recv = time.perf_counter()
        with lock:
            for vid, t_acc in accepted.items():
                # Only a poll sent after the POST answered can tell that the row is done.
                if vid not in done and t_acc < t_send and vid not in creating:
                    done[vid] = t_recv
        if time.monotonic() > deadline:
            raise RuntimeError("burst: %d of %d done after the deadline" % (len(done), size))
        time.sleep(poll_interval)
    for t in threads:
        t.join()
    volumes = client.list_ids(detail=True)
    observed = [done[v] - sent[v] for v in done]
    server_lat, first, last = _server_side(volumes.values())
    obs, srv = summary_ms(observed), summary_ms(server_lat)
    bad = [v["status"] for v in volumes.values() if v["status"] != "available"]
    results.add("latency in burst", target.name, "burst of %d: p50 (client)" % size,
                obs["p50"], "ms", note="POST sent to first list poll without it")
    results.add("latency in burst", target.name, "burst of %d: p99 (client)" % size,
                obs["p99"], "ms")
    if srv:
        results.add("latency in burst", target.name, "burst of %d: p50 (server)" % size,
                    srv["p50"], "ms")
    results.add("latency in burst", target.name, "burst of %d: all done (client)" % size,
                max(observed) * 1000.0, "ms")
    results.detail("latency_burst/%s" % target.name,
                   {"client_ms": obs, "server_ms": srv, "not_available": bad,
                    "server_span_ms": None if first is None else (last - first) * 1000.0})
    _delete_and_wait(client, list(volumes))


def post_concurrency(target, results, clients=64, posts_each=2, poll_interval=0.05):
    """`clients` threads POST /volumes at once (a barrier), each `posts_each` times back to
    back: the answer time of every POST (p50, p99, max). Then waits until the volumes are
    available and deletes them (not timed)."""
    client = target.client("bench-concurrent")
    barrier = threading.Barrier(clients)
    answers, ids, errors = [], [], []
    lock = threading.Lock()

    def run(n):
        barrier.wait()
        for j in range(posts_each):
            t = time.perf_counter()
            try:
                vid = client.create_volume(1, "conc-%d-%d" % (n, j))["id"]
            except Exception as exc:  # noqa: BLE001 - counted, the others go on
                with lock:
                    errors.append(repr(exc))
                continue
            took = time.perf_counter() - t
            with lock:
                answers.append(took)
                ids.append(vid)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    span = time.perf_counter() - t0
    acc = summary_ms(answers)
    label = "%d clients x %d POSTs" % (clients, posts_each)
    if acc:
        results.add("concurrent POST", target.name, "%s: p50" % label, acc["p50"], "ms")
        results.add("concurrent POST", target.name, "%s: p99" % label, acc["p99"], "ms",
                    _deployed_target(target, TARGET_CONCURRENT_P99_MS),
                    note="POST /volumes answer time, all clients at once", key="post64_p99")
        results.add("concurrent POST", target.name, "%s: max" % label, acc["max"], "ms")
        results.add("concurrent POST", target.name, "%s: accepted/s" % label,
                    len(answers) / span, "req/s")
    results.add("concurrent POST", target.name, "%s: failed" % label, len(errors), "reqs", 0)
    results.detail("concurrent_post/%s" % target.name,
                   {"clients": clients, "posts_each": posts_each, "answer_ms": acc,
                    "span_s": span, "errors": errors[:10]})
    wait_until(lambda: not _count(client, "creating"), max(180, len(ids) * 0.3),
               interval=poll_interval, what="the concurrent creates")
    _delete_and_wait(client, ids)


class _AtSize:
    """The results of a benchmark run again with many volumes in the database: its figures
    are named after the database's size and carry no target (the issue's targets are for
    the main run; these say how the figures grow)."""

    def __init__(self, results, size):
        self.results = results
        self.label = "%dk vols in the DB" % (size // 1000) if size >= 1000 else "%d" % size

    def add(self, benchmark, setup, figure, value, unit, *args, **kwargs):
        self.results.add("growth", setup, "%s: %s %s" % (self.label, benchmark, figure),
                         value, unit)

    def detail(self, name, value):
        self.results.detail("growth/%s/%s" % (self.label, name), value)


def growth(target, results, size, count=300, threads=16, samples=30):
    """Create throughput, delete throughput and unloaded latency again, with `size`
    volumes of another project in the database (the issue: nothing should degrade more
    than logarithmically with the fleet)."""
    at_size = _AtSize(results, size)
    ids = create_throughput(target, at_size, count, threads)
    delete_throughput(target, at_size, ids, threads)
    latency_unloaded(target, at_size, samples)
