"""JSON renderings of resources, field for field as Cinder's API reference shows them."""

import functools
import json
import uuid

import flask

from api import microversion, policy
from common.db import attachments_api


def isotime(value):
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def _link_prefixes():
    """(versioned, bookmark) URL prefixes of this request's links, worked out once per
    request: a list renders a thousand of them."""
    prefixes = flask.g.get("link_prefixes")
    if prefixes is None:
        base = flask.request.host_url.rstrip("/")
        project = flask.request.view_args.get("project_id")
        path = base if project is None else "%s/%s" % (base, project)
        versioned = "%s/v%d" % (base, flask.g.api_major)
        prefixes = flask.g.link_prefixes = (
            versioned if project is None else "%s/%s" % (versioned, project), path)
    return prefixes


def _links(collection, ident):
    versioned, bookmark = _link_prefixes()
    return [{"rel": "self", "href": "%s/%s/%s" % (versioned, collection, ident)},
            {"rel": "bookmark", "href": "%s/%s/%s" % (bookmark, collection, ident)}]


def collection_links(collection, items, limit):
    """A `next` link when the page is full, carrying the marker and the query's other args."""
    if not items or limit is None or len(items) < limit:
        return []
    args = flask.request.args.to_dict(flat=True)
    args["marker"] = items[-1]["id"]
    args["limit"] = str(limit)
    query = "&".join("%s=%s" % (k, v) for k, v in args.items())
    base = flask.request.base_url
    return [{"rel": "next", "href": "%s?%s" % (base, query)}]


def volume_summary(volume):
    return {"id": volume.id, "name": volume.name, "links": _links("volumes", volume.id)}


def volume_detail(volume, ctx, extended=True):
    """A volume as show and list detail render it; `extended=False` for create and update,
    whose bodies Cinder renders without the os-vol-* extension attributes."""
    body = {
        "id": volume.id,
        "name": volume.name,
        "description": volume.description,
        "status": volume.status,
        "size": volume.size,
        "availability_zone": volume.availability_zone,
        "created_at": isotime(volume.created_at),
        "updated_at": isotime(volume.updated_at),
        "attachments": volume_attachments(volume),
        "bootable": "true" if volume.bootable else "false",
        "encrypted": volume_encrypted(volume),
        "links": _links("volumes", volume.id),
        "metadata": {m.key: m.value for m in volume.volume_metadata},
        "multiattach": bool(volume.multiattach),
        "replication_status": None,
        "snapshot_id": volume.snapshot_id,
        "source_volid": volume.source_volid,
        "consistencygroup_id": None,
        "user_id": volume.user_id,
        "volume_type": volume.volume_type.name if volume.volume_type is not None else None,
    }
    if extended:
        body["os-vol-tenant-attr:tenant_id"] = volume.project_id
    if ctx.is_admin:
        body["migration_status"] = volume.migration_status
        if extended:
            body["os-vol-host-attr:host"] = volume.host
            body["os-vol-mig-status-attr:migstat"] = volume.migration_status
            body["os-vol-mig-status-attr:name_id"] = None
        if microversion.at_least((3, 21)):
            body["provider_id"] = None  # no Lamina driver keeps a back-end id apart
    if microversion.at_least((3, 13)):
        body["group_id"] = volume.group_id
    _add_later_volume_fields(body, volume, ctx)
    _add_action_fields(body, volume, image_metadata=extended)
    return body


def volume_attachments(volume):
    """The volume's attached attachments as Cinder lists them in a volume (those still
    being made or unmade are not shown)."""
    if volume.attach_status != "attached":
        return []
    return [{"server_id": a.instance_uuid, "attachment_id": a.id,
             "attached_at": isotime(a.attach_time), "host_name": a.attached_host,
             "volume_id": volume.id, "device": a.mountpoint, "id": volume.id}
            for a in attachments_api.attachments_of_volume(volume.id, statuses=("attached",))]


def attachment_summary(attachment):
    return {"id": attachment.id, "status": attachment.attach_status,
            "instance": attachment.instance_uuid, "volume_id": attachment.volume_id}


def attachment_detail(attachment):
    body = attachment_summary(attachment)
    body.update(attached_at=isotime(attachment.attach_time),
                detached_at=isotime(attachment.detach_time),
                attach_mode=attachment.attach_mode,
                connection_info=attachments_api.connection_info_of(attachment))
    return body


@functools.lru_cache(maxsize=1024)
def service_uuid(volume_host):
    """The uuid of the volume service (host@backend) that owns a volume placed on
    host@backend#pool, or None. The services table keeps no uuid column: it is derived from
    the row's unique (host, binary), so every api process computes the same one."""
    if not volume_host:
        return None
    return str(uuid.uuid5(uuid.NAMESPACE_URL,
                          "lamina-service:%s/lamina-volume" % volume_host.split("#")[0]))


def _add_later_volume_fields(body, volume, ctx):
    """The keys microversions after 3.42 add, as Cinder's v3 volume view adds them."""
    if microversion.at_least((3, 48)):
        # No Lamina back end shares iSCSI targets between volumes (one tgt target per
        # attachment; rbd exports nothing); 3.69 allows null, which Lamina never needs.
        body["shared_targets"] = False
        body["service_uuid"] = service_uuid(volume.host)
    if ctx.is_admin and microversion.at_least((3, 61)):
        body["cluster_name"] = None  # clustered volume services do not exist
    if microversion.at_least((3, 63)):
        body["volume_type_id"] = volume.volume_type_id
    # 3.64 encryption_key_id: Cinder sends it only when a key is set; Lamina stores none.
    if microversion.at_least((3, 65)):
        body["consumes_quota"] = True  # no temporary (quota-less) volume is ever listed


# Admin metadata keys shown among a volume's metadata (Cinder's add_visible_admin_metadata).
VISIBLE_ADMIN_METADATA = ("readonly", "attached_mode")


def _add_action_fields(body, volume, image_metadata=True):
    """What the volume actions store beside the row: `readonly` (os-update_readonly_flag)
    shown in metadata, and the image metadata as `volume_image_metadata` (only when the
    volume has some, and only in show and detail bodies: Cinder's image metadata extension
    extends those, not the create and update answers)."""
    from common.db import volume_actions_api

    for item in volume.volume_admin_metadata:
        if item.key in VISIBLE_ADMIN_METADATA:
            body["metadata"][item.key] = item.value
    if not image_metadata:
        return
    if not hasattr(flask.g, "any_image_metadata"):
        # One cheap query per request spares a query per volume when (as usual) no volume
        # has image metadata.
        flask.g.any_image_metadata = volume_actions_api.glance_metadata_exists()
    if flask.g.any_image_metadata:
        image_metadata = volume_actions_api.glance_metadata_get(volume.id)
        if image_metadata:
            body["volume_image_metadata"] = image_metadata


def volume_type(vtype, ctx, rendering="show"):
    """A type as show and list render it; Cinder's create body has no qos_specs_id
    (`rendering="create"`), its update body neither that nor the type-access key ("update")."""
    body = {
        "id": vtype.id,
        "name": vtype.name,
        "description": vtype.description,
        "is_public": bool(vtype.is_public),
    }
    if rendering != "update":
        body["os-volume-type-access:is_public"] = bool(vtype.is_public)
    if rendering == "show" and policy.check(ctx, "volume_extension:access_types_qos_specs_id"):
        body["qos_specs_id"] = vtype.qos_specs_id
    # Extra specs can name back ends; members see only the ones users choose by.
    specs = {e.key: e.value for e in vtype.extra_specs}
    if not ctx.is_admin:
        specs = {k: v for k, v in specs.items() if k in USER_VISIBLE_EXTRA_SPECS}
    body["extra_specs"] = specs
    return body


USER_VISIBLE_EXTRA_SPECS = ("multiattach", "RESKEY:availability_zones", "replication_enabled")


def service(row, state, backend_states=None):
    """One os-services entry, under Cinder's binary name (common/service.py maps them);
    `backend_states` ({host@backend: state}, from 3.49) adds a volume service's
    `backend_state`."""
    from common import service as common_service

    binary = common_service.cinder_binary(row.binary)
    body = {
        "binary": binary,
        "host": row.host,
        "zone": row.availability_zone,
        "status": "disabled" if row.disabled else "enabled",
        "state": state,
        "updated_at": isotime(row.heartbeat_at),
        "disabled_reason": row.disabled_reason,
    }
    if binary == "cinder-volume":
        # Cinder's replication fields of a volume service: Lamina replicates nothing;
        # `frozen` is set by PUT os-services/freeze and cleared by thaw.
        body.update(replication_status="disabled", active_backend_id=None,
                    frozen=bool(row.frozen))
        if backend_states is not None:
            body["backend_state"] = backend_states.get(row.host, "down")
    if microversion.at_least((3, 7)):
        body["cluster"] = None  # no clustered services (/clusters is empty)
    return body


def message(msg):
    return {
        "id": msg.id,
        "event_id": msg.event_id,
        "user_message": msg.detail,
        "message_level": msg.message_level,
        "resource_type": msg.resource_type,
        "resource_uuid": msg.resource_uuid,
        "request_id": msg.request_id,
        "created_at": isotime(msg.created_at),
        "guaranteed_until": isotime(msg.expires_at),
        "links": _links("messages", msg.id),
    }


def pool(row, detail):
    body = {"name": row.name}
    if detail:
        caps = json.loads(row.capabilities or "{}")
        caps.update(total_capacity_gb=row.total_capacity_gb,
                    free_capacity_gb=row.free_capacity_gb,
                    allocated_capacity_gb=row.allocated_capacity_gb,
                    provisioned_capacity_gb=row.allocated_capacity_gb,
                    timestamp=isotime(row.reported_at))
        body["capabilities"] = caps
    return body


def snapshot(snap, ctx, detail=True):
    """`detail=False` for the plain list and the create and update bodies, which Cinder
    renders without the os-extended-snapshot-attributes."""
    body = {
        "id": snap.id,
        "name": snap.name,
        "description": snap.description,
        "status": snap.status,
        "size": snap.volume_size,
        "volume_id": snap.volume_id,
        "created_at": isotime(snap.created_at),
        "updated_at": isotime(snap.updated_at),
        "metadata": {m.key: m.value for m in snap.snapshot_metadata},
    }
    if detail:
        body["os-extended-snapshot-attributes:progress"] = snap.progress
        body["os-extended-snapshot-attributes:project_id"] = snap.project_id
        if microversion.at_least((3, 41)):
            body["user_id"] = snap.user_id
        if microversion.at_least((3, 65)):
            body["consumes_quota"] = True  # no temporary snapshot is ever listed
        if microversion.at_least((3, 14)):
            body["group_snapshot_id"] = snap.group_snapshot_id
    return body


# --- backups (api/routes/backups.py) ---------------------------------------------------------
# Cinder's v3 backup views: the summary (id, links, name) in the plain list and the create,
# update and import bodies; the detail in show and list detail, growing with 3.43 (metadata),
# 3.18 and 3.56 (project and user, for whom backup:backup_project_attribute allows: admins)
# and 3.64 (encryption_key_id, only when the backup has a key).

def backup_summary(backup):
    return {"id": backup.id, "name": backup.name, "links": _links("backups", backup.id)}


def backup_detail(backup, ctx):
    body = {
        "id": backup.id,
        "name": backup.name,
        "description": backup.description,
        "status": backup.status,
        "size": backup.size,
        "object_count": backup.object_count or 0,
        "container": backup.container,
        "availability_zone": backup.availability_zone,
        "created_at": isotime(backup.created_at),
        "updated_at": isotime(backup.updated_at),
        "fail_reason": backup.fail_reason,
        "volume_id": backup.volume_id,
        "links": _links("backups", backup.id),
        "is_incremental": bool(backup.is_incremental),
        "has_dependent_backups": (backup.num_dependent_backups or 0) > 0,
        "snapshot_id": backup.snapshot_id,
        "data_timestamp": isotime(backup.data_timestamp),
    }
    if microversion.at_least((3, 43)):
        body["metadata"] = {m.key: m.value for m in backup.backup_metadata}
    if microversion.at_least((3, 18)) and policy.check(ctx, "backup:backup_project_attribute",
                                                       backup):
        body["os-backup-project-attr:project_id"] = backup.project_id
        if microversion.at_least((3, 56)):
            body["user_id"] = backup.user_id
    if microversion.at_least((3, 64)) and backup.encryption_key_id:
        body["encryption_key_id"] = backup.encryption_key_id
    return body


def backup_restore(backup_id, volume):
    return {"backup_id": backup_id, "volume_id": volume.id, "volume_name": volume.name}


# --- volume transfers (api/routes/transfers.py) ----------------------------------------------
# Cinder's links name os-volume-transfer on both paths; the detail fields grow with 3.55
# (no_snapshots) and 3.57 (where the transfer came from and went, whether it was accepted).

def transfer_summary(transfer):
    return {"id": transfer.id, "volume_id": transfer.volume_id, "name": transfer.name,
            "links": _links("os-volume-transfer", transfer.id)}


def transfer_detail(transfer):
    body = {"id": transfer.id, "created_at": isotime(transfer.created_at),
            "name": transfer.name, "volume_id": transfer.volume_id,
            "links": _links("os-volume-transfer", transfer.id)}
    if microversion.at_least((3, 55)):
        body["no_snapshots"] = bool(transfer.no_snapshots)
    if microversion.at_least((3, 57)):
        body["destination_project_id"] = transfer.destination_project_id
        body["source_project_id"] = transfer.source_project_id
        body["accepted"] = bool(transfer.accepted)
    return body


def transfer_created(transfer, auth_key):
    """The create response: the only one that carries the auth key."""
    return dict(transfer_detail(transfer), auth_key=auth_key)


# --- os-hosts, capabilities, availability zones, extensions (Cinder's extensions' views) ---

def host(row, state):
    """One os-hosts entry: a service, under its topic's Cinder name, as Cinder's hosts
    extension lists it."""
    from common import service as common_service

    return {
        "host_name": row.host,
        "service": common_service.cinder_binary(row.topic),
        "zone": row.availability_zone,
        "service-status": "available" if state == "up" else "unavailable",
        "service-state": "disabled" if row.disabled else "enabled",
        "last-update": isotime(row.heartbeat_at),
    }


def host_resource(host_name, project, counts):
    """One `resource` of GET /os-hosts/{host}: Cinder sends every figure as a string."""
    volume_count, volume_gb, snapshot_count, snapshot_gb = counts
    return {"resource": {"host": host_name, "project": project,
                         "volume_count": str(volume_count), "total_volume_gb": str(volume_gb),
                         "snapshot_count": str(snapshot_count),
                         "total_snapshot_gb": str(snapshot_gb)}}


# Cinder's standard capabilities (its driver base class lists them for every back end):
# the extra specs a volume type may set, with their titles and types.
STANDARD_CAPABILITIES = {
    "thin_provisioning": {"title": "Thin Provisioning", "description": "Sets thin provisioning.",
                          "type": "boolean"},
    "compression": {"title": "Compression", "description": "Enables compression.",
                    "type": "boolean"},
    "qos": {"title": "QoS", "description": "Enables QoS.", "type": "boolean"},
    "replication_enabled": {"title": "Replication", "description": "Enables replication.",
                            "type": "boolean"},
}


def capabilities(backend, report):
    """GET /capabilities/{host@backend}: the back end's reported capabilities (`report`, the
    dict its volume service stored with its pools), in Cinder's summary shape."""
    protocol = report.get("storage_protocol")
    if isinstance(protocol, list):
        protocol = protocol[0] if protocol else None
    return {
        "namespace": "OS::Storage::Capabilities::%s" % backend,
        "vendor_name": report.get("vendor_name"),
        "volume_backend_name": report.get("volume_backend_name"),
        # A back end with pools has no pool name of its own (Cinder's multi-pool drivers).
        "pool_name": None,
        "driver_version": report.get("driver_version"),
        "storage_protocol": protocol,
        "display_name": report.get("display_name"),
        "description": report.get("description"),
        "visibility": report.get("visibility"),
        "replication_targets": report.get("replication_targets", []),
        "properties": dict(STANDARD_CAPABILITIES),
    }


def availability_zone(name, available):
    return {"zoneName": name, "zoneState": {"available": available}}


def extension(ext):
    return {"name": ext["name"], "alias": ext["alias"], "description": ext["description"],
            "updated": ext["updated"], "links": []}


# --- QoS specs, type encryption, default types (api/routes/qos_specs.py, encryption_types.py,
# default_types.py) ----------------------------------------------------------------------------

def qos_specs(row):
    return {"id": row.id, "name": row.name, "consumer": row.consumer,
            "specs": {k.key: k.value for k in row.keys}}


def qos_specs_detail(row):
    return {"qos_specs": qos_specs(row), "links": _links("qos-specs", row.id)}


def qos_association(vtype):
    return {"association_type": "volume_type", "name": vtype.name, "id": vtype.id}


def volume_encrypted(volume):
    """A volume is encrypted when its type has encryption specs (metadata only: Lamina
    encrypts no data). The specs cannot change while the type has volumes, so this is what
    it was when the volume was created."""
    return volume.volume_type is not None and volume.volume_type.encryption is not None


ENCRYPTION_FIELDS = ("provider", "cipher", "key_size", "control_location")


def encryption_show(row):
    """GET /types/{id}/encryption: every column of Cinder's row; {} when none."""
    if row is None:
        return {}
    body = {key: getattr(row, key) for key in ENCRYPTION_FIELDS}
    body.update(volume_type_id=row.volume_type_id, encryption_id=row.encryption_id,
                created_at=isotime(row.created_at), updated_at=isotime(row.updated_at),
                deleted=False, deleted_at=None)
    return body


def encryption_written(row, given, ids=False):
    """Create and update answer the keys the request gave (as stored), create also the ids."""
    body = {key: getattr(row, key) for key in ENCRYPTION_FIELDS if key in given}
    if ids:
        body.update(volume_type_id=row.volume_type_id, encryption_id=row.encryption_id)
    return {"encryption": body}


def default_type(row):
    return {"project_id": row.project_id, "volume_type_id": row.volume_type_id}


# --- generic volume groups (api/routes/group_types.py, groups.py, group_snapshots.py) ---------

def group_type(gtype, ctx):
    body = {"id": gtype.id, "name": gtype.name, "description": gtype.description,
            "is_public": bool(gtype.is_public)}
    if policy.check(ctx, "group:access_group_types_specs"):
        body["group_specs"] = {spec.key: spec.value for spec in gtype.group_specs}
    return body


def group_summary(group):
    return {"id": group.id, "name": group.name}


def group_detail(group):
    body = {
        "id": group.id, "name": group.name, "description": group.description,
        "status": group.status, "availability_zone": group.availability_zone,
        "created_at": isotime(group.created_at), "group_type": group.group_type_id,
        "volume_types": [m.volume_type_id for m in group.volume_types],
    }
    if microversion.at_least((3, 14)):
        body["group_snapshot_id"] = group.group_snapshot_id
        body["source_group_id"] = group.source_group_id
    if microversion.at_least((3, 38)):
        body["replication_status"] = "disabled"  # no Lamina driver replicates groups
    if microversion.at_least((3, 58)):
        body["project_id"] = group.project_id
    return body


def group_snapshot_summary(gs):
    return {"id": gs.id, "name": gs.name}


def group_snapshot_created(gs):
    return {"id": gs.id, "name": gs.name, "group_type_id": gs.group_type_id}


def group_snapshot_detail(gs):
    body = {"id": gs.id, "name": gs.name, "description": gs.description,
            "status": gs.status, "created_at": isotime(gs.created_at),
            "group_id": gs.group_id, "group_type_id": gs.group_type_id}
    if microversion.at_least((3, 58)):
        body["project_id"] = gs.project_id
    return body
