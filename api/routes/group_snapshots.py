"""/group_snapshots (3.14): a snapshot of every member of a group, taken together; reset
status (3.19, admin). Each member snapshot is a snapshot row with `group_snapshot_id`."""

import flask

from api import microversion, policy, schemas, views
from api.routes.groups import _requests
from api.routes.helpers import accepted, as_bool, ctx, json_body, paging, reply
from common import exception
from common.db import groups_api as gdb

bp = flask.Blueprint("group_snapshots", __name__)
VERSION = (3, 14)
SORT_KEYS = {"id": "id", "name": "name", "status": "status", "created_at": "created_at",
             "updated_at": "updated_at", "group_id": "group_id"}
FILTERS = ("name", "status", "group_id", "group_type_id")
NON_FILTER_ARGS = {"limit", "marker", "sort", "sort_key", "sort_dir", "all_tenants", "offset"}


def _authorized(group_snapshot_id, rule):
    gs = gdb.group_snapshot_get(ctx(), group_snapshot_id)  # 404 for another project's
    policy.authorize(ctx(), rule, gs)
    return gs


def _list(detail):
    microversion.require(VERSION)
    policy.authorize(ctx(), "group:get_all_group_snapshots")
    limit, marker, keys, dirs = paging(SORT_KEYS)
    filters = {}
    for key, value in flask.request.args.items():
        if key in NON_FILTER_ARGS:
            continue
        if key not in FILTERS:
            raise exception.InvalidInput(reason="Invalid filters %s are found in query "
                                                "options." % key)
        filters[key] = value
    all_projects = ctx().is_admin and as_bool(flask.request.args.get("all_tenants", "0"),
                                              "all_tenants")
    items = gdb.group_snapshot_get_all(ctx(), filters=filters, all_projects=all_projects,
                                       marker=marker, limit=limit,
                                       sort_keys=[SORT_KEYS[k] for k in keys], sort_dirs=dirs)
    render = views.group_snapshot_detail if detail else views.group_snapshot_summary
    return reply({"group_snapshots": [render(g) for g in items]})


@bp.get("/group_snapshots")
def index(project_id):
    return _list(detail=False)


@bp.get("/group_snapshots/detail")
def detail(project_id):
    return _list(detail=True)


@bp.post("/group_snapshots")
def create(project_id):
    microversion.require(VERSION)
    body = json_body(schemas.group_snapshot_create)["group_snapshot"]
    group = gdb.group_get(ctx(), body["group_id"])
    policy.authorize(ctx(), "group:create_group_snapshot", group)
    gs = _requests().create_group_snapshot(ctx(), group.id, body.get("name"),
                                           body.get("description"))
    return reply({"group_snapshot": views.group_snapshot_created(gs)}, 202)


@bp.get("/group_snapshots/<group_snapshot_id>")
def show(project_id, group_snapshot_id):
    microversion.require(VERSION)
    gs = _authorized(group_snapshot_id, "group:get_group_snapshot")
    return reply({"group_snapshot": views.group_snapshot_detail(gs)})


@bp.delete("/group_snapshots/<group_snapshot_id>")
def delete(project_id, group_snapshot_id):
    microversion.require(VERSION)
    _authorized(group_snapshot_id, "group:delete_group_snapshot")
    _requests().delete_group_snapshot(ctx(), group_snapshot_id)
    return accepted()


@bp.post("/group_snapshots/<group_snapshot_id>/action")
def action(project_id, group_snapshot_id):
    microversion.require(VERSION)
    body = json_body()
    if list(body) != ["reset_status"]:
        raise exception.InvalidInput(reason="There is no such action: %s"
                                            % ", ".join(body)[:255])
    microversion.require((3, 19))
    args = body["reset_status"]
    schemas.validate(args, schemas.group_snapshot_reset_status_action)
    _authorized(group_snapshot_id, "group:reset_group_snapshot_status")
    _requests().reset_group_snapshot_status(ctx(), group_snapshot_id, args["status"])
    return accepted()
