"""Policy: who may do what, with oslo.policy and defaults shaped like Cinder's.

The rules are registered in code (``list_rules``) under Cinder's names, so an operator's
policy.yaml written for Cinder means the same here; deploy/config/policy.yaml.sample is
generated from them (``oslopolicy-sample-generator --namespace lamina``). Personas:

- project reader: ``role:reader`` on the target's project: may list and show;
- project member: ``role:member`` on the target's project: may also create, change, delete;
- admin (``context_is_admin``, ``role:admin`` in any project or on the system): everything,
  across projects; admin-only APIs (``admin_api``) are refused to everyone else.

Callers pass the resource (or a dict with its ``project_id``) as the target. Cross-project
reads are stopped earlier, by the project scope of the database queries, with 404; a refused
rule answers 403 (common.exception.Forbidden).
"""

import threading

from oslo_config import cfg
from oslo_policy import policy

from common import exception

CONF = cfg.CONF

# Base rules (Cinder's names and check strings).
CONTEXT_IS_ADMIN = "rule:context_is_admin"
ADMIN_API = "rule:admin_api"
READER = "rule:project_reader_or_admin"
MEMBER = "rule:project_member_or_admin"

_BASE = [
    policy.RuleDefault("context_is_admin", "role:admin",
                       description="Decides what is an administrator (all projects)."),
    policy.RuleDefault("admin_or_owner",
                       "is_admin:True or (role:admin and is_admin_project:True) or "
                       "project_id:%(project_id)s",
                       description="Legacy: an administrator or anyone in the project."),
    policy.RuleDefault("admin_api", "is_admin:True or (role:admin and is_admin_project:True)",
                       description="Administrator-only APIs."),
    policy.RuleDefault("project_reader", "role:reader and project_id:%(project_id)s",
                       description="A reader (or more) in the target's project."),
    policy.RuleDefault("project_member", "role:member and project_id:%(project_id)s",
                       description="A member (or more) in the target's project."),
    policy.RuleDefault("project_reader_or_admin", "rule:project_reader or rule:context_is_admin",
                       description="Read access: the project's readers and administrators."),
    policy.RuleDefault("project_member_or_admin", "rule:project_member or rule:context_is_admin",
                       description="Write access: the project's members and administrators."),
]


def _op(name, check, description, operations):
    return policy.DocumentedRuleDefault(
        name=name, check_str=check, description=description,
        operations=[{"method": m, "path": p} for m, p in operations])


V = "/volumes/{volume_id}"
ACTION = V + "/action"
S = "/snapshots/{snapshot_id}"
T = "/types/{type_id}"
Q = "/os-quota-sets/{project_id}"
QC = "/os-quota-class-sets/{quota_class_name}"
QOS = "/qos-specs/{qos_id}"
GT = "/group_types/{group_type_id}"
G = "/groups/{group_id}"
GS = "/group_snapshots/{group_snapshot_id}"
B = "/backups/{backup_id}"
ENCRYPTION = "rule:volume_extension:volume_type_encryption"

_RULES = [
    # volumes
    _op("volume:create", MEMBER, "Create a volume.", [("POST", "/volumes")]),
    _op("volume:get", READER, "Show a volume.", [("GET", V)]),
    _op("volume_extension:volume_encryption_metadata", READER,
        "Show a volume's encryption metadata.",
        [("GET", V + "/encryption"), ("GET", V + "/encryption/{encryption_key}")]),
    _op("volume:get_all", READER, "List volumes or get their summary.",
        [("GET", "/volumes"), ("GET", "/volumes/detail")]),
    _op("volume:update", MEMBER, "Update a volume.", [("PUT", V)]),
    _op("volume:delete", MEMBER, "Delete a volume.", [("DELETE", V)]),
    _op("volume:force_delete", ADMIN_API, "Force delete a volume (DELETE with force=true).",
        [("DELETE", V)]),
    _op("volume:extend", MEMBER, "Extend a volume.", [("POST", ACTION + " (os-extend)")]),
    _op("volume:extend_attached_volume", MEMBER, "Extend an attached volume.",
        [("POST", ACTION + " (os-extend)")]),
    _op("volume:retype", MEMBER, "Retype a volume.", [("POST", ACTION + " (os-retype)")]),
    _op("volume:update_readonly_flag", MEMBER, "Set a volume's read-only flag.",
        [("POST", ACTION + " (os-update_readonly_flag)")]),
    _op("volume:revert_to_snapshot", MEMBER, "Revert a volume to its latest snapshot.",
        [("POST", ACTION + " (revert)")]),
    _op("volume:reimage", MEMBER, "Replace a volume's data with an image's (3.68).",
        [("POST", ACTION + " (os-reimage)")]),
    _op("volume:reimage_reserved", MEMBER, "Reimage a volume reserved by a server rebuild "
        "(3.68, reimage_reserved).", [("POST", ACTION + " (os-reimage)")]),
    _op("volume:get_volume_metadata", READER, "Show a volume's metadata.",
        [("GET", V + "/metadata"), ("GET", V + "/metadata/{key}")]),
    _op("volume:create_volume_metadata", MEMBER, "Add metadata to a volume.",
        [("POST", V + "/metadata")]),
    _op("volume:update_volume_metadata", MEMBER, "Replace or update a volume's metadata.",
        [("PUT", V + "/metadata"), ("PUT", V + "/metadata/{key}")]),
    _op("volume:delete_volume_metadata", MEMBER, "Delete a volume metadata key.",
        [("DELETE", V + "/metadata/{key}")]),
    _op("volume:update_volume_admin_metadata", ADMIN_API, "Change a volume's admin metadata.",
        [("POST", ACTION)]),
    _op("volume_extension:volume_host_attribute", ADMIN_API,
        "See os-vol-host-attr:host in volume responses.", [("GET", V)]),
    _op("volume_extension:volume_tenant_attribute", ADMIN_API,
        "See os-vol-tenant-attr:tenant_id in volume responses.", [("GET", V)]),
    _op("volume_extension:volume_mig_status_attribute", ADMIN_API,
        "See migration status attributes in volume responses.", [("GET", V)]),
    # volume actions: admin
    _op("volume_extension:volume_admin_actions:reset_status", ADMIN_API,
        "Reset a volume's status.", [("POST", ACTION + " (os-reset_status)")]),
    _op("volume_extension:volume_admin_actions:force_delete", ADMIN_API,
        "Force delete a volume.", [("POST", ACTION + " (os-force_delete)")]),
    _op("volume_extension:volume_admin_actions:force_detach", ADMIN_API,
        "Force detach a volume.", [("POST", ACTION + " (os-force_detach)")]),
    _op("volume_extension:volume_admin_actions:migrate_volume", ADMIN_API,
        "Migrate a volume to another back end.", [("POST", ACTION + " (os-migrate_volume)")]),
    _op("volume_extension:volume_admin_actions:migrate_volume_completion", ADMIN_API,
        "Complete a volume migration.",
        [("POST", ACTION + " (os-migrate_volume_completion)")]),
    _op("volume_extension:volume_manage", ADMIN_API, "Manage existing storage as a volume.",
        [("POST", "/manageable_volumes")]),
    _op("volume_extension:volume_unmanage", ADMIN_API, "Stop managing a volume.",
        [("POST", ACTION + " (os-unmanage)")]),
    # volume actions: members
    _op("volume_extension:volume_actions:attach", MEMBER, "Attach a volume.",
        [("POST", ACTION + " (os-attach)")]),
    _op("volume_extension:volume_actions:detach", MEMBER, "Detach a volume.",
        [("POST", ACTION + " (os-detach)")]),
    _op("volume_extension:volume_actions:reserve", MEMBER, "Reserve a volume.",
        [("POST", ACTION + " (os-reserve)")]),
    _op("volume_extension:volume_actions:unreserve", MEMBER, "Unreserve a volume.",
        [("POST", ACTION + " (os-unreserve)")]),
    _op("volume_extension:volume_actions:begin_detaching", MEMBER, "Begin detaching.",
        [("POST", ACTION + " (os-begin_detaching)")]),
    _op("volume_extension:volume_actions:roll_detaching", MEMBER, "Roll back detaching.",
        [("POST", ACTION + " (os-roll_detaching)")]),
    _op("volume_extension:volume_actions:initialize_connection", MEMBER,
        "Initialize a volume connection.", [("POST", ACTION + " (os-initialize_connection)")]),
    _op("volume_extension:volume_actions:terminate_connection", MEMBER,
        "Terminate a volume connection.", [("POST", ACTION + " (os-terminate_connection)")]),
    _op("volume:attachment_create", MEMBER, "Create an attachment.",
        [("POST", "/attachments")]),
    _op("volume:attachment_update", MEMBER, "Update an attachment (export to a connector).",
        [("PUT", "/attachments/{attachment_id}")]),
    _op("volume:attachment_delete", MEMBER, "Delete an attachment.",
        [("DELETE", "/attachments/{attachment_id}")]),
    _op("volume:attachment_complete", MEMBER, "Mark an attachment complete.",
        [("POST", "/attachments/{attachment_id}/action (os-complete)")]),
    _op("volume:multiattach_bootable_volume", MEMBER,
        "Attach a bootable multiattach volume more than once.", [("POST", "/attachments")]),
    _op("volume_extension:volume_actions:upload_image", MEMBER, "Upload a volume to an image.",
        [("POST", ACTION + " (os-volume_upload_image)")]),
    _op("volume_extension:volume_actions:upload_public", ADMIN_API,
        "Upload a volume to a public image.", [("POST", ACTION + " (os-volume_upload_image)")]),
    _op("volume:update_bootable", MEMBER, "Set a volume's bootable flag.",
        [("POST", ACTION + " (os-set_bootable)")]),
    # snapshots
    _op("volume:create_snapshot", MEMBER, "Create a snapshot.", [("POST", "/snapshots")]),
    _op("volume:get_snapshot", READER, "Show a snapshot.", [("GET", S)]),
    _op("volume:get_all_snapshots", READER, "List snapshots.",
        [("GET", "/snapshots"), ("GET", "/snapshots/detail")]),
    _op("volume:update_snapshot", MEMBER, "Update a snapshot.", [("PUT", S)]),
    _op("volume:delete_snapshot", MEMBER, "Delete a snapshot.", [("DELETE", S)]),
    _op("volume:get_snapshot_metadata", READER, "Show a snapshot's metadata.",
        [("GET", S + "/metadata"), ("GET", S + "/metadata/{key}")]),
    _op("volume:update_snapshot_metadata", MEMBER, "Create or update snapshot metadata.",
        [("POST", S + "/metadata"), ("PUT", S + "/metadata"), ("PUT", S + "/metadata/{key}")]),
    _op("volume:delete_snapshot_metadata", MEMBER, "Delete a snapshot metadata key.",
        [("DELETE", S + "/metadata/{key}")]),
    _op("volume_extension:extended_snapshot_attributes", READER,
        "See os-extended-snapshot-attributes in snapshot responses.", [("GET", S)]),
    _op("volume_extension:snapshot_admin_actions:reset_status", ADMIN_API,
        "Reset a snapshot's status.", [("POST", S + "/action (os-reset_status)")]),
    _op("volume_extension:snapshot_admin_actions:force_delete", ADMIN_API,
        "Force delete a snapshot.", [("POST", S + "/action (os-force_delete)")]),
    _op("snapshot_extension:snapshot_manage", ADMIN_API, "Manage an existing snapshot.",
        [("POST", "/manageable_snapshots")]),
    _op("snapshot_extension:snapshot_unmanage", ADMIN_API, "Stop managing a snapshot.",
        [("POST", S + "/action (os-unmanage)")]),
    _op("snapshot_extension:list_manageable", ADMIN_API,
        "List the back end's snapshots that could be managed.",
        [("GET", "/manageable_snapshots"), ("GET", "/manageable_snapshots/detail")]),
    _op("snapshot_extension:snapshot_actions:update_snapshot_status", MEMBER,
        "Update a snapshot's status and progress (a compute service's assisted snapshot).",
        [("POST", S + "/action (os-update_snapshot_status)")]),
    # volume types and extra specs
    _op("volume_extension:type_get", READER, "Show a volume type.", [("GET", T)]),
    _op("volume_extension:type_get_all", READER, "List volume types.", [("GET", "/types")]),
    _op("volume_extension:types_manage", ADMIN_API, "Create, update and delete volume types.",
        [("POST", "/types"), ("PUT", T), ("DELETE", T)]),
    _op("volume_extension:types_extra_specs:index", READER, "List a type's extra specs.",
        [("GET", T + "/extra_specs")]),
    _op("volume_extension:types_extra_specs:show", READER, "Show one extra spec.",
        [("GET", T + "/extra_specs/{key}")]),
    _op("volume_extension:types_extra_specs:create", ADMIN_API, "Create extra specs.",
        [("POST", T + "/extra_specs")]),
    _op("volume_extension:types_extra_specs:update", ADMIN_API, "Update an extra spec.",
        [("PUT", T + "/extra_specs/{key}")]),
    _op("volume_extension:types_extra_specs:delete", ADMIN_API, "Delete an extra spec.",
        [("DELETE", T + "/extra_specs/{key}")]),
    _op("volume_extension:volume_type_access", READER, "See a type's is_public flag.",
        [("GET", T)]),
    _op("volume_extension:volume_type_access:addProjectAccess", ADMIN_API,
        "Give a project access to a private type.", [("POST", T + "/action (addProjectAccess)")]),
    _op("volume_extension:volume_type_access:removeProjectAccess", ADMIN_API,
        "Take a project's access to a private type.",
        [("POST", T + "/action (removeProjectAccess)")]),
    _op("volume_extension:access_types_qos_specs_id", ADMIN_API,
        "See qos_specs_id in volume type show and list responses.",
        [("GET", T), ("GET", "/types")]),
    # QoS specs (api/routes/qos_specs.py)
    _op("volume_extension:qos_specs_manage:get_all", ADMIN_API,
        "List qos specs or list all associations.",
        [("GET", "/qos-specs"), ("GET", QOS + "/associations")]),
    _op("volume_extension:qos_specs_manage:get", ADMIN_API, "Show qos specs.",
        [("GET", QOS)]),
    _op("volume_extension:qos_specs_manage:create", ADMIN_API, "Create qos specs.",
        [("POST", "/qos-specs")]),
    _op("volume_extension:qos_specs_manage:update", ADMIN_API,
        "Update qos specs (including updating association).",
        [("PUT", QOS), ("GET", QOS + "/disassociate_all"), ("GET", QOS + "/associate"),
         ("GET", QOS + "/disassociate")]),
    _op("volume_extension:qos_specs_manage:delete", ADMIN_API,
        "Delete qos specs or unset one specified qos key.",
        [("DELETE", QOS), ("PUT", QOS + "/delete_keys")]),
    # volume type encryption (api/routes/encryption_types.py): one base rule, as Cinder's
    _op("volume_extension:volume_type_encryption", ADMIN_API,
        "Base policy for all volume type encryption type operations.",
        [("POST", T + "/encryption"), ("PUT", T + "/encryption/{encryption_id}"),
         ("GET", T + "/encryption"), ("GET", T + "/encryption/{key}"),
         ("DELETE", T + "/encryption/{encryption_id}")]),
    _op("volume_extension:volume_type_encryption:create", ENCRYPTION,
        "Create volume type encryption.", [("POST", T + "/encryption")]),
    _op("volume_extension:volume_type_encryption:get", ENCRYPTION,
        "Show a volume type's encryption type, show an encryption specs item.",
        [("GET", T + "/encryption"), ("GET", T + "/encryption/{key}")]),
    _op("volume_extension:volume_type_encryption:update", ENCRYPTION,
        "Update volume type encryption.", [("PUT", T + "/encryption/{encryption_id}")]),
    _op("volume_extension:volume_type_encryption:delete", ENCRYPTION,
        "Delete volume type encryption.", [("DELETE", T + "/encryption/{encryption_id}")]),
    # per-project default volume types (3.62, api/routes/default_types.py)
    _op("volume_extension:default_set_or_update", ADMIN_API,
        "Set or update default volume type.", [("PUT", "/default-types/{project_id}")]),
    _op("volume_extension:default_get", ADMIN_API, "Get default types.",
        [("GET", "/default-types/{project_id}")]),
    _op("volume_extension:default_get_all", ADMIN_API, "Get all default types.",
        [("GET", "/default-types")]),
    _op("volume_extension:default_unset", ADMIN_API, "Unset default type.",
        [("DELETE", "/default-types/{project_id}")]),
    # quotas and limits
    _op("volume_extension:quotas:show", READER, "Show a project's quotas (and usage).",
        [("GET", Q), ("GET", Q + "/defaults")]),
    _op("volume_extension:quotas:update", ADMIN_API, "Update a project's quotas.",
        [("PUT", Q)]),
    _op("volume_extension:quotas:delete", ADMIN_API, "Revert a project's quotas to defaults.",
        [("DELETE", Q)]),
    _op("volume_extension:quota_classes", ADMIN_API, "Show a quota class.", [("GET", QC)]),
    _op("volume_extension:quota_classes:update", ADMIN_API, "Update a quota class.",
        [("PUT", QC)]),
    _op("limits_extension:used_limits", READER, "See usage in GET /limits.",
        [("GET", "/limits")]),
    # services, pools, messages
    _op("volume_extension:services:index", ADMIN_API, "List services.",
        [("GET", "/os-services")]),
    _op("volume_extension:services:update", ADMIN_API,
        "Update service, including failover_host, thaw, freeze, disable, enable, set-log and "
        "get-log actions.", [("PUT", "/os-services/{action}")]),
    _op("volume:freeze_host", ADMIN_API, "Freeze a backend host.",
        [("PUT", "/os-services/freeze")]),
    _op("volume:thaw_host", ADMIN_API, "Thaw a backend host.", [("PUT", "/os-services/thaw")]),
    _op("volume:failover_host", ADMIN_API, "Failover a backend host.",
        [("PUT", "/os-services/failover_host")]),
    _op("volume_extension:hosts", ADMIN_API, "List or show hosts.",
        [("GET", "/os-hosts"), ("GET", "/os-hosts/{host_name}")]),
    _op("volume_extension:capabilities", ADMIN_API, "Show backend capabilities.",
        [("GET", "/capabilities/{host_name}")]),
    _op("clusters:get_all", ADMIN_API, "List clusters.",
        [("GET", "/clusters"), ("GET", "/clusters/detail")]),
    _op("clusters:get", ADMIN_API, "Show cluster.", [("GET", "/clusters/{cluster_id}")]),
    _op("clusters:update", ADMIN_API, "Update cluster.", [("PUT", "/clusters/{cluster_id}")]),
    _op("workers:cleanup", ADMIN_API, "Clean up the operations of volume services (end a "
        "dead one's, taken over by a live service of the same back end).",
        [("POST", "/workers/cleanup")]),
    _op("scheduler_extension:scheduler_stats:get_pools", ADMIN_API, "List pools.",
        [("GET", "/scheduler-stats/get_pools")]),
    _op("message:get_all", READER, "List messages.", [("GET", "/messages")]),
    _op("message:get", READER, "Show a message.", [("GET", "/messages/{message_id}")]),
    _op("message:delete", MEMBER, "Delete a message.", [("DELETE", "/messages/{message_id}")]),
    # volume transfers (os-volume-transfer; volume-transfers from 3.55)
    _op("volume:get_all_transfers", READER, "List volume transfers.",
        [("GET", "/os-volume-transfer"), ("GET", "/os-volume-transfer/detail"),
         ("GET", "/volume-transfers"), ("GET", "/volume-transfers/detail")]),
    _op("volume:get_transfer", READER, "Show a volume transfer.",
        [("GET", "/os-volume-transfer/{transfer_id}"),
         ("GET", "/volume-transfers/{transfer_id}")]),
    _op("volume:create_transfer", MEMBER, "Offer a volume to another project.",
        [("POST", "/os-volume-transfer"), ("POST", "/volume-transfers")]),
    # The target of accept is the caller's own project: the volume is another project's.
    _op("volume:accept_transfer", MEMBER, "Accept a volume transfer into the project.",
        [("POST", "/os-volume-transfer/{transfer_id}/accept"),
         ("POST", "/volume-transfers/{transfer_id}/accept")]),
    _op("volume:delete_transfer", MEMBER, "Withdraw a volume transfer.",
        [("DELETE", "/os-volume-transfer/{transfer_id}"),
         ("DELETE", "/volume-transfers/{transfer_id}")]),
    # generic volume groups (3.11-3.20)
    _op("group:group_types:create", ADMIN_API, "Create a group type.",
        [("POST", "/group_types")]),
    _op("group:group_types:update", ADMIN_API, "Update a group type.",
        [("PUT", GT)]),
    _op("group:group_types:delete", ADMIN_API, "Delete a group type.",
        [("DELETE", GT)]),
    _op("group:access_group_types_specs", ADMIN_API, "See group_specs in group type bodies.",
        [("GET", GT)]),
    _op("group:group_types_specs:get", ADMIN_API, "Show one group spec.",
        [("GET", GT + "/group_specs/{g_spec_id}")]),
    _op("group:group_types_specs:get_all", ADMIN_API, "List a group type's specs.",
        [("GET", GT + "/group_specs")]),
    _op("group:group_types_specs:create", ADMIN_API, "Create group specs.",
        [("POST", GT + "/group_specs")]),
    _op("group:group_types_specs:update", ADMIN_API, "Update a group spec.",
        [("PUT", GT + "/group_specs/{g_spec_id}")]),
    _op("group:group_types_specs:delete", ADMIN_API, "Delete a group spec.",
        [("DELETE", GT + "/group_specs/{g_spec_id}")]),
    _op("group:get_all", READER, "List groups.", [("GET", "/groups"), ("GET", "/groups/detail")]),
    _op("group:create", MEMBER, "Create a group.", [("POST", "/groups")]),
    _op("group:get", READER, "Show a group.", [("GET", G)]),
    _op("group:update", MEMBER, "Update a group.", [("PUT", G)]),
    _op("group:delete", MEMBER, "Delete a group.", [("POST", G + "/action (delete)")]),
    _op("group:reset_status", ADMIN_API, "Reset a group's status.",
        [("POST", G + "/action (reset_status)")]),
    _op("group:get_all_group_snapshots", READER, "List group snapshots.",
        [("GET", "/group_snapshots"), ("GET", "/group_snapshots/detail")]),
    _op("group:create_group_snapshot", MEMBER, "Create a group snapshot.",
        [("POST", "/group_snapshots")]),
    _op("group:get_group_snapshot", READER, "Show a group snapshot.", [("GET", GS)]),
    _op("group:delete_group_snapshot", MEMBER, "Delete a group snapshot.", [("DELETE", GS)]),
    _op("group:reset_group_snapshot_status", ADMIN_API, "Reset a group snapshot's status.",
        [("POST", GS + "/action (reset_status)")]),
    # backups (Cinder's names and defaults: export, import and the admin actions admin-only)
    _op("backup:get_all", READER, "List backups.",
        [("GET", "/backups"), ("GET", "/backups/detail")]),
    _op("backup:backup_project_attribute", ADMIN_API,
        "See os-backup-project-attr:project_id (3.18) and user_id (3.56) in backups.",
        [("GET", B), ("GET", "/backups/detail")]),
    _op("backup:create", MEMBER, "Create a backup.", [("POST", "/backups")]),
    _op("backup:get", READER, "Show a backup.", [("GET", B)]),
    _op("backup:update", MEMBER, "Update a backup.", [("PUT", B)]),
    _op("backup:delete", MEMBER, "Delete a backup.", [("DELETE", B)]),
    _op("backup:restore", MEMBER, "Restore a backup to a new or an existing volume.",
        [("POST", B + "/restore")]),
    _op("backup:backup-import", ADMIN_API, "Import a backup record.",
        [("POST", "/backups/import_record")]),
    _op("backup:backup-export", ADMIN_API, "Export a backup's record.",
        [("GET", B + "/export_record")]),
    _op("volume_extension:backup_admin_actions:reset_status", ADMIN_API,
        "Reset a backup's status.", [("POST", B + "/action (os-reset_status)")]),
    _op("volume_extension:backup_admin_actions:force_delete", ADMIN_API,
        "Force delete a backup.", [("POST", B + "/action (os-force_delete)")]),
]


def list_rules():
    """Every default rule (entry point oslo.policy.policies: lamina)."""
    return _BASE + _RULES


_enforcer = None
_lock = threading.Lock()


def get_enforcer():
    """The process's Enforcer (entry point oslo.policy.enforcer: lamina)."""
    global _enforcer
    with _lock:
        if _enforcer is None:
            enforcer = policy.Enforcer(CONF)
            enforcer.register_defaults(list_rules())
            _enforcer = enforcer
        return _enforcer


def reset():
    global _enforcer
    with _lock:
        if _enforcer is not None:
            _enforcer.clear()
        _enforcer = None


def _target(ctx, target):
    if target is None:
        return {"project_id": ctx.project_id, "user_id": ctx.user_id}
    if isinstance(target, dict):
        return target
    return {"project_id": getattr(target, "project_id", None),
            "user_id": getattr(target, "user_id", None)}


def _creds(ctx):
    creds = ctx.to_policy_values()
    creds["is_admin"] = bool(ctx.is_admin)  # for the legacy `is_admin:True` checks
    return creds


def check(ctx, rule, target=None):
    """Whether `rule` allows ctx on target (a resource or a dict with its project_id; None:
    the caller's own project)."""
    return get_enforcer().authorize(rule, _target(ctx, target), _creds(ctx), do_raise=False)


def authorize(ctx, rule, target=None):
    """Raise Forbidden (403) unless `rule` allows ctx on target (as check)."""
    try:
        allowed = check(ctx, rule, target)
    except policy.PolicyNotRegistered:
        allowed = False
    if not allowed:
        raise exception.Forbidden("Policy doesn't allow %s to be performed." % rule)


def check_is_admin(ctx):
    """Whether the context's roles make it an administrator (rule context_is_admin)."""
    return get_enforcer().authorize("context_is_admin", {}, ctx.to_policy_values(),
                                    do_raise=False)
