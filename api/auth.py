"""Authentication: `noauth` for the embedded default (and tests).

With noauth the token is `user:project` (python-cinderclient's noauth plugin sends exactly
that) or a bare `user`, who is then also the project, as in Cinder; without a token the user
is the configured admin in the project of the URL. The user
named by `noauth_admin_user` is an admin, every other user a member of its project."""

import uuid

import flask
from oslo_config import cfg

from common import context as lamina_context
from common import exception

auth_opts = [
    cfg.StrOpt("auth_strategy", default="noauth", choices=["noauth"],
               help="How API requests are authenticated. noauth trusts the X-Auth-Token "
                    "`user:project` (for the embedded default and tests only)."),
    cfg.StrOpt("noauth_admin_user", default="admin",
               help="With noauth, the user name that is an administrator."),
]
CONF = cfg.CONF
CONF.register_opts(auth_opts)


def build_context(url_project_id):
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
    request_id = flask.request.headers.get("X-OpenStack-Request-ID")
    if not request_id or not request_id.startswith("req-"):
        request_id = "req-" + str(uuid.uuid4())
    ctx = lamina_context.RequestContext(
        user_id=user_id, project_id=project_id, is_admin=is_admin,
        roles=["admin", "member", "reader"] if is_admin else ["member", "reader"],
        request_id=request_id)
    return ctx
