"""/group_types (3.11): group types and their group specs. Writes are admin-only.

Non-administrators see public group types only, without their group_specs
(group:access_group_types_specs), as Cinder. A group type used by a live group cannot be
deleted."""

import flask
from oslo_config import cfg

from api import microversion, policy, schemas, views
from api.routes.helpers import accepted, as_bool, ctx, json_body, paging, reply
from common import exception
from common.db import groups_api as gdb

group_type_opts = [
    cfg.StrOpt("default_group_type",
               help="Name of the group type GET /group_types/default shows; unset: that "
                    "call answers 404."),
]
CONF = cfg.CONF
CONF.register_opts(group_type_opts)

bp = flask.Blueprint("group_types", __name__)
GROUP_TYPES_VERSION = (3, 11)
SORT_KEYS = ("id", "name", "created_at", "updated_at", "is_public", "description")


def _gate():
    microversion.require(GROUP_TYPES_VERSION)


def _default_type():
    name = CONF.default_group_type
    if not name:
        raise gdb.GroupTypeNotFoundByName(group_type_name="(default_group_type is not set)")
    try:
        return gdb.group_type_get_by_name_or_id(ctx(), name)
    except gdb.GroupTypeNotFound:
        raise gdb.GroupTypeNotFoundByName(group_type_name=name)


@bp.get("/group_types")
def index(project_id):
    _gate()
    is_public = flask.request.args.get("is_public")
    public_only = True
    if ctx().is_admin:
        if is_public is None or str(is_public).lower() == "none":
            public_only = None if is_public else True
        else:
            public_only = as_bool(is_public, "is_public")
    limit, marker, keys, dirs = paging(SORT_KEYS, default_key="created_at", default_dir="asc")
    types = gdb.group_type_get_all(ctx(), is_public=public_only, marker=marker, limit=limit,
                                   sort_keys=keys, sort_dirs=dirs)
    return reply({"group_types": [views.group_type(t, ctx()) for t in types]})


@bp.get("/group_types/default")
def show_default(project_id):
    _gate()
    return reply({"group_type": views.group_type(_default_type(), ctx())})


@bp.get("/group_types/<group_type_id>")
def show(project_id, group_type_id):
    _gate()
    return reply({"group_type": views.group_type(gdb.group_type_get(ctx(), group_type_id),
                                                 ctx())})


@bp.post("/group_types")
def create(project_id):
    _gate()
    policy.authorize(ctx(), "group:group_types:create")
    body = json_body(schemas.group_type_create)["group_type"]
    gtype = gdb.group_type_create(body["name"].strip(), body.get("description"),
                                  is_public=as_bool(body.get("is_public", True), "is_public"),
                                  specs=body.get("group_specs"))
    return reply({"group_type": views.group_type(gtype, ctx())}, 202)


@bp.put("/group_types/<group_type_id>")
def update(project_id, group_type_id):
    _gate()
    policy.authorize(ctx(), "group:group_types:update")
    body = json_body(schemas.group_type_update)["group_type"]
    values = {}
    if body.get("name") is not None:
        values["name"] = body["name"].strip()
    if "description" in body:
        values["description"] = body["description"]
    if body.get("is_public") is not None:
        values["is_public"] = as_bool(body["is_public"], "is_public")
    if not values:
        raise exception.InvalidInput(reason="Specify group type name, description, is_public "
                                            "or a combination thereof.")
    gtype = gdb.group_type_update(ctx(), group_type_id, values)
    return reply({"group_type": views.group_type(gtype, ctx())})


@bp.delete("/group_types/<group_type_id>")
def delete(project_id, group_type_id):
    _gate()
    policy.authorize(ctx(), "group:group_types:delete")
    gdb.group_type_get(ctx(), group_type_id)
    gdb.group_type_destroy(group_type_id)
    return accepted()


# --- group specs ---------------------------------------------------------------------------------

def _specs_of(group_type_id, rule):
    _gate()
    policy.authorize(ctx(), rule)
    gtype = gdb.group_type_get(ctx(), group_type_id)
    return {spec.key: spec.value for spec in gtype.group_specs}


@bp.get("/group_types/<group_type_id>/group_specs")
def specs_index(project_id, group_type_id):
    return reply({"group_specs": _specs_of(group_type_id, "group:group_types_specs:get_all")})


@bp.post("/group_types/<group_type_id>/group_specs")
def specs_create(project_id, group_type_id):
    _gate()
    policy.authorize(ctx(), "group:group_types_specs:create")
    specs = json_body(schemas.group_specs_body)["group_specs"]
    gdb.group_type_get(ctx(), group_type_id)
    gdb.group_specs_update(group_type_id, specs)
    return reply({"group_specs": specs}, 202)


@bp.get("/group_types/<group_type_id>/group_specs/<key>")
def specs_show(project_id, group_type_id, key):
    specs = _specs_of(group_type_id, "group:group_types_specs:get")
    if key not in specs:
        raise gdb.GroupTypeSpecsNotFound(group_type_id=group_type_id, group_specs_key=key)
    return reply({key: specs[key]})


@bp.put("/group_types/<group_type_id>/group_specs/<key>")
def specs_update(project_id, group_type_id, key):
    _gate()
    policy.authorize(ctx(), "group:group_types_specs:update")
    body = json_body(schemas.group_spec_item_body)
    if key not in body:
        raise exception.BadRequest("Request body and URI mismatch")
    gdb.group_type_get(ctx(), group_type_id)
    gdb.group_specs_update(group_type_id, body)
    return reply(body)


@bp.delete("/group_types/<group_type_id>/group_specs/<key>")
def specs_delete(project_id, group_type_id, key):
    _gate()
    policy.authorize(ctx(), "group:group_types_specs:delete")
    gdb.group_type_get(ctx(), group_type_id)
    gdb.group_spec_delete(group_type_id, key)
    return accepted()
