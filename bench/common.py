"""What the benchmarks share: statistics, a keep-alive HTTP client, the results table."""

import datetime
import json
import logging
import os
import platform
import subprocess
import threading
import time

import requests

RESULTS_DIR = os.environ.get("LAMINA_BENCH_RESULTS") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "results")

# Logger levels of the services while benchmarks run: the per-volume INFO lines would otherwise
# cost as much as the work measured. Warnings and errors still show.
QUIET_LOGGERS = ("api", "scheduler", "volume_worker", "backup_worker", "common", "taskflow",
                 "stevedore", "oslo.messaging", "oslo_messaging", "kombu", "amqp", "waitress",
                 "alembic", "sqlalchemy", "urllib3", "requests", "futurist", "oslo_policy",
                 "iso8601")
# Loggers silenced below WARNING: waitress warns "Task queue depth is N" whenever all its threads
# are busy, which a throughput benchmark causes on purpose.
ERROR_LOGGERS = ("waitress.queue",)


def quiet_default_log_levels():
    """The `default_log_levels` value (oslo.log) that quiets the services' per-request lines."""
    return ",".join(["%s=WARN" % name for name in QUIET_LOGGERS]
                    + ["%s=ERROR" % name for name in ERROR_LOGGERS])


def quiet_logging_in_process():
    logging.getLogger().setLevel(logging.WARNING)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ERROR_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


# --- statistics -------------------------------------------------------------------------------

def percentile(values, pct):
    """Percentile by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds):
    """p50/p90/p99/max/mean of a list of durations in seconds, as milliseconds."""
    if not seconds:
        return {}
    ms = [s * 1000.0 for s in seconds]
    return {"n": len(ms), "p50": percentile(ms, 50), "p90": percentile(ms, 90),
            "p99": percentile(ms, 99), "max": max(ms), "min": min(ms),
            "mean": sum(ms) / len(ms)}


def parse_time(text):
    """An API timestamp (naive UTC, ISO 8601) as seconds since the epoch."""
    value = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f")
    return value.replace(tzinfo=datetime.timezone.utc).timestamp()


# --- HTTP --------------------------------------------------------------------------------------

class Client:
    """The Cinder v3 API of one project, with one keep-alive session per thread.

    Without `token`: noauth's "user:project" token, the project's name in the URL. With a
    Keystone `token` (see KeystoneAuth): that token on every request, and `project_id`, the
    token's project, in the URL."""

    def __init__(self, base_url, project, user="admin", timeout=120, token=None,
                 project_id=None):
        self.project_id = project_id or project
        self.base = "%s/v3/%s" % (base_url.rstrip("/"), self.project_id)
        self.headers = {"X-Auth-Token": token or "%s:%s" % (user, project),
                        "Content-Type": "application/json"}
        self.timeout = timeout
        self._tls = threading.local()

    @property
    def session(self):
        s = getattr(self._tls, "session", None)
        if s is None:
            s = self._tls.session = requests.Session()
            s.headers.update(self.headers)
        return s

    def request(self, method, path, body=None):
        data = json.dumps(body) if body is not None else None
        return self.session.request(method, self.base + path, data=data, timeout=self.timeout)

    def get(self, path):
        return self.request("GET", path)

    def create_volume(self, size=1, name=None):
        resp = self.request("POST", "/volumes", {"volume": {"size": size, "name": name}})
        if resp.status_code != 202:
            raise RuntimeError("POST /volumes: %s %s" % (resp.status_code, resp.text[:300]))
        return resp.json()["volume"]

    def delete_volume(self, volume_id):
        resp = self.request("DELETE", "/volumes/" + volume_id)
        if resp.status_code != 202:
            raise RuntimeError("DELETE /volumes/%s: %s %s" % (volume_id, resp.status_code,
                                                              resp.text[:300]))

    def list_ids(self, status=None, detail=False, limit=1000):
        """Every volume of the project (following pages); {id: volume dict}."""
        found = {}
        marker = None
        while True:
            query = "limit=%d" % limit
            if status:
                query += "&status=" + status
            if marker:
                query += "&marker=" + marker
            resp = self.get("/volumes%s?%s" % ("/detail" if detail else "", query))
            if resp.status_code != 200:
                raise RuntimeError("list: %s %s" % (resp.status_code, resp.text[:300]))
            page = resp.json()["volumes"]
            for v in page:
                found[v["id"]] = v
            if len(page) < limit:
                return found
            marker = page[-1]["id"]


# --- Keystone ----------------------------------------------------------------------------------

KEYSTONE_AIO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "deploy", "keystone", "keystone-aio.sh")


def keystone_facts():
    """The `export NAME=value` lines of `deploy/keystone/keystone-aio.sh env` as a dict.
    Raises RuntimeError, saying why, when Keystone is not running."""
    try:
        status = subprocess.run(["bash", KEYSTONE_AIO, "status"], capture_output=True,
                                text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError("cannot ask %s status: %r" % (KEYSTONE_AIO, exc)) from exc
    if status.returncode != 0:
        raise RuntimeError("Keystone is not running (%s): start it with `make services` or "
                           "`bash deploy/keystone/keystone-aio.sh install && bash "
                           "deploy/keystone/keystone-aio.sh start`"
                           % " / ".join(status.stdout.split("\n")).strip(" /"))
    out = subprocess.run(["bash", KEYSTONE_AIO, "env"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    facts = {}
    for line in out.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line[len("export "):].partition("=")
            facts[name] = value.strip().strip("'\"")
    return facts


def keystone_authtoken(facts, **extra):
    """The [keystone_authtoken] section a service (Lamina or Cinder) validates tokens with:
    Lamina's Keystone, its service user, memcached as keystonemiddleware's token cache."""
    return {"www_authenticate_uri": facts["LAMINA_KS_WWW_AUTHENTICATE_URI"],
            "auth_url": facts["LAMINA_KS_WWW_AUTHENTICATE_URI"], "auth_type": "password",
            "username": facts["LAMINA_KS_SERVICE_USER"],
            "password": facts["LAMINA_KS_SERVICE_PASSWORD"],
            "project_name": facts["LAMINA_KS_SERVICE_PROJECT"],
            "user_domain_name": facts["LAMINA_KS_DOMAIN"],
            "project_domain_name": facts["LAMINA_KS_DOMAIN"],
            "memcached_servers": facts["LAMINA_KS_MEMCACHED_SERVERS"], **extra}


class KeystoneAuth:
    """Real Keystone tokens for the benchmark's clients, as a client gets them: the admin
    user (admin role) on one Keystone project per benchmark project ("bench-create", ...;
    created, with the grant, when missing), one password authentication per client.

    The same users and projects serve every Keystone set-up (Lamina deployed and Cinder)."""

    def __init__(self, facts):
        self.url = facts["LAMINA_KS_AUTH_URL"].rstrip("/")
        self.domain = facts["LAMINA_KS_DOMAIN"]
        self.user = facts["LAMINA_KS_ADMIN_USER"]
        self.password = facts["LAMINA_KS_ADMIN_PASSWORD"]
        self.admin_project = facts["LAMINA_KS_ADMIN_PROJECT"]
        self.project_ids = {}
        self.issued = 0
        self._lock = threading.Lock()
        self._admin = None

    def _auth(self, scope):
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": self.user, "domain": {"name": self.domain},
            "password": self.password}}}, "scope": scope}}
        resp = requests.post(self.url + "/auth/tokens", json=body, timeout=60)
        if resp.status_code != 201:
            raise RuntimeError("Keystone token for %s (%s): %s %s" % (
                self.user, scope, resp.status_code, resp.text[:300]))
        self.issued += 1
        return resp.headers["X-Subject-Token"], resp.json()["token"]

    def _ensure_project(self, name):
        """The id of Keystone project `name` (created if missing), the admin user admin on it."""
        if name == self.admin_project:
            return None
        with self._lock:
            if name in self.project_ids:
                return self.project_ids[name]
            # Keystone's default policies want a system-scoped token to manage projects
            system, _ = self._auth({"system": {"all": True}})
            h = {"X-Auth-Token": system}

            def call(method, path, ok, **kw):
                resp = requests.request(method, self.url + path, headers=h, timeout=60, **kw)
                if resp.status_code not in ok:
                    raise RuntimeError("Keystone %s %s: %s %s" % (
                        method, path, resp.status_code, resp.text[:300]))
                return resp.json() if resp.content else None

            domain = call("GET", "/domains?name=%s" % self.domain, (200,))["domains"][0]["id"]
            found = call("GET", "/projects?name=%s&domain_id=%s" % (name, domain),
                         (200,))["projects"]
            if found:
                pid = found[0]["id"]
            else:
                pid = call("POST", "/projects", (201,), json={"project": {
                    "name": name, "domain_id": domain, "enabled": True,
                    "description": "Lamina benchmarks (bench/)"}})["project"]["id"]
            uid = call("GET", "/users?name=%s&domain_id=%s" % (self.user, domain),
                       (200,))["users"][0]["id"]
            rid = call("GET", "/roles?name=admin", (200,))["roles"][0]["id"]
            call("PUT", "/projects/%s/users/%s/roles/%s" % (pid, uid, rid), (200, 201, 204))
            self.project_ids[name] = pid
            return pid

    def token(self, project):
        """(token, project id) of the admin user on Keystone project `project`."""
        self._ensure_project(project)
        token, body = self._auth({"project": {"name": project,
                                              "domain": {"name": self.domain}}})
        return token, body["project"]["id"]

    def admin(self):
        """The cloud admin's token (project admin), fetched once: the harness's own requests."""
        if self._admin is None:
            self._admin = self.token(self.admin_project)
        return self._admin

    def client(self, base_url, project):
        token, project_id = self.token(project)
        return Client(base_url, project, token=token, project_id=project_id)


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


# --- results -----------------------------------------------------------------------------------

class Results:
    """Every figure of a run: printed as a table and written as JSON."""

    def __init__(self, args):
        self.started = datetime.datetime.now().astimezone()
        self.args = args
        self.rows = []
        self.details = {}
        self.errors = []
        self.machine = machine()

    def add(self, benchmark, setup, figure, value, unit, target=None, better="lower",
            note=None, key=None):
        """target: the issue's figure to compare with (None when there is none); better:
        'lower' or 'higher', which side of the target passes; key: names the figure for
        the summary of the issue's table (bench.run), the same for every set-up."""
        row = {"benchmark": benchmark, "setup": setup, "figure": figure,
               "value": None if value is None else round(float(value), 3), "unit": unit,
               "target": target, "better": better, "note": note}
        if key:
            row["key"] = key
        if target is not None and value is not None:
            row["meets_target"] = value <= target if better == "lower" else value >= target
        self.rows.append(row)
        print("  %-28s %-34s %10s %-6s%s" % (setup, figure, _fmt(value), unit,
                                               "" if target is None else "  (target %s %s)"
                                               % ("<=" if better == "lower" else ">=",
                                                  _fmt(target))), flush=True)
        return row

    def detail(self, key, value):
        self.details[key] = value

    def error(self, benchmark, setup, exc):
        self.errors.append({"benchmark": benchmark, "setup": setup, "error": repr(exc)})
        print("  !! %s on %s failed: %r" % (benchmark, setup, exc), flush=True)

    def table(self):
        headers = ("benchmark", "setup", "figure", "value", "target", "ok")
        lines = []
        for r in self.rows:
            target = "" if r["target"] is None else "%s %s" % (
                "<=" if r["better"] == "lower" else ">=", _fmt(r["target"]))
            ok = {True: "yes", False: "NO"}.get(r.get("meets_target"), "")
            lines.append((r["benchmark"], r["setup"], r["figure"],
                          "%s %s" % (_fmt(r["value"]), r["unit"]), target, ok))
        widths = [max([len(h)] + [len(str(line[i])) for line in lines])
                  for i, h in enumerate(headers)]
        out = [" | ".join(h.ljust(w) for h, w in zip(headers, widths)),
               "-+-".join("-" * w for w in widths)]
        for line in lines:
            out.append(" | ".join(str(c).ljust(w) for c, w in zip(line, widths)))
        return "\n".join(out)

    def write(self):
        os.makedirs(RESULTS_DIR, exist_ok=True)
        path = os.path.join(RESULTS_DIR, self.started.strftime("%Y%m%dT%H%M%S") + ".json")
        doc = {"started": self.started.isoformat(),
               "finished": datetime.datetime.now().astimezone().isoformat(),
               "machine_at_start": self.machine, "machine_at_end": machine(),
               "source": source(), "args": self.args, "results": self.rows,
               "details": self.details, "errors": self.errors}
        with open(path, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True, default=str)
        return path


def _fmt(value):
    if value is None:
        return "-"
    value = float(value)
    if value >= 100:
        return "%.0f" % value
    if value >= 10:
        return "%.1f" % value
    return "%.2f" % value


def source():
    """Which code was measured: the commit, and whether the working tree differed from it."""
    import common

    if os.environ.get("LAMINA_BENCH_COMMIT"):
        return {"commit": os.environ["LAMINA_BENCH_COMMIT"], "tree": "snapshot (--at-commit)"}
    repo = os.path.dirname(os.path.dirname(os.path.abspath(common.__file__)))
    info = {"path": repo}
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, text=True,
                                        capture_output=True, timeout=10).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                 cwd=repo, text=True, capture_output=True,
                                 timeout=10).stdout.split("\n")
        info["tree"] = "working tree, %d modified files" % len([c for c in changed if c])
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def machine():
    info = {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "loadavg": os.getloadavg()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            info["memory_gib"] = round(kib / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    info["os"] = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    for name, argv in (("mariadb", ["mysql", "-h127.0.0.1", "-uroot", "-N", "-e",
                                    "SELECT VERSION()"]),):
        try:
            info[name] = subprocess.run(argv, capture_output=True, text=True,
                                        timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return info


# --- CPU accounting ----------------------------------------------------------------------------

# Processes that serve every set-up alike (not the set-up's own): accounted apart.
SHARED_PROCESSES = ("mariadb", "rabbitmq", "postgresql", "keystone", "memcached")


def system_pids():
    """The database and broker servers on this machine, by process name, and Lamina's
    Keystone (deploy/keystone: gunicorn of /var/lib/lamina-keystone) and memcached, for CPU
    accounting."""
    found = {}
    names = {"mariadbd": "mariadb", "mysqld": "mariadb", "beam.smp": "rabbitmq",
             "postgres": "postgresql", "memcached": "memcached"}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % entry) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in names:
            found.setdefault(names[comm], []).append(int(entry))
        elif comm.startswith("gunicorn") or comm == "lamina-keystone":
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if b"lamina-keystone" in cmdline:
                found.setdefault("keystone", []).append(int(entry))
    return found


def session_pids(sid):
    """Every process of session `sid` (a service started with setsid: its workers and
    children too)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 3 and fields[3] == str(sid):
            found.append(int(entry))
    return sorted(found)


def _machine_busy_seconds():
    """CPU seconds all cores spent not idle since boot (user+nice+system+irq+softirq+steal)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class CpuMeter:
    """CPU seconds each process (or group of processes) used during a `with` block."""

    def __init__(self, pids):
        self.groups = {name: (p if isinstance(p, list) else [p]) for name, p in pids.items()}
        for name, plist in system_pids().items():
            self.groups.setdefault(name, plist)
        self.used = {}
        self.wall = None

    def _snap(self):
        snap = {name: sum(_cpu_seconds(p) for p in plist) for name, plist in self.groups.items()}
        snap[" machine"] = _machine_busy_seconds()
        return snap

    def __enter__(self):
        self._t0 = time.perf_counter()
        self._start = self._snap()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._t0
        end = self._snap()
        busy = end.pop(" machine") - self._start.pop(" machine")
        self.used = {name: round(end[name] - self._start[name], 2) for name in end}
        # Everything else the machine did meanwhile (other users' tests, ...): it competes
        # for the same cores, so it is kept beside every figure.
        self.used["other processes"] = round(max(busy - sum(self.used.values()), 0.0), 2)
        return False

    def report(self):
        """{'wall_s': .., 'cpu_s': {process: seconds}, 'cores_busy': total/wall}."""
        total = sum(self.used.values())
        return {"wall_s": round(self.wall, 2), "cpu_s": self.used,
                "cores_busy": round(total / self.wall, 2) if self.wall else None}

    def line(self):
        parts = ["%s %.1f" % (n, s) for n, s in sorted(self.used.items(), key=lambda x: -x[1])
                 if s >= 0.05]
        return "CPU s over %.1f s wall: %s" % (self.wall, ", ".join(parts))
