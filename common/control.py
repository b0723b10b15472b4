"""The control RPC every service process answers, for operators (lamina-manage, the API's
os-services set-log/get-log): what the service is doing now and its log levels.

Each common.service.Service mounts a ControlEndpoint on its RPC server beside its manager.
The endpoint has its own Target namespace ("control") and version, so its methods never
collide with a manager's and the two version independently. What only one service knows
(a volume service's operations in flight and pool states) comes from a hook its manager
may define, `control_status()` returning a dict, so this module knows no service.

The client half (ControlClient) is here too: every caller is an operator's tool, and each
call has a timeout after which it raises ServiceNotAnswering naming the service.

Version history:
  1.0  status, get_log_levels, set_log_levels
"""

import concurrent.futures
import importlib.metadata
import json
import logging
import os
import socket
import socketserver
import threading
import time

import oslo_messaging as messaging
from oslo_config import cfg

from common import context as lamina_context
from common import exception

LOG = logging.getLogger(__name__)

NAMESPACE = "control"
VERSION = "1.0"
# Levels an operator may set, as Cinder's set-log accepts them.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

control_opts = [
    cfg.IntOpt("control_rpc_timeout", default=10, min=1,
               help="Seconds an operator's control call (lamina-manage, os-services "
                    "set-log/get-log) waits for one service's answer before it reports the "
                    "service as not answering."),
]
CONF = cfg.CONF
CONF.register_opts(control_opts)


def lamina_version():
    try:
        return importlib.metadata.version("lamina")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


class ServiceNotAnswering(exception.LaminaException):
    message = "%(binary)s on %(host)s did not answer within %(timeout)s s (%(reason)s)"


def _loggers(prefix):
    """(name, logger) of this process's loggers whose name starts with prefix ('' or None:
    all, the root logger too)."""
    prefix = prefix or ""
    found = [(name, logger) for name, logger in
             list(logging.Logger.manager.loggerDict.items())
             if isinstance(logger, logging.Logger) and name.startswith(prefix)]
    if not prefix:
        found.append(("root", logging.getLogger()))
    return sorted(found)


def get_log_levels(prefix=None):
    """{logger name: level name} of this process's loggers under prefix."""
    return {name: logging.getLevelName(logger.level) for name, logger in _loggers(prefix)}


def set_log_levels(level, prefix=None):
    """Set the level of this process's loggers under prefix; returns how many changed."""
    level = validate_level(level)
    changed = 0
    for _, logger in _loggers(prefix):
        logger.setLevel(level)
        changed += 1
    LOG.info("Log level of %d logger(s) under %r set to %s", changed, prefix or "",
             level)
    return changed


def validate_level(level):
    name = str(level or "").upper()
    if name not in LOG_LEVELS:
        raise exception.InvalidInput(reason="Invalid log level %s, must be one of %s."
                                     % (level, ", ".join(LOG_LEVELS)))
    return name


class ControlEndpoint:
    """Mounted beside a manager on each service's RPC server (common.service)."""

    target = messaging.Target(namespace=NAMESPACE, version=VERSION)

    def __init__(self, service):
        self.service = service
        self.started = time.time()

    def status(self, ctxt):
        manager = self.service.manager
        hook = getattr(manager, "control_status", None)
        extra = hook() if hook else {}
        in_flight = extra.get("in_flight")
        answer = {"binary": self.service.binary, "host": self.service.host,
                  "version": lamina_version(), "rpc_version": self.service.rpc_version,
                  "pid": os.getpid(), "uptime": round(time.time() - self.started, 1),
                  "in_flight_count": len(in_flight) if in_flight is not None else 0}
        answer.update(extra)
        return answer

    def get_log_levels(self, ctxt, prefix=None):
        return {"binary": self.service.binary, "host": self.service.host,
                "levels": get_log_levels(prefix)}

    def set_log_levels(self, ctxt, level, prefix=None):
        return {"binary": self.service.binary, "host": self.service.host,
                "changed": set_log_levels(level, prefix)}


class ControlClient:
    """Calls one service's control endpoint, on its (topic, host) queue."""

    def __init__(self, timeout=None):
        self.timeout = timeout or CONF.control_rpc_timeout

    def _client(self, topic, host):
        from common import rpc

        # "control": no [upgrade_levels] option caps it (the endpoint versions on its own)
        return rpc.get_client(topic, VERSION, "control", server=host).prepare(
            namespace=NAMESPACE, timeout=self.timeout)

    def call(self, binary, topic, host, method, **kwargs):
        ctxt = lamina_context.get_admin_context()
        try:
            return self._client(topic, host).call(ctxt, method, **kwargs)
        except (messaging.MessagingTimeout, messaging.MessageUndeliverable) as exc:
            raise ServiceNotAnswering(binary=binary, host=host, timeout=self.timeout,
                                      reason=type(exc).__name__)

    def cast(self, row, method, **kwargs):
        """Send without waiting (the API's set-log answers 202 at once)."""
        self._client(row.topic, row.host).cast(lamina_context.get_admin_context(), method,
                                               **kwargs)

    def status(self, row):
        return self.call(row.binary, row.topic, row.host, "status")

    def get_log_levels(self, row, prefix=None):
        return self.call(row.binary, row.topic, row.host, "get_log_levels", prefix=prefix)

    def set_log_levels(self, row, level, prefix=None):
        return self.call(row.binary, row.topic, row.host, "set_log_levels", level=level,
                         prefix=prefix)

    def each(self, rows, method, **kwargs):
        """Call method on every service row at once (a silent one costs one timeout, not
        one each); [(row, answer or None, error or None)] in the rows' order."""
        rows = list(rows)
        if not rows:
            return []

        def one(row):
            try:
                return row, self.call(row.binary, row.topic, row.host, method, **kwargs), None
            except Exception as exc:  # each service's answer stands on its own
                return row, None, exc

        with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(rows))) as pool:
            return list(pool.map(one, rows))


# --- the embedded service's control socket ------------------------------------------------------
#
# lamina-aio runs on the in-process fake:// transport, which nothing outside the process can
# reach. It listens on a unix socket in its data directory (owner-only), and relays each
# request read there, one JSON line, onto that transport as an RPC call or cast; the answer
# (or the error) goes back as one JSON line. `lamina-manage --aio-dir DIR` installs
# relay_client_factory as common.rpc's relay, so every rpcapi it uses goes through it.

SOCKET_NAME = "control.sock"


class AioNotRunning(exception.LaminaException):
    message = ("no lamina-aio answers on %(path)s (%(reason)s): start it with --data-dir "
               "naming the directory given to --aio-dir")


class RelayedError(exception.LaminaException):
    message = "%(kind)s: %(reason)s"


class _RelayHandler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline()
        try:
            answer = {"result": _relay_one(json.loads(line))}
        except Exception as exc:  # sent back to lamina-manage, which reports it
            answer = {"error": {"class": type(exc).__name__, "message": str(exc)}}
        self.wfile.write(json.dumps(answer, default=str).encode() + b"\n")


def _relay_one(request):
    from common import rpc

    target = messaging.Target(**request["target"])
    client = messaging.get_rpc_client(rpc.get_transport(), target,
                                      version_cap=request.get("version_cap"),
                                      serializer=rpc.ContextSerializer())
    if request.get("timeout"):
        client = client.prepare(timeout=request["timeout"])
    ctxt = lamina_context.RequestContext.from_dict(request.get("context") or {})
    send = client.call if request["kind"] == "call" else client.cast
    return send(ctxt, request["method"], **(request.get("kwargs") or {}))


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class ControlSocket:
    """The embedded service's relay: start() in lamina-aio once its services run."""

    def __init__(self, data_dir):
        self.path = os.path.join(data_dir, SOCKET_NAME)
        self._server = None
        self._thread = None

    def start(self):
        if os.path.exists(self.path):
            probe = socket.socket(socket.AF_UNIX)
            try:
                probe.connect(self.path)
                raise RuntimeError("another lamina-aio listens on %s" % self.path)
            except OSError:
                os.unlink(self.path)  # left by an aio that was killed
            finally:
                probe.close()
        old_umask = os.umask(0o177)  # owner-only from the start, not after a chmod
        try:
            self._server = _UnixServer(self.path, _RelayHandler)
        finally:
            os.umask(old_umask)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="control-socket", daemon=True)
        self._thread.start()
        LOG.info("Control socket for lamina-manage --aio-dir at %s", self.path)

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


class RelayClient:
    """What common.rpc.get_client returns in lamina-manage --aio-dir: oslo.messaging's
    prepare/call/cast, carried over the aio's control socket."""

    _TARGET_KEYS = ("topic", "server", "namespace", "version", "fanout", "exchange")

    def __init__(self, path, target, version_cap=None, timeout=None):
        self.path = path
        self.target = {k: getattr(target, k) for k in self._TARGET_KEYS
                       if getattr(target, k, None) is not None} \
            if not isinstance(target, dict) else dict(target)
        self.version_cap = version_cap
        self.timeout = timeout

    def prepare(self, timeout=None, **kwargs):
        target = dict(self.target, **{k: v for k, v in kwargs.items()
                                      if k in self._TARGET_KEYS and v is not None})
        return RelayClient(self.path, target, self.version_cap,
                           timeout if timeout is not None else self.timeout)

    def call(self, ctxt, method, **kwargs):
        return self._send("call", ctxt, method, kwargs)

    def cast(self, ctxt, method, **kwargs):
        self._send("cast", ctxt, method, kwargs)

    def _send(self, kind, ctxt, method, kwargs):
        request = {"target": self.target, "version_cap": self.version_cap, "kind": kind,
                   "method": method, "kwargs": kwargs, "timeout": self.timeout,
                   "context": ctxt.to_dict()}
        conn = socket.socket(socket.AF_UNIX)
        # the aio's own call times out first and says so
        conn.settimeout((self.timeout or 60) + 10)
        try:
            conn.connect(self.path)
        except OSError as exc:
            conn.close()
            raise AioNotRunning(path=self.path, reason=exc.strerror or exc)
        try:
            conn.sendall(json.dumps(request, default=str).encode() + b"\n")
            reply = conn.makefile("rb").readline()
        finally:
            conn.close()
        if not reply:
            raise AioNotRunning(path=self.path, reason="it closed the connection")
        answer = json.loads(reply)
        error = answer.get("error")
        if error is None:
            return answer.get("result")
        if error["class"] == "MessagingTimeout":
            raise messaging.MessagingTimeout(error["message"])
        known = getattr(exception, error["class"], None)
        if isinstance(known, type) and issubclass(known, exception.LaminaException):
            raise known(message=error["message"])
        raise RelayedError(kind=error["class"], reason=error["message"])


def relay_client_factory(data_dir):
    path = os.path.join(os.path.abspath(data_dir), SOCKET_NAME)

    def factory(target, version_cap):
        return RelayClient(path, target, version_cap)
    return factory
