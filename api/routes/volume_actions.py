"""POST /volumes/{id}/action: the volume actions of Cinder's reference (seed 004)."""

import flask

from api import microversion, schemas
from api.routes.helpers import accepted, ctx, json_body, reply
from api.volume_actions import VolumeActions
from common import exception

bp = flask.Blueprint("volume_actions", __name__)

# Actions of the reference that later issues build; until then a clear 400.
NOT_YET = {"os-migrate_volume_completion"}

# Cinder's parameter_types.boolean: what "true"/"false" may look like in a body.
BOOLEAN = {"enum": [True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
                    "y", "t", False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO",
                    "No", "no", "n", "f"]}
_TRUE = {"true", "1", "on", "yes", "y", "t"}

RESET_STATUS = {
    "type": "object",
    "properties": {"status": {"type": ["string", "null"], "maxLength": 255},
                   "attach_status": {"type": ["string", "null"], "maxLength": 255},
                   "migration_status": {"type": ["string", "null"], "maxLength": 255}},
    "additionalProperties": False,
}
SET_BOOTABLE = {"type": "object", "properties": {"bootable": BOOLEAN},
                "required": ["bootable"], "additionalProperties": False}
READONLY = {"type": "object", "properties": {"readonly": BOOLEAN},
            "required": ["readonly"], "additionalProperties": False}
SET_IMAGE_METADATA = {"type": "object", "properties": {"metadata": schemas.metadata},
                      "required": ["metadata"], "additionalProperties": False}
UNSET_IMAGE_METADATA = {"type": "object",
                        "properties": {"key": {"type": "string", "minLength": 1,
                                               "maxLength": 255}},
                        "required": ["key"], "additionalProperties": False}
EXTEND_COMPLETION = {"type": "object", "properties": {"error": BOOLEAN},
                     "additionalProperties": False}
EMPTY = {"type": "object", "additionalProperties": False}
RETYPE = {"type": "object",
          "properties": {"new_type": {"type": "string", "minLength": 1, "maxLength": 255},
                         "migration_policy": {"type": ["string", "null"],
                                              "enum": ["never", "on-demand", None]}},
          "required": ["new_type"], "additionalProperties": False}
CONNECTOR = {"type": "object", "properties": {"connector": {"type": "object"}},
             "required": ["connector"], "additionalProperties": False}
# Cinder's attach schema: instance_uuid or host_name says what it is attached to.
ATTACH = {"type": "object",
          "properties": {"instance_uuid": {"type": ["string", "null"], "maxLength": 36},
                         "mountpoint": {"type": "string", "maxLength": 255},
                         "host_name": {"type": ["string", "null"], "maxLength": 255},
                         "mode": {"type": "string", "enum": ["rw", "ro"]}},
          "required": ["mountpoint"], "additionalProperties": False}
DETACH = {"type": "object",
          "properties": {"attachment_id": {"type": ["string", "null"], "maxLength": 36}},
          "additionalProperties": False}
FORCE_DETACH = {"type": "object",
                "properties": {"attachment_id": {"type": ["string", "null"], "maxLength": 36},
                               "connector": {"type": ["object", "null"]}},
                "additionalProperties": False}
MIGRATE = {"type": "object",
           "properties": {"host": {"type": "string", "minLength": 1, "maxLength": 255},
                          "force_host_copy": BOOLEAN, "lock_volume": BOOLEAN},
           "required": ["host"], "additionalProperties": False}
# Cinder's volume_upload_image schema; visibility and protected from 3.1 (unknown before: 400).
# Every disk_format Cinder accepts; what qemu-img cannot write is refused by the request layer.
UPLOAD_IMAGE = {
    "type": "object",
    "properties": {"image_name": {"type": "string", "minLength": 1, "maxLength": 255},
                   "force": BOOLEAN,
                   "disk_format": {"type": "string",
                                   "enum": ["raw", "vmdk", "vdi", "qcow2", "vhd", "vhdx",
                                            "ploop"]},
                   "container_format": {"type": "string", "maxLength": 255}},
    "required": ["image_name"], "additionalProperties": False}
UPLOAD_IMAGE_31 = dict(UPLOAD_IMAGE, properties=dict(
    UPLOAD_IMAGE["properties"],
    visibility={"type": "string", "enum": ["community", "public", "private", "shared"]},
    protected=BOOLEAN))


def _bool(value):
    return value is True or (isinstance(value, str) and value.lower() in _TRUE)


def _actions():
    config = flask.current_app.config
    if "volume_actions" not in config:
        config["volume_actions"] = VolumeActions()
    return config["volume_actions"]


def _requests():
    return flask.current_app.config["volume_requests"]


def _attachments():
    return flask.current_app.config["attachment_requests"]


# --- the legacy attach actions (seed 004; api/attachment_requests.py) -------------------------

def _reserve(volume_id, args):
    schemas.validate(args, EMPTY)
    _attachments().reserve(ctx(), volume_id)
    return accepted()


def _unreserve(volume_id, args):
    schemas.validate(args, EMPTY)
    _attachments().unreserve(ctx(), volume_id)
    return accepted()


def _begin_detaching(volume_id, args):
    schemas.validate(args, EMPTY)
    _attachments().begin_detaching(ctx(), volume_id)
    return accepted()


def _roll_detaching(volume_id, args):
    schemas.validate(args, EMPTY)
    _attachments().roll_detaching(ctx(), volume_id)
    return accepted()


def _initialize_connection(volume_id, args):
    schemas.validate(args, CONNECTOR)
    info = _attachments().initialize_connection(ctx(), volume_id, args["connector"])
    return reply({"connection_info": info})


def _terminate_connection(volume_id, args):
    schemas.validate(args, CONNECTOR)
    _attachments().terminate_connection(ctx(), volume_id, args["connector"])
    return accepted()


def _attach(volume_id, args):
    schemas.validate(args, ATTACH)
    if not args.get("instance_uuid") and not args.get("host_name"):
        raise exception.InvalidInput(reason="Invalid request to attach volume to an invalid "
                                            "target")
    _attachments().attach(ctx(), volume_id, args.get("instance_uuid"), args.get("host_name"),
                          args["mountpoint"], args.get("mode", "rw"))
    return accepted()


def _detach(volume_id, args):
    schemas.validate(args, DETACH)
    _attachments().detach(ctx(), volume_id, args.get("attachment_id"))
    return accepted()


def _force_detach(volume_id, args):
    schemas.validate(args, FORCE_DETACH)
    _attachments().force_detach(ctx(), volume_id, args.get("attachment_id"),
                                args.get("connector"))
    return accepted()


def _extend(volume_id, args):
    schemas.validate(args, schemas.extend_action)
    new_size = schemas.size_of(args["new_size"])
    _requests().extend(ctx(), volume_id, new_size, attached_ok=microversion.at_least((3, 42)))
    return accepted()


def _reset_status(volume_id, args):
    schemas.validate(args, RESET_STATUS)
    _actions().reset_status(ctx(), volume_id, status=args.get("status"),
                            attach_status=args.get("attach_status"),
                            migration_status=args.get("migration_status"))
    return accepted()


def _force_delete(volume_id, args):
    schemas.validate(args, EMPTY)
    _actions().force_delete(ctx(), volume_id)
    return accepted()


def _set_bootable(volume_id, args):
    schemas.validate(args, SET_BOOTABLE)
    _actions().set_bootable(ctx(), volume_id, _bool(args["bootable"]))
    return flask.Response(status=200)


def _update_readonly_flag(volume_id, args):
    schemas.validate(args, READONLY)
    _actions().update_readonly_flag(ctx(), volume_id, _bool(args["readonly"]))
    return accepted()


def _set_image_metadata(volume_id, args):
    schemas.validate(args, SET_IMAGE_METADATA)
    merged = _actions().set_image_metadata(ctx(), volume_id, args["metadata"])
    return reply({"metadata": merged})


def _unset_image_metadata(volume_id, args):
    schemas.validate(args, UNSET_IMAGE_METADATA)
    _actions().unset_image_metadata(ctx(), volume_id, args["key"])
    return flask.Response(status=200)


def _show_image_metadata(volume_id, args):
    schemas.validate(args, EMPTY)
    return reply({"metadata": _actions().show_image_metadata(ctx(), volume_id)})


def _extend_volume_completion(volume_id, args):
    microversion.require((3, 71))
    schemas.validate(args, EXTEND_COMPLETION)
    _actions().extend_volume_completion(ctx(), volume_id, _bool(args.get("error", False)))
    return accepted()


def _unmanage(volume_id, args):
    schemas.validate(args, EMPTY)
    _actions().unmanage(ctx(), volume_id)
    return accepted()


REIMAGE = {
    "type": "object",
    "properties": {"image_id": schemas.uuid, "reimage_reserved": BOOLEAN},
    "required": ["image_id"],
    "additionalProperties": False,
}


def _reimage(volume_id, args):
    # 3.68: the volume's data replaced by an image's (api/volume_requests.py)
    if not microversion.at_least((3, 68)):
        raise exception.InvalidInput(reason="There is no such action: os-reimage")
    schemas.validate(args, REIMAGE)
    _requests().reimage(ctx(), volume_id, args["image_id"],
                        _bool(args.get("reimage_reserved", False)))
    return accepted()


def _revert(volume_id, args):
    # Revert to the latest snapshot (the lead's part of issue 4; api/volume_requests.py).
    microversion.require((3, 40))
    schemas.validate(args, schemas.revert_action)
    _requests().revert(ctx(), volume_id, args["snapshot_id"])
    return accepted()


def _retype(volume_id, args):
    schemas.validate(args, RETYPE)
    _actions().retype(ctx(), volume_id, args["new_type"], args.get("migration_policy"))
    return accepted()


def _migrate_volume(volume_id, args):
    schemas.validate(args, MIGRATE)
    # Every migration is host-assisted (force_host_copy changes nothing); lock_volume is
    # moot while nothing else may act on a volume in `maintenance`.
    _actions().migrate(ctx(), volume_id, args["host"],
                       force_host_copy=_bool(args.get("force_host_copy", False)))
    return accepted()


def _volume_upload_image(volume_id, args):
    v31 = microversion.at_least((3, 1))
    schemas.validate(args, UPLOAD_IMAGE_31 if v31 else UPLOAD_IMAGE)
    extra = {}
    if v31:
        extra = {"visibility": args.get("visibility", "private"),
                 "protected": _bool(args.get("protected", False))}
    body = _actions().upload_image(ctx(), volume_id, args["image_name"],
                                   force=_bool(args.get("force", False)),
                                   disk_format=args.get("disk_format", "raw"),
                                   container_format=args.get("container_format", "bare"),
                                   **extra)
    return reply({"os-volume_upload_image": body}, status=202)


ACTIONS = {
    "revert": _revert,
    "os-reimage": _reimage,
    "os-volume_upload_image": _volume_upload_image,
    "os-extend": _extend,
    "os-reset_status": _reset_status,
    "os-force_delete": _force_delete,
    "os-set_bootable": _set_bootable,
    "os-update_readonly_flag": _update_readonly_flag,
    "os-set_image_metadata": _set_image_metadata,
    "os-unset_image_metadata": _unset_image_metadata,
    "os-show_image_metadata": _show_image_metadata,
    "os-extend_volume_completion": _extend_volume_completion,
    "os-unmanage": _unmanage,
    "os-retype": _retype,
    "os-migrate_volume": _migrate_volume,
    "os-reserve": _reserve,
    "os-unreserve": _unreserve,
    "os-begin_detaching": _begin_detaching,
    "os-roll_detaching": _roll_detaching,
    "os-initialize_connection": _initialize_connection,
    "os-terminate_connection": _terminate_connection,
    "os-attach": _attach,
    "os-detach": _detach,
    "os-force_detach": _force_detach,
}
# Actions clients send with a null body (python-cinderclient: {"os-force_delete": null}).
NULL_BODY_OK = {"os-force_delete", "os-show_image_metadata", "os-unmanage", "os-reserve",
                "os-unreserve", "os-begin_detaching", "os-roll_detaching", "os-detach",
                "os-force_detach"}


@bp.post("/volumes/<volume_id>/action")
def action(project_id, volume_id):
    body = json_body()
    if len(body) != 1:
        raise exception.InvalidInput(reason="exactly one action per request")
    name, args = next(iter(body.items()))
    if name in ACTIONS:
        if args is None and name in NULL_BODY_OK:
            args = {}
        if not isinstance(args, dict):
            raise exception.InvalidInput(reason="%s takes an object" % name)
        return ACTIONS[name](volume_id, args)
    if name in NOT_YET:
        raise exception.InvalidInput(reason="the %s action is not supported yet" % name)
    raise exception.InvalidInput(reason="There is no such action: %s" % name)
