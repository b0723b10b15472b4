"""What every Lamina service process shares: heartbeat, RPC server, periodic tasks, shutdown."""

import gc
import logging
import signal
import socket
import threading

from oslo_config import cfg

from common.db import api as db

LOG = logging.getLogger(__name__)

service_opts = [
    cfg.StrOpt("host", default=socket.gethostname(), sample_default="<hostname>",
               help="Name of this host; volume services add @<backend>."),
    cfg.IntOpt("report_interval", default=10, min=1,
               help="Seconds between a service's heartbeats into the services table."),
    cfg.IntOpt("service_down_time", default=60, min=1,
               help="A service (or pool) whose last heartbeat (report) is older than this "
                    "many seconds is down: listed as down and not scheduled to."),
    cfg.StrOpt("state_path", default="lamina-data",
               help="Directory where services keep their state (file volumes, locks)."),
    cfg.StrOpt("storage_availability_zone", default="nova",
               help="Availability zone of the services on this host."),
]
CONF = cfg.CONF
CONF.register_opts(service_opts)

# Each service registers in the services table under Lamina's own binary (and topic) name,
# which is what `lamina-manage service list` shows operators. The API speaks Cinder's names
# (os-services, os-hosts), so that Cinder's clients and Tempest find `cinder-volume` on
# `host@backend` as they would on Cinder; both spellings are accepted where a binary is given.
VOLUME_BINARY = "lamina-volume"
SCHEDULER_BINARY = "lamina-scheduler"
BACKUP_BINARY = "lamina-backup"
CINDER_BINARIES = {VOLUME_BINARY: "cinder-volume", SCHEDULER_BINARY: "cinder-scheduler",
                   BACKUP_BINARY: "cinder-backup"}
_LAMINA_BINARIES = {cinder: lamina for lamina, cinder in CINDER_BINARIES.items()}


def cinder_binary(name):
    """The name Cinder gives a Lamina binary or topic (unknown names unchanged)."""
    return CINDER_BINARIES.get(name, name)


def lamina_binary(name):
    """The binary the services table holds for a name a client gave (Cinder's or Lamina's)."""
    return _LAMINA_BINARIES.get(name, name)


def is_up(last_seen):
    """Whether a heartbeat or report at `last_seen` is recent enough to count as up."""
    import datetime

    from common.db.models import utcnow

    if last_seen is None:
        return False
    return utcnow() - last_seen <= datetime.timedelta(seconds=CONF.service_down_time)


class PeriodicTask(threading.Thread):
    def __init__(self, name, interval, fn, initial_delay=0.0):
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.fn = fn
        self.initial_delay = initial_delay
        self._stop_event = threading.Event()

    def run(self):
        if self._stop_event.wait(self.initial_delay):
            return
        while not self._stop_event.is_set():
            try:
                self.fn()
            except Exception:  # a periodic task must survive one bad run
                LOG.exception("Periodic task %s failed", self.name)
            if self._stop_event.wait(self.interval):
                return

    def stop(self):
        self._stop_event.set()


class Service:
    """One RPC service: a manager object exposed on (topic, host), with periodic tasks."""

    def __init__(self, binary, topic, host, manager, rpc_version):
        self.binary = binary
        self.topic = topic
        self.host = host
        self.manager = manager
        self.rpc_version = rpc_version
        self._server = None
        self._tasks = []

    def add_periodic(self, name, interval, fn, initial_delay=0.0):
        self._tasks.append(PeriodicTask("%s:%s" % (self.host, name), interval, fn,
                                        initial_delay))

    def heartbeat(self):
        db.service_heartbeat(self.host, self.binary, self.topic,
                             CONF.storage_availability_zone, self.rpc_version)

    def start(self):
        # imported late: transport options are registered on first use
        from common import control, rpc

        self.heartbeat()
        # Clean up before taking new work, so a request in the queue never races the cleanup.
        self.manager.init_host()
        # The control endpoint (operators' status and log levels) in its own namespace.
        self._server = rpc.get_server(self.topic, self.host,
                                      [self.manager, control.ControlEndpoint(self)])
        self._server.start()
        self.add_periodic("heartbeat", CONF.report_interval, self.heartbeat,
                          CONF.report_interval)
        for name, interval, fn in self.manager.periodic_tasks():
            self.add_periodic(name, interval, fn)
        for task in self._tasks:
            task.start()
        LOG.info("%s started on %s (topic %s)", self.binary, self.host, self.topic)

    def stop(self):
        stop_all([self])

    def _stop_taking_work(self):
        """No new periodic runs or RPC messages; the manager's own work finishes."""
        for task in self._tasks:
            task.stop()
        if self._server is not None:
            self._server.stop()
        self.manager.shutdown()

    def _wait_stopped(self):
        if self._server is not None:
            self._server.wait()
        LOG.info("%s on %s stopped", self.binary, self.host)


def stop_all(services):
    """Stop services that run together (lamina-aio, a test stack), last started first.

    Each manager finishes its own work while the services started before it still answer
    (a backup that is ending gives its source back through the volume service). Then the RPC
    servers' waits run side by side: each takes about a second, the idle timeout of
    oslo.messaging's worker threads, so one after another they add up."""
    for svc in reversed(services):
        svc._stop_taking_work()
    waits = [threading.Thread(target=svc._wait_stopped, name="stop-" + svc.binary)
             for svc in services]
    for thread in waits:
        thread.start()
    for thread in waits:
        thread.join()


def wait_for_signal():
    """Block the main thread until SIGTERM or SIGINT."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1):
        pass


def freeze_startup_objects():
    """Keep what start-up made (modules, options, ORM mappers, the app) out of the cyclic
    garbage collector's full collections for the life of the process. Every request makes
    thousands of short-lived objects (ORM rows above all), which trigger collections; a full
    one otherwise walks the few hundred thousand start-up objects each time. Measured on
    GET /volumes/detail of 1,000 on MariaDB (docs/benchmarks.md, issue 14): 68 ms of
    collection per page before, 14 ms after. Called once the process is ready to serve."""
    gc.collect()
    gc.freeze()


def serve(build_services, argv):
    """Process entry shared by the service binaries: parse config, log, start the services
    build_services() returns, run until SIGTERM/SIGINT, stop them cleanly."""
    from common import config

    config.parse_args(argv)
    config.setup_logging()
    from common import metrics

    metrics.start_service_server()  # [metrics] service_metrics_port; 0: none
    services = build_services()
    for svc in services:
        svc.start()
    freeze_startup_objects()
    wait_for_signal()
    stop_all(services)
