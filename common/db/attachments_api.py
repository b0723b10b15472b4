"""Attachments: the states of a volume attachment and of its volume, in one place.

An attachment (Cinder's volume_attachment) goes

    reserved --(connector: the volume service exports)--> attaching --(complete)--> attached
        any of them --(delete: the export removed)--> deleted

and its volume follows: `available` (or `in-use` for a multiattach volume) -> `reserved` when
an attachment is made, `attaching` once a connector is exported, `in-use` and attach_status
`attached` once complete; when an attachment goes, the volume is `in-use` while another
attachment is attached, `reserved` while one is still being made, else `available` and
`detached`. The legacy actions of seed 004 move the volume the same way (os-reserve:
`attaching`; os-begin_detaching: `detaching`; os-roll_detaching and os-unreserve back).

Every change is one transaction that locks the volume's row first, so two requests never
both take a volume that can be attached once, and the volume's status always agrees with its
attachments. A failed attach ends in `attachment_fail`: the attachment gone and the volume as
its other attachments say (the volume service has already removed what it exported)."""

import json

from sqlalchemy import false, select, update

from common import exception
from common.db import models
from common.db.api import new_id, paginate, volume_get_locked
from common.db.models import utcnow
from common.db.session import reader, writer

RESERVED, ATTACHING, ATTACHED = "reserved", "attaching", "attached"
DETACHING, DETACHED = "detaching", "detached"
ERROR_ATTACHING = "error_attaching"
LIVE = (RESERVED, ATTACHING, ATTACHED, DETACHING, ERROR_ATTACHING)

# Volume statuses from which an attachment may be made.
RESERVABLE = ("available",)
RESERVABLE_MULTIATTACH = ("available", "in-use", "reserved", "attaching")
# Statuses an attached (or being attached) volume may be in; detaching leaves them.
ATTACHED_STATUSES = ("reserved", "attaching", "in-use", "detaching")

SORT_KEYS = ("created_at", "updated_at", "id", "volume_id", "instance_uuid", "attach_status")
FILTERS = {"volume_id": "volume_id", "instance_id": "instance_uuid",
           "instance_uuid": "instance_uuid", "status": "attach_status",
           "attach_status": "attach_status", "attach_mode": "attach_mode"}


def connector_of(attachment):
    return json.loads(attachment.connector) if attachment.connector else None


def connection_info_of(attachment):
    return json.loads(attachment.connection_info) if attachment.connection_info else None


def _live(stmt):
    return stmt.where(models.VolumeAttachment.deleted == false())


def attachment_get(ctx, attachment_id):
    """The attachment if the caller's project may see it (admins: any)."""
    with reader() as s:
        stmt = _live(select(models.VolumeAttachment).where(
            models.VolumeAttachment.id == attachment_id))
        if not ctx.is_admin:
            stmt = stmt.where(models.VolumeAttachment.project_id == ctx.project_id)
        attachment = s.scalars(stmt).first()
    if attachment is None:
        raise exception.VolumeAttachmentNotFound(attachment_id=attachment_id)
    return attachment


def _live_attachment(session, attachment_id):
    return session.scalars(_live(select(models.VolumeAttachment).where(
        models.VolumeAttachment.id == attachment_id))).first()


def attachment_get_internal(attachment_id):
    with reader() as s:
        return _live_attachment(s, attachment_id)


def attachment_get_all(ctx, filters=None, all_projects=False, marker=None, limit=None,
                       sort_keys=("created_at",), sort_dirs=("desc",)):
    model = models.VolumeAttachment
    with reader() as s:
        stmt = _live(select(model))
        if not (all_projects and ctx.is_admin):
            stmt = stmt.where(model.project_id == ctx.project_id)
        for key, value in (filters or {}).items():
            stmt = stmt.where(getattr(model, FILTERS[key]) == value)
        marker_row = None
        if marker is not None:
            marker_row = s.scalars(_live(select(model).where(model.id == marker))).first()
            if marker_row is None:
                raise exception.MarkerNotFound(marker=marker)
        stmt = paginate(stmt, model, sort_keys, sort_dirs, marker_row, limit)
        return list(s.scalars(stmt))


def attachments_of_volume(volume_id, statuses=LIVE, session=None):
    stmt = _live(select(models.VolumeAttachment).where(
        models.VolumeAttachment.volume_id == volume_id,
        models.VolumeAttachment.attach_status.in_(statuses))
    ).order_by(models.VolumeAttachment.created_at)
    if session is not None:
        return list(session.scalars(stmt))
    with reader() as s:
        return list(s.scalars(stmt))


def attachments_on_host(host):
    """Live attachments with an export, of volumes on host@backend (to restore exports)."""
    with reader() as s:
        stmt = _live(select(models.VolumeAttachment, models.Volume)
                     .join(models.Volume, models.Volume.id == models.VolumeAttachment.volume_id)
                     .where(models.VolumeAttachment.connection_info.is_not(None),
                            models.Volume.deleted == false(),
                            (models.Volume.host == host)
                            | models.Volume.host.like(host + "#%")))
        return [(attachment, volume) for attachment, volume in s.execute(stmt)]


def live_attachment_ids(attachment_ids):
    """Which of these attachments are still live (any host)."""
    ids = list(attachment_ids)
    if not ids:
        return set()
    with reader() as s:
        return set(s.scalars(_live(select(models.VolumeAttachment.id).where(
            models.VolumeAttachment.id.in_(ids)))))


def _volume_for_change(session, volume_id):
    volume = volume_get_locked(session, volume_id)
    if volume is None:
        raise exception.VolumeNotFound(volume_id=volume_id)
    return volume


def _status_list(statuses):
    return " or ".join(statuses)


def attachment_reserve(ctx, volume_id, instance_uuid, mode="null", project_only=True):
    """Make a `reserved` attachment; the volume goes `reserved`.

    A volume that is not multiattach takes one attachment: it must be `available`, unless
    the instance asking already holds an attachment of it (Nova retrying its own attach)."""
    with writer() as s:
        volume = _volume_for_change(s, volume_id)
        if project_only and not ctx.is_admin and volume.project_id != ctx.project_id:
            raise exception.VolumeNotFound(volume_id=volume_id)
        allowed = RESERVABLE_MULTIATTACH if volume.multiattach else RESERVABLE
        if volume.status not in allowed or volume.migration_status:
            own = instance_uuid is not None and volume.status in ATTACHED_STATUSES and any(
                a.instance_uuid == instance_uuid for a in attachments_of_volume(volume_id,
                                                                                session=s))
            if not own:
                raise exception.InvalidVolume(
                    reason="Volume %s status must be %s" % (volume_id, _status_list(allowed)))
        attachment = models.VolumeAttachment(
            id=new_id(), volume_id=volume_id, project_id=volume.project_id,
            instance_uuid=instance_uuid, attach_status=RESERVED, attach_mode=mode)
        s.add(attachment)
        s.execute(update(models.Volume).where(models.Volume.id == volume_id)
                  .values(status=_status_while_attaching(volume.status, "reserved"),
                          updated_at=utcnow()))
        s.flush()
        s.refresh(attachment)
        return attachment


def _status_while_attaching(current, wanted):
    # An in-use multiattach volume that gets one more attachment stays in-use for the
    # others' sake; Cinder shows `reserved`/`attaching` only while nothing is attached.
    return current if current == "in-use" else wanted


def attachment_exported(attachment_id, connector, connection_info):
    """The volume service exported the volume: the attachment `attaching` with its
    connector and connection_info, the volume `attaching`. False when the attachment was
    deleted meanwhile (the caller must remove the export)."""
    with writer() as s:
        attachment = _live_attachment(s, attachment_id)
        if attachment is None:
            return False
        volume = _volume_for_change(s, attachment.volume_id)
        values = {"connector": json.dumps(connector),
                  "connection_info": json.dumps(connection_info),
                  "attached_host": connector.get("host") or attachment.attached_host}
        if attachment.attach_status in (RESERVED, ERROR_ATTACHING):
            values["attach_status"] = ATTACHING
        s.execute(update(models.VolumeAttachment)
                  .where(models.VolumeAttachment.id == attachment_id).values(**values))
        if volume.status in ("reserved", "attaching"):
            s.execute(update(models.Volume).where(models.Volume.id == volume.id)
                      .values(status="attaching", updated_at=utcnow()))
        return True


def attachment_complete(attachment_id, instance_uuid=None, mountpoint=None, host_name=None,
                        mode=None):
    """The compute host has attached it: the attachment `attached`, the volume `in-use`."""
    with writer() as s:
        attachment = _live_attachment(s, attachment_id)
        if attachment is None:
            raise exception.VolumeAttachmentNotFound(attachment_id=attachment_id)
        volume = _volume_for_change(s, attachment.volume_id)
        if volume.status not in ATTACHED_STATUSES:
            raise exception.InvalidVolume(
                reason="Volume %s status must be %s" % (volume.id,
                                                        _status_list(ATTACHED_STATUSES)))
        values = {"attach_status": ATTACHED, "attach_time": utcnow()}
        for key, value in (("instance_uuid", instance_uuid), ("mountpoint", mountpoint),
                           ("attached_host", host_name), ("attach_mode", mode)):
            if value is not None:
                values[key] = value
        s.execute(update(models.VolumeAttachment)
                  .where(models.VolumeAttachment.id == attachment_id).values(**values))
        s.execute(update(models.Volume).where(models.Volume.id == volume.id)
                  .values(status="in-use" if volume.status != "detaching" else "detaching",
                          attach_status="attached", updated_at=utcnow()))
        _set_attached_mode(s, volume.id, values.get("attach_mode") or attachment.attach_mode)
        s.flush()
        return s.scalars(select(models.VolumeAttachment).where(
            models.VolumeAttachment.id == attachment_id)).first()


def _set_attached_mode(session, volume_id, mode):
    if mode not in ("rw", "ro"):
        mode = "rw"
    row = session.scalars(select(models.VolumeAdminMetadata).where(
        models.VolumeAdminMetadata.volume_id == volume_id,
        models.VolumeAdminMetadata.key == "attached_mode")).first()
    if row is None:
        session.add(models.VolumeAdminMetadata(volume_id=volume_id, key="attached_mode",
                                               value=mode))
    else:
        row.value = mode


def attachment_destroy(attachment_id, keep_reservation=False):
    """The attachment gone (its export already removed); the volume as the remaining
    attachments say. Returns the volume's remaining live attachments.

    keep_reservation: a volume `attaching` by os-reserve stays so (a legacy export removed
    between os-reserve and os-attach: the reservation is os-unreserve's to end)."""
    with writer() as s:
        attachment = _live_attachment(s, attachment_id)
        if attachment is None:
            raise exception.VolumeAttachmentNotFound(attachment_id=attachment_id)
        volume = _volume_for_change(s, attachment.volume_id)
        s.execute(update(models.VolumeAttachment)
                  .where(models.VolumeAttachment.id == attachment_id)
                  .values(deleted=True, deleted_at=utcnow(), detach_time=utcnow(),
                          attach_status=DETACHED, connection_info=None))
        if keep_reservation and volume.status == "attaching":
            return attachments_of_volume(volume.id, session=s)
        return _settle_volume(s, volume)


def attachment_fail(attachment_id, keep_reservation=False):
    """End a failed attach: as attachment_destroy, and no error when it is already gone."""
    try:
        return attachment_destroy(attachment_id, keep_reservation=keep_reservation)
    except exception.NotFound:
        return []


def attachment_clear_export(attachment_id):
    """os-terminate_connection: the export is gone; an attachment that was never completed
    goes with it, an attached one stays until os-detach."""
    with writer() as s:
        attachment = _live_attachment(s, attachment_id)
        if attachment is None:
            return
        if attachment.attach_status == ATTACHED:
            s.execute(update(models.VolumeAttachment)
                      .where(models.VolumeAttachment.id == attachment_id)
                      .values(connection_info=None))
            return
    attachment_fail(attachment_id, keep_reservation=True)


def _settle_volume(session, volume):
    remaining = attachments_of_volume(volume.id, session=session)
    if volume.status in ATTACHED_STATUSES:
        if any(a.attach_status == ATTACHED for a in remaining):
            status, attach_status = ("detaching" if volume.status == "detaching"
                                     else "in-use"), "attached"
        elif remaining:
            status, attach_status = "reserved", "detached"
        else:
            status, attach_status = "available", "detached"
        session.execute(update(models.Volume).where(models.Volume.id == volume.id)
                        .values(status=status, attach_status=attach_status,
                                updated_at=utcnow()))
    elif volume.status == "error" and not remaining:
        # An admin reset an attached volume to `error` (no operation owns that status), then
        # detached it, by force: Cinder's rule, the last detach leaves it `available`.
        session.execute(update(models.Volume).where(models.Volume.id == volume.id)
                        .values(status="available", attach_status="detached",
                                updated_at=utcnow()))
    elif not any(a.attach_status == ATTACHED for a in remaining):
        # An admin reset the status meanwhile; the attach status still follows the rows.
        session.execute(update(models.Volume).where(models.Volume.id == volume.id)
                        .values(attach_status="detached", updated_at=utcnow()))
    if not any(a.attach_status == ATTACHED for a in remaining):
        session.execute(models.VolumeAdminMetadata.__table__.delete().where(
            models.VolumeAdminMetadata.volume_id == volume.id,
            models.VolumeAdminMetadata.key == "attached_mode"))
    return remaining


# --- the legacy volume actions (seed 004) -----------------------------------------------------

def volume_move(volume_id, to_status, from_statuses, refusal, multiattach_from=None):
    """One conditional move of a volume's status for os-reserve, os-begin_detaching,
    os-roll_detaching; `refusal` is the reason of the 400 when the volume is not in a
    status it may leave."""
    with writer() as s:
        volume = _volume_for_change(s, volume_id)
        allowed = multiattach_from if volume.multiattach and multiattach_from else from_statuses
        if volume.status not in allowed:
            raise exception.InvalidVolume(reason=refusal)
        s.execute(update(models.Volume).where(models.Volume.id == volume_id)
                  .values(status=to_status, updated_at=utcnow()))


def volume_unreserve(volume_id):
    """os-unreserve: `attaching` back to `in-use` or `available`; a no-op otherwise."""
    with writer() as s:
        volume = _volume_for_change(s, volume_id)
        if volume.status != "attaching":
            return
        # Cinder's rule: in-use if something is attached, else available (an export made
        # by os-initialize_connection and never attached does not keep it reserved).
        attached = any(a.attach_status == ATTACHED
                       for a in attachments_of_volume(volume_id, session=s))
        s.execute(update(models.Volume).where(models.Volume.id == volume_id)
                  .values(status="in-use" if attached else "available",
                          attach_status="attached" if attached else "detached",
                          updated_at=utcnow()))


def attachment_for_connector(volume_id, connector):
    """The live attachment of the volume exported to this connector (legacy actions find
    their attachment by the compute host), or None."""
    wanted = _connector_key(connector)
    for attachment in attachments_of_volume(volume_id):
        if attachment.connector and _connector_key(connector_of(attachment)) == wanted:
            return attachment
    return None


def _connector_key(connector):
    connector = connector or {}
    return (connector.get("host"), connector.get("initiator"))


def attachment_create_for_connector(ctx, volume_id, connector):
    """os-initialize_connection: an attachment for the export to this connector, made
    without changing the volume's status (os-reserve already did)."""
    with writer() as s:
        volume = _volume_for_change(s, volume_id)
        attachment = models.VolumeAttachment(
            id=new_id(), volume_id=volume_id, project_id=volume.project_id,
            attach_status=RESERVED, attach_mode="null", attached_host=connector.get("host"),
            connector=json.dumps(connector))
        s.add(attachment)
        s.flush()
        s.refresh(attachment)
        return attachment


def attachment_for_legacy_attach(volume_id, host_name):
    """os-attach: the attachment os-initialize_connection made for this host, else the only
    one not yet attached, else None."""
    pending = [a for a in attachments_of_volume(volume_id, statuses=(RESERVED, ATTACHING))]
    for attachment in pending:
        if host_name and attachment.attached_host == host_name:
            return attachment
    return pending[0] if len(pending) == 1 else None

