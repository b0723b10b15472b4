"""Authentication: `keystone` (deployed) or `noauth` (the embedded default, and tests).

With keystone, keystonemiddleware's auth_token wraps the WSGI app (``wrap``): it validates
the X-Auth-Token against Keystone (configured in ``[keystone_authtoken]``), refuses a
missing, bad or expired token with 401, and sets X-User-Id, X-Project-Id, X-Roles,
X-Is-Admin-Project, OpenStack-System-Scope, ... from which the request context is built.
The version documents (/, /v2/, /v3/) need no token, as with Cinder, nor does /metrics
(api/metrics.py: scrapers carry no token; it is off with metrics_enabled = False).

With noauth the token is `user:project` (python-cinderclient's noauth plugin sends exactly
that) or a bare `user`, who is then also the project, as in Cinder; without a token the user
is the configured admin in the project of the URL. The user
named by `noauth_admin_user` is an admin, every other user a member of its project."""

import uuid

import flask
from oslo_config import cfg

from api import metrics, policy
from common import context as lamina_context
from common import exception

auth_opts = [
    cfg.StrOpt("auth_strategy", default="noauth", choices=["noauth", "keystone"],
               help="How API requests are authenticated. keystone: tokens validated by "
                    "keystonemiddleware (options in [keystone_authtoken]). noauth trusts "
                    "the X-Auth-Token `user:project` (for the embedded default and tests "
                    "only)."),
    cfg.StrOpt("noauth_admin_user", default="admin",
               help="With noauth, the user name that is an administrator."),
]
CONF = cfg.CONF
CONF.register_opts(auth_opts)


VERSION_PATHS = ("", "/v2", "/v3")


def wrap(wsgi_app):
    """The WSGI app behind keystonemiddleware when auth_strategy is keystone."""
    if CONF.auth_strategy != "keystone":
        return wsgi_app
    from keystonemiddleware import auth_token

    protected = auth_token.AuthProtocol(wsgi_app, {"oslo_config_config": CONF})

    open_paths = VERSION_PATHS + ((metrics.PATH,) if CONF.metrics_enabled else ())

    def dispatch(environ, start_response):
        if environ.get("PATH_INFO", "").rstrip("/") in open_paths:
            return wsgi_app(environ, start_response)
        return protected(environ, start_response)
    return dispatch


def _request_id():
    request_id = flask.request.headers.get("X-OpenStack-Request-ID")
    if not request_id or not request_id.startswith("req-"):
        request_id = "req-" + str(uuid.uuid4())
    return request_id


def _keystone_context():
    environ = flask.request.environ
    if environ.get("HTTP_X_IDENTITY_STATUS") != "Confirmed" or \
            not environ.get("HTTP_X_USER_ID"):
        # Only reachable when the middleware is not in front (misconfiguration).
        raise exception.NotAuthorized("Authentication required.")
    ctx = lamina_context.RequestContext.from_environ(environ, request_id=_request_id())
    ctx.is_admin = policy.check_is_admin(ctx)
    return ctx


def build_context(url_project_id):
    if CONF.auth_strategy == "keystone":
        return _keystone_context()
    token = flask.request.headers.get("X-Auth-Token", "")
    if token:
        # As Cinder's noauth: `user:project`, or a bare `user` who is also the project.
        user_id, _sep, project_id = token.partition(":")
        project_id = project_id or user_id
    else:
        user_id, project_id = CONF.noauth_admin_user, url_project_id
    if not user_id or not project_id:
        raise exception.NotAuthorized("Authentication required: send X-Auth-Token "
                                      "user:project (noauth).")
    is_admin = user_id == CONF.noauth_admin_user
    request_id = _request_id()
    ctx = lamina_context.RequestContext(
        user_id=user_id, project_id=project_id, is_admin=is_admin,
        roles=["admin", "member", "reader"] if is_admin else ["member", "reader"],
        request_id=request_id)
    return ctx
