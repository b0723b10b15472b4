"""Cinder's response contract, checked on every response the test suite receives from Lamina.

Tempest's response schemas (`tempest.lib.api_schema.response.volume`) are the machine-readable
form of Cinder's API reference: for each call the status codes it may answer and the body, with
`additionalProperties: false`, so a key Cinder does not send fails as surely as a missing one.
tests/conftest.py hooks `check` into every HTTP response of the test process (the in-process
stack, python-cinderclient, openstacksdk, the `cinder` CLI is a subprocess and is not seen):
a response from Lamina (it echoes `OpenStack-API-Version: volume ...`) is looked up in ROUTES
by method, path and action, and its body is validated against the schema Tempest's own client
uses at that microversion. Error responses are checked for Cinder's fault shape. A route of
Lamina's that is in neither ROUTES nor NO_SCHEMA fails the test that called it, so a new route
cannot go unchecked.
"""

import copy
import importlib
import json
import re
import threading
import urllib.parse

import jsonschema
from tempest.lib.common import jsonschema_validator

SCHEMAS = "tempest.lib.api_schema.response.volume"

# Schema modules that changed with a microversion: (first version, module), as Tempest's
# clients choose them (tempest/lib/services/volume/v3/*_client.py schema_versions_info).
VERSIONED = {
    "volumes": [((3, 0), "volumes"), ((3, 61), "v3_61.volumes"), ((3, 63), "v3_63.volumes"),
                ((3, 64), "v3_64.volumes"), ((3, 65), "v3_65.volumes"),
                ((3, 69), "v3_69.volumes")],
    "services": [((3, 0), "services"), ((3, 7), "v3_7.services")],
    "transfers": [((3, 0), "transfers"), ((3, 55), "v3_55.transfers"),
                  ((3, 57), "v3_57.transfers")],
    "backups": [((3, 0), "backups"), ((3, 64), "v3_64.backups")],
}

# Keys Cinder sends from a microversion on that Tempest's schemas leave out (they are written
# for the 3.0 bodies Tempest mostly asks for): (first version, schema module, a key the object
# schemas to extend have, the key Cinder adds, its schema). Source: Cinder's API reference.
ADDED_KEYS = [
    ((3, 41), "snapshots", "volume_id", "user_id", {"type": "string"}),
    # 3.45 with_count: `count` beside the list (Tempest leaves it commented out, a TODO)
    ((3, 45), "volumes", "volumes", "count", {"type": "integer"}),
    ((3, 45), "snapshots", "snapshots", "count", {"type": "integer"}),
    # 3.65: consumes_quota in the snapshot (Tempest has it for volumes only, v3_65)
    ((3, 65), "snapshots", "volume_id", "consumes_quota", {"type": "boolean"}),
    # 3.14 (group snapshots): the snapshot's group snapshot, null for a snapshot of its own
    ((3, 14), "snapshots", "volume_id", "group_snapshot_id", {"type": ["string", "null"]}),
    # the next-page link of a full page, as every Cinder collection has
    ((3, 0), "transfers", "transfers", "transfers_links", {"type": "array"}),
    # Backups (Cinder's API reference, "List backups with detail" and "List backups for
    # project"): backups_links beside a full page, and 3.45 with_count's `count` beside the
    # list (Tempest puts count inside each item, a TODO). Tempest's show schema already has
    # 3.43 metadata, 3.18 os-backup-project-attr:project_id and 3.56 user_id (its TODOs).
    ((3, 0), "backups", "backups", "backups_links", {"type": "array"}),
    ((3, 45), "backups", "backups", "count", {"type": "integer"}),
    # 3.61/3.63/3.65: Cinder's update and manage answers are its detail view, with the keys
    # those versions add (Tempest's versioned schemas add them to show, list and create only)
    ((3, 61), "volumes", "multiattach", "cluster_name", {"type": ["string", "null"]}),
    ((3, 63), "volumes", "multiattach", "volume_type_id", {"type": ["string", "null"]}),
    ((3, 65), "volumes", "multiattach", "consumes_quota", {"type": "boolean"}),
    ((3, 61), "manage_volume", "multiattach", "cluster_name", {"type": ["string", "null"]}),
    ((3, 63), "manage_volume", "multiattach", "volume_type_id", {"type": ["string", "null"]}),
    ((3, 65), "manage_volume", "multiattach", "consumes_quota", {"type": "boolean"}),
    # 3.58: the owning project in group and group snapshot show and detail bodies
    ((3, 58), "groups", "group_type", "project_id", {"type": "string"}),
    ((3, 58), "group_snapshots", "group_type_id", "project_id", {"type": "string"}),
]

ID = r"[^/]+"

# Attachments (3.27): Tempest has no schema; these are Cinder's API reference and its
# attachments view (summary in lists, detail everywhere else).
_DATE = {"type": ["string", "null"]}
ATTACHMENT_SUMMARY = {
    "type": "object",
    "properties": {"id": {"type": "string", "format": "uuid"}, "status": {"type": "string"},
                   "instance": {"type": ["string", "null"]},
                   "volume_id": {"type": "string", "format": "uuid"}},
    "required": ["id", "status", "instance", "volume_id"], "additionalProperties": False,
}
ATTACHMENT_DETAIL = copy.deepcopy(ATTACHMENT_SUMMARY)
ATTACHMENT_DETAIL["properties"].update(
    attached_at=_DATE, detached_at=_DATE, attach_mode={"type": ["string", "null"]},
    connection_info={"type": ["object", "null"],
                     "properties": {"driver_volume_type": {"type": "string"},
                                    "data": {"type": "object"}},
                     "required": ["driver_volume_type", "data"]})
ATTACHMENT_DETAIL["required"] = ATTACHMENT_SUMMARY["required"] + [
    "attached_at", "detached_at", "attach_mode", "connection_info"]


def _one_attachment(codes):
    return {"status_code": codes,
            "response_body": {"type": "object", "properties": {"attachment": ATTACHMENT_DETAIL},
                              "required": ["attachment"], "additionalProperties": False}}


def _attachment_list(item):
    return {"status_code": [200],
            "response_body": {"type": "object",
                              "properties": {"attachments": {"type": "array", "items": item},
                                             "attachments_links": {"type": "array"}},
                              "required": ["attachments"], "additionalProperties": False}}


CONNECTION_INFO = {
    "status_code": [200],
    "response_body": {"type": "object",
                      "properties": {"connection_info": ATTACHMENT_DETAIL["properties"][
                          "connection_info"]},
                      "required": ["connection_info"], "additionalProperties": False}}

# (method, path under /v3/{project_id}, action key of a POST .../action body or None,
#  "module.schema" or a literal schema dict for calls whose Tempest client checks only the code)
ROUTES = [
    ("GET", "/volumes", None, "volumes.list_volumes_no_detail"),
    ("GET", "/volumes/detail", None, "volumes.list_volumes_with_detail"),
    ("GET", "/volumes/summary", None, "volumes.show_volume_summary"),
    ("POST", "/volumes", None, "volumes.create_volume"),
    ("GET", "/volumes/ID", None, "volumes.show_volume"),
    ("PUT", "/volumes/ID", None, "volumes.update_volume"),
    ("DELETE", "/volumes/ID", None, "volumes.delete_volume"),
    ("POST", "/volumes/ID/metadata", None, "volumes.create_volume_metadata"),
    ("GET", "/volumes/ID/metadata", None, "volumes.show_volume_metadata"),
    ("PUT", "/volumes/ID/metadata", None, "volumes.update_volume_metadata"),
    ("GET", "/volumes/ID/metadata/ID", None, "volumes.show_volume_metadata_item"),
    ("PUT", "/volumes/ID/metadata/ID", None, "volumes.update_volume_metadata_item"),
    ("DELETE", "/volumes/ID/metadata/ID", None, "volumes.delete_volume_metadata_item"),
    ("POST", "/volumes/ID/action", "os-extend", "volumes.extend_volume"),
    ("POST", "/volumes/ID/action", "os-reset_status", "volumes.reset_volume_status"),
    ("POST", "/volumes/ID/action", "os-update_readonly_flag", "volumes.update_volume_readonly"),
    ("POST", "/volumes/ID/action", "os-force_delete", "volumes.force_delete_volume"),
    ("POST", "/volumes/ID/action", "os-retype", "volumes.retype_volume"),
    ("POST", "/volumes/ID/action", "os-set_bootable", "volumes.set_bootable_volume"),
    ("POST", "/volumes/ID/action", "os-attach", "volumes.attach_volume"),
    ("POST", "/volumes/ID/action", "os-detach", "volumes.detach_volume"),
    ("POST", "/volumes/ID/action", "os-reserve", "volumes.reserve_volume"),
    ("POST", "/volumes/ID/action", "os-unreserve", "volumes.unreserve_volume"),
    ("POST", "/volumes/ID/action", "os-terminate_connection", "volumes.terminate_connection"),
    ("POST", "/volumes/ID/action", "os-force_detach", "volumes.force_detach_volume"),
    ("POST", "/volumes/ID/action", "os-initialize_connection", CONNECTION_INFO),
    ("POST", "/volumes/ID/action", "os-begin_detaching", {"status_code": [202]}),
    ("POST", "/volumes/ID/action", "os-roll_detaching", {"status_code": [202]}),
    ("POST", "/attachments", None, _one_attachment([200])),
    ("GET", "/attachments", None, _attachment_list(ATTACHMENT_SUMMARY)),
    ("GET", "/attachments/detail", None, _attachment_list(ATTACHMENT_DETAIL)),
    ("GET", "/attachments/ID", None, _one_attachment([200])),
    ("PUT", "/attachments/ID", None, _one_attachment([200])),
    ("DELETE", "/attachments/ID", None, _attachment_list(ATTACHMENT_SUMMARY)),
    ("POST", "/attachments/ID/action", "os-complete", {"status_code": [204]}),
    ("POST", "/volumes/ID/action", "os-set_image_metadata",
     "volumes.update_volume_image_metadata"),
    ("POST", "/volumes/ID/action", "os-unset_image_metadata",
     "volumes.delete_volume_image_metadata"),
    ("POST", "/volumes/ID/action", "os-show_image_metadata",
     "volumes.show_volume_image_metadata"),
    ("POST", "/volumes/ID/action", "os-unmanage", "volumes.unmanage_volume"),
    # Tempest's clients check only the code of these (volumes_client.migrate_volume,
    # revert_to_snapshot; Cinder's reference: 202 and no body).
    ("POST", "/volumes/ID/action", "os-migrate_volume", {"status_code": [202]}),
    ("POST", "/volumes/ID/action", "revert", {"status_code": [202]}),
    ("POST", "/os-volume-manage", None, "manage_volume.manage_volume"),
    ("POST", "/manageable_volumes", None, "manage_volume.manage_volume"),
    ("GET", "/snapshots", None, "snapshots.list_snapshots_no_detail"),
    ("GET", "/snapshots/detail", None, "snapshots.list_snapshots_with_detail"),
    ("POST", "/snapshots", None, "snapshots.create_snapshot"),
    ("GET", "/snapshots/ID", None, "snapshots.show_snapshot"),
    ("PUT", "/snapshots/ID", None, "snapshots.update_snapshot"),
    ("DELETE", "/snapshots/ID", None, "snapshots.delete_snapshot"),
    ("POST", "/snapshots/ID/action", "os-reset_status", "snapshots.reset_snapshot_status"),
    ("POST", "/snapshots/ID/action", "os-update_snapshot_status",
     "snapshots.update_snapshot_status"),
    ("POST", "/snapshots/ID/action", "os-force_delete", "snapshots.force_delete_snapshot"),
    ("POST", "/snapshots/ID/action", "os-unmanage", "snapshots.unmanage_snapshot"),
    ("POST", "/snapshots/ID/metadata", None, "snapshots.create_snapshot_metadata"),
    ("GET", "/snapshots/ID/metadata", None, "snapshots.show_snapshot_metadata"),
    ("PUT", "/snapshots/ID/metadata", None, "snapshots.update_snapshot_metadata"),
    ("GET", "/snapshots/ID/metadata/ID", None, "snapshots.show_snapshot_metadata_item"),
    ("PUT", "/snapshots/ID/metadata/ID", None, "snapshots.update_snapshot_metadata_item"),
    ("DELETE", "/snapshots/ID/metadata/ID", None, "snapshots.delete_snapshot_metadata_item"),
    ("POST", "/os-snapshot-manage", None, "manage_snapshot.manage_snapshot"),
    ("POST", "/manageable_snapshots", None, "manage_snapshot.manage_snapshot"),
    ("GET", "/types", None, "volume_types.list_volume_types"),
    ("POST", "/types", None, "volume_types.create_volume_type"),
    ("GET", "/types/ID", None, "volume_types.show_volume_type"),
    ("PUT", "/types/ID", None, "volume_types.update_volume_types"),
    ("DELETE", "/types/ID", None, "volume_types.delete_volume_type"),
    ("GET", "/types/ID/extra_specs", None, "volume_types.list_volume_types_extra_specs"),
    ("POST", "/types/ID/extra_specs", None, "volume_types.create_volume_types_extra_specs"),
    ("GET", "/types/ID/extra_specs/ID", None, "volume_types.show_volume_types_extra_specs"),
    ("PUT", "/types/ID/extra_specs/ID", None, "volume_types.update_volume_type_extra_specs"),
    ("DELETE", "/types/ID/extra_specs/ID", None,
     "volume_types.delete_volume_types_extra_specs"),
    ("POST", "/types/ID/action", "addProjectAccess", "volume_types.add_type_access"),
    ("POST", "/types/ID/action", "removeProjectAccess", "volume_types.remove_type_access"),
    ("GET", "/types/ID/os-volume-type-access", None, "volume_types.list_type_access"),
    ("GET", "/os-quota-sets/ID", None, "quotas.show_quota_set"),
    ("GET", "/os-quota-sets/ID/defaults", None, "quotas.show_quota_set"),
    ("PUT", "/os-quota-sets/ID", None, "quotas.update_quota_set"),
    ("DELETE", "/os-quota-sets/ID", None, "quotas.delete_quota_set"),
    ("GET", "/os-quota-class-sets/ID", None, "quota_classes.show_quota_classes"),
    ("PUT", "/os-quota-class-sets/ID", None, "quota_classes.update_quota_classes"),
    ("GET", "/limits", None, "limits.show_limits"),
    ("GET", "/messages", None, "messages.list_messages"),
    ("GET", "/messages/ID", None, "messages.show_message"),
    ("DELETE", "/messages/ID", None, "messages.delete_message"),
    ("GET", "/scheduler-stats/get_pools", None, "scheduler_stats.get_pools_no_detail"),
    ("GET", "/os-services", None, "services.list_services"),
    ("PUT", "/os-services/enable", None, "services.enable_service"),
    ("PUT", "/os-services/disable", None, "services.disable_service"),
    ("PUT", "/os-services/disable-log-reason", None, "services.disable_log_reason"),
    ("PUT", "/os-services/freeze", None, "services.freeze_host"),
    ("PUT", "/os-services/thaw", None, "services.thaw_host"),
    # 3.32 log levels and 3.24 workers cleanup: no Tempest schema; Cinder's API reference
    # ("Log levels", "Workers")
    ("PUT", "/os-services/set-log", None, {"status_code": [202]}),
    ("PUT", "/os-services/get-log", None, {"status_code": [200], "response_body": {
        "type": "object", "additionalProperties": False, "required": ["log_levels"],
        "properties": {"log_levels": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["binary", "host", "levels"],
            "properties": {"binary": {"type": "string"}, "host": {"type": "string"},
                           "levels": {"type": "object",
                                      "additionalProperties": {"type": "string"}}}}}}}}),
    ("POST", "/workers/cleanup", None, {"status_code": [202], "response_body": {
        "type": "object", "additionalProperties": False,
        "required": ["cleaning", "unavailable"],
        "properties": {key: {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "host", "binary", "cluster_name"],
            "properties": {"id": {"type": "integer"}, "host": {"type": "string"},
                           "binary": {"type": "string"},
                           "cluster_name": {"type": ["string", "null"]}}}}
            for key in ("cleaning", "unavailable")}}}),
    ("GET", "/os-hosts", None, "hosts.list_hosts"),
    ("GET", "/os-hosts/ID", None, "hosts.show_host"),
    ("GET", "/capabilities/ID", None, "capabilities.show_backend_capabilities"),
    ("GET", "/extensions", None, "extensions.list_extensions"),
    ("GET", "/qos-specs", None, "qos.list_qos"),
    ("POST", "/qos-specs", None, "qos.show_qos"),
    ("GET", "/qos-specs/ID", None, "qos.show_qos"),
    ("PUT", "/qos-specs/ID", None, "qos.set_qos_key"),
    ("PUT", "/qos-specs/ID/delete_keys", None, "qos.unset_qos_key"),
    ("DELETE", "/qos-specs/ID", None, "qos.delete_qos"),
    ("GET", "/qos-specs/ID/associations", None, "qos.show_association_qos"),
    ("GET", "/qos-specs/ID/associate", None, "qos.associate_qos"),
    ("GET", "/qos-specs/ID/disassociate", None, "qos.disassociate_qos"),
    ("GET", "/qos-specs/ID/disassociate_all", None, "qos.disassociate_all_qos"),
    ("GET", "/types/ID/encryption", None, "encryption_types.show_encryption_type"),
    ("GET", "/types/ID/encryption/ID", None, "encryption_types.show_encryption_specs_item"),
    ("POST", "/types/ID/encryption", None, "encryption_types.create_encryption_type"),
    ("PUT", "/types/ID/encryption/ID", None, "encryption_types.update_encryption_type"),
    ("DELETE", "/types/ID/encryption/ID", None, "encryption_types.delete_encryption_type"),
    # a volume's encryption metadata: no Tempest schema, these are Cinder's reference and code
    # (the key id alone for an unencrypted volume; one item is its bare JSON value)
    ("GET", "/volumes/ID/encryption", None, {"status_code": [200], "response_body": {
        "type": "object",
        "properties": {"encryption_key_id": {"type": ["string", "null"]},
                       "control_location": {"enum": ["front-end", "back-end"]},
                       "cipher": {"type": ["string", "null"]},
                       "key_size": {"type": ["integer", "null"]},
                       "provider": {"type": "string"}},
        "required": ["encryption_key_id"], "additionalProperties": False}}),
    ("GET", "/volumes/ID/encryption/ID", None, {"status_code": [200], "response_body": {
        "type": ["string", "integer", "null"]}}),
    ("POST", "/os-volume-transfer", None, "transfers.create_volume_transfer"),
    ("GET", "/os-volume-transfer", None, "transfers.list_volume_transfers_no_detail"),
    ("GET", "/os-volume-transfer/detail", None, "transfers.list_volume_transfers_with_detail"),
    ("GET", "/os-volume-transfer/ID", None, "transfers.show_volume_transfer"),
    ("DELETE", "/os-volume-transfer/ID", None, "transfers.delete_volume_transfer"),
    ("POST", "/os-volume-transfer/ID/accept", None, "transfers.accept_volume_transfer"),
    ("POST", "/volume-transfers", None, "transfers.create_volume_transfer"),
    ("GET", "/volume-transfers", None, "transfers.list_volume_transfers_no_detail"),
    ("GET", "/volume-transfers/detail", None, "transfers.list_volume_transfers_with_detail"),
    ("GET", "/volume-transfers/ID", None, "transfers.show_volume_transfer"),
    ("DELETE", "/volume-transfers/ID", None, "transfers.delete_volume_transfer"),
    ("POST", "/volume-transfers/ID/accept", None, "transfers.accept_volume_transfer"),
    ("POST", "/group_types", None, "group_types.create_group_type"),
    ("GET", "/group_types", None, "group_types.list_group_types"),
    ("GET", "/group_types/default", None, "group_types.show_default_group_type"),
    ("GET", "/group_types/ID", None, "group_types.show_group_type"),
    ("PUT", "/group_types/ID", None, "group_types.update_group_type"),
    ("DELETE", "/group_types/ID", None, "group_types.delete_group_type"),
    ("POST", "/group_types/ID/group_specs", None,
     "group_types.create_or_update_group_type_specs"),
    ("GET", "/group_types/ID/group_specs", None, "group_types.list_group_type_specs"),
    ("GET", "/group_types/ID/group_specs/ID", None, "group_types.show_group_type_specs_item"),
    ("PUT", "/group_types/ID/group_specs/ID", None, "group_types.update_group_type_specs_item"),
    ("DELETE", "/group_types/ID/group_specs/ID", None,
     "group_types.delete_group_type_specs_item"),
    ("GET", "/groups", None, "groups.list_groups_no_detail"),
    ("GET", "/groups/detail", None, "groups.list_groups_with_detail"),
    ("POST", "/groups", None, "groups.create_group"),
    ("POST", "/groups/action", "create-from-src", "groups.create_group_from_source"),
    ("GET", "/groups/ID", None, "groups.show_group"),
    ("PUT", "/groups/ID", None, "groups.update_group"),
    ("POST", "/groups/ID/action", "delete", "groups.delete_group"),
    ("POST", "/groups/ID/action", "reset_status", "groups.reset_group_status"),
    ("GET", "/group_snapshots", None, "group_snapshots.list_group_snapshots_no_detail"),
    ("GET", "/group_snapshots/detail", None,
     "group_snapshots.list_group_snapshots_with_detail"),
    ("POST", "/group_snapshots", None, "group_snapshots.create_group_snapshot"),
    ("GET", "/group_snapshots/ID", None, "group_snapshots.show_group_snapshot"),
    ("DELETE", "/group_snapshots/ID", None, "group_snapshots.delete_group_snapshot"),
    ("POST", "/group_snapshots/ID/action", "reset_status",
     "group_snapshots.reset_group_snapshot_status"),
    # backups: /backups/detail and /backups/import_record before the /backups/ID patterns
    ("GET", "/backups", None, "backups.list_backups_no_detail"),
    ("GET", "/backups/detail", None, "backups.list_backups_with_detail"),
    ("POST", "/backups", None, "backups.create_backup"),
    ("POST", "/backups/import_record", None, "backups.import_backup"),
    ("GET", "/backups/ID", None, "backups.show_backup"),
    ("PUT", "/backups/ID", None, "backups.update_backup"),
    ("DELETE", "/backups/ID", None, "backups.delete_backup"),
    ("POST", "/backups/ID/restore", None, "backups.restore_backup"),
    ("GET", "/backups/ID/export_record", None, "backups.export_backup"),
    ("POST", "/backups/ID/action", "os-reset_status", "backups.reset_backup_status"),
    # Tempest's backups client has no force delete; Cinder's reference: 202, no body
    ("POST", "/backups/ID/action", "os-force_delete", {"status_code": [202]}),
]

# Lamina's routes that Tempest has no schema for, with why; their errors are still checked.
NO_SCHEMA = [
    ("GET", "/manageable_volumes", "no Tempest schema (Cinder's reference only)"),
    ("GET", "/manageable_volumes/detail", "no Tempest schema"),
    ("GET", "/manageable_snapshots", "no Tempest schema"),
    ("GET", "/manageable_snapshots/detail", "no Tempest schema"),
    ("GET", "/resource_filters", "no Tempest schema"),
    ("GET", "/os-volume-manage", "no Tempest schema (the manageable list before 3.8)"),
    ("GET", "/os-volume-manage/detail", "no Tempest schema"),
    ("GET", "/os-snapshot-manage", "no Tempest schema"),
    ("GET", "/os-snapshot-manage/detail", "no Tempest schema"),
    ("POST", "/volumes/ID/action", "no Tempest schema for this action"),
    ("POST", "/snapshots/ID/action", "no Tempest schema for this action"),
    ("POST", "/types/ID/action", "no Tempest schema for this action"),
    ("POST", "/groups/ID/action", "no Tempest schema for this action"),
    ("POST", "/groups/action", "no Tempest schema for this action"),
    ("POST", "/group_snapshots/ID/action", "no Tempest schema for this action"),
    ("POST", "/backups/ID/action", "no such backup action: refused with 400"),
    ("GET", "/os-quota-class-sets/ID/defaults", "no such Cinder route: must be 404"),
    ("GET", "/os-availability-zone", "Tempest's client checks no schema"),
    ("GET", "/extensions/ID", "no Tempest schema (an item as in extensions.list_extensions)"),
    ("GET", "/clusters", "no Tempest schema"),
    ("GET", "/clusters/detail", "no Tempest schema"),
    ("GET", "/clusters/ID", "no Tempest schema"),
    ("PUT", "/clusters/ID", "no Tempest schema"),
    ("GET", "/default-types", "no Tempest schema"),
    ("GET", "/default-types/ID", "no Tempest schema"),
    ("PUT", "/default-types/ID", "no Tempest schema"),
    ("DELETE", "/default-types/ID", "no Tempest schema"),
    ("GET", "/workers", "no Tempest schema"),
]

FAULT = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": {
        "type": "object",
        "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
        "required": ["code", "message"],
    },
}

class ContractViolation(AssertionError):
    pass


def _pattern(path):
    return re.compile("^" + re.escape(path).replace("ID", ID) + "/?$")


_COMPILED = [(m, _pattern(p), a, s) for m, p, a, s in ROUTES]
_NO_SCHEMA = [(m, _pattern(p)) for m, p, _ in NO_SCHEMA]
_TOP_LEVEL = {p.split("/")[1] for _, p, _, _ in ROUTES} | {p.split("/")[1]
                                                         for _, p, _ in NO_SCHEMA}
_seen = set()
_lock = threading.Lock()


def _parse_version(header):
    _, _, number = (header or "").partition(" ")
    major, _, minor = number.partition(".")
    return (int(major), int(minor)) if minor.isdigit() else (3, 0)


def _extend(schema, marker, key, key_schema):
    if isinstance(schema, dict):
        properties = schema.get("properties")
        if isinstance(properties, dict) and marker in properties:
            properties[key] = key_schema
        for value in schema.values():
            _extend(value, marker, key, key_schema)
    elif isinstance(schema, list):
        for value in schema:
            _extend(value, marker, key, key_schema)


def _schema(ref, version):
    if not isinstance(ref, str):
        return ref
    resource, _, name = ref.partition(".")
    module = resource
    for first, candidate in VERSIONED.get(resource, []):
        if version >= first:
            module = candidate
    schema = getattr(importlib.import_module("%s.%s" % (SCHEMAS, module)), name)
    added = [a for a in ADDED_KEYS if a[1] == resource and version >= a[0]]
    if added:
        schema = copy.deepcopy(schema)
        for _, _, marker, key, key_schema in added:
            _extend(schema, marker, key, key_schema)
    return schema


def resource_path(url):
    """The path under /v3/{project_id} (or /v2/...), or (method-less) version paths."""
    path = urllib.parse.urlsplit(url).path.rstrip("/") or "/"
    parts = path.split("/")
    if len(parts) < 3 or parts[1] not in ("v2", "v3"):
        return path
    if parts[2] in _TOP_LEVEL:  # project-less URL (3.67)
        return "/" + "/".join(parts[2:])
    return "/" + "/".join(parts[3:])


def find(method, path, action):
    for m, pattern, route_action, ref in _COMPILED:
        if m == method and pattern.match(path) and route_action in (None, action):
            return ref
    for m, pattern in _NO_SCHEMA:
        if m == method and pattern.match(path):
            return None
    raise ContractViolation("%s %s (action %s): a Lamina route in neither ROUTES nor NO_SCHEMA "
                            "of tests/contract.py" % (method, path, action))


def _action(request_body):
    if not request_body:
        return None
    try:
        body = json.loads(request_body)
    except (TypeError, ValueError):
        return None
    return next(iter(body)) if isinstance(body, dict) and len(body) == 1 else None


def check(method, url, request_body, status, headers, text):
    """Validate one response of Lamina's; raises ContractViolation."""
    version_header = headers.get("OpenStack-API-Version")
    if not version_header or not version_header.startswith("volume"):
        return  # not Lamina's volume API (Keystone, Ceph, a version document)
    body = json.loads(text) if text else None
    if status == 412 and not text:
        return  # a metadata ETag mismatch (3.15): Cinder answers it with no body
    if status >= 400:
        try:
            jsonschema.validate(body, FAULT)
        except jsonschema.ValidationError as exc:
            raise ContractViolation("%s %s answered %s with a body not shaped like Cinder's "
                                    "faults: %s" % (method, url, status, exc.message))
        return
    path = resource_path(url)
    version = _parse_version(version_header) if "/v3" in url else (3, 0)
    action = _action(request_body) if path.endswith("/action") else None
    ref = find(method, path, action)
    if ref is None:
        return
    if ref == "scheduler_stats.get_pools_no_detail" and "detail=true" in url.lower():
        ref = "scheduler_stats.get_pools_with_detail"
    if ref == "quotas.show_quota_set" and "usage=true" in url.lower():
        ref = "quotas.show_quota_set_usage"
    schema = _schema(ref, version)
    with _lock:
        _seen.add(ref if isinstance(ref, str) else "%s %s %s" % (method, path, action))
    where = "%s %s at %d.%d" % (method, url, version[0], version[1])
    if status not in schema["status_code"]:
        raise ContractViolation("%s answered %s; Cinder answers %s"
                                % (where, status, schema["status_code"]))
    body_schema = schema.get("response_body")
    if body_schema is None:
        if text:
            raise ContractViolation("%s: Cinder sends no body here; Lamina sent %s"
                                    % (where, text[:200]))
        return
    try:
        jsonschema.validate(body, body_schema, cls=jsonschema_validator.JSONSCHEMA_VALIDATOR,
                            format_checker=jsonschema_validator.FORMAT_CHECKER)
    except jsonschema.ValidationError as exc:
        raise ContractViolation("%s: body breaks Tempest's %s schema at %s: %s"
                                % (where, ref, "/".join(map(str, exc.absolute_path)),
                                   exc.message))


def seen():
    with _lock:
        return sorted(_seen)
