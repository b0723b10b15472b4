"""A RabbitMQ node and a MariaDB server of the test's own, on free 127.0.0.1 ports, with
every file under the test's directory: the fault tests restart and kill them, which the
machine's shared RabbitMQ (5672) and MariaDB (3306) must never see.

RabbitMQ: the real server script under the package's lib dir, run as root with HOME holding
the node's own Erlang cookie and RABBITMQ_CONF_ENV_FILE pointing at an empty file, so the
machine's /etc/rabbitmq/rabbitmq-env.conf (NODENAME=rabbit@localhost) is not read. The node
registers with the machine's epmd (shared by every Erlang node, never stopped here).
MariaDB: mariadb-install-db into its own datadir, then mariadbd with --defaults-file first
(no /etc/mysql file is read), its own port and socket, as root
(pytest's tmp dirs are private to root, so the mysql user could not reach them)."""

import glob
import os
import shutil
import signal
import subprocess
import time
import uuid

from tests.integration.cluster import free_port, tail


def _wait(fn, timeout, what, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return
        time.sleep(0.2)
    raise RuntimeError("%s not ready in %ss: %s" % (what, timeout, tail(log)))


def _rabbit_script(name):
    found = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/" + name))
    if not found:
        raise RuntimeError("RabbitMQ is not installed (no %s)" % name)
    return found[-1]


class PrivateRabbit:
    """One RabbitMQ node: guest/guest on 127.0.0.1:<port>, data and logs under workdir."""

    def __init__(self, workdir):
        self.workdir = os.path.join(str(workdir), "rabbit")
        self.port = free_port()
        self.dist_port = free_port()
        self.nodename = "lamina_fault_%s@localhost" % uuid.uuid4().hex[:8]
        self.proc = None
        self.log = os.path.join(self.workdir, "server.log")

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def _env(self):
        env = {k: v for k, v in os.environ.items() if k not in ("ERL_FLAGS", "ERL_EPMD_ADDRESS")}
        env.update({
            "HOME": self.workdir,
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": os.path.join(self.workdir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.workdir, "log"),
            "RABBITMQ_CONFIG_FILE": os.path.join(self.workdir, "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.workdir, "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(self.workdir, "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": os.path.join(self.workdir, "beam.pid"),
        })
        return env

    def _prepare(self):
        os.makedirs(self.workdir, exist_ok=True)
        cookie = os.path.join(self.workdir, ".erlang.cookie")
        with open(cookie, "w") as f:
            f.write(uuid.uuid4().hex.upper())
        os.chmod(cookie, 0o400)
        with open(os.path.join(self.workdir, "rabbitmq.conf"), "w") as f:
            f.write("listeners.tcp.default = 127.0.0.1:%d\nloopback_users = none\n"
                    "default_user = guest\ndefault_pass = guest\n" % self.port)
        with open(os.path.join(self.workdir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        open(os.path.join(self.workdir, "rabbitmq-env.conf"), "w").close()

    def ctl(self, *args, timeout=30):
        return subprocess.run([_rabbit_script("rabbitmqctl"), "-n", self.nodename, *args],
                              env=self._env(), capture_output=True, text=True,
                              timeout=timeout)

    def start(self, timeout=60):
        if not os.path.exists(os.path.join(self.workdir, ".erlang.cookie")):
            self._prepare()
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([_rabbit_script("rabbitmq-server")], env=self._env(),
                                     cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out.close()
        _wait(self._accepts_amqp, timeout, "RabbitMQ %s" % self.nodename, self.log)
        return self

    def _accepts_amqp(self):
        if self.proc.poll() is not None:
            raise RuntimeError("RabbitMQ exited: %s" % tail(self.log))
        import amqp

        try:
            conn = amqp.Connection(self.address, userid="guest", password="guest",
                                   connect_timeout=2)
            conn.connect()
            conn.close()
            return True
        except Exception:
            return False

    def beam_pid(self):
        with open(os.path.join(self.workdir, "beam.pid")) as f:
            return int(f.read().strip())

    def stop(self, kill=False):
        """Gracefully (SIGTERM: the node closes its connections and stops), or kill -9 of
        the Erlang VM with `kill`."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.kill(self.beam_pid(), signal.SIGKILL if kill else signal.SIGTERM)
        except (OSError, ValueError):
            self.ctl("stop", timeout=60)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self, kill=False):
        self.stop(kill=kill)
        return self.start()

    def destroy(self):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class PrivateMariaDB:
    """One MariaDB server: root without a password over 127.0.0.1:<port>."""

    def __init__(self, workdir):
        self.workdir = os.path.join(str(workdir), "mariadb")
        self.port = free_port()
        self.datadir = os.path.join(self.workdir, "data")
        self.socket = os.path.join(self.workdir, "mysqld.sock")
        self.cnf = os.path.join(self.workdir, "my.cnf")
        self.log = os.path.join(self.workdir, "error.log")
        self.proc = None

    def _prepare(self):
        os.makedirs(os.path.join(self.workdir, "tmp"), exist_ok=True)
        with open(self.cnf, "w") as f:
            f.write("[mysqld]\ndatadir=%s\ntmpdir=%s\nsocket=%s\npid-file=%s\nlog-error=%s\n"
                    "port=%d\nbind-address=127.0.0.1\nuser=root\nskip-name-resolve\n"
                    "innodb_buffer_pool_size=64M\nperformance_schema=OFF\n"
                    "max_connections=500\n[client]\nsocket=%s\n"
                    % (self.datadir, os.path.join(self.workdir, "tmp"), self.socket,
                       os.path.join(self.workdir, "mysqld.pid"), self.log, self.port,
                       self.socket))
        subprocess.run(["mariadb-install-db", "--defaults-file=" + self.cnf, "--skip-test-db",
                        "--auth-root-authentication-method=normal"],
                       check=True, capture_output=True, timeout=120)

    def start(self, timeout=60):
        if not os.path.isdir(self.datadir):
            self._prepare()
        self.proc = subprocess.Popen(["mariadbd", "--defaults-file=" + self.cnf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        _wait(self._accepts, timeout, "MariaDB on %d" % self.port, self.log)
        return self

    def _accepts(self):
        if self.proc.poll() is not None:
            raise RuntimeError("MariaDB exited: %s" % tail(self.log))
        import pymysql

        try:
            pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="",
                            connect_timeout=2).close()
            return True
        except pymysql.err.OperationalError:
            return False

    def create_database(self, name=None):
        import pymysql

        name = name or "lamina_fault_%s" % uuid.uuid4().hex[:8]
        conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="",
                               autocommit=True)
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE %s CHARACTER SET utf8mb4" % name)
        conn.close()
        return "mysql+pymysql://root@127.0.0.1:%d/%s?charset=utf8mb4" % (self.port, name)

    def stop(self, kill=False):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self, kill=False):
        self.stop(kill=kill)
        return self.start()

    def destroy(self):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
