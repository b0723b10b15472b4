"""/types: volume types and their extra specs. Writes are admin-only."""

import flask

from api import microversion, policy, schemas, views
from api.routes import type_access
from api.routes.helpers import accepted, as_bool, ctx, json_body, paging, parse_dict_arg, reply
from api.volume_requests import VolumeRequests
from common import exception
from common.db import api as db
from common.db import quota_api, types_api

bp = flask.Blueprint("types", __name__)
SORT_KEYS = ("id", "name", "created_at", "updated_at", "is_public", "description")


def _get_visible(type_id):
    if type_id == "default":
        return VolumeRequests.resolve_type(None)
    vtype = db.volume_type_get(type_id)
    type_access.check_visible(vtype, ctx(), type_id)  # private and not granted: 404
    return vtype


@bp.get("/types")
def index(project_id):
    policy.authorize(ctx(), "volume_extension:type_get_all")
    limit, marker, keys, dirs = paging(SORT_KEYS, default_key="created_at", default_dir="asc")
    is_public = flask.request.args.get("is_public")
    if not ctx().is_admin:
        public_only = True
    elif is_public is None or str(is_public).lower() == "none":
        public_only = None if is_public else True
    else:
        public_only = as_bool(is_public, "is_public")
    extra_specs = _extra_specs_filter()
    if extra_specs is not None and not ctx().is_admin \
            and any(k not in views.USER_VISIBLE_EXTRA_SPECS for k in extra_specs):
        # As Cinder: a member, who sees only the user-visible specs (api/views.py), may not
        # find types by another spec either;
        # dropping the pair would list types that do not match, so nothing matches.
        return reply({"volume_types": []})
    if ctx().is_admin:
        types = db.volume_type_get_all(is_public=public_only, marker=marker, limit=limit,
                                       sort_keys=keys, sort_dirs=dirs, extra_specs=extra_specs)
    else:  # public types and the private ones the project was given
        types = quota_api.volume_type_get_all_visible(ctx().project_id, marker=marker,
                                                      limit=limit, sort_keys=keys,
                                                      sort_dirs=dirs, extra_specs=extra_specs)
    return reply({"volume_types": [views.volume_type(t, ctx()) for t in types]})


def _extra_specs_filter():
    """3.52: `extra_specs={"k": "v", ...}` (JSON or a Python literal) keeps the types having
    every pair; below 3.52 it is ignored, as Cinder ignores it there."""
    raw = flask.request.args.get("extra_specs")
    if raw is None or not microversion.at_least((3, 52)):
        return None
    return parse_dict_arg(raw, "extra_specs")


@bp.get("/types/<type_id>")
def show(project_id, type_id):
    policy.authorize(ctx(), "volume_extension:type_get")
    return reply({"volume_type": views.volume_type(_get_visible(type_id), ctx())})


@bp.post("/types")
def create(project_id):
    policy.authorize(ctx(), "volume_extension:types_manage")
    body = json_body(schemas.type_create)["volume_type"]
    is_public = body.get("os-volume-type-access:is_public", body.get("is_public", True))
    vtype = db.volume_type_create(body["name"], body.get("description"),
                                  is_public=as_bool(is_public, "is_public"),
                                  extra_specs=body.get("extra_specs"))
    return reply({"volume_type": views.volume_type(vtype, ctx(), rendering="create")})


@bp.put("/types/<type_id>")
def update(project_id, type_id):
    policy.authorize(ctx(), "volume_extension:types_manage")
    body = json_body(schemas.type_update)["volume_type"]
    values = {}
    if body.get("name") is not None:
        values["name"] = body["name"]
    if "description" in body:
        values["description"] = body["description"]
    if "is_public" in body:
        values["is_public"] = as_bool(body["is_public"], "is_public")
    if not values:
        raise exception.InvalidInput(reason="Specify volume type name, description, "
                                            "is_public or a combination thereof.")
    vtype = db.volume_type_get(type_id)
    if vtype.name == VolumeRequests.resolve_type(None).name and "name" in values:
        raise exception.InvalidVolumeType(reason="the default volume type cannot be renamed")
    return reply({"volume_type": views.volume_type(db.volume_type_update(type_id, values),
                                                   ctx(), rendering="update")})


@bp.delete("/types/<type_id>")
def delete(project_id, type_id):
    policy.authorize(ctx(), "volume_extension:types_manage")
    vtype = db.volume_type_get(type_id)
    # First, as Cinder's: some project's default (3.62) would otherwise name a type that no
    # longer exists (Cinder's VolumeTypeDefaultDeletionError, its words).
    if types_api.projects_with_default_type(vtype.id):
        raise exception.BadRequest("The volume type %s is a default volume type and cannot "
                                   "be deleted." % vtype.id)
    default = VolumeRequests.resolve_type(None)
    if vtype.id == default.id:
        raise exception.DefaultVolumeTypeDeletion(name=vtype.name)
    db.volume_type_destroy(type_id)
    return accepted()


@bp.get("/types/<type_id>/extra_specs")
def specs_index(project_id, type_id):
    policy.authorize(ctx(), "volume_extension:types_extra_specs:index")
    return reply({"extra_specs": views.volume_type(_get_visible(type_id), ctx())["extra_specs"]})


@bp.post("/types/<type_id>/extra_specs")
def specs_create(project_id, type_id):
    policy.authorize(ctx(), "volume_extension:types_extra_specs:create")
    specs = json_body(schemas.extra_specs_body)["extra_specs"]
    db.extra_specs_update(type_id, specs)
    return reply({"extra_specs": {k: str(v) for k, v in specs.items()}})


@bp.get("/types/<type_id>/extra_specs/<key>")
def specs_show(project_id, type_id, key):
    policy.authorize(ctx(), "volume_extension:types_extra_specs:show")
    specs = views.volume_type(_get_visible(type_id), ctx())["extra_specs"]
    if key not in specs:
        raise exception.VolumeTypeExtraSpecNotFound(type_id=type_id, key=key)
    return reply({key: specs[key]})


@bp.put("/types/<type_id>/extra_specs/<key>")
def specs_update(project_id, type_id, key):
    policy.authorize(ctx(), "volume_extension:types_extra_specs:update")
    body = json_body(schemas.extra_spec_item_body)
    if key not in body:
        raise exception.BadRequest("Request body and URI mismatch")
    db.extra_specs_update(type_id, body)
    return reply({key: str(body[key])})


@bp.delete("/types/<type_id>/extra_specs/<key>")
def specs_delete(project_id, type_id, key):
    policy.authorize(ctx(), "volume_extension:types_extra_specs:delete")
    db.volume_type_get(type_id)
    db.extra_spec_delete(type_id, key)
    return accepted()
