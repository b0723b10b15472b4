"""Faults survived with nothing lost (issue 13): real lamina-api, -scheduler and two
lamina-volume processes (file back ends) on a RabbitMQ node and a MariaDB server of the
test's own (tests/integration/private_services.py; the machine's shared ones are never
touched). Three bounded runs of 500 write operations each (create, delete, extend, snapshot
create and delete) from a few client threads through the HTTP API:

- RabbitMQ restarted twice mid-burst (once stopped cleanly, once its Erlang VM killed -9);
- MariaDB restarted twice mid-burst (SIGTERM, then kill -9);
- kill -9 of a random service (api, scheduler, a volume service) every few seconds, each
  started again at once.

Every request must be answered 2xx, 4xx or 503 (503s while the database is away carry
Retry-After); a client timeout is a hang and fails the run, as does any other 5xx. A request
to an API that is down (connection refused, or cut because that API was killed under it) is
not an answer: it is counted apart and sent again. After each run, waited for on conditions:
no volume or snapshot in a transitional status, no workers row left, each back end's
directory holds exactly the storage the database holds, and `lamina-manage quota check`
finds nothing. The figures are printed (pytest -s) and kept in docs/testing.md."""

import collections
import os
import random
import subprocess
import threading
import time

import pymysql
import pytest
import requests

from tests.integration import cluster, private_services, scenarios

pytestmark = pytest.mark.integration

OPS_PER_RUN = 500
CLIENT_THREADS = 4
# a request answered later than this is a hang (a RabbitMQ restart takes ~6 s)
CLIENT_TIMEOUT = 45
# statuses an operation passes through; a resource left in one of them is half-done
STABLE_VOLUME = {"available", "in-use", "error", "error_extending", "error_deleting",
                 "error_restoring", "error_managing"}
STABLE_SNAPSHOT = {"available", "error", "error_deleting"}


class Figures:
    def __init__(self, name):
        self.name = name
        self.lock = threading.Lock()
        self.codes = collections.Counter()
        self.ops = collections.Counter()
        self.failures = []          # hangs and 5xx other than 503: the run fails
        self.refused = 0            # the API was down: sent again
        self.cut_by_kill = 0        # the API was killed under the request: sent again
        self.missing_retry_after = 0
        self.faults = []            # (what, outage seconds, recovery seconds)
        self.started = time.monotonic()
        self.elapsed = 0.0

    def report(self):
        lines = ["fault run %r: %d write ops (%s) in %.1f s, answers by status %s, "
                 "503s %d, API down (refused %d, cut by its kill %d), failures %d"
                 % (self.name, sum(self.ops.values()), dict(self.ops), self.elapsed,
                    dict(sorted(self.codes.items())), self.codes.get(503, 0), self.refused,
                    self.cut_by_kill, len(self.failures))]
        for what, outage, recovery in self.faults:
            lines.append("  %s: away %.1f s%s" % (what, outage, "" if recovery is None else
                                                  ", a new volume available %.1f s after it "
                                                  "was back" % recovery))
        return "\n".join(lines)


class Client:
    """One client thread's HTTP session; an API restart is seen as a refused connection."""

    def __init__(self, c, figures, api_state):
        self.c, self.figures, self.api_state = c, figures, api_state
        self.http = requests.Session()
        self.http.headers["X-Auth-Token"] = "admin:p1"

    def send(self, method, path, body=None):
        url = "%s/v3/p1%s" % (self.c.url, path)
        deadline = time.monotonic() + 120
        while True:
            generation = self.api_state["generation"]
            try:
                resp = self.http.request(method, url, json=body,
                                         timeout=(3, CLIENT_TIMEOUT))
            except requests.ReadTimeout:
                with self.figures.lock:
                    self.figures.failures.append("hang: %s %s" % (method, path))
                return None
            except requests.ConnectionError as exc:
                if self.api_state["generation"] == generation and self.api_state["up"] \
                        and "refused" not in str(exc):
                    with self.figures.lock:
                        self.figures.failures.append("connection cut with the API up: %s %s "
                                                     "(%s)" % (method, path, exc))
                    return None
                with self.figures.lock:
                    if "refused" in str(exc):
                        self.figures.refused += 1
                    else:
                        self.figures.cut_by_kill += 1
                if time.monotonic() > deadline:
                    with self.figures.lock:
                        self.figures.failures.append("API never back: %s %s" % (method, path))
                    return None
                time.sleep(0.2)
                continue
            with self.figures.lock:
                self.figures.codes[resp.status_code] += 1
                if resp.status_code >= 500 and resp.status_code != 503:
                    self.figures.failures.append("%d: %s %s %s" % (
                        resp.status_code, method, path, resp.text[:300]))
                if resp.status_code == 503 and "Retry-After" not in resp.headers and \
                        "database" in resp.text:
                    self.figures.missing_retry_after += 1
            return resp


def client_loop(client, counter, rng):
    """Write operations until the run has OPS_PER_RUN of them, on volumes this thread made.
    Sent without looking first: one on a volume still busy with the last is refused with a
    400, which is an answer like any other."""
    volumes = {}      # id -> size
    snapshots = {}    # id -> volume id
    while True:
        with counter["lock"]:
            if counter["ops"] >= OPS_PER_RUN:
                return
            counter["ops"] += 1
        if len(volumes) < 3:
            kind = "create"
        else:
            kind = rng.choices(["create", "delete", "extend", "snapshot", "snapshot_delete"],
                               [20, 20, 20, 20, 20 if snapshots else 0])[0]
        with client.figures.lock:
            client.figures.ops[kind] += 1
        if kind == "create":
            resp = client.send("POST", "/volumes", {"volume": {"size": 1}})
            if resp is not None and resp.status_code == 202:
                volumes[resp.json()["volume"]["id"]] = 1
            continue
        if kind == "snapshot_delete":
            snapshot_id = rng.choice(sorted(snapshots))
            resp = client.send("DELETE", "/snapshots/" + snapshot_id)
            if resp is not None and resp.status_code in (202, 404):
                snapshots.pop(snapshot_id)
            continue
        volume_id = rng.choice(sorted(volumes))
        if kind == "delete":
            # its snapshots go first (a volume with snapshots is refused)
            mine = [s for s, v in snapshots.items() if v == volume_id]
            if mine:
                resp = client.send("DELETE", "/snapshots/" + mine[0])
                if resp is not None and resp.status_code in (202, 404):
                    snapshots.pop(mine[0])
                continue
            resp = client.send("DELETE", "/volumes/" + volume_id)
            if resp is not None and resp.status_code in (202, 404):
                volumes.pop(volume_id)
        elif kind == "extend":
            resp = client.send("POST", "/volumes/%s/action" % volume_id,
                               {"os-extend": {"new_size": volumes[volume_id] + 1}})
            if resp is not None and resp.status_code == 202:
                volumes[volume_id] += 1
            elif resp is not None and resp.status_code == 400 and "extended" in resp.text:
                # an extend this thread thought refused had gone through
                shown = client.send("GET", "/volumes/" + volume_id)
                if shown is not None and shown.status_code == 200:
                    volumes[volume_id] = shown.json()["volume"]["size"]
        else:
            resp = client.send("POST", "/snapshots", {"snapshot": {"volume_id": volume_id}})
            if resp is not None and resp.status_code == 202:
                snapshots[resp.json()["snapshot"]["id"]] = volume_id


def burst(c, figures, fault, api_state):
    counter = {"lock": threading.Lock(), "ops": 0}
    clients = [threading.Thread(target=client_loop, name="client%d" % i,
                                args=(Client(c, figures, api_state), counter,
                                      random.Random(1000 + i)))
               for i in range(CLIENT_THREADS)]
    for thread in clients:
        thread.start()
    fault(counter, lambda: not any(t.is_alive() for t in clients))
    for thread in clients:
        thread.join(timeout=300)
        assert not thread.is_alive(), "a client thread did not finish"
    figures.elapsed = time.monotonic() - figures.started


def wait_ops(counter, count, finished):
    scenarios.wait_for(lambda: counter["ops"] >= count or finished(), timeout=120,
                       interval=0.05)


def probe(c, started):
    """Seconds from `started` until a new volume reaches available (the stack works again)."""
    def create():
        try:
            resp = c.request("POST", "/volumes", {"volume": {"size": 1}})
        except requests.RequestException:
            return None
        return resp.json()["volume"]["id"] if resp.status_code == 202 else None

    volume_id = scenarios.wait_for(create, timeout=120, interval=0.3)

    def available():
        status = c.request("GET", "/volumes/" + volume_id).json()["volume"]["status"]
        assert status != "error", "probe volume failed: %s" % c.request(
            "GET", "/messages?resource_uuid=" + volume_id, version="3.3").text
        return status == "available"

    scenarios.wait_for(available, timeout=120, interval=0.2)
    return time.monotonic() - started


# --- the checks after a run ---------------------------------------------------------------------

def db_rows(db_url, sql):
    rest = db_url.split("://", 1)[1].split("?")[0]
    hostport, name = rest.split("@", 1)[1].split("/", 1)
    host, port = hostport.split(":")
    conn = pymysql.connect(host=host, port=int(port), user="root", password="", database=name)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def settled(c):
    volumes = db_rows(c.db_url, "SELECT id, status FROM volumes WHERE deleted = 0")
    snapshots = db_rows(c.db_url, "SELECT id, status FROM snapshots WHERE deleted = 0")
    busy = [r for r in volumes if r[1] not in STABLE_VOLUME] + \
        [r for r in snapshots if r[1] not in STABLE_SNAPSHOT]
    return busy


def check_nothing_lost(c, figures):
    try:
        scenarios.wait_for(lambda: not settled(c), timeout=90, interval=0.5)
    except AssertionError:
        raise AssertionError("left in a transitional status: %s\n%s" % (settled(c), c.logs()))
    print(figures.report())
    workers = db_rows(c.db_url, "SELECT resource_type, resource_id, operation, host "
                                "FROM workers")
    assert workers == (), "operations still owned: %s" % (workers,)
    volumes = db_rows(c.db_url, "SELECT id, host, status FROM volumes WHERE deleted = 0")
    snapshots = db_rows(c.db_url, "SELECT s.id, v.host FROM snapshots s JOIN volumes v ON "
                                  "v.id = s.volume_id WHERE s.deleted = 0")
    for name in c.volume_hosts:
        pool_dir = os.path.join(c.workdir, name, "volumes", "pool0")
        on_disk = {f for f in os.listdir(pool_dir) if not f.startswith(".")}
        prefix = c.host(name) + "@"
        in_db_volumes = {"volume-" + v[0] for v in volumes if (v[1] or "").startswith(prefix)}
        with_storage = {"volume-" + v[0] for v in volumes
                        if (v[1] or "").startswith(prefix) and v[2] not in ("error",)}
        in_db_snapshots = {"snapshot-" + s[0] for s in snapshots
                           if (s[1] or "").startswith(prefix)}
        orphans = on_disk - in_db_volumes - in_db_snapshots
        assert not orphans, "storage no database row holds on %s: %s" % (name, orphans)
        lost = with_storage - on_disk
        assert not lost, "volumes without their storage on %s: %s" % (name, lost)
    check = subprocess.run([os.path.join(cluster.BIN, "lamina-manage"), "--config-file",
                            os.path.join(c.workdir, "api.conf"), "quota", "check"],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    errors = collections.Counter(v[2] for v in volumes)
    print("  after it: volumes by status %s, snapshots %d, quota check: %s"
          % (dict(errors), len(snapshots), check.stdout.strip()))
    assert not figures.failures, figures.failures[:10]
    assert figures.missing_retry_after == 0


# --- the deployment -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("faults")
    rabbit = private_services.PrivateRabbit(workdir)
    mariadb = private_services.PrivateMariaDB(workdir)
    rabbit.start()
    mariadb.start()
    c = cluster.Cluster(workdir / "cluster", volume_hosts={"node1": {}, "node2": {}},
                        rabbit=rabbit.address, database_url=mariadb.create_database(),
                        # a create queued while the scheduler restarts is not failed early
                        scheduler_opts={"scheduler_stuck_timeout": "15"},
                        # a request lost with a killed service is ended in seconds, not minutes
                        conf_defaults={"volume_operation_timeout": "10"})
    try:
        c.start()
        yield c, rabbit, mariadb
    finally:
        c.stop()
        rabbit.destroy()
        mariadb.destroy()


def restart_twice(server, label, c, figures, away_until=None):
    """Restart `server` at the 120th and the 320th operation: stopped cleanly the first
    time, killed -9 the second; started again at once, or when away_until(figures) holds
    (bounded), so that the clients meet the outage."""
    def fault(counter, finished):
        for number, (at, kill) in enumerate(((120, False), (320, True)), 1):
            wait_ops(counter, at, finished)
            started = time.monotonic()
            server.stop(kill=kill)
            if away_until is not None:
                try:
                    scenarios.wait_for(lambda: away_until(figures) or finished(), timeout=15,
                                       interval=0.05)
                except AssertionError:
                    pass  # the run's own assertions say what was not seen
            server.start()
            back = time.monotonic()
            figures.faults.append(("%s restart %d (%s)" % (label, number,
                                                         "kill -9" if kill else "clean"),
                                   back - started, probe(c, back)))
    return fault


def test_rabbitmq_restarted_twice_mid_burst(deployment):
    c, rabbit, _ = deployment
    figures = Figures("RabbitMQ restarted twice")
    api_state = {"generation": 0, "up": True}
    burst(c, figures, restart_twice(rabbit, "RabbitMQ", c, figures), api_state)
    check_nothing_lost(c, figures)


def test_mariadb_restarted_twice_mid_burst(deployment):
    c, _, mariadb = deployment
    figures = Figures("MariaDB restarted twice")
    api_state = {"generation": 0, "up": True}
    seen = {"503": 0}

    def clients_met_the_outage(figures):
        # each outage lasts until the clients have been answered 503 (at most 15 s)
        if figures.codes.get(503, 0) > seen["503"]:
            seen["503"] = figures.codes[503]
            return True
        return False

    burst(c, figures, restart_twice(mariadb, "MariaDB", c, figures, clients_met_the_outage),
          api_state)
    check_nothing_lost(c, figures)
    assert figures.codes.get(503, 0) > 0, "no 503 while the database was away"


def test_kill9_random_service_every_few_seconds(deployment):
    c, _, _ = deployment
    figures = Figures("kill -9 of a random service")
    api_state = {"generation": 0, "up": True}
    rng = random.Random(13)
    names = ["api", "scheduler0", *c.volume_hosts]
    kills = collections.Counter()

    def victims():
        while True:  # each service once per round, in a random order
            yield from rng.sample(names, len(names))

    def fault(counter, finished):
        for name in victims():
            if finished() and set(kills) == set(names):
                return  # the burst is over and each service was killed at least once
            kills[name] += 1
            started = time.monotonic()
            if name == "api":
                api_state["up"] = False
                api_state["generation"] += 1
            c.procs[name].kill9()
            if name == "api":
                proc = c._proc("api", "lamina-api", os.path.join(c.workdir, "api.conf"))
                c.procs["api"] = proc.start()
                cluster.wait_http(c.url + "/", proc=proc.popen, log=proc.log)
                api_state["up"] = True
            elif name.startswith("scheduler"):
                c.start_scheduler(0)
            else:
                c.restart_volume(name)
            if name == "api":
                figures.faults.append(("kill -9 api", time.monotonic() - started, None))
            # every few seconds, while the clients run
            deadline = time.monotonic() + rng.uniform(2, 4)
            while time.monotonic() < deadline and not finished():
                time.sleep(0.1)

    burst(c, figures, fault, api_state)
    c.wait_services("lamina-volume", len(c.volume_hosts))
    c.wait_services("lamina-scheduler", 1)
    print("kills: %s" % dict(kills))
    check_nothing_lost(c, figures)
    assert set(kills) == set(names), kills
