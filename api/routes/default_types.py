"""/default-types (3.62): a project's own default volume type, which a volume created without
a type gets before the configured default_volume_type (api/volume_requests.py
resolve_type). Admin-only by default, as Cinder's. 3.62 is above the advertised maximum
today, so clients reach these routes only once the maximum is raised (docs/api.md)."""

import flask

from api import microversion, policy, schemas, views
from api.routes.helpers import ctx, json_body, reply
from common import exception
from common.db import api as db
from common.db import types_api

bp = flask.Blueprint("default_types", __name__)

DEFAULT_TYPE_OVERRIDES = (3, 62)


@bp.put("/default-types/<target_project_id>")
def set_default(project_id, target_project_id):
    microversion.require(DEFAULT_TYPE_OVERRIDES)
    policy.authorize(ctx(), "volume_extension:default_set_or_update",
                     {"project_id": target_project_id})
    ident = json_body(schemas.default_type_set)["default_type"]["volume_type"]
    try:
        vtype = db.volume_type_get_by_name_or_id(ident)
    except exception.VolumeTypeNotFound as exc:
        raise exception.BadRequest(exc.msg)  # a bad body, not a missing URL (as Cinder)
    row = types_api.default_type_set(target_project_id, vtype.id)
    return reply({"default_type": views.default_type(row)})


@bp.get("/default-types/<target_project_id>")
def show(project_id, target_project_id):
    microversion.require(DEFAULT_TYPE_OVERRIDES)
    policy.authorize(ctx(), "volume_extension:default_get", {"project_id": target_project_id})
    row = types_api.default_type_get(target_project_id)
    if row is None:
        raise types_api.VolumeTypeProjectDefaultNotFound(project_id=target_project_id)
    return reply({"default_type": views.default_type(row)})


@bp.get("/default-types")
def index(project_id):
    microversion.require(DEFAULT_TYPE_OVERRIDES)
    policy.authorize(ctx(), "volume_extension:default_get_all")
    return reply({"default_types": [views.default_type(r)
                                    for r in types_api.default_type_get_all()]})


@bp.delete("/default-types/<target_project_id>")
def unset(project_id, target_project_id):
    microversion.require(DEFAULT_TYPE_OVERRIDES)
    policy.authorize(ctx(), "volume_extension:default_unset", {"project_id": target_project_id})
    types_api.default_type_unset(target_project_id)
    return flask.Response(status=204)
