"""The set-ups a benchmark runs against, each started fresh and stopped after:

embedded  the whole system in this process (tests.stack.Stack): SQLite, fake:// transport,
          file driver; the benchmark's client threads share the process (and the GIL)
aio       `lamina-aio` as a subprocess: the same composition as `embedded`, own process
deployed  lamina-api, lamina-scheduler and two lamina-volume processes (tests.integration
          .cluster.Cluster) on RabbitMQ and a fresh MariaDB database, Keystone auth
          (keystonemiddleware with memcached; Lamina's Keystone, deploy/keystone), the
          clients with real tokens
deployed-noauth  the same with auth_strategy = noauth ("user:project" tokens)
cinder    real Cinder 29 (bench/cinder_ref.py, deploy/cinder-ref): cinder-api under uWSGI,
          cinder-scheduler, one cinder-volume with two fake back ends, on the same RabbitMQ
          (fresh vhost), MariaDB (fresh database) and Keystone, the same clients
"""

import configparser
import glob
import os
import shutil

from bench.cinder_ref import CinderTarget
from bench.common import (
    Client,
    KeystoneAuth,
    keystone_authtoken,
    keystone_facts,
    quiet_default_log_levels,
    quiet_logging_in_process,
)

DESCRIPTIONS = {
    "embedded": "in-process Stack, SQLite, fake://",
    "aio": "lamina-aio subprocess, SQLite, fake://",
    "deployed": "api+scheduler+2 volume procs, RabbitMQ, MariaDB, Keystone",
    "deployed-noauth": "api+scheduler+2 volume procs, RabbitMQ, MariaDB, noauth",
    "cinder": CinderTarget.description,
}


class EmbeddedTarget:
    name = "embedded"

    def __init__(self, workdir):
        self.workdir = os.path.join(workdir, "embedded")
        self.stack = None

    def start(self):
        from tests.stack import Stack

        os.makedirs(self.workdir, exist_ok=True)
        quiet_logging_in_process()
        self.stack = Stack(self.workdir).start()
        quiet_logging_in_process()  # again: starting may have set levels up
        self.url = self.stack.url
        self.db_url = self.stack.database_url
        return self

    def pids(self):
        return {"embedded": os.getpid()}

    def client(self, project):
        return Client(self.url, project)

    def stop(self):
        if self.stack is not None:
            self.stack.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class AioTarget:
    name = "aio"

    def __init__(self, workdir):
        self.workdir = os.path.join(workdir, "aio")
        self.proc = None

    def start(self):
        from tests.integration import cluster

        os.makedirs(self.workdir, exist_ok=True)
        conf = configparser.ConfigParser(interpolation=None)
        conf["DEFAULT"] = {"default_log_levels": quiet_default_log_levels(),
                           # benchmarks make hundreds of volumes in one project
                           "quota_volumes": "-1", "quota_gigabytes": "-1",
                           "quota_snapshots": "-1"}
        conf_path = os.path.join(self.workdir, "aio.conf")
        with open(conf_path, "w") as f:
            conf.write(f)
        data = os.path.join(self.workdir, "data")
        port = cluster.free_port()
        self.url = "http://127.0.0.1:%d" % port
        self.db_url = "sqlite:///%s/lamina.sqlite" % data
        log = os.path.join(self.workdir, "aio.log")
        self.proc = cluster.Proc("aio", [os.path.join(cluster.BIN, "lamina-aio"),
                                         "--config-file", conf_path, "--data-dir", data,
                                         "--port", str(port)], log).start()
        cluster.wait_http(self.url + "/", proc=self.proc.popen, log=log)
        return self

    def pids(self):
        return {"aio": self.proc.popen.pid}

    def client(self, project):
        return Client(self.url, project)

    def log_bytes(self):
        path = os.path.join(self.workdir, "aio.log")
        return os.path.getsize(path) if os.path.exists(path) else 0

    def stop(self):
        if self.proc is not None:
            self.proc.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _quiet_cluster_class():
    from tests.integration import cluster

    class QuietCluster(cluster.Cluster):
        """The test Cluster with the services' per-request INFO lines turned off."""

        def _write_conf(self, name, default=None, sections=None):
            default = dict(default or {})
            default.setdefault("default_log_levels", quiet_default_log_levels())
            return super()._write_conf(name, default, sections)

    return QuietCluster


class DeployedTarget:
    """Lamina as separate processes on RabbitMQ + MariaDB; Keystone auth unless `auth` is
    false (the `deployed-noauth` set-up)."""

    name = "deployed"
    auth = True

    def __init__(self, workdir, volume_hosts=2, api_threads=16):
        self.workdir = os.path.join(workdir, self.name)
        self.n_hosts = volume_hosts
        self.api_threads = api_threads
        self.cluster = None
        self.keystone = None

    def start(self):
        cls = _quiet_cluster_class()
        kwargs = {}
        if self.auth:
            facts = keystone_facts()
            self.keystone = KeystoneAuth(facts)
            # as test_keystone's Lamina, with keystonemiddleware's token cache kept (300 s)
            kwargs = {"conf_defaults": {"auth_strategy": "keystone"},
                      "conf_sections": {"keystone_authtoken": keystone_authtoken(facts)},
                      "auth": self.keystone.admin}
        self.cluster = cls(self.workdir, db_kind="mysql",
                           volume_hosts={"node%d" % (i + 1): {} for i in range(self.n_hosts)},
                           api_threads=self.api_threads, **kwargs)
        try:
            self.cluster.start()
        except Exception:
            print(self.cluster.logs())
            self.cluster.stop()
            self.cluster = None
            raise
        self.url = self.cluster.url
        self.db_url = self.cluster.db_url
        return self

    def pids(self):
        return {name: proc.popen.pid for name, proc in self.cluster.procs.items()}

    def client(self, project):
        if self.keystone is not None:
            return self.keystone.client(self.url, project)
        return Client(self.url, project)

    def log_bytes(self):
        return sum(os.path.getsize(p.log) for p in self.cluster.procs.values()
                   if os.path.exists(p.log))

    def db_connections(self):
        """MariaDB's count of connections opened since it started (all clients)."""
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", user="root", password="", ssl_disabled=True)
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW GLOBAL STATUS LIKE 'Connections'")
                return int(cur.fetchone()[1])
        finally:
            conn.close()

    def stop(self):
        if self.cluster is not None:
            self.cluster.stop()


def save_logs(workdir, dest):
    """Copy the services' log files (kept quiet: warnings and errors) to `dest`."""
    os.makedirs(dest, exist_ok=True)
    for path in glob.glob(os.path.join(workdir, "**", "*.log"), recursive=True):
        shutil.copy(path, os.path.join(dest, os.path.basename(path)))
    return dest


class DeployedNoauthTarget(DeployedTarget):
    name = "deployed-noauth"
    auth = False


TARGETS = {"embedded": EmbeddedTarget, "aio": AioTarget, "deployed": DeployedTarget,
           "deployed-noauth": DeployedNoauthTarget, "cinder": CinderTarget}
# The set-ups `bench.run` measures when --targets is not given (deployed-noauth on request)
DEFAULT_TARGETS = ("embedded", "aio", "deployed", "cinder")
