"""The API's access log: one line per request in the Apache combined log format, with the
request's duration and request id appended, on the logger ``lamina.api.access``.

A WSGI middleware outside the whole app (keystonemiddleware and /metrics included), so a 401
for a missing token is logged like any other answer. The combined format is what log
shippers and analysers parse without configuration; the two fields after it are Lamina's:

    127.0.0.1 - alice [04/Dec/2026:19:50:00 +0000] "POST /v3/p1/volumes HTTP/1.1" 202 923
    "-" "python-cinderclient" 0.012 req-5c1e...

The user field is the Keystone user id (or noauth's user) once the request was authenticated,
else "-". ``api_access_log = False`` turns the lines off (a front proxy may log them)."""

import logging
import time

from oslo_config import cfg
from oslo_context import context as oslo_context

access_log_opts = [
    cfg.BoolOpt("api_access_log", default=True,
                help="Log every API request at INFO on the logger lamina.api.access, in the "
                     "Apache combined log format followed by the duration in seconds and the "
                     "request id. False leaves access logging to a front proxy."),
]
CONF = cfg.CONF
CONF.register_opts(access_log_opts)

LOG = logging.getLogger("lamina.api.access")
REQUEST_ID_HEADER = "x-openstack-request-id"


def _quoted(value):
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"') if value else '"-"'


def access_line(environ, status, length, user, duration, request_id):
    """One combined-format line (plus duration and request id) for a finished request."""
    target = environ.get("PATH_INFO", "") or "/"
    if environ.get("QUERY_STRING"):
        target += "?" + environ["QUERY_STRING"]
    request_line = "%s %s %s" % (environ.get("REQUEST_METHOD", "-"), target,
                                 environ.get("SERVER_PROTOCOL", "HTTP/1.1"))
    return '%s - %s [%s] %s %s %s %s %s %.3f %s' % (
        environ.get("REMOTE_ADDR") or "-", user or "-",
        time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()), _quoted(request_line),
        status, length if length is not None else "-", _quoted(environ.get("HTTP_REFERER")),
        _quoted(environ.get("HTTP_USER_AGENT")), duration, request_id or "-")


def wrap(wsgi_app):
    """The app with its requests logged (unchanged when api_access_log is off)."""
    if not CONF.api_access_log:
        return wsgi_app

    def logged_app(environ, start_response):
        # A waitress thread keeps the last request's context in oslo's thread store; a
        # request that builds none (version documents, /metrics) must not log under it.
        oslo_context._request_store.context = None
        started = time.monotonic()
        answer = {}

        def recording_start_response(status, headers, exc_info=None):
            answer["status"] = status.split(" ", 1)[0]
            for name, value in headers:
                lowered = name.lower()
                if lowered == "content-length":
                    answer["length"] = value
                elif lowered == REQUEST_ID_HEADER:
                    answer["request_id"] = value
            return start_response(status, headers, exc_info)

        try:
            return wsgi_app(environ, recording_start_response)
        finally:
            context = oslo_context.get_current()
            LOG.info("%s", access_line(environ, answer.get("status", "-"),
                                       answer.get("length"),
                                       getattr(context, "user_id", None),
                                       time.monotonic() - started,
                                       answer.get("request_id")))

    return logged_app
