"""GET /metrics: Lamina's state and the API's own traffic in Prometheus' text format.

Two kinds of figures. What the database holds (volumes, snapshots and backups by status, pool
capacity, operations in flight) is read at scrape time by ``DatabaseCollector``, one GROUP BY
query per family, so every scrape is as fresh as the database and no API process has to
agree with another on a count. What only this process sees (its requests and their latency)
is counted by a WSGI middleware outside the whole app, keystonemiddleware included, so the
401s of missing or bad tokens are counted with the rest.

Each app has a private CollectorRegistry, not prometheus_client's global one: the tests build
many apps in one process, and each must count only its own requests. The scrape also carries
this process's own counters (common/metrics.py: the RPC latency of the API's casts and calls
and, in lamina-aio, where every service shares the process, the scheduler's decisions and
filter rejections and the flows' failures by task).

The route is served without authentication (as Prometheus exporters are, scrapers carry no
Keystone token) and outside /v3/{project_id}; ``metrics_enabled`` turns it off. The figures
are counts and capacities, no names or ids, but deployments should still firewall it
(docs/deploy.md)."""

import time

import flask
import prometheus_client
import werkzeug.exceptions
from oslo_config import cfg
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import false, func, select

from common import metrics as process_metrics
from common.db import models
from common.db.models import utcnow
from common.db.session import reader

metrics_opts = [
    cfg.BoolOpt("metrics_enabled", default=True,
                help="Serve GET /metrics on the API port: volume, snapshot, backup, pool and "
                     "in-flight operation figures from the database and the API's request "
                     "counts and latencies, in Prometheus' text format, without "
                     "authentication (firewall it to the scrapers). False answers 404."),
]
CONF = cfg.CONF
CONF.register_opts(metrics_opts)

PATH = "/metrics"
# The route label of a request no rule matched (404, 405): one value, whatever the path was,
# so a scan of random URLs cannot grow the label set.
UNMATCHED = "unmatched"
EXTENSION = "lamina_metrics"


class DatabaseCollector:
    """The database's figures, read when scraped."""

    def collect(self):
        with reader() as s:
            families = [self._by_status(s, models.Volume, "lamina_volumes",
                                        "Volumes (not deleted) by status."),
                        self._by_status(s, models.Snapshot, "lamina_snapshots",
                                        "Snapshots (not deleted) by status."),
                        self._by_status(s, models.Backup, "lamina_backups",
                                        "Backups (not deleted) by status.")]
            families += self._pools(s)
            families += self._operations(s)
        return families

    @staticmethod
    def _by_status(s, model, name, documentation):
        family = GaugeMetricFamily(name, documentation, labels=["status"])
        rows = s.execute(select(model.status, func.count())
                         .where(model.deleted == false()).group_by(model.status))
        for status, count in rows:
            family.add_metric([status], count)
        return family

    @staticmethod
    def _pools(s):
        labels = ["pool", "volume_backend_name"]
        total = GaugeMetricFamily("lamina_pool_capacity_total_gb",
                                  "A pool's size as its volume service last reported it.",
                                  labels=labels)
        free = GaugeMetricFamily("lamina_pool_capacity_free_gb",
                                 "A pool's free space as its volume service last reported it.",
                                 labels=labels)
        allocated = GaugeMetricFamily("lamina_pool_capacity_allocated_gb",
                                      "Capacity claimed on a pool by the volumes placed there "
                                      "(the schedulers' claims).", labels=labels)
        # Lamina's pools record what is claimed, not a separate provisioned figure: the
        # provisioned capacity is the claimed one, as GET /scheduler-stats/get_pools says.
        provisioned = GaugeMetricFamily("lamina_pool_capacity_provisioned_gb",
                                        "Capacity provisioned on a pool (the claimed capacity, "
                                        "as get_pools' provisioned_capacity_gb).",
                                        labels=labels)
        usable = GaugeMetricFamily("lamina_pool_capacity_usable_gb",
                                   "Capacity a pool may hold in all, claimed or not (the "
                                   "figure the scheduler's capacity filter and claims read: "
                                   "less the reserve, over-subscribed when thin).",
                                   labels=labels)
        rows = s.execute(select(models.Pool.name, models.Pool.volume_backend_name,
                                models.Pool.total_capacity_gb, models.Pool.free_capacity_gb,
                                models.Pool.allocated_capacity_gb,
                                models.Pool.usable_capacity_gb).order_by(models.Pool.name))
        for name, backend, total_gb, free_gb, allocated_gb, usable_gb in rows:
            values = [name, backend or ""]
            total.add_metric(values, total_gb)
            free.add_metric(values, free_gb)
            allocated.add_metric(values, allocated_gb)
            provisioned.add_metric(values, allocated_gb)
            usable.add_metric(values, usable_gb)
        return [total, free, allocated, provisioned, usable]

    @staticmethod
    def _operations(s):
        labels = ["resource_type", "operation"]
        count = GaugeMetricFamily("lamina_operations_in_flight",
                                  "Operations started and not yet finished or reverted (the "
                                  "workers table).", labels=labels)
        oldest = GaugeMetricFamily("lamina_operation_oldest_age_seconds",
                                   "Seconds since the oldest operation in flight started: one "
                                   "that keeps growing is stuck.", labels=labels)
        worker = models.Worker
        rows = s.execute(select(worker.resource_type, worker.operation, func.count(),
                                func.min(worker.created_at))
                         .group_by(worker.resource_type, worker.operation))
        now = utcnow()
        for resource_type, operation, n, started in rows:
            count.add_metric([resource_type, operation], n)
            oldest.add_metric([resource_type, operation],
                              max(0.0, (now - started).total_seconds()))
        return [count, oldest]


class RequestMetrics:
    """The API's requests, counted around the WSGI app (``wrap``)."""

    def __init__(self, registry):
        labels = ["method", "route"]
        self.requests = prometheus_client.Counter(
            "lamina_api_requests", "API requests answered, by method, route (the URL rule, "
            "e.g. /v3/<project_id>/volumes/<volume_id>) and status code.",
            labels + ["status"], registry=registry)
        self.duration = prometheus_client.Histogram(
            "lamina_api_request_duration_seconds", "Time to answer an API request, by method "
            "and route.", labels, registry=registry)

    def record(self, method, route, status, seconds):
        self.requests.labels(method, route, status).inc()
        self.duration.labels(method, route).observe(seconds)


def _route(app, environ):
    """The URL rule the request matched: Flask's own match when the request got that far,
    else (refused by keystonemiddleware) the app's URL map matched here."""
    request = environ.get("werkzeug.request")
    if request is not None and request.url_rule is not None:
        return request.url_rule.rule
    try:
        rule, _args = app.url_map.bind_to_environ(environ).match(return_rule=True)
    except werkzeug.exceptions.HTTPException:  # no rule, or not this method
        return UNMATCHED
    return rule.rule


def _scrape():
    registry = flask.current_app.extensions[EXTENSION]
    # The format the scraper asks for in Accept (Prometheus offers OpenMetrics first), else
    # the plain text format 0.0.4 every Prometheus reads.
    encode, content_type = prometheus_client.exposition.choose_encoder(
        flask.request.headers.get("Accept"))
    return flask.Response(encode(registry), content_type=content_type)


def wrap(app, wsgi_app):
    """Serve /metrics on the app and count every request through ``wsgi_app`` (the app with
    its middleware): by method, route and status, and the time until the app returned its
    response (Lamina's bodies are built whole before that)."""
    if not CONF.metrics_enabled:
        return wsgi_app
    registry = prometheus_client.CollectorRegistry()
    registry.register(DatabaseCollector())
    registry.register(process_metrics.ProcessCollector())
    requests = RequestMetrics(registry)
    app.extensions[EXTENSION] = registry
    app.add_url_rule(PATH, "metrics", _scrape, methods=["GET"])

    def counted(environ, start_response):
        started = time.monotonic()
        status = []

        def start(line, headers, exc_info=None):
            status.append(line.split(" ", 1)[0])
            return start_response(line, headers, exc_info)

        try:
            return wsgi_app(environ, start)
        finally:
            # no status: the app raised past Flask's handlers, which the server answers 500
            requests.record(environ.get("REQUEST_METHOD", ""), _route(app, environ),
                            status[-1] if status else "500", time.monotonic() - started)
    return counted
