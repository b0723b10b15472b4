"""Real Cinder 29 as a benchmark set-up (`--targets cinder`): the reference the issue's
figures are ratios of.

deploy/cinder-ref/cinder-ref.sh installs PyPI `cinder` 29.0.0 in its own venv
(/var/lib/lamina-cinder-ref/venv) and starts cinder-api (uWSGI, 2 processes x 8 threads),
cinder-scheduler and one cinder-volume serving two back ends (fake1, fake2) with the in-tree
fake driver `cinder.tests.fake_driver.FakeLoggingVolumeDriver`. This set-up gives it what the
`deployed` Lamina gets: a fresh RabbitMQ vhost, a fresh MariaDB database, Lamina's Keystone
(deploy/keystone; keystonemiddleware with memcached), the same users and projects, the same
bench Client with real tokens. It is started fresh and stopped after, like the others; when
Cinder cannot be installed or started, start() raises with the reason and bench.run records it
as the set-up's error.

Cinder makes 5-10 volumes/s here, so the set-up has smaller counts of its own (COUNTS) where
the user gave none; its figures are rates and per-request times, which compare like with like.
"""

import os
import subprocess
import time

import requests
from sqlalchemy import MetaData, Table, create_engine, select

from bench.common import KeystoneAuth, keystone_facts, session_pids

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "deploy", "cinder-ref", "cinder-ref.sh")
BACKENDS = 2
# The counts of the cinder set-up where the command line gave none: (full run, --quick)
COUNTS = {"volumes": (200, 50), "latency_samples": (50, 10),
          "detail_sizes": ([10000, 100000], [1000, 5000]), "detail_requests": (5, 5),
          "concurrent_posts": (2, 1)}


def _running(pid):
    """The process exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _tail(text, lines=25):
    return "\n".join((text or "").strip().splitlines()[-lines:])


class CinderTarget:
    name = "cinder"
    description = ("real Cinder 29: cinder-api (uWSGI) + scheduler + volume (2 fake back "
                   "ends), RabbitMQ, MariaDB, Keystone")
    reference = True  # the targets are Lamina's: none is shown for this set-up
    counts = COUNTS

    def __init__(self, workdir):
        self.workdir = os.path.join(workdir, "cinder")
        self.db_url = None
        self.vhost = None
        self.keystone = None
        self.started = False

    def _script(self, command, timeout, env=None):
        try:
            proc = subprocess.run(["bash", SCRIPT, command], capture_output=True, text=True,
                                  timeout=timeout, env=dict(os.environ, **(env or {})))
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError("cinder-ref.sh %s took more than %d s: %s" % (
                command, timeout, _tail(exc.stderr if isinstance(exc.stderr, str) else
                                        (exc.stderr or b"").decode(errors="replace"))))
        if proc.returncode != 0:
            raise RuntimeError("cinder-ref.sh %s failed (exit %d): %s" % (
                command, proc.returncode, _tail(proc.stderr + proc.stdout)))
        return proc.stdout

    def _env(self):
        return {"CINDER_REF_INSTANCE": self.workdir, "CINDER_REF_PORT": str(self.port),
                "CINDER_REF_DB_URL": self.db_url or "",
                "CINDER_REF_TRANSPORT_URL": "rabbit://guest:guest@%s/%s" % (
                    self._cluster.RABBIT, self.vhost or ""),
                "CINDER_REF_BACKENDS": str(BACKENDS)}

    def start(self):
        from tests.integration import cluster

        self._cluster = cluster
        facts = keystone_facts()  # raises, saying why, when Keystone is down
        t = time.perf_counter()
        self._script("install", timeout=900)
        took = time.perf_counter() - t
        if took > 5:
            print("  installed Cinder 29 in %.0f s" % took, flush=True)
        os.makedirs(self.workdir, exist_ok=True)
        self.port = cluster.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.db_url = cluster.create_database("mysql")
        self.vhost = cluster.create_vhost()
        self.keystone = KeystoneAuth(facts)
        self.started = True
        try:
            self._script("start", timeout=300, env=self._env())
            self._wait_ready()
        except Exception as exc:
            # bench.run records the error and goes on: leave nothing running behind
            try:
                self.stop()
            except Exception as stop_exc:  # noqa: BLE001 - the start's error is the news
                print("  (stopping the failed Cinder: %r)" % stop_exc, flush=True)
            raise RuntimeError("Cinder 29 did not start: %s" % exc) from exc
        return self

    def _admin_get(self, path):
        token, project_id = self.keystone.admin()
        return requests.get("%s/v3/%s%s" % (self.url, project_id, path), timeout=60,
                            headers={"X-Auth-Token": token})

    def _wait_ready(self, timeout=90):
        """Until the scheduler and both back ends are up and the scheduler has both pools
        (the volume service's first stats report)."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            resp = self._admin_get("/os-services")
            if resp.status_code == 200:
                services = resp.json()["services"]
                up = [s for s in services if s["state"] == "up" and s["status"] == "enabled"]
                volumes = [s for s in up if s["binary"] == "cinder-volume"]
                schedulers = [s for s in up if s["binary"] == "cinder-scheduler"]
                pools = self._admin_get("/scheduler-stats/get_pools")
                npools = len(pools.json().get("pools", [])) if pools.status_code == 200 else 0
                seen = "%d scheduler(s), %d volume back end(s) up, %d pool(s)" % (
                    len(schedulers), len(volumes), npools)
                if schedulers and len(volumes) >= BACKENDS and npools >= BACKENDS:
                    return
            else:
                seen = "GET os-services: %s %s" % (resp.status_code, resp.text[:200])
            time.sleep(0.5)
        raise RuntimeError("Cinder not ready after %d s (%s): %s" % (timeout, seen,
                                                                     self.logs()))

    def logs(self, lines=15):
        out = []
        logdir = os.path.join(self.workdir, "log")
        for name in ("api.out", "uwsgi.log", "api.log", "scheduler.log", "volume.log",
                     "volume.out"):
            path = os.path.join(logdir, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text = "".join(f.readlines()[-lines:])
                if text.strip():
                    out.append("== %s ==\n%s" % (name, text))
        return "\n".join(out)

    def _session_leaders(self):
        leaders = {}
        for name in ("api", "scheduler", "volume"):
            path = os.path.join(self.workdir, "run", "%s.pid" % name)
            try:
                with open(path) as f:
                    leaders["cinder-" + name] = int(f.read().strip())
            except (OSError, ValueError):
                pass
        return leaders

    def pids(self):
        """Every Cinder process, by service: uWSGI's master and workers, the scheduler,
        cinder-volume's parent and its child per back end."""
        return {name: session_pids(sid) or [sid]
                for name, sid in self._session_leaders().items()}

    def client(self, project):
        return self.keystone.client(self.url, project)

    def log_bytes(self):
        logdir = os.path.join(self.workdir, "log")
        if not os.path.isdir(logdir):
            return 0
        return sum(os.path.getsize(os.path.join(logdir, n)) for n in os.listdir(logdir))

    def db_connections(self):
        from bench.targets import DeployedTarget

        return DeployedTarget.db_connections(self)

    # --- the detail benchmark's rows, in Cinder's own schema ---------------------------------

    def insert_volumes(self, start, count, project, batch=5000):
        """Insert volumes start..start+count-1 into Cinder's volumes table (as listing
        .insert_volumes does into Lamina's): available, the default type, a host, created_at
        one second apart. Returns their ids in insertion order and the seconds it took."""
        import datetime
        import uuid

        engine = create_engine(self.db_url)
        t0 = time.perf_counter()
        ids = []
        try:
            meta = MetaData()
            volumes = Table("volumes", meta, autoload_with=engine)
            types = Table("volume_types", meta, autoload_with=engine)
            with engine.connect() as conn:
                type_id = conn.execute(select(types.c.id).where(
                    types.c.name == "__DEFAULT__")).scalar_one()
            base = datetime.datetime(2024, 1, 1)
            columns = set(volumes.c.keys())
            for lo in range(start, start + count, batch):
                rows = []
                for i in range(lo, min(lo + batch, start + count)):
                    when = base + datetime.timedelta(seconds=i)
                    vid = str(uuid.uuid4())
                    ids.append(vid)
                    row = {"id": vid, "project_id": project, "user_id": "bench",
                           "display_name": "bulk-%06d" % i, "size": 1,
                           "status": "available", "attach_status": "detached",
                           "availability_zone": "nova", "host": "bench@fake1#fake1",
                           "volume_type_id": type_id, "bootable": False,
                           "multiattach": False, "launched_at": when, "deleted": False,
                           "created_at": when, "updated_at": when, "use_quota": True,
                           "replication_status": "disabled"}
                    rows.append({k: v for k, v in row.items() if k in columns})
                with engine.begin() as conn:
                    conn.execute(volumes.insert(), rows)
        finally:
            engine.dispose()
        return ids, time.perf_counter() - t0

    def delete_inserted(self, project):
        engine = create_engine(self.db_url)
        try:
            volumes = Table("volumes", MetaData(), autoload_with=engine)
            with engine.begin() as conn:
                conn.execute(volumes.delete().where(volumes.c.project_id == project))
        finally:
            engine.dispose()

    def stop(self):
        if not self.started:
            return
        errors = []
        before = [pid for pids in self.pids().values() for pid in pids]
        try:
            self._script("stop", timeout=120, env=self._env())
        except RuntimeError as exc:
            errors.append(exc)
        deadline = time.monotonic() + 15  # processes still exiting (or not yet reaped)
        while True:
            left = [pid for pid in before if _running(pid)]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if self.db_url:
            self._cluster.drop_database(self.db_url)
        self._cluster.delete_vhost(self.vhost)
        self.started = False
        if left or errors:
            raise RuntimeError("Cinder did not stop cleanly (pids left %s): %s" % (left,
                                                                                    errors))
