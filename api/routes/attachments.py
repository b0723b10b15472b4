"""/attachments (3.27): how a compute service attaches a volume (seed 001's
os-volume_attachments is Nova's side of it). Create reserves the volume for an instance (and,
with a connector, exports it at once); update gives a reserved attachment its connector and
answers the connection_info; os-complete (3.44) marks it attached; delete unexports it.
Bodies as Cinder's attachments view: lists are summaries (id, status, instance, volume_id),
everything else the detail with attached_at, detached_at, attach_mode, connection_info."""

import flask

from api import microversion, views
from api.routes.helpers import as_bool, ctx, json_body, no_body, paging, reply
from common import exception
from common.db import attachments_api

bp = flask.Blueprint("attachments", __name__)

UUID = {"type": "string", "format": "uuid", "minLength": 36, "maxLength": 36}
CONNECTOR = {"type": ["object", "null"]}
CREATE = {
    "type": "object",
    "properties": {"attachment": {
        "type": "object",
        "properties": {"instance_uuid": {"type": ["string", "null"], "maxLength": 36},
                       "connector": CONNECTOR, "volume_uuid": UUID},
        "required": ["volume_uuid"], "additionalProperties": False}},
    "required": ["attachment"], "additionalProperties": False,
}
# 3.54: the attach mode
CREATE_V354 = {
    "type": "object",
    "properties": {"attachment": {
        "type": "object",
        "properties": {"instance_uuid": {"type": ["string", "null"], "maxLength": 36},
                       "connector": CONNECTOR, "volume_uuid": UUID,
                       "mode": {"type": "string", "enum": ["rw", "ro"]}},
        "required": ["volume_uuid"], "additionalProperties": False}},
    "required": ["attachment"], "additionalProperties": False,
}
UPDATE = {
    "type": "object",
    "properties": {"attachment": {
        "type": "object", "properties": {"connector": {"type": "object"}},
        "required": ["connector"], "additionalProperties": False}},
    "required": ["attachment"], "additionalProperties": False,
}
NON_FILTER_ARGS = {"limit", "marker", "offset", "sort", "sort_key", "sort_dir", "all_tenants"}


def _requests():
    return flask.current_app.config["attachment_requests"]


@bp.before_request
def _gate():
    microversion.require((3, 27))


@bp.post("/attachments")
def create(project_id):
    schema = CREATE_V354 if microversion.at_least((3, 54)) else CREATE
    args = json_body(schema)["attachment"]
    attachment = _requests().create(ctx(), args["volume_uuid"],
                                    instance_uuid=args.get("instance_uuid"),
                                    connector=args.get("connector"),
                                    mode=args.get("mode", "null"))
    return reply({"attachment": views.attachment_detail(attachment)})


@bp.put("/attachments/<attachment_id>")
def update(project_id, attachment_id):
    args = json_body(UPDATE)["attachment"]
    attachment = _requests().update(ctx(), attachment_id, args["connector"])
    return reply({"attachment": views.attachment_detail(attachment)})


@bp.delete("/attachments/<attachment_id>")
def delete(project_id, attachment_id):
    remaining = _requests().delete(ctx(), attachment_id)
    return reply({"attachments": [views.attachment_summary(a) for a in remaining]})


@bp.post("/attachments/<attachment_id>/action")
def action(project_id, attachment_id):
    body = json_body()
    if list(body) != ["os-complete"]:
        raise exception.InvalidInput(reason="There is no such action: %s"
                                     % ", ".join(body) if body else "no action given")
    microversion.require((3, 44))
    _requests().complete(ctx(), attachment_id)
    return no_body(204)


@bp.get("/attachments/<attachment_id>")
def show(project_id, attachment_id):
    return reply({"attachment": views.attachment_detail(_requests().get(ctx(),
                                                                        attachment_id))})


def _list(detail):
    args = flask.request.args
    limit, marker, keys, dirs = paging(attachments_api.SORT_KEYS)
    filters = {}
    for key, value in args.items():
        if key in NON_FILTER_ARGS:
            continue
        if key not in attachments_api.FILTERS:
            raise exception.InvalidInput(reason="Invalid filters %s are found in query "
                                                "options." % key)
        filters[key] = value
    all_projects = ctx().is_admin and as_bool(args.get("all_tenants", "0"), "all_tenants")
    rows = _requests().get_all(ctx(), filters=filters, all_projects=all_projects,
                               marker=marker, limit=limit, sort_keys=keys, sort_dirs=dirs)
    render = views.attachment_detail if detail else views.attachment_summary
    items = [render(a) for a in rows]
    body = {"attachments": items}
    links = views.collection_links("attachments", items, limit)
    if links:
        body["attachments_links"] = links
    return reply(body)


@bp.get("/attachments")
def index(project_id):
    return _list(detail=False)


@bp.get("/attachments/detail")
def detail(project_id):
    return _list(detail=True)
