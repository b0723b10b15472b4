"""POST /volumes/{id}/action: the volume actions of Cinder's reference (seed 004)."""

import flask

from api import schemas
from api.routes.helpers import accepted, ctx, json_body
from common import exception

bp = flask.Blueprint("volume_actions", __name__)

# Actions of the reference that later issues build; until then a clear 400.
NOT_YET = {
    "os-reset_status", "os-force_delete", "os-set_bootable", "os-update_readonly_flag",
    "os-set_image_metadata", "os-unset_image_metadata", "os-show_image_metadata", "revert",
    "os-retype", "os-migrate_volume", "os-migrate_volume_completion", "os-unmanage",
    "os-attach", "os-detach", "os-reserve", "os-unreserve", "os-begin_detaching",
    "os-roll_detaching", "os-initialize_connection", "os-terminate_connection",
    "os-force_detach", "os-volume_upload_image", "os-reimage", "os-extend_volume_completion",
}


def _extend(volume_id, args):
    schemas.validate(args, schemas.extend_action)
    new_size = schemas.size_of(args["new_size"])
    flask.current_app.config["volume_requests"].extend(ctx(), volume_id, new_size)
    return accepted()


ACTIONS = {"os-extend": _extend}


@bp.post("/volumes/<volume_id>/action")
def action(project_id, volume_id):
    body = json_body()
    if len(body) != 1:
        raise exception.InvalidInput(reason="exactly one action per request")
    name, args = next(iter(body.items()))
    if name in ACTIONS:
        if not isinstance(args, dict):
            raise exception.InvalidInput(reason="%s takes an object" % name)
        return ACTIONS[name](volume_id, args)
    if name in NOT_YET:
        raise exception.InvalidInput(reason="the %s action is not supported yet" % name)
    raise exception.InvalidInput(reason="There is no such action: %s" % name)
