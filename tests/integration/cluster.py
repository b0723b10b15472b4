"""Real processes for integration tests and benchmarks: lamina-api, lamina-scheduler,
lamina-volume (and lamina-backup when asked) on RabbitMQ (a fresh vhost each) and a fresh
MariaDB or PostgreSQL database, or lamina-aio on its own."""

import configparser
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

import requests

BIN = os.path.dirname(sys.executable)
RABBIT = "127.0.0.1:5672"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=60, proc=None, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited (%s): %s" % (proc.returncode, tail(log)))
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError("%s did not answer in %ss: %s" % (url, timeout, tail(log)))


def tail(path, lines=40):
    if not path or not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


# --- databases and vhosts ----------------------------------------------------------------------

def create_database(kind):
    name = "lamina_it_%s" % uuid.uuid4().hex[:10]
    if kind == "mysql":
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE %s CHARACTER SET utf8mb4" % name)
        conn.close()
        return "mysql+pymysql://root@127.0.0.1/%s?charset=utf8mb4" % name
    if kind == "postgresql":
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE %s" % name)
        conn.close()
        return "postgresql+psycopg2://postgres@127.0.0.1/%s" % name
    raise ValueError(kind)


def drop_database(url):
    name = url.rsplit("/", 1)[1].split("?")[0]
    if url.startswith("mysql"):
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
        with conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s" % name)
        conn.close()
    else:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
        conn.close()


def create_vhost():
    """A fresh RabbitMQ vhost, so no queue or message of another run is seen."""
    vhost = "lamina-%s" % uuid.uuid4().hex[:8]
    try:
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True,
                       capture_output=True, timeout=60)
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest",
                        ".*", ".*", ".*"], check=True, capture_output=True, timeout=60)
        return vhost
    except (OSError, subprocess.SubprocessError):
        return ""  # the default vhost still works; host names are unique per cluster


def delete_vhost(vhost):
    if vhost:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True,
                       timeout=60)


# --- processes ---------------------------------------------------------------------------------

class Proc:
    def __init__(self, name, argv, log):
        self.name, self.argv, self.log = name, argv, log
        self.popen = None

    def start(self):
        out = open(self.log, "ab")
        self.popen = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        out.close()
        return self

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def kill9(self):
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()


class Cluster:
    """api + scheduler(s) + volume services, each its own process.

    volume_hosts maps a host name to the options of its one `file` back end.
    conf_defaults and conf_sections go into every service's config file (after the defaults
    above: they win), e.g. auth_strategy = keystone and [keystone_authtoken]. auth, when
    given, is a callable returning (token, project_id): the harness's own requests
    (wait_pools, wait_services, request without a token) then carry that token and that
    project instead of noauth's `admin:p1`."""

    def __init__(self, workdir, db_kind="mysql", volume_hosts=None, schedulers=1,
                 scheduler_opts=None, api_threads=16, conf_defaults=None, conf_sections=None,
                 auth=None, backups=False, rabbit=None, database_url=None):
        self.workdir = str(workdir)
        # rabbit ("host:port", guest/guest, its default vhost) and database_url (an existing
        # empty database, not dropped at stop): private servers the fault tests restart
        self.rabbit = rabbit
        self.database_url = database_url
        self.db_kind = db_kind
        self.suffix = uuid.uuid4().hex[:6]
        self.volume_hosts = volume_hosts or {"node1": {}, "node2": {}}
        self.n_schedulers = schedulers
        self.scheduler_opts = scheduler_opts or {}
        self.api_threads = api_threads
        self.procs = {}
        self.db_url = None
        self.vhost = None
        self.conf_defaults = conf_defaults or {}
        self.conf_sections = conf_sections or {}
        self.auth = auth
        # a lamina-backup beside each lamina-volume (same host name: a file volume is read
        # through a local connection, which only its own host may open)
        self.backups = backups

    def host(self, name):
        return "%s-%s" % (name, self.suffix)

    def _write_conf(self, name, default=None, sections=None):
        conf = configparser.ConfigParser(interpolation=None)
        conf["DEFAULT"] = {
            "transport_url": "rabbit://guest:guest@%s/%s" % (self.rabbit or RABBIT,
                                                              self.vhost),
            "state_path": os.path.join(self.workdir, name),
            "report_interval": "1", "pool_report_interval": "1", "service_down_time": "20",
            "osapi_volume_threads": str(self.api_threads),
            # bursts of hundreds of volumes in one project: no quota limits
            "quota_volumes": "-1", "quota_gigabytes": "-1", "quota_snapshots": "-1",
            **self.conf_defaults,
            **(default or {}),
        }
        conf["database"] = {"connection": self.db_url}
        for section, values in self.conf_sections.items():
            conf[section] = values
        for section, values in (sections or {}).items():
            conf[section] = values
        path = os.path.join(self.workdir, name + ".conf")
        with open(path, "w") as f:
            conf.write(f)
        return path

    def _proc(self, name, binary, conf, *extra):
        log = os.path.join(self.workdir, name + ".log")
        return Proc(name, [os.path.join(BIN, binary), "--config-file", conf, *extra], log)

    def start(self):
        os.makedirs(self.workdir, exist_ok=True)
        self.db_url = self.database_url or create_database(self.db_kind)
        self.vhost = "" if self.rabbit else create_vhost()
        api_conf = self._write_conf("api", {"host": self.host("controller"),
                                            "osapi_volume_listen_port": str(free_port())})
        subprocess.run([os.path.join(BIN, "lamina-manage"), "--config-file", api_conf, "db",
                        "sync"], check=True, capture_output=True, timeout=120)
        self.api_port = configparser.ConfigParser()
        self.api_port.read(api_conf)
        self.api_port = int(self.api_port["DEFAULT"]["osapi_volume_listen_port"])
        self.url = "http://127.0.0.1:%d" % self.api_port
        for i in range(self.n_schedulers):
            self.start_scheduler(i)
        for name, options in self.volume_hosts.items():
            self.start_volume(name, options)
            if self.backups:
                self.start_backup(name)
        api = self._proc("api", "lamina-api", api_conf).start()
        self.procs["api"] = api
        wait_http(self.url + "/", proc=api.popen, log=api.log)
        self.wait_pools(len(self.volume_hosts))
        if self.backups:
            self.wait_services("lamina-backup", len(self.volume_hosts))
        return self

    def start_scheduler(self, index=0, opts=None):
        opts = {**self.scheduler_opts, **(opts or {})}
        name = "scheduler%d" % index
        conf = self._write_conf(name, {"host": self.host(name), **opts})
        self.procs[name] = self._proc(name, "lamina-scheduler", conf).start()

    def restart_schedulers(self, opts):
        for i in range(self.n_schedulers):
            self.procs["scheduler%d" % i].stop()
            self.start_scheduler(i, opts)
        self.wait_services("lamina-scheduler", self.n_schedulers)

    def start_volume(self, name, options=None):
        """options: of the host's one back end; under "conf_sections", whole sections of
        this host's config file only (e.g. [debug] fail_points)."""
        options = dict(options or {})
        own_sections = options.pop("conf_sections", {})
        backend = {"volume_driver": "file", "volume_backend_name": options.pop(
            "volume_backend_name", "file"),
            "file_volume_dir": os.path.join(self.workdir, name, "volumes")}
        backend.update({k: ",".join(v) if isinstance(v, list) else str(v)
                        for k, v in options.items()})
        conf = self._write_conf(name, {"host": self.host(name), "enabled_backends": "file"},
                                {"file": backend, **own_sections})
        self.procs[name] = self._proc(name, "lamina-volume", conf).start()
        self.volume_hosts[name] = dict(options, volume_backend_name=backend[
            "volume_backend_name"])

    def start_backup(self, volume_host):
        name = volume_host + "-backup"
        conf = self._write_conf(name, {"host": self.host(volume_host)}, {"backup": {
            "backup_chunk_store": "posix",
            "backup_posix_path": os.path.join(self.workdir, name, "repository")}})
        self.procs[name] = self._proc(name, "lamina-backup", conf).start()

    def restart_volume(self, name):
        conf = os.path.join(self.workdir, name + ".conf")
        self.procs[name] = self._proc(name, "lamina-volume", conf).start()

    def wait_pools(self, count, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            resp = self.request("GET", "/scheduler-stats/get_pools")
            if resp.status_code == 200 and len(resp.json()["pools"]) >= count:
                self.wait_services("lamina-scheduler", self.n_schedulers)
                return
            time.sleep(0.3)
        raise RuntimeError("pools not reported: %s" % self.logs())

    def wait_services(self, binary, count, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            services = self.request("GET", "/os-services?binary=" + binary).json()["services"]
            if len([s for s in services if s["state"] == "up"]) >= count:
                return
            time.sleep(0.3)
        raise RuntimeError("%s services not up: %s" % (binary, self.logs()))

    def request(self, method, path, body=None, project="p1", token=None, version=None):
        if token is None and self.auth is not None:
            token, auth_project = self.auth()
            project = auth_project if project == "p1" else project
        headers = {"X-Auth-Token": token or "admin:" + project}
        if version:
            headers["OpenStack-API-Version"] = "volume " + version
        return requests.request(method, "%s/v3/%s%s" % (self.url, project, path), json=body,
                                headers=headers, timeout=60)

    def logs(self):
        return "\n".join("== %s ==\n%s" % (n, tail(p.log, 20)) for n, p in self.procs.items())

    def stop(self):
        for proc in self.procs.values():
            proc.stop()
        if self.db_url and not self.database_url:
            drop_database(self.db_url)
        delete_vhost(self.vhost)
        self.keep_logs()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def keep_logs(self):
        """Copy the service logs (never the volumes: sparse files would be copied in full)
        to $LAMINA_TEST_LOGS/<cluster> for a post-mortem, when that variable is set."""
        target = os.environ.get("LAMINA_TEST_LOGS")
        if not target:
            return
        dest = os.path.join(target, "cluster-" + self.suffix)
        os.makedirs(dest, exist_ok=True)
        for proc in self.procs.values():
            if os.path.exists(proc.log):
                shutil.copy(proc.log, dest)


class AioProcess:
    def __init__(self, workdir):
        self.workdir = str(workdir)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = None

    def start(self):
        log = os.path.join(self.workdir, "aio.log")
        os.makedirs(self.workdir, exist_ok=True)
        self.proc = Proc("aio", [os.path.join(BIN, "lamina-aio"), "--data-dir",
                                 os.path.join(self.workdir, "data"), "--port", str(self.port)],
                         log).start()
        wait_http(self.url + "/", proc=self.proc.popen, log=log)
        return self

    def stop(self):
        self.proc.stop()
