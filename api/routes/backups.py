"""/backups: create, list, show, update (3.9), delete, restore, the admin actions, and export
and import of backup records. The work is api/backup_requests.py's; the split with the
backup and volume services is docs/backups-design.md."""

import flask

from api import microversion, policy, schemas, views
from api.routes.helpers import (
    accepted,
    as_bool,
    ctx,
    json_body,
    offset_arg,
    paging,
    reply,
    requested_sort_keys,
)
from common import exception
from common.db import backups_api

bp = flask.Blueprint("backups", __name__)

# Cinder sorts backups by any column of its table; these are the ones Lamina's has
# (display_name, which python-cinderclient sends, arrives here as name).
SORT_KEYS = ("id", "name", "description", "status", "size", "object_count", "container",
             "availability_zone", "created_at", "updated_at", "volume_id", "snapshot_id",
             "project_id", "user_id", "data_timestamp", "parent_id", "is_incremental")
NON_FILTER_ARGS = {"limit", "marker", "sort", "sort_key", "sort_dir", "all_tenants",
                   "offset", "with_count"}


def _requests():
    return flask.current_app.config["backup_requests"]


def _authorized(backup_id, rule):
    """The backup (404 outside the caller's project), once the policy allows rule on it."""
    backup = backups_api.backup_get(ctx(), backup_id)
    policy.authorize(ctx(), rule, backup)
    return backup


def _filters():
    """Cinder's backup filters: name, status, volume_id; project_id for admins."""
    filters = {}
    for key, value in flask.request.args.items():
        if key in NON_FILTER_ARGS:
            continue
        if key in ("name", "display_name"):
            filters["name"] = value
        elif key in ("status", "volume_id"):
            filters[key] = value
        elif key == "project_id" and ctx().is_admin:
            filters[key] = value
        else:
            raise exception.InvalidInput(reason="Invalid filters %s are found in query "
                                                "options." % key)
    return filters


def _list(detail):
    policy.authorize(ctx(), "backup:get_all")
    limit, marker, keys, dirs = paging(SORT_KEYS)
    if "name" in requested_sort_keys() and not microversion.at_least((3, 37)):
        # 3.37 added the sort key `name`; before it Cinder refuses it (display_name, its
        # column, sorts at every version).
        raise exception.InvalidInput(reason="Invalid sort key name")
    all_projects = ctx().is_admin and as_bool(flask.request.args.get("all_tenants", "0"),
                                              "all_tenants")
    filters = _filters()
    backups = backups_api.backup_get_all(ctx(), filters=filters, marker=marker, limit=limit,
                                         offset=offset_arg(), sort_keys=keys, sort_dirs=dirs,
                                         all_projects=all_projects)
    items = [views.backup_detail(b, ctx()) if detail else views.backup_summary(b)
             for b in backups]
    body = {"backups": items}
    links = views.collection_links("backups", items, limit)
    if links:
        body["backups_links"] = links
    if microversion.at_least((3, 45)) and as_bool(
            flask.request.args.get("with_count", "false"), "with_count"):
        body["count"] = backups_api.backup_count(ctx(), filters=filters,
                                                 all_projects=all_projects)
    return reply(body)


@bp.get("/backups")
def index(project_id):
    return _list(detail=False)


@bp.get("/backups/detail")
def detail(project_id):
    return _list(detail=True)


def _create_schema():
    if microversion.at_least((3, 51)):
        return schemas.backup_create_v351
    if microversion.at_least((3, 43)):
        return schemas.backup_create_v343
    return schemas.backup_create


@bp.post("/backups")
def create(project_id):
    body = json_body(_create_schema())["backup"]
    policy.authorize(ctx(), "backup:create")
    backup = _requests().create(
        ctx(), body["volume_id"], name=body.get("name"), description=body.get("description"),
        container=body.get("container"),
        incremental=as_bool(body.get("incremental", False), "incremental"),
        force=as_bool(body.get("force", False), "force"),
        snapshot_id=body.get("snapshot_id"), metadata=body.get("metadata") or {},
        availability_zone=body.get("availability_zone"))
    return reply({"backup": views.backup_summary(backup)}, 202)


@bp.get("/backups/<backup_id>")
def show(project_id, backup_id):
    backup = _authorized(backup_id, "backup:get")
    return reply({"backup": views.backup_detail(backup, ctx())})


@bp.put("/backups/<backup_id>")
def update(project_id, backup_id):
    microversion.require((3, 9))
    body = json_body(schemas.backup_update_v343 if microversion.at_least((3, 43))
                     else schemas.backup_update)["backup"]
    _authorized(backup_id, "backup:update")
    values = {k: body[k] for k in ("name", "description") if k in body}
    backup = backups_api.backup_update(backup_id, values, metadata=body.get("metadata"))
    # Cinder answers an update with the summary view
    return reply({"backup": views.backup_summary(backup)})


@bp.delete("/backups/<backup_id>")
def delete(project_id, backup_id):
    _authorized(backup_id, "backup:delete")
    _requests().delete(ctx(), backup_id)
    return accepted()


@bp.post("/backups/<backup_id>/restore")
def restore(project_id, backup_id):
    body = json_body(schemas.backup_restore)["restore"] or {}
    _authorized(backup_id, "backup:restore")
    volume = _requests().restore(ctx(), backup_id, volume_id=body.get("volume_id"),
                                 name=body.get("name"))
    return reply({"restore": views.backup_restore(backup_id, volume)}, 202)


# --- admin actions ----------------------------------------------------------------------------

def _reset_status(backup_id, args):
    _authorized(backup_id, "volume_extension:backup_admin_actions:reset_status")
    schemas.validate(args, schemas.backup_reset_status_action)
    _requests().reset_status(ctx(), backup_id, args["status"])
    return accepted()


def _force_delete(backup_id, args):
    _authorized(backup_id, "volume_extension:backup_admin_actions:force_delete")
    _requests().delete(ctx(), backup_id, force=True)
    return accepted()


ACTIONS = {"os-reset_status": _reset_status, "os-force_delete": _force_delete}


@bp.post("/backups/<backup_id>/action")
def action(project_id, backup_id):
    body = json_body()
    if len(body) != 1:
        raise exception.InvalidInput(reason="exactly one action per request")
    name, args = next(iter(body.items()))
    if name not in ACTIONS:
        raise exception.InvalidInput(reason="There is no such action: %s" % name)
    backups_api.backup_get(ctx(), backup_id)  # 404 before anything else
    return ACTIONS[name](backup_id, args if isinstance(args, dict) else {})


# --- export and import of records -------------------------------------------------------------

@bp.get("/backups/<backup_id>/export_record")
def export_record(project_id, backup_id):
    _authorized(backup_id, "backup:backup-export")
    return reply({"backup-record": _requests().export_record(ctx(), backup_id)})


@bp.post("/backups/import_record")
def import_record(project_id):
    policy.authorize(ctx(), "backup:backup-import")
    record = json_body(schemas.backup_import)["backup-record"]
    backup = _requests().import_record(ctx(), record["backup_service"], record["backup_url"])
    return reply({"backup": views.backup_summary(backup)}, 201)
