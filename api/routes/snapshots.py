"""/snapshots: create, list, show, update, delete, metadata and the snapshot admin actions.

A volume's snapshot chain (seed 000: newest first) is `GET /snapshots/detail?volume_id=<id>`,
whose default order is created_at descending."""

import flask

from api import microversion, policy, schemas, views
from api.routes.helpers import (
    accepted,
    as_bool,
    ctx,
    json_body,
    no_body,
    offset_arg,
    paging,
    parse_dict_arg,
    reply,
    requested_sort_keys,
)
from common import exception
from common.db import api as db

bp = flask.Blueprint("snapshots", __name__)

SORT_KEYS = {"id": "id", "name": "name", "status": "status", "size": "volume_size",
             "created_at": "created_at", "updated_at": "updated_at",
             "volume_id": "volume_id", "project_id": "project_id"}
NON_FILTER_ARGS = {"limit", "marker", "sort", "sort_key", "sort_dir", "all_tenants",
                   "offset", "with_count"}


def _requests():
    return flask.current_app.config["snapshot_requests"]


def _authorized(snapshot_id, rule):
    """The snapshot (404 outside the caller's scope), once the policy allows rule on it."""
    snapshot = db.snapshot_get(ctx(), snapshot_id)
    policy.authorize(ctx(), rule, snapshot)
    return snapshot


def _filters():
    filters = {}
    for key, value in flask.request.args.items():
        if key in NON_FILTER_ARGS:
            continue
        if key in ("name", "display_name"):
            filters["name"] = value
        elif key in ("status", "volume_id"):
            filters[key] = value
        elif key == "metadata" and microversion.at_least((3, 22)):
            filters["metadata"] = parse_dict_arg(value, "metadata")
        elif key == "project_id" and ctx().is_admin:
            filters[key] = value
        elif key == "consumes_quota" and microversion.at_least((3, 65)):
            filters["consumes_quota"] = as_bool(value, "consumes_quota")
        else:
            raise exception.InvalidInput(reason="Invalid filters %s are found in query "
                                                "options." % key)
    return filters


def _list(detail):
    policy.authorize(ctx(), "volume:get_all_snapshots")
    limit, marker, keys, dirs = paging(SORT_KEYS)
    if "name" in requested_sort_keys() and not microversion.at_least((3, 30)):
        # 3.30 added the key `name`; before it Cinder refuses it (display_name, which
        # python-cinderclient sends, is its column and sorts at every version).
        raise exception.InvalidInput(reason="Invalid sort key name")
    all_projects = ctx().is_admin and as_bool(flask.request.args.get("all_tenants", "0"),
                                              "all_tenants")
    offset = offset_arg()
    filters = _filters()
    snapshots = db.snapshot_get_all(ctx(), filters=filters, marker=marker,
                                    limit=limit + offset,
                                    sort_keys=[SORT_KEYS[k] for k in keys], sort_dirs=dirs,
                                    all_projects=all_projects)[offset:]
    items = [views.snapshot(s, ctx(), detail=detail) for s in snapshots]
    body = {"snapshots": items}
    links = views.collection_links("snapshots", items, limit)
    if links:
        body["snapshots_links"] = links
    if microversion.at_least((3, 45)) and as_bool(
            flask.request.args.get("with_count", "false"), "with_count"):
        body["count"] = db.snapshot_count(ctx(), filters=filters, all_projects=all_projects)
    return reply(body)


@bp.get("/snapshots")
def index(project_id):
    return _list(detail=False)


@bp.get("/snapshots/detail")
def detail(project_id):
    return _list(detail=True)


@bp.post("/snapshots")
def create(project_id):
    body = json_body(schemas.snapshot_create)["snapshot"]
    policy.authorize(ctx(), "volume:create_snapshot")
    force = body.get("force")
    in_use_allowed = microversion.at_least((3, 66))
    if force is not None:
        force = as_bool(force, "force")
        if in_use_allowed and not force:
            # 3.66: force is only kept for old clients; false would contradict the default.
            raise exception.InvalidInput(reason="Since microversion 3.66 the force flag may "
                                                "only be true, or left out.")
    if body.get("volume_id") is None:
        raise exception.VolumeNotFound(volume_id=None)
    snapshot = _requests().create(
        ctx(), body["volume_id"], force=bool(force),
        name=body.get("name", body.get("display_name")),
        description=body.get("description", body.get("display_description")),
        metadata=body.get("metadata") or {}, in_use_allowed=in_use_allowed)
    return reply({"snapshot": views.snapshot(snapshot, ctx(), detail=False)}, 202)


@bp.get("/snapshots/<snapshot_id>")
def show(project_id, snapshot_id):
    snapshot = _authorized(snapshot_id, "volume:get_snapshot")
    return reply({"snapshot": views.snapshot(snapshot, ctx())})


@bp.put("/snapshots/<snapshot_id>")
def update(project_id, snapshot_id):
    body = json_body(schemas.snapshot_update)["snapshot"]
    if not body:
        raise exception.InvalidInput(reason="nothing to update")
    values = {}
    for field, legacy in (("name", "display_name"), ("description", "display_description")):
        if field in body:
            values[field] = body[field]
        elif legacy in body:
            values[field] = body[legacy]
    _authorized(snapshot_id, "volume:update_snapshot")
    return reply({"snapshot": views.snapshot(db.snapshot_update(snapshot_id, values), ctx(),
                                             detail=False)})


@bp.delete("/snapshots/<snapshot_id>")
def delete(project_id, snapshot_id):
    _authorized(snapshot_id, "volume:delete_snapshot")
    _requests().delete(ctx(), snapshot_id)
    return accepted()


# --- admin actions ----------------------------------------------------------------------------

def _reset_status(snapshot_id, args):
    _authorized(snapshot_id, "volume_extension:snapshot_admin_actions:reset_status")
    schemas.validate(args, schemas.snapshot_reset_status_action)
    _requests().reset_status(ctx(), snapshot_id, args["status"])
    return accepted()


def _force_delete(snapshot_id, args):
    _authorized(snapshot_id, "volume_extension:snapshot_admin_actions:force_delete")
    _requests().delete(ctx(), snapshot_id, force=True)
    return accepted()


def _unmanage(snapshot_id, args):
    from api.routes import manageable

    if args:
        raise exception.InvalidInput(reason="os-unmanage takes no arguments")
    manageable.unmanage_snapshot(ctx(), snapshot_id)
    return accepted()


# os-update_snapshot_status: a compute service's assisted snapshot reports how it went.
# Cinder's allowed moves: current status -> statuses it may be set to.
STATUS_UPDATES = {"creating": ("creating", "available", "error"),
                  "deleting": ("deleting", "error_deleting")}
UPDATE_SNAPSHOT_STATUS = {
    "type": "object",
    "properties": {"status": {"type": "string", "minLength": 1, "maxLength": 255},
                   "progress": {"type": ["string", "null"], "maxLength": 255}},
    "required": ["status"],
    "additionalProperties": False,
}


def _update_snapshot_status(snapshot_id, args):
    from common.db import models
    from common.db.session import writer

    snapshot = _authorized(snapshot_id,
                           "snapshot_extension:snapshot_actions:update_snapshot_status")
    schemas.validate(args, UPDATE_SNAPSHOT_STATUS)
    status = args["status"]
    if status not in STATUS_UPDATES.get(snapshot.status, ()):
        raise exception.InvalidInput(reason="Provided snapshot status %s not allowed for "
                                            "snapshot with status %s." % (status,
                                                                         snapshot.status))
    values = {"status": status}
    if args.get("progress") is not None:
        values["progress"] = args["progress"]
    with writer() as s:
        won = db.conditional_update(models.Snapshot, snapshot_id, values,
                                    {"status": snapshot.status, "deleted": False}, session=s)
        if won and status != snapshot.status:
            # The operation ended outside this service: nothing is left for its cleanup.
            db.worker_release("snapshot", snapshot_id, session=s)
    if not won:
        raise exception.InvalidSnapshot(reason="snapshot %s changed status meanwhile"
                                        % snapshot_id)
    return accepted()


ACTIONS = {"os-reset_status": _reset_status, "os-force_delete": _force_delete,
           "os-unmanage": _unmanage, "os-update_snapshot_status": _update_snapshot_status}


@bp.post("/snapshots/<snapshot_id>/action")
def action(project_id, snapshot_id):
    body = json_body()
    if len(body) != 1:
        raise exception.InvalidInput(reason="exactly one action per request")
    name, args = next(iter(body.items()))
    if name not in ACTIONS:
        raise exception.InvalidInput(reason="There is no such action: %s" % name)
    if not isinstance(args, dict):
        args = {}
    db.snapshot_get(ctx(), snapshot_id)
    return ACTIONS[name](snapshot_id, args)


# --- metadata ---------------------------------------------------------------------------------

def _metadata_of(snapshot_id):
    snapshot = _authorized(snapshot_id, "volume:get_snapshot_metadata")
    return {m.key: m.value for m in snapshot.snapshot_metadata}


@bp.get("/snapshots/<snapshot_id>/metadata")
def metadata_index(project_id, snapshot_id):
    return reply({"metadata": _metadata_of(snapshot_id)})


@bp.post("/snapshots/<snapshot_id>/metadata")
def metadata_create(project_id, snapshot_id):
    metadata = json_body(schemas.metadata_body)["metadata"]
    _authorized(snapshot_id, "volume:update_snapshot_metadata")
    return reply({"metadata": db.snapshot_metadata_update(snapshot_id, metadata, False)})


@bp.put("/snapshots/<snapshot_id>/metadata")
def metadata_replace(project_id, snapshot_id):
    metadata = json_body(schemas.metadata_body)["metadata"]
    _authorized(snapshot_id, "volume:update_snapshot_metadata")
    return reply({"metadata": db.snapshot_metadata_update(snapshot_id, metadata, True)})


@bp.get("/snapshots/<snapshot_id>/metadata/<key>")
def metadata_show(project_id, snapshot_id, key):
    metadata = _metadata_of(snapshot_id)
    if key not in metadata:
        raise exception.SnapshotMetadataNotFound(snapshot_id=snapshot_id, key=key)
    return reply({"meta": {key: metadata[key]}})


@bp.put("/snapshots/<snapshot_id>/metadata/<key>")
def metadata_update(project_id, snapshot_id, key):
    meta = json_body(schemas.metadata_item_body)["meta"]
    if key not in meta:
        raise exception.BadRequest("Request body and URI mismatch")
    _authorized(snapshot_id, "volume:update_snapshot_metadata")
    db.snapshot_metadata_update(snapshot_id, meta, False)
    return reply({"meta": meta})


@bp.delete("/snapshots/<snapshot_id>/metadata/<key>")
def metadata_delete(project_id, snapshot_id, key):
    _authorized(snapshot_id, "volume:delete_snapshot_metadata")
    db.snapshot_metadata_delete(snapshot_id, key)
    return no_body()
