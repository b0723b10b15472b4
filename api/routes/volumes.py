"""/volumes: create, list, show, update, delete, and volume metadata."""

import hashlib
import json

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
)
from common import exception
from common.db import api as db

bp = flask.Blueprint("volumes", __name__)

SORT_KEYS = ("id", "name", "status", "size", "created_at", "updated_at",
             "availability_zone", "bootable", "volume_type_id", "project_id", "host")
NON_FILTER_ARGS = {"limit", "marker", "sort", "sort_key", "sort_dir", "all_tenants",
                   "with_count", "offset", "detail"}
# 3.34 like filters (`name~=abc`: the name contains abc), on the volume's own text columns.
LIKE_FILTERS = ("name~", "status~", "availability_zone~")


def _requests():
    return flask.current_app.config["volume_requests"]


def _filters():
    filters = {}
    for key, value in flask.request.args.items():
        if key in NON_FILTER_ARGS:
            continue
        if key in ("name", "display_name"):
            filters["name"] = value
        elif key in ("status", "availability_zone"):
            filters[key] = value
        elif key == "metadata":
            filters["metadata"] = parse_dict_arg(value, "metadata")
        elif key == "bootable":  # 3.2 made the value case-insensitive; it filters at 3.0 too
            filters["bootable"] = as_bool(value, "bootable")
        elif key == "volume_type":
            try:
                filters["volume_type_id"] = db.volume_type_get_by_name_or_id(value).id
            except exception.VolumeTypeNotFound:
                filters["volume_type_id"] = value
        elif key in ("project_id", "host") and ctx().is_admin:
            filters[key] = value
        elif key == "group_id" and microversion.at_least((3, 10)):
            filters["group_id"] = value
        elif key in LIKE_FILTERS and microversion.at_least((3, 34)):
            filters[key] = value
        elif key == "glance_metadata" and microversion.at_least((3, 4)):
            filters["glance_metadata"] = parse_dict_arg(value, "glance_metadata")
        elif key in ("created_at", "updated_at") and microversion.at_least((3, 60)):
            filters[key] = _time_comparisons(key, value)
        elif key == "consumes_quota" and microversion.at_least((3, 65)):
            filters["consumes_quota"] = as_bool(value, "consumes_quota")
        else:
            raise exception.InvalidInput(reason="Invalid filters %s are found in query "
                                                "options." % key)
    return filters


TIME_OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq")


def _time_comparisons(key, value):
    """3.60: `created_at=gt:2026-01-01T00:00:00[,lte:...]` -> [(op, naive UTC datetime)]."""
    from oslo_utils import timeutils

    comparisons = []
    for unit in value.split(","):
        op, _, when = unit.partition(":")
        if op not in TIME_OPERATORS or not when:
            raise exception.InvalidInput(
                reason="%s must be <operator>:<time>[,...] with an operator of %s, got %r"
                       % (key, ", ".join(TIME_OPERATORS), unit))
        try:
            moment = timeutils.normalize_time(timeutils.parse_isotime(when))
        except ValueError:
            raise exception.InvalidInput(reason="%s: %r is not an ISO 8601 time" % (key, when))
        comparisons.append((op, moment))
    return comparisons


def _authorized(volume_id, rule):
    """The volume (404 when not visible to the caller's project), if `rule` allows."""
    volume = db.volume_get(ctx(), volume_id)
    policy.authorize(ctx(), rule, volume)
    return volume


def _list(detail):
    policy.authorize(ctx(), "volume:get_all")
    limit, marker, keys, dirs = paging(SORT_KEYS)
    # all_tenants: administrators only; ignored for everyone else, as Cinder
    all_projects = ctx().is_admin and as_bool(flask.request.args.get("all_tenants", "0"),
                                              "all_tenants")
    filters = _filters()
    offset = offset_arg()
    volumes = db.volume_get_all(
        ctx(), filters=filters, marker=marker, limit=limit + offset, sort_keys=keys,
        sort_dirs=dirs, all_projects=all_projects)[offset:]
    render = (lambda v: views.volume_detail(v, ctx())) if detail else views.volume_summary
    items = [render(v) for v in volumes]
    body = {"volumes": items}
    links = views.collection_links("volumes", items, limit)
    if links:
        body["volumes_links"] = links
    if microversion.at_least((3, 45)) and as_bool(
            flask.request.args.get("with_count", "false"), "with_count"):
        body["count"] = db.volume_count(
            ctx(), filters=filters, all_projects=all_projects)
    return reply(body)


@bp.get("/volumes")
def index(project_id):
    return _list(detail=False)


@bp.get("/volumes/detail")
def detail(project_id):
    return _list(detail=True)


@bp.get("/volumes/summary")
def summary(project_id):
    """3.12: count and total size of the caller's volumes (admin all_tenants: everyone's);
    3.36 adds every distinct metadata key with its distinct values."""
    microversion.require((3, 12))
    policy.authorize(ctx(), "volume:get_all")
    all_projects = ctx().is_admin and as_bool(flask.request.args.get("all_tenants", "0"),
                                              "all_tenants")
    count, size, metadata = db.volume_summary(ctx(), all_projects=all_projects)
    body = {"total_count": count, "total_size": size}
    if microversion.at_least((3, 36)):
        body["metadata"] = metadata
    return reply({"volume-summary": body})


@bp.post("/volumes")
def create(project_id):
    policy.authorize(ctx(), "volume:create")
    body = json_body(schemas.volume_create)["volume"]
    # 3.47: a volume made from a backup (the backup service restores into it)
    backup_id = body.get("backup_id") if microversion.at_least((3, 47)) else None
    sources = [k for k in ("snapshot_id", "source_volid", "imageRef") if body.get(k)] + (
        ["backup_id"] if backup_id else [])
    if len(sources) > 1:
        raise exception.InvalidInput(reason="give one of snapshot_id, source_volid, imageRef "
                                            "and backup_id, not several")
    size = body.get("size")
    if size is None and not sources:
        raise exception.InvalidInput(reason="size is required (an integer number of GiB)")
    group_id = body.get("group_id") if microversion.at_least((3, 13)) else None
    for unsupported in ("consistencygroup_id",) + (
            () if microversion.at_least((3, 13)) else ("group_id",)) + (
            () if microversion.at_least((3, 47)) else ("backup_id",)):
        if body.get(unsupported):
            raise exception.InvalidInput(
                reason="creating a volume with %s is not supported yet" % unsupported)
    if body.get("multiattach"):
        # Cinder's answer since the request flag gave way to multiattach volume types
        raise exception.InvalidInput(
            reason="multiattach parameter has been removed. The default behavior is to use "
                   "multiattach enabled volume types. Contact your administrator to create a "
                   "multiattach enabled volume type and use it to create multiattach volumes.")
    volume = _requests().create(
        ctx(), schemas.size_of(size) if size is not None else None,
        name=body.get("name", body.get("display_name")),
        description=body.get("description", body.get("display_description")),
        volume_type=body.get("volume_type"),
        availability_zone=body.get("availability_zone"),
        metadata=body.get("metadata") or {},
        snapshot_id=body.get("snapshot_id"), source_volid=body.get("source_volid"),
        **({"group_id": group_id} if group_id else {}),
        **({"backup_id": backup_id} if backup_id else {}),
        **({"image_id": body["imageRef"]} if body.get("imageRef") else {}))
    return reply({"volume": views.volume_detail(volume, ctx(), extended=False)}, 202)


@bp.get("/volumes/<volume_id>")
def show(project_id, volume_id):
    return reply({"volume": views.volume_detail(_authorized(volume_id, "volume:get"), ctx())})


@bp.put("/volumes/<volume_id>")
def update(project_id, volume_id):
    _authorized(volume_id, "volume:update")
    body = json_body(schemas.volume_update)["volume"]
    if not body:
        raise exception.InvalidInput(reason="nothing to update")
    values = {}
    for field, legacy in (("name", "display_name"), ("description", "display_description")):
        if field in body:
            values[field] = body[field]
        elif legacy in body:
            values[field] = body[legacy]
    volume = _requests().update(ctx(), volume_id, values, metadata=body.get("metadata"))
    return reply({"volume": views.volume_detail(volume, ctx(), extended=False)})


@bp.delete("/volumes/<volume_id>")
def delete(project_id, volume_id):
    volume = _authorized(volume_id, "volume:delete")
    for arg in flask.request.args:
        if arg not in ("cascade", "force"):
            raise exception.InvalidInput(reason="unknown parameter %s" % arg)
    cascade = as_bool(flask.request.args.get("cascade", "false"), "cascade")
    # 3.23: force=true is the os-force_delete action (admin); before 3.23 force is ignored.
    if microversion.at_least((3, 23)) and as_bool(flask.request.args.get("force", "false"),
                                                  "force"):
        policy.authorize(ctx(), "volume:force_delete", volume)
        if cascade:
            _requests().delete(ctx(), volume_id, cascade=True, force=True)
            return accepted()
        _volume_actions().force_delete(ctx(), volume_id)
        return accepted()
    _requests().delete(ctx(), volume_id, cascade=cascade, volume=volume)
    return accepted()


def _volume_actions():
    from api.volume_actions import VolumeActions

    config = flask.current_app.config
    if "volume_actions" not in config:
        config["volume_actions"] = VolumeActions()
    return config["volume_actions"]


# --- metadata --------------------------------------------------------------------------------

def _metadata_of(volume_id):
    volume = _authorized(volume_id, "volume:get_volume_metadata")
    return {m.key: m.value for m in volume.volume_metadata}


def _metadata_etag(metadata):
    """3.15: the ETag of a volume's metadata, the MD5 of its GET body (as Cinder)."""
    data = json.dumps({"metadata": metadata}).encode("utf-8")
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _check_if_match(volume_id):
    """3.15: a metadata update with If-Match whose tags do not name the metadata as it is now
    is refused with 412 (Cinder answers it with no body) and changes nothing."""
    header = flask.request.headers.get("If-Match")
    if not microversion.at_least((3, 15)) or not header:
        return None
    tags = [t.strip().removeprefix("W/").strip('"') for t in header.split(",")]
    if "*" in tags or _metadata_etag(_metadata_of(volume_id)) in tags:
        return None
    return flask.Response(status=412)


@bp.get("/volumes/<volume_id>/metadata")
def metadata_index(project_id, volume_id):
    metadata = _metadata_of(volume_id)
    response = reply({"metadata": metadata})
    if microversion.at_least((3, 15)):
        response.headers["ETag"] = _metadata_etag(metadata)
    return response


@bp.post("/volumes/<volume_id>/metadata")
def metadata_create(project_id, volume_id):
    metadata = json_body(schemas.metadata_body)["metadata"]
    _authorized(volume_id, "volume:create_volume_metadata")
    return reply({"metadata": db.volume_metadata_update(volume_id, metadata, False)})


@bp.put("/volumes/<volume_id>/metadata")
def metadata_replace(project_id, volume_id):
    metadata = json_body(schemas.metadata_body)["metadata"]
    _authorized(volume_id, "volume:update_volume_metadata")
    refused = _check_if_match(volume_id)
    if refused is not None:
        return refused
    return reply({"metadata": db.volume_metadata_update(volume_id, metadata, True)})


@bp.get("/volumes/<volume_id>/metadata/<key>")
def metadata_show(project_id, volume_id, key):
    metadata = _metadata_of(volume_id)
    if key not in metadata:
        raise exception.VolumeMetadataNotFound(volume_id=volume_id, key=key)
    return reply({"meta": {key: metadata[key]}})


@bp.put("/volumes/<volume_id>/metadata/<key>")
def metadata_update(project_id, volume_id, key):
    meta = json_body(schemas.metadata_item_body)["meta"]
    if key not in meta:
        raise exception.BadRequest("Request body and URI mismatch")
    _authorized(volume_id, "volume:update_volume_metadata")
    refused = _check_if_match(volume_id)
    if refused is not None:
        return refused
    db.volume_metadata_update(volume_id, meta, False)
    return reply({"meta": meta})


@bp.delete("/volumes/<volume_id>/metadata/<key>")
def metadata_delete(project_id, volume_id, key):
    _authorized(volume_id, "volume:delete_volume_metadata")
    db.volume_metadata_delete(volume_id, key)
    return no_body()
