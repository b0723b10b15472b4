"""Notifications as Cinder emits them, through oslo.messaging's Notifier.

Off by default: `[oslo_messaging_notifications] driver = messagingv2` (oslo.messaging's own
options, `topics` default `notifications`) turns them on, on the RPC transport unless
`[oslo_messaging_notifications] transport_url` names another (common/rpc.py).

Event types and payloads follow Cinder's: `volume.<action>.start|end|error` with the volume
usage payload, `snapshot.<action>.*` and `backup.<action>.*` with theirs; publisher_id
`volume.<host>` (`snapshot.`, `backup.`), priority INFO, ERROR for `.error`. The volume and
backup services' flows emit them around each run (run_flow in
volume_worker/flows/common.py and backup_worker/flows/common.py, through flow_notifications
below): `.start` before the first task, `.end` once the flow completed, `.error` when it
failed (after its reverts, so the payload shows the failed status). A notification that
cannot be built or sent never fails the operation: it is logged."""

import contextlib
import datetime
import logging
import threading

import oslo_messaging as messaging
from oslo_config import cfg
from sqlalchemy import select

from common import context as lamina_context
from common import rpc
from common.db import models
from common.db.session import reader

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

_lock = threading.Lock()
_notifier = None
_built = False

# Each flow's notifications: flow name -> (resource kind, Cinder's action, the store key
# naming the resource). Cinder calls an extend a resize; attach_volume's store names the
# attachment, whose volume the payload describes.
FLOW_EVENTS = {
    "create_volume": ("volume", "create", "volume_id"),
    "delete_volume": ("volume", "delete", "volume_id"),
    "extend_volume": ("volume", "resize", "volume_id"),
    "attach_volume": ("volume", "attach", "attachment_id"),
    "detach_volume": ("volume", "detach", "volume_id"),
    "manage_existing": ("volume", "manage_existing", "volume_id"),
    "unmanage_volume": ("volume", "unmanage", "volume_id"),
    "revert_to_snapshot": ("volume", "revert", "volume_id"),
    "reimage_volume": ("volume", "reimage", "volume_id"),
    "create_snapshot": ("snapshot", "create", "snapshot_id"),
    "delete_snapshot": ("snapshot", "delete", "snapshot_id"),
    "manage_existing_snapshot": ("snapshot", "manage_existing", "snapshot_id"),
    "unmanage_snapshot": ("snapshot", "unmanage", "snapshot_id"),
    "create_backup": ("backup", "create", "backup_id"),
    "delete_backup": ("backup", "delete", "backup_id"),
    "restore_backup": ("backup", "restore", "backup_id"),
}


def register_opts():
    """oslo.messaging registers its [oslo_messaging_notifications] options only when a
    notification transport or Notifier is made; reading `driver` first needs them."""
    from oslo_messaging import opts as messaging_opts

    for group, opts in messaging_opts.list_opts():
        if group == "oslo_messaging_notifications":
            CONF.register_opts(opts, group=group)


def get_notifier():
    """This process's Notifier (built once), or None when notifications are off (no driver,
    or only `noop`)."""
    global _notifier, _built
    with _lock:
        if not _built:
            register_opts()
            drivers = [d for d in CONF.oslo_messaging_notifications.driver if d != "noop"]
            if drivers:
                _notifier = messaging.Notifier(rpc.get_notification_transport(),
                                               serializer=rpc.ContextSerializer())
                LOG.info("Notifications on: driver %s, topics %s", ",".join(drivers),
                         ",".join(CONF.oslo_messaging_notifications.topics))
            _built = True
        return _notifier


def reset():
    """Forget the Notifier (tests that change the configuration; a service's shutdown)."""
    global _notifier, _built
    with _lock:
        _notifier, _built = None, False


def enabled():
    return get_notifier() is not None


# --- payloads (Cinder's usage payloads; times in ISO 8601) -----------------------------------

def _iso(value):
    return value.isoformat() if isinstance(value, datetime.datetime) else value


def _row(session, model, row_or_id):
    ident = row_or_id if isinstance(row_or_id, str) else row_or_id.id
    return session.get(model, ident)


def _attachment_payload(attachment):
    return {"id": attachment.id, "volume_id": attachment.volume_id,
            "instance_uuid": attachment.instance_uuid, "attached_host": attachment.attached_host,
            "mountpoint": attachment.mountpoint, "attach_status": attachment.attach_status,
            "attach_mode": attachment.attach_mode, "attach_time": _iso(attachment.attach_time),
            "detach_time": _iso(attachment.detach_time)}


def volume_usage(volume_id, **extra):
    """Cinder's volume usage payload, read from the volume's row now (deleted rows too)."""
    with reader() as s:
        volume = _row(s, models.Volume, volume_id)
        if volume is None:
            return None
        now = models.utcnow()
        attachments = s.scalars(select(models.VolumeAttachment).where(
            models.VolumeAttachment.volume_id == volume.id,
            models.VolumeAttachment.deleted.is_(False))).all()
        payload = {
            "tenant_id": volume.project_id,
            "host": volume.host,
            "user_id": volume.user_id,
            "availability_zone": volume.availability_zone,
            "volume_id": volume.id,
            "volume_type": volume.volume_type_id,
            "display_name": volume.name,
            "launched_at": _iso(volume.launched_at or now),
            "created_at": _iso(volume.created_at or now),
            "status": "deleted" if volume.deleted else volume.status,
            "snapshot_id": volume.snapshot_id,
            "size": volume.size,
            # no Lamina back end replicates: Cinder's values for a volume that is not
            "replication_status": "disabled",
            "replication_extended_status": None,
            "replication_driver_data": None,
            "metadata": {m.key: m.value for m in volume.volume_metadata},
            "volume_attachment": [_attachment_payload(a) for a in attachments],
        }
        glance = s.scalars(select(models.VolumeGlanceMetadata).where(
            models.VolumeGlanceMetadata.volume_id == volume.id)).all()
        if glance:
            payload["glance_metadata"] = {g.key: g.value for g in glance}
    payload.update(extra)
    return payload


def snapshot_usage(snapshot_id, **extra):
    """Cinder's snapshot usage payload (the volume's zone read even if it is deleted)."""
    with reader() as s:
        snapshot = _row(s, models.Snapshot, snapshot_id)
        if snapshot is None:
            return None
        volume = s.get(models.Volume, snapshot.volume_id)
        payload = {
            "tenant_id": snapshot.project_id,
            "user_id": snapshot.user_id,
            "availability_zone": volume.availability_zone if volume is not None else None,
            "volume_id": snapshot.volume_id,
            "volume_size": snapshot.volume_size,
            "snapshot_id": snapshot.id,
            "display_name": snapshot.name,
            "created_at": _iso(snapshot.created_at),
            "status": "deleted" if snapshot.deleted else snapshot.status,
            # Cinder sends these two as strings
            "deleted": str(bool(snapshot.deleted)),
            "metadata": str({m.key: m.value for m in snapshot.snapshot_metadata}),
        }
    payload.update(extra)
    return payload


def backup_usage(backup_id, **extra):
    """Cinder's backup usage payload."""
    with reader() as s:
        backup = _row(s, models.Backup, backup_id)
        if backup is None:
            return None
        payload = {
            "tenant_id": backup.project_id,
            "user_id": backup.user_id,
            "availability_zone": backup.availability_zone,
            "backup_id": backup.id,
            "host": backup.host,
            "display_name": backup.name,
            "created_at": _iso(backup.created_at),
            "status": "deleted" if backup.deleted else backup.status,
            "volume_id": backup.volume_id,
            "size": backup.size,
            "service_metadata": backup.service_metadata,
            "service": backup.service,
            "fail_reason": backup.fail_reason,
            "parent_id": backup.parent_id,
            "num_dependent_backups": backup.num_dependent_backups,
            "snapshot_id": backup.snapshot_id,
        }
    payload.update(extra)
    return payload


_USAGE = {"volume": volume_usage, "snapshot": snapshot_usage, "backup": backup_usage}


# --- emitting ----------------------------------------------------------------------------

def _notify(ctxt, kind, resource, event_suffix, host, extra):
    """Send `<kind>.<event_suffix>` about the resource (row or id). Never raises."""
    try:
        notifier = get_notifier()
        if notifier is None:
            return False
        payload = _USAGE[kind](resource, **(extra or {}))
        if payload is None:
            LOG.debug("No %s %s to notify %s about", kind, resource, event_suffix)
            return False
        if ctxt is None:
            ctxt = lamina_context.get_admin_context()
        publisher = notifier.prepare(publisher_id="%s.%s" % (kind, host or CONF.host))
        event_type = "%s.%s" % (kind, event_suffix)
        if event_suffix.endswith(".error"):
            publisher.error(ctxt, event_type, payload)
        else:
            publisher.info(ctxt, event_type, payload)
        return True
    except Exception:  # a lost notification must not fail (or mask) the operation
        LOG.exception("Could not send notification %s.%s for %s", kind, event_suffix,
                      getattr(resource, "id", resource))
        return False


def notify_volume(ctxt, volume, event_suffix, host=None, extra=None):
    """volume.<event_suffix> (e.g. `create.start`) from the volume service on `host`."""
    return _notify(ctxt, "volume", volume, event_suffix, host, extra)


def notify_snapshot(ctxt, snapshot, event_suffix, host=None, extra=None):
    return _notify(ctxt, "snapshot", snapshot, event_suffix, host, extra)


def notify_backup(ctxt, backup, event_suffix, host=None, extra=None):
    return _notify(ctxt, "backup", backup, event_suffix, host, extra)


def _flow_resource(kind, key, store):
    ident = store.get(key)
    if key == "attachment_id" and ident:
        with reader() as s:
            attachment = s.get(models.VolumeAttachment, ident)
            return attachment.volume_id if attachment is not None else None
    return ident


@contextlib.contextmanager
def flow_notifications(flow_name, store):
    """`.start` now, `.end` when the block completes, `.error` when it raises (re-raised).
    Flows with no notifications in FLOW_EVENTS pass through; so does everything while
    notifications are off. A migration that changes the type ends with `volume.retype`."""
    events = FLOW_EVENTS.get(flow_name)
    if flow_name == "migrate_volume" and store.get("new_type_id"):
        events = ("volume", "retype", "volume_id")
    if events is None or not enabled():
        yield
        return
    kind, action, key = events
    ctxt, host = store.get("ctxt"), store.get("host")
    try:
        resource = _flow_resource(kind, key, store)
    except Exception:
        LOG.exception("Could not find the %s of flow %s to notify about", kind, flow_name)
        resource = None
    single = action == "retype"  # Cinder sends one retype notification, at the end
    if resource is not None and not single:
        _notify(ctxt, kind, resource, action + ".start", host, None)
    try:
        yield
    except Exception:
        if resource is not None and not single:
            _notify(ctxt, kind, resource, action + ".error", host, None)
        raise
    if resource is not None:
        _notify(ctxt, kind, resource, action if single else action + ".end", host, None)


def run_flow(flow, store):
    """common/flows.py's run_flow with the flow's notifications around it: what the volume
    and backup services' flows/common.py give their flows."""
    from common import flows

    with flow_notifications(flow.name, store):
        return flows.run_flow(flow, store)
