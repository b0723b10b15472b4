"""os-volume-type-access: which projects may see and use a private volume type.

`POST /types/{id}/action` with `addProjectAccess` / `removeProjectAccess` (admin), and
`GET /types/{id}/os-volume-type-access` (admin). A member sees and uses public types and the
private ones its project was given; any other private type does not exist for it (404)."""

import flask

from api import policy
from api.routes.helpers import accepted, ctx, json_body, reply
from common import exception
from common.db import api as db
from common.db import quota_api

bp = flask.Blueprint("type_access", __name__)


class InvalidTypeAccess(exception.InvalidVolumeType):
    pass


class VolumeTypeAccessExists(exception.Conflict):
    message = "Volume type access for %(type_id)s / %(project_id)s combination already exists."


class VolumeTypeAccessNotFound(exception.NotFound):
    message = "Volume type access not found for %(type_id)s / %(project_id)s combination."


def visible(vtype, context):
    """Whether the caller may see and use the type."""
    return (vtype.is_public or context.is_admin
            or quota_api.type_accessible(vtype.id, context.project_id))


def check_visible(vtype, context, asked_as):
    """404 (as if the type did not exist) for a private type the project was not given; the
    message names the type as the caller asked for it, so a name never reveals the id."""
    if not visible(vtype, context):
        raise exception.VolumeTypeNotFound(type_id=asked_as)


def _private_type(type_id):
    vtype = db.volume_type_get(type_id)
    if vtype.is_public:
        raise exception.InvalidVolumeType(
            reason="Type access modification is not applicable to public volume type.")
    return vtype


@bp.post("/types/<type_id>/action")
def action(project_id, type_id):
    body = json_body()
    if len(body) != 1:
        raise exception.InvalidInput(reason="exactly one action per request")
    name, args = next(iter(body.items()))
    if name not in ("addProjectAccess", "removeProjectAccess"):
        raise exception.InvalidInput(reason="unknown volume type action %s" % name)
    policy.authorize(ctx(), "volume_extension:volume_type_access:" + name)
    if not isinstance(args, dict) or not isinstance(args.get("project"), str) \
            or not args["project"]:
        raise exception.InvalidInput(reason="Missing required element 'project' in request "
                                            "body.")
    project = args["project"]
    vtype = _private_type(type_id)
    if name == "addProjectAccess":
        if not quota_api.type_access_add(vtype.id, project):
            raise VolumeTypeAccessExists(type_id=vtype.id, project_id=project)
    elif not quota_api.type_access_remove(vtype.id, project):
        raise VolumeTypeAccessNotFound(type_id=vtype.id, project_id=project)
    return accepted()


@bp.get("/types/<type_id>/os-volume-type-access")
def access_list(project_id, type_id):
    policy.authorize(ctx(), "volume_extension:volume_type_access:addProjectAccess")
    vtype = db.volume_type_get(type_id)
    if vtype.is_public:
        raise exception.NotFound("Access list not available for public volume types.")
    return reply({"volume_type_access": [
        {"volume_type_id": vtype.id, "project_id": p}
        for p in quota_api.type_access_list(vtype.id)]})
