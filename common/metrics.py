"""What each Lamina process counts about its own work, in Prometheus' format: RPC calls and
casts it sends (latency by topic and method), placements its scheduler decided (by result,
and the pools each filter rejected), flows its services ran (failures by the task that
failed).

The figures live in one registry per process (``REGISTRY``), not prometheus_client's global
one, so that only Lamina's families are served. Who serves it:

- lamina-scheduler, lamina-volume and lamina-backup: their own HTTP port when
  ``[metrics] service_metrics_port`` is set (``start_service_server``, from
  common/service.serve);
- the API: GET /metrics (api/metrics.py) adds these families beside its request counts and
  the database's figures, so in lamina-aio (every service in one process) that one scrape
  shows the scheduler's and the volume service's counters too.

The database-derived gauges (volumes by status, pool capacity, ...) are served by the API
only: every process reads the same database, and one place answering keeps them single.

A counter is a process's own since it started; Prometheus' rate() and increase() read across
restarts, so nothing here is persisted."""

import logging

import prometheus_client
from oslo_config import cfg

LOG = logging.getLogger(__name__)

metrics_opts = [
    cfg.PortOpt("service_metrics_port", default=0,
                help="Port on which lamina-scheduler, lamina-volume and lamina-backup serve "
                     "their own metrics (RPC latency, scheduler decisions and filter "
                     "rejections, flow failures) in Prometheus' text format, without "
                     "authentication. 0 serves none. One port per process: give each service "
                     "on a host its own. The API serves these on GET /metrics instead."),
    cfg.HostAddressOpt("metrics_listen", default="127.0.0.1",
                       help="Address the service metrics port listens on. The default only "
                            "answers scrapers on this host; 0.0.0.0 (or the host's address) "
                            "for a Prometheus elsewhere, behind a firewall."),
]
CONF = cfg.CONF
CONF.register_opts(metrics_opts, group="metrics")

REGISTRY = prometheus_client.CollectorRegistry()

# RPC sends take from under a millisecond (a cast on a local broker) to the call timeout.
_RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                30.0, 60.0)

rpc_client_duration = prometheus_client.Histogram(
    "lamina_rpc_client_duration_seconds",
    "Time this process spent sending an RPC message, by topic, method and kind: for a call "
    "until its answer came back, for a cast until the broker took it.",
    ["topic", "method", "kind"], buckets=_RPC_BUCKETS, registry=REGISTRY)
rpc_client_errors = prometheus_client.Counter(
    "lamina_rpc_client_errors",
    "RPC calls and casts of this process that raised (timeout, broker refused, remote "
    "error), by topic, method, kind and exception class.",
    ["topic", "method", "kind", "exception"], registry=REGISTRY)

scheduler_decisions = prometheus_client.Counter(
    "lamina_scheduler_decisions",
    "Placements this scheduler decided, by result: placed (a pool's claim won), "
    "no_valid_backend (no pool passed the filters, or every candidate's claim was lost) or "
    "error (the placement raised, e.g. the database was away).",
    ["result"], registry=REGISTRY)
scheduler_rejections = prometheus_client.Counter(
    "lamina_scheduler_rejections",
    "Pools a scheduler filter rejected during placements, by the filter that rejected them "
    "(the first one in scheduler_default_filters a pool failed).",
    ["filter"], registry=REGISTRY)
scheduler_claims_lost = prometheus_client.Counter(
    "lamina_scheduler_claims_lost",
    "Claims on the best pool that another placement won first (the next candidate was "
    "tried).", registry=REGISTRY)

flow_runs = prometheus_client.Counter(
    "lamina_flow_runs",
    "TaskFlow flows this process ran to the end, by flow and result (succeeded, or failed "
    "and reverted).", ["flow", "result"], registry=REGISTRY)
flow_failures = prometheus_client.Counter(
    "lamina_flow_failures",
    "Flow tasks whose execute failed (the flow then reverted), by flow and task.",
    ["flow", "task"], registry=REGISTRY)


class ProcessCollector:
    """This process's families, for another registry to serve (the API's)."""

    def collect(self):
        return REGISTRY.collect()


_server = None


def start_service_server():
    """Serve ``REGISTRY`` on [metrics] service_metrics_port, if set; returns the port (or
    None). prometheus_client's server runs in a daemon thread, gone with the process."""
    global _server
    port = CONF.metrics.service_metrics_port
    if not port:
        return None
    if _server is None:
        _server, _thread = prometheus_client.start_http_server(
            port, addr=CONF.metrics.metrics_listen, registry=REGISTRY)
        LOG.info("Metrics served on http://%s:%s/metrics", CONF.metrics.metrics_listen,
                 _server.server_port)
    return _server.server_port
