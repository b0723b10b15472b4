"""Manage existing storage as volumes, and list what a back end holds that no volume owns.

Cinder serves this twice: the os-volume-manage extension (every version) and, from 3.8,
/manageable_volumes. Both are admin-only."""

import flask

from api import microversion, schemas, views
from api.routes.helpers import as_bool, ctx, json_body, reply
from api.volume_actions import VolumeActions, authorize
from common import exception

bp = flask.Blueprint("manageable", __name__)

MANAGE = {
    "type": "object",
    "properties": {
        "volume": {
            "type": "object",
            "properties": {
                "host": {"type": "string", "minLength": 1, "maxLength": 255},
                "cluster": {"type": ["string", "null"], "maxLength": 255},
                "ref": {"type": "object"},
                "name": schemas.name,
                "description": schemas.description,
                "volume_type": {"type": ["string", "null"], "maxLength": 255},
                "availability_zone": {"type": ["string", "null"], "maxLength": 255},
                "metadata": {"anyOf": [schemas.metadata, {"type": "null"}]},
                "bootable": {"type": ["boolean", "string", "null"]},
            },
            "required": ["ref"],
            "additionalProperties": False,
        },
    },
    "required": ["volume"],
    "additionalProperties": False,
}
SORT_KEYS = ("size", "reference")


def _actions():
    config = flask.current_app.config
    if "volume_actions" not in config:
        config["volume_actions"] = VolumeActions()
    return config["volume_actions"]


def _manage():
    body = json_body(MANAGE)["volume"]
    if body.get("cluster"):
        raise exception.InvalidInput(reason="clustered volume services do not exist; give "
                                            "host")
    if not body.get("host"):
        raise exception.InvalidInput(reason="The following elements are required: host")
    bootable = body.get("bootable")
    volume = _actions().manage(
        ctx(), flask.current_app.config["volume_requests"], body["host"], body["ref"],
        name=body.get("name"), description=body.get("description"),
        volume_type=body.get("volume_type"),
        availability_zone=body.get("availability_zone"), metadata=body.get("metadata") or {},
        bootable=as_bool(bootable, "bootable") if bootable is not None else False)
    return reply({"volume": views.volume_detail(volume, ctx())}, 202)


def _list(detail):
    authorize(ctx(), "volume_extension:list_manageable")
    args = flask.request.args
    host = args.get("host")
    if args.get("cluster"):
        raise exception.InvalidInput(reason="clustered volume services do not exist; give "
                                            "host")
    if not host:
        raise exception.InvalidInput(reason="Either 'host' or 'cluster' must be specified "
                                            "(clusters do not exist: give host).")
    for key in args:
        if key not in ("host", "limit", "offset", "marker", "sort", "sort_key", "sort_dir",
                       "cluster"):
            raise exception.InvalidInput(reason="Invalid filter %s" % key)
    try:
        limit = int(args["limit"]) if "limit" in args else None
        offset = int(args.get("offset", 0))
    except ValueError:
        raise exception.InvalidInput(reason="limit and offset must be integers")
    if (limit is not None and limit < 0) or offset < 0:
        raise exception.InvalidInput(reason="limit and offset must be >= 0")
    key, direction = "reference", "asc"
    if "sort" in args:
        key, _, direction = args["sort"].partition(":")
        direction = direction or "asc"
    else:
        key = args.get("sort_key", key)
        direction = args.get("sort_dir", direction)
    if key not in SORT_KEYS or direction not in ("asc", "desc"):
        raise exception.InvalidInput(reason="sort by size or reference, asc or desc")
    entries = _actions().manageable_volumes(ctx(), host)
    entries.sort(key=(lambda e: e["size"]) if key == "size"
                 else (lambda e: e["reference"]["source-name"]),
                 reverse=direction == "desc")
    if "marker" in args:
        names = [e["reference"]["source-name"] for e in entries]
        if args["marker"] not in names:
            raise exception.InvalidInput(reason="marker %s not found" % args["marker"])
        entries = entries[names.index(args["marker"]) + 1:]
    entries = entries[offset:]
    if limit is not None:
        entries = entries[:limit]
    if not detail:
        entries = [{k: e[k] for k in ("reference", "size", "safe_to_manage")}
                   for e in entries]
    return reply({"manageable-volumes": entries})


# --- os-volume-manage (every version) ---------------------------------------------------------

@bp.post("/os-volume-manage")
def manage_extension(project_id):
    return _manage()


@bp.get("/os-volume-manage")
def index_extension(project_id):
    return _list(detail=False)


@bp.get("/os-volume-manage/detail")
def detail_extension(project_id):
    return _list(detail=True)


# --- /manageable_volumes (3.8) --------------------------------------------------------------------

@bp.post("/manageable_volumes")
def manage(project_id):
    microversion.require((3, 8))
    return _manage()


@bp.get("/manageable_volumes")
def index(project_id):
    microversion.require((3, 8))
    return _list(detail=False)


@bp.get("/manageable_volumes/detail")
def detail(project_id):
    microversion.require((3, 8))
    return _list(detail=True)
