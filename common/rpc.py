"""oslo.messaging plumbing: one transport per process, the request context on every message."""

import threading
import time

import oslo_messaging as messaging
from oslo_config import cfg

from common import context as lamina_context
from common import metrics

CONF = cfg.CONF

upgrade_opts = [
    cfg.StrOpt("scheduler", help="Cap the scheduler RPC API at this version (e.g. 1.0) while "
                                 "services of an older release still run."),
    cfg.StrOpt("volume", help="Cap the volume RPC API at this version."),
    cfg.StrOpt("backup", help="Cap the backup RPC API at this version."),
]
CONF.register_opts(upgrade_opts, group="upgrade_levels")

_lock = threading.Lock()
_transport = None
_url_override = None


def use_transport_url(url):
    """Force a transport URL (the embedded service uses fake://, in-process)."""
    global _url_override
    _url_override = url


_relay = None


def use_relay(factory):
    """Send this process's RPC through factory(target, version_cap), a client with
    oslo.messaging's prepare/call/cast, instead of a transport: `lamina-manage --aio-dir`
    reaches the embedded service's in-process transport through its control socket
    (common/control.py)."""
    global _relay
    _relay = factory


class ContextSerializer(messaging.NoOpSerializer):
    """Sends the request context as a dict and rebuilds it (and its thread store) on receipt,
    so log lines on the far side carry the caller's request id."""

    def serialize_context(self, ctxt):
        return ctxt.to_dict()

    def deserialize_context(self, ctxt):
        context = lamina_context.RequestContext.from_dict(ctxt)
        context.update_store()
        return context


def _set_rabbit_defaults():
    """Durable queues and persistent messages by default: a RabbitMQ restart keeps the
    topic queues and what waits in them. With oslo.messaging's default (transient queues)
    a broker restart deletes them, and a cast sent after the sender reconnects but before
    the consumer has declared its queue again is dropped unseen (a volume then waits in
    `creating` or `deleting` for good). A vhost that already holds transient queues of an
    older release keeps working: oslo.messaging falls back to transient for those."""
    from oslo_messaging import opts as messaging_opts

    for group, opts in messaging_opts.list_opts():
        if group == "oslo_messaging_rabbit":
            CONF.register_opts(opts, group=group)
    CONF.set_default("amqp_durable_queues", True, group="oslo_messaging_rabbit")


def get_transport():
    global _transport
    with _lock:
        if _transport is None:
            _set_rabbit_defaults()
            _transport = messaging.get_rpc_transport(CONF, url=_url_override)
        return _transport


def cleanup():
    global _transport
    with _lock:
        if _transport is not None:
            _transport.cleanup()
        _transport = None


def get_notification_transport():
    """The notifier's transport (common/notifications.py): [oslo_messaging_notifications]
    transport_url when set, else the RPC one's URL (the embedded service's fake:// too)."""
    own_url = CONF.oslo_messaging_notifications.transport_url
    return messaging.get_notification_transport(CONF, url=own_url or _url_override)


class TimedClient:
    """An oslo.messaging RPC client whose calls and casts are timed into this process's
    metrics (common/metrics.py: latency by topic and method, errors by exception class).
    prepare() returns a timed client too, so every rpcapi's prepare(...).call(...) is
    counted; anything else is the wrapped client's own."""

    def __init__(self, client, topic):
        self._client = client
        self._topic = topic

    def prepare(self, **kwargs):
        return TimedClient(self._client.prepare(**kwargs), self._topic)

    def call(self, ctxt, method, **kwargs):
        return self._timed("call", self._client.call, ctxt, method, kwargs)

    def cast(self, ctxt, method, **kwargs):
        return self._timed("cast", self._client.cast, ctxt, method, kwargs)

    def _timed(self, kind, send, ctxt, method, kwargs):
        started = time.monotonic()
        try:
            return send(ctxt, method, **kwargs)
        except Exception as exc:
            metrics.rpc_client_errors.labels(self._topic, method, kind,
                                             type(exc).__name__).inc()
            raise
        finally:
            metrics.rpc_client_duration.labels(self._topic, method, kind).observe(
                time.monotonic() - started)

    def __getattr__(self, name):
        return getattr(self._client, name)


def get_client(topic, version, cap_name, server=None, fanout=False):
    target = messaging.Target(topic=topic, version=version, server=server, fanout=fanout)
    cap = getattr(CONF.upgrade_levels, cap_name, None)
    if _relay is not None:
        return _relay(target, cap)
    return TimedClient(messaging.get_rpc_client(get_transport(), target, version_cap=cap,
                                                serializer=ContextSerializer()), topic)


def get_server(topic, server, endpoints):
    target = messaging.Target(topic=topic, server=server)
    return messaging.get_rpc_server(get_transport(), target, endpoints, executor="threading",
                                    serializer=ContextSerializer())
