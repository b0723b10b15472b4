"""/os-quota-sets, /os-quota-class-sets and /limits (common/quota.py holds the rules)."""

import flask

from api import microversion, policy
from api.routes.helpers import as_bool, ctx, json_body, no_body, reply
from common import exception, quota
from common.db import quota_api

bp = flask.Blueprint("quotas", __name__)

# Keys of a quota_set body that are not limits (Cinder ignores them too).
NON_QUOTA_KEYS = ("tenant_id", "id")


def _body(key):
    body = json_body()
    if not isinstance(body.get(key), dict):
        raise exception.BadRequest("Missing required element '%s' in request body." % key)
    return {k: v for k, v in body[key].items() if k not in NON_QUOTA_KEYS}


# --- os-quota-sets ---------------------------------------------------------------------------

@bp.get("/os-quota-sets/<target_project_id>")
def show(project_id, target_project_id):
    policy.authorize(ctx(), "volume_extension:quotas:show", {"project_id": target_project_id})
    usage = as_bool(flask.request.args.get("usage", "false"), "usage")
    resources = quota.resource_names()
    limits = quota.project_limits(target_project_id, resources)
    if usage:
        in_use = quota.project_usage(target_project_id, resources)
        body = {r: {"limit": limits[r], "in_use": in_use[r], "reserved": 0}
                for r in resources}
    else:
        body = dict(limits)
    body["id"] = target_project_id
    return reply({"quota_set": body})


@bp.get("/os-quota-sets/<target_project_id>/defaults")
def defaults(project_id, target_project_id):
    policy.authorize(ctx(), "volume_extension:quotas:show", {"project_id": target_project_id})
    body = quota.class_limits(quota.DEFAULT_CLASS)
    body["id"] = target_project_id
    return reply({"quota_set": body})


@bp.put("/os-quota-sets/<target_project_id>")
def update(project_id, target_project_id):
    policy.authorize(ctx(), "volume_extension:quotas:update",
                     {"project_id": target_project_id})
    values = quota.validate_limits(_body("quota_set"))
    if values:
        quota_api.quota_update(target_project_id, values)
    return reply({"quota_set": quota.project_limits(target_project_id)})


@bp.delete("/os-quota-sets/<target_project_id>")
def delete(project_id, target_project_id):
    policy.authorize(ctx(), "volume_extension:quotas:delete",
                     {"project_id": target_project_id})
    quota_api.quota_destroy_all(target_project_id)
    return no_body()


# --- os-quota-class-sets ---------------------------------------------------------------------

@bp.get("/os-quota-class-sets/<class_name>")
def class_show(project_id, class_name):
    policy.authorize(ctx(), "volume_extension:quota_classes", {"quota_class": class_name})
    body = quota.class_limits(class_name)
    body["id"] = class_name
    return reply({"quota_class_set": body})


@bp.put("/os-quota-class-sets/<class_name>")
def class_update(project_id, class_name):
    policy.authorize(ctx(), "volume_extension:quota_classes:update",
                     {"quota_class": class_name})
    if len(class_name) > 255:
        raise exception.InvalidInput(reason="quota class name must be at most 255 characters")
    values = quota.validate_limits(_body("quota_class_set"))
    if values:
        quota_api.quota_class_update(class_name, values)
    return reply({"quota_class_set": quota.class_limits(class_name)})  # no id, as Cinder


# --- limits ------------------------------------------------------------------------------------

# resource -> (absolute limit name, used name), as Cinder's limits view
LIMIT_NAMES = {
    "volumes": ("maxTotalVolumes", "totalVolumesUsed"),
    "gigabytes": ("maxTotalVolumeGigabytes", "totalGigabytesUsed"),
    "snapshots": ("maxTotalSnapshots", "totalSnapshotsUsed"),
    "backups": ("maxTotalBackups", "totalBackupsUsed"),
    "backup_gigabytes": ("maxTotalBackupGigabytes", "totalBackupGigabytesUsed"),
}


@bp.get("/limits")
def limits(project_id):
    c = ctx()
    target = c.project_id
    if microversion.at_least((3, 39)) and flask.request.args.get("project_id"):
        # 3.39: another project's limits, for those allowed to see its quotas (admins)
        target = flask.request.args["project_id"]
        policy.authorize(c, "volume_extension:quotas:show", {"project_id": target})
    resources = list(LIMIT_NAMES)
    hard = quota.project_limits(target, resources)
    absolute = {LIMIT_NAMES[r][0]: hard[r] for r in resources}
    if policy.check(c, "limits_extension:used_limits", {"project_id": target}):
        in_use = quota.project_usage(target, resources)
        absolute.update({LIMIT_NAMES[r][1]: in_use[r] for r in resources})
    return reply({"limits": {"rate": [], "absolute": absolute}})
