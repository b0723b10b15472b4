"""/groups (3.13): generic volume groups; actions delete, reset_status (3.20) and
create-from-src (3.14).

Create answers 202 with the id and name; the volume service of the chosen back end makes the
group `available` (or `error`, with a user message). Delete is the `delete` action, with
`delete-volumes` to take the member volumes with it."""

import flask

from api import microversion, policy, schemas, views
from api.group_requests import GroupRequests
from api.routes.helpers import accepted, as_bool, ctx, json_body, paging, reply
from common import exception
from common.db import groups_api as gdb

bp = flask.Blueprint("groups", __name__)
GROUPS_VERSION = (3, 13)
SORT_KEYS = {"id": "id", "name": "name", "status": "status", "created_at": "created_at",
             "updated_at": "updated_at", "availability_zone": "availability_zone",
             "group_type_id": "group_type_id"}
FILTERS = ("name", "status", "availability_zone", "group_type_id")
NON_FILTER_ARGS = {"limit", "marker", "sort", "sort_key", "sort_dir", "all_tenants", "offset",
                   "list_volume"}
LIST_VOLUME_VERSION = (3, 25)


def _requests():
    app = flask.current_app
    if "group_requests" not in app.config:
        app.config["group_requests"] = GroupRequests()
    return app.config["group_requests"]


def _authorized(group_id, rule):
    group = gdb.group_get(ctx(), group_id)  # 404 for another project's
    policy.authorize(ctx(), rule, group)
    return group


def _list(detail):
    microversion.require(GROUPS_VERSION)
    policy.authorize(ctx(), "group:get_all")
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
    groups = gdb.group_get_all(ctx(), filters=filters, all_projects=all_projects,
                               marker=marker, limit=limit,
                               sort_keys=[SORT_KEYS[k] for k in keys], sort_dirs=dirs)
    if not detail:
        return reply({"groups": [views.group_summary(g) for g in groups]})
    return reply({"groups": [_detail(g) for g in groups]})


def _detail(group):
    """A group's detail; from 3.25, with `list_volume=true`, its member volumes' ids."""
    body = views.group_detail(group)
    if microversion.at_least(LIST_VOLUME_VERSION) and as_bool(
            flask.request.args.get("list_volume", "false"), "list_volume"):
        body["volumes"] = [volume.id for volume in gdb.group_volumes(group.id)]
    return body


@bp.get("/groups")
def index(project_id):
    return _list(detail=False)


@bp.get("/groups/detail")
def detail(project_id):
    return _list(detail=True)


@bp.post("/groups")
def create(project_id):
    microversion.require(GROUPS_VERSION)
    policy.authorize(ctx(), "group:create")
    body = json_body(schemas.group_create)["group"]
    volume_requests = flask.current_app.config["volume_requests"]
    group = _requests().create(ctx(), body.get("name"), body.get("description"),
                               body["group_type"], body["volume_types"],
                               body.get("availability_zone"), volume_requests.default_zone(),
                               volume_requests.known_zones())
    return reply({"group": views.group_summary(group)}, 202)


@bp.get("/groups/<group_id>")
def show(project_id, group_id):
    microversion.require(GROUPS_VERSION)
    return reply({"group": _detail(_authorized(group_id, "group:get"))})


def _ids(raw):
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


@bp.put("/groups/<group_id>")
def update(project_id, group_id):
    microversion.require(GROUPS_VERSION)
    body = json_body(schemas.group_update)["group"]
    _authorized(group_id, "group:update")
    values = {k: body[k] for k in ("name", "description") if k in body}
    add_ids, remove_ids = _ids(body.get("add_volumes")), _ids(body.get("remove_volumes"))
    if not values and not add_ids and not remove_ids:
        raise exception.InvalidInput(reason="Name, description, add_volumes, and "
                                            "remove_volumes can not be all empty in the "
                                            "request body.")
    _requests().update(ctx(), group_id, values, add_ids, remove_ids)
    return accepted()


@bp.post("/groups/action")
def create_from_src(project_id):
    """3.14: a group from a group snapshot or from another group, its data equal."""
    microversion.require((3, 14))
    body = json_body()
    if list(body) != ["create-from-src"]:
        raise exception.InvalidInput(reason="the only action here is create-from-src")
    args = body["create-from-src"]
    if not isinstance(args, dict):
        raise exception.InvalidInput(reason="create-from-src takes an object")
    schemas.validate(args, schemas.group_create_from_src_action)
    policy.authorize(ctx(), "group:create")
    group = _requests().create_from_src(ctx(), args.get("name"), args.get("description"),
                                        args.get("group_snapshot_id"),
                                        args.get("source_group_id"))
    return reply({"group": views.group_summary(group)}, 202)


# --- actions -------------------------------------------------------------------------------------

def _delete(group_id, args):
    schemas.validate(args, schemas.group_delete_action)
    _authorized(group_id, "group:delete")
    _requests().delete(ctx(), group_id,
                       as_bool(args.get("delete-volumes", False), "delete-volumes"))
    return accepted()


def _reset_status(group_id, args):
    microversion.require((3, 20))
    schemas.validate(args, schemas.group_reset_status_action)
    _authorized(group_id, "group:reset_status")
    _requests().reset_status(ctx(), group_id, args["status"])
    return accepted()


ACTIONS = {"delete": _delete, "reset_status": _reset_status}


@bp.post("/groups/<group_id>/action")
def action(project_id, group_id):
    microversion.require(GROUPS_VERSION)
    body = json_body()
    if len(body) != 1:
        raise exception.InvalidInput(reason="exactly one action per request")
    name, args = next(iter(body.items()))
    if name not in ACTIONS:
        raise exception.InvalidInput(reason="There is no such action: %s" % name)
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise exception.InvalidInput(reason="the %s action takes an object" % name)
    gdb.group_get(ctx(), group_id)
    return ACTIONS[name](group_id, args)
