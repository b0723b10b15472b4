"""/os-services, /scheduler-stats/get_pools and /messages."""

import flask

from api import microversion, policy, schemas, views
from api.routes import resource_filters
from api.routes.helpers import accepted, as_bool, ctx, json_body, paging, reply
from common import exception, service
from common.db import api as db

bp = flask.Blueprint("services", __name__)


def service_state(row):
    return "up" if service.is_up(row.heartbeat_at) else "down"


@bp.get("/os-services")
def services_index(project_id):
    policy.authorize(ctx(), "volume_extension:services:index")
    args = flask.request.args
    rows = db.service_get_all(host=args.get("host"), binary=args.get("binary"))
    return reply({"services": [views.service(r, service_state(r)) for r in rows]})


def _set_enabled(disabled):
    policy.authorize(ctx(), "volume_extension:services:update")
    body = json_body(schemas.service_enable)
    reason = body.get("disabled_reason") if disabled else None
    db.service_update(body["host"], body["binary"],
                      {"disabled": disabled, "disabled_reason": reason})
    return reply({"host": body["host"], "binary": body["binary"],
                  "status": "disabled" if disabled else "enabled",
                  "disabled": disabled, "disabled_reason": reason})


@bp.put("/os-services/<action>")
def services_update(project_id, action):
    if action == "enable":
        return _set_enabled(False)
    if action in ("disable", "disable-log-reason"):
        return _set_enabled(True)
    raise exception.NotFound("Unknown action %s" % action)


@bp.get("/scheduler-stats/get_pools")
def get_pools(project_id):
    policy.authorize(ctx(), "scheduler_extension:scheduler_stats:get_pools")
    detail = as_bool(flask.request.args.get("detail", "false"), "detail")
    pools = resource_filters.filter_pools(db.pool_get_all())
    return reply({"pools": [views.pool(p, detail) for p in pools]})


@bp.get("/messages")
def messages_index(project_id):
    microversion.require((3, 3))
    policy.authorize(ctx(), "message:get_all")
    if microversion.at_least((3, 5)):
        limit, marker, _, _ = paging(("created_at",))
    else:
        limit, marker = None, None
    msgs = db.message_get_all(ctx(), resource_uuid=flask.request.args.get("resource_uuid"),
                              marker=marker, limit=limit)
    return reply({"messages": [views.message(m) for m in msgs]})


@bp.get("/messages/<message_id>")
def messages_show(project_id, message_id):
    microversion.require((3, 3))
    message = db.message_get(ctx(), message_id)
    policy.authorize(ctx(), "message:get", message)
    return reply({"message": views.message(message)})


@bp.delete("/messages/<message_id>")
def messages_delete(project_id, message_id):
    microversion.require((3, 3))
    policy.authorize(ctx(), "message:delete", db.message_get(ctx(), message_id))
    db.message_delete(ctx(), message_id)
    return accepted()
