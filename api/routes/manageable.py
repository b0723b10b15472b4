"""Manage existing storage as volumes and snapshots, and list what a back end holds that no
volume or snapshot owns.

Cinder serves each twice: the os-volume-manage and os-snapshot-manage extensions (every
version) and, from 3.8, /manageable_volumes and /manageable_snapshots. All are admin-only.
The snapshot half's request handling (state checks, quota, row, cast) is here too."""

import logging

import flask

from api import microversion, schemas, views
from api.routes.helpers import as_bool, ctx, json_body, reply
from api.volume_actions import VolumeActions, authorize
from common import exception, quota, volume_status
from common.db import api as db
from common.db import models, quota_api
from common.db.session import writer

LOG = logging.getLogger(__name__)

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
MANAGE_SNAPSHOT = {
    "type": "object",
    "properties": {
        "snapshot": {
            "type": "object",
            "properties": {
                "volume_id": {"type": "string", "minLength": 1, "maxLength": 255},
                "ref": {"type": "object"},
                "name": schemas.name,
                "description": schemas.description,
                "metadata": {"anyOf": [schemas.metadata, {"type": "null"}]},
            },
            "required": ["volume_id", "ref"],
            "additionalProperties": False,
        },
    },
    "required": ["snapshot"],
    "additionalProperties": False,
}
SORT_KEYS = ("size", "reference")
# A snapshot may be managed of a volume in these statuses (Cinder's, force=True).
SNAPSHOT_VOLUME_STATUSES = ("available", "in-use")


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


def _list(detail, kind="volumes"):
    authorize(ctx(), "volume_extension:list_manageable" if kind == "volumes"
              else "snapshot_extension:list_manageable")
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
    entries = _actions().manageable_volumes(ctx(), host) if kind == "volumes" \
        else _manageable_snapshots(host)
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
        keys = ("reference", "size", "safe_to_manage") + \
            (() if kind == "volumes" else ("source_reference",))
        entries = [{k: e[k] for k in keys} for e in entries]
    return reply({"manageable-" + kind: entries})


# --- snapshots: the request-handling layer ----------------------------------------------------

def _manage_snapshot():
    body = json_body(MANAGE_SNAPSHOT)["snapshot"]
    c = ctx()
    authorize(c, "snapshot_extension:snapshot_manage")
    volume = db.volume_get(c, body["volume_id"])  # 404 for a missing volume
    refused = ("Volume %s status must be %s and not migrating, currently %s."
               % (volume.id, " or ".join(SNAPSHOT_VOLUME_STATUSES), volume.status))
    with writer() as s:
        volume = db.volume_get_locked(s, volume.id)  # a concurrent delete sees the snapshot
        if volume is None:
            raise exception.VolumeNotFound(volume_id=body["volume_id"])
        if volume.status not in SNAPSHOT_VOLUME_STATUSES or not volume.host or \
                volume.migration_status not in (None, "success", "error"):
            raise exception.InvalidVolume(reason=refused)
        # Charged at the volume's size now (413, nothing written); the flow moves the charge
        # to the size the back end reports.
        quota.reserve_snapshot(c.project_id, volume.size,
                               quota_api.volume_type_name(s, volume.volume_type_id), session=s)
        snapshot = db.snapshot_add(s, {
            "project_id": c.project_id, "user_id": c.user_id, "volume_id": volume.id,
            "name": body.get("name"), "description": body.get("description"),
            "status": "creating", "progress": "0%", "volume_size": volume.size,
            "volume_type_id": volume.volume_type_id,
        }, host=volume.host.split("#")[0], metadata=body.get("metadata") or {})
        # Not `create`: an interrupted manage must not remove storage it never made.
        s.query(models.Worker).filter(models.Worker.resource_type == "snapshot",
                                      models.Worker.resource_id == snapshot.id) \
            .update({"operation": "manage"})
    try:
        _actions().volume_rpcapi.manage_existing_snapshot(c, volume.host, snapshot.id,
                                                          body["ref"])
    except Exception as exc:
        volume_status.fail_snapshot_operation(
            c, snapshot.id, "creating", "error", volume_status.EVENT_SNAPSHOT_CREATE,
            "manage existing snapshot", "the volume service could not be reached (%s)" % exc)
        raise exception.ServiceBusy(service="volume")
    LOG.info("Manage of %s of volume %s accepted as snapshot %s", body["ref"], volume.id,
             snapshot.id)
    return reply({"snapshot": views.snapshot(db.snapshot_get(c, snapshot.id), c,
                                             detail=False)}, 202)


def _manageable_snapshots(host):
    if "#" in host:
        host = host.split("#")[0]
    if not db.pool_get_all(host=host):
        raise exception.ServiceNotFound(service=host)
    return _actions().volume_rpcapi.get_manageable_snapshots(ctx(), host)


UNMANAGEABLE_SNAPSHOT_STATUSES = ("available", "error", "error_deleting")


def unmanage_snapshot(c, snapshot_id):
    """The os-unmanage snapshot action (api/routes/snapshots.py): the row goes, the storage
    stays, the quota is given back (by the volume service, when the row goes)."""
    snapshot = db.snapshot_get(c, snapshot_id)
    authorize(c, "snapshot_extension:snapshot_unmanage", snapshot)
    volume = db.volume_get_internal(snapshot.volume_id)
    if volume is None or not volume.host:
        raise exception.InvalidSnapshot(reason="the volume of snapshot %s is not placed"
                                        % snapshot_id)
    with writer() as s:
        db.volume_lock(s, snapshot.volume_id)
        if db.volumes_creating_from(s, snapshot_id=snapshot_id):
            raise exception.InvalidSnapshot(
                reason="a volume is being created from snapshot %s" % snapshot_id)
        won = db.conditional_update(models.Snapshot, snapshot_id, {"status": "unmanaging"},
                                    {"deleted": False,
                                     "status": UNMANAGEABLE_SNAPSHOT_STATUSES}, session=s)
        if won:
            db.worker_release("snapshot", snapshot_id, session=s)
            db.worker_claim("snapshot", snapshot_id, "unmanage",
                            host=volume.host.split("#")[0], session=s)
    if not won:
        raise exception.InvalidSnapshot(
            reason="Snapshot status must be available or error or error_deleting to "
                   "unmanage, currently %s." % snapshot.status)
    _actions().volume_rpcapi.unmanage_snapshot(c, volume.host, snapshot_id)
    LOG.info("Snapshot %s unmanage accepted", snapshot_id)


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


# --- os-snapshot-manage (every version) and /manageable_snapshots (3.8) ----------------------

@bp.post("/os-snapshot-manage")
def manage_snapshot_extension(project_id):
    return _manage_snapshot()


@bp.get("/os-snapshot-manage")
def index_snapshot_extension(project_id):
    return _list(detail=False, kind="snapshots")


@bp.get("/os-snapshot-manage/detail")
def detail_snapshot_extension(project_id):
    return _list(detail=True, kind="snapshots")


@bp.post("/manageable_snapshots")
def manage_snapshot(project_id):
    microversion.require((3, 8))
    return _manage_snapshot()


@bp.get("/manageable_snapshots")
def index_snapshots(project_id):
    microversion.require((3, 8))
    return _list(detail=False, kind="snapshots")


@bp.get("/manageable_snapshots/detail")
def detail_snapshots(project_id):
    microversion.require((3, 8))
    return _list(detail=True, kind="snapshots")
