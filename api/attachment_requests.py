"""The request-handling layer of attachments: the attachments API (3.27) and the legacy
attach actions of seed 004. Checks input against state, writes the database
(common/db/attachments_api.py says the states), and asks the volume service to export or
unexport, waiting for its answer: a compute host needs the connection_info in the reply.

A failed export ends here: the volume service has already removed what it made (the attach
flow's revert); the attachment a create made goes, the volume's status follows its other
attachments, and the user gets a message (GET /messages)."""

import logging

from oslo_messaging import MessagingTimeout, RemoteError

from api import policy
from common import exception, volume_status
from common.db import api as db
from common.db import attachments_api as attachments
from common.db import volume_actions_api as adb
from volume_worker import rpcapi as volume_rpcapi

LOG = logging.getLogger(__name__)

EVENT_ATTACH = "VOLUME_VOLUME_002_001"
EVENT_DETACH = "VOLUME_VOLUME_004_001"
ATTACH_MODES = ("rw", "ro")


def failure_reason(exc):
    """What the volume service said, without its traceback."""
    if isinstance(exc, RemoteError):
        return exc.value or exc.exc_type
    if isinstance(exc, MessagingTimeout):
        return "the volume service did not answer in time"
    return str(exc)


class Attachments:
    def __init__(self):
        self.volume_rpcapi = volume_rpcapi.VolumeAPI()

    # --- the attachments API ------------------------------------------------------------------

    def create(self, ctx, volume_id, instance_uuid=None, connector=None, mode="null"):
        volume = db.volume_get(ctx, volume_id)
        policy.authorize(ctx, "volume:attachment_create", volume)
        if volume.multiattach and volume.bootable and volume.status == "in-use":
            policy.authorize(ctx, "volume:multiattach_bootable_volume", volume)
        attachment = attachments.attachment_reserve(ctx, volume_id, instance_uuid, mode)
        LOG.info("Attachment %s of volume %s reserved for instance %s", attachment.id,
                 volume_id, instance_uuid)
        if connector:
            try:
                self._export(ctx, volume, attachment.id, connector)
            except Exception as exc:
                attachments.attachment_fail(attachment.id)
                self._tell(ctx, volume_id, EVENT_ATTACH, "attach volume", exc)
                raise exception.AttachmentFailed(reason=failure_reason(exc))
        return attachments.attachment_get(ctx, attachment.id)

    def update(self, ctx, attachment_id, connector):
        attachment = attachments.attachment_get(ctx, attachment_id)
        volume = db.volume_get(ctx, attachment.volume_id)
        policy.authorize(ctx, "volume:attachment_update", volume)
        if attachment.attach_status not in (attachments.RESERVED, attachments.ATTACHING,
                                            attachments.ERROR_ATTACHING):
            raise exception.InvalidVolume(
                reason="Attachment %s is %s: only a reserved attachment can be given a "
                       "connector" % (attachment_id, attachment.attach_status))
        try:
            self._export(ctx, volume, attachment_id, connector)
        except Exception as exc:
            self._tell(ctx, volume.id, EVENT_ATTACH, "attach volume", exc)
            raise exception.AttachmentUpdateFailed(reason=failure_reason(exc))
        return attachments.attachment_get(ctx, attachment_id)

    def complete(self, ctx, attachment_id):
        attachment = attachments.attachment_get(ctx, attachment_id)
        policy.authorize(ctx, "volume:attachment_complete",
                         db.volume_get(ctx, attachment.volume_id))
        if attachment.attach_status != attachments.ATTACHED and not attachment.connection_info:
            raise exception.InvalidVolume(
                reason="Attachment %s has no connection yet: update it with a connector "
                       "first" % attachment_id)
        attachments.attachment_complete(attachment_id)
        LOG.info("Attachment %s of volume %s complete", attachment_id, attachment.volume_id)

    def delete(self, ctx, attachment_id):
        """Remove the export, then the attachment; returns the volume's other attachments."""
        attachment = attachments.attachment_get(ctx, attachment_id)
        volume = db.volume_get(ctx, attachment.volume_id)
        policy.authorize(ctx, "volume:attachment_delete", volume)
        self._unexport(ctx, volume, attachment)
        remaining = attachments.attachment_destroy(attachment_id)
        LOG.info("Attachment %s of volume %s deleted", attachment_id, volume.id)
        return remaining

    def get(self, ctx, attachment_id):
        return attachments.attachment_get(ctx, attachment_id)

    def get_all(self, ctx, **kwargs):
        return attachments.attachment_get_all(ctx, **kwargs)

    # --- the legacy actions -------------------------------------------------------------------

    def _volume(self, ctx, volume_id, rule):
        volume = db.volume_get(ctx, volume_id)
        policy.authorize(ctx, rule, volume)
        return volume

    def reserve(self, ctx, volume_id):
        volume = self._volume(ctx, volume_id, "volume_extension:volume_actions:reserve")
        expected = "available or in-use" if volume.multiattach else "available"
        attachments.volume_move(
            volume_id, "attaching", ("available",),
            "Volume status must be %s to reserve, but the status is %s."
            % (expected, volume.status), multiattach_from=("available", "in-use"))

    def unreserve(self, ctx, volume_id):
        volume = self._volume(ctx, volume_id, "volume_extension:volume_actions:unreserve")
        if volume.status == "attaching" and not volume.multiattach:
            # The attach is abandoned: an export os-initialize_connection made for it goes
            # too, or the host it was made for could still write to a volume that another
            # host may attach next. (A multiattach volume's other pending attachments may
            # belong to other hosts' attaches in flight: they are left to their callers.)
            for attachment in attachments.attachments_of_volume(
                    volume_id, statuses=(attachments.RESERVED, attachments.ATTACHING)):
                self._unexport(ctx, volume, attachment)
                attachments.attachment_fail(attachment.id, keep_reservation=True)
        attachments.volume_unreserve(volume_id)

    def begin_detaching(self, ctx, volume_id):
        volume = self._volume(ctx, volume_id, "volume_extension:volume_actions:begin_detaching")
        if volume.attach_status != "attached":
            raise exception.InvalidVolume(reason=self._DETACH_REFUSED)
        attachments.volume_move(volume_id, "detaching", ("in-use",), self._DETACH_REFUSED)

    _DETACH_REFUSED = ("Unable to detach volume. Volume status must be 'in-use' and "
                       "attach_status must be 'attached' to detach.")

    def roll_detaching(self, ctx, volume_id):
        self._volume(ctx, volume_id, "volume_extension:volume_actions:roll_detaching")
        try:
            attachments.volume_move(volume_id, "in-use", ("detaching",), "not detaching")
        except exception.InvalidVolume:
            pass  # Cinder: nothing to roll back is not an error

    def initialize_connection(self, ctx, volume_id, connector):
        volume = self._volume(ctx, volume_id,
                              "volume_extension:volume_actions:initialize_connection")
        if volume.status == "maintenance" or not volume.host or volume.status not in (
                "available", "reserved", "attaching", "in-use", "downloading"):
            raise exception.InvalidVolume(
                reason="Volume %s status must be available, reserved, attaching or in-use "
                       "to initialize a connection, but it is %s" % (volume_id, volume.status))
        attachment = attachments.attachment_for_connector(volume_id, connector)
        made = attachment is None
        if made:
            attachment = attachments.attachment_create_for_connector(ctx, volume_id, connector)
        try:
            connection_info = self._export(ctx, volume, attachment.id, connector)
        except Exception as exc:
            if made:
                attachments.attachment_fail(attachment.id, keep_reservation=True)
            self._tell(ctx, volume_id, EVENT_ATTACH, "initialize connection", exc)
            raise exception.AttachmentFailed(reason=failure_reason(exc))
        return connection_info

    def attach(self, ctx, volume_id, instance_uuid, host_name, mountpoint, mode):
        volume = self._volume(ctx, volume_id, "volume_extension:volume_actions:attach")
        if mode not in ATTACH_MODES:
            raise exception.InvalidInput(reason="Invalid attaching mode '%s' for volume %s."
                                         % (mode, volume_id))
        if mode == "rw" and adb.admin_metadata_get(volume_id).get("readonly") == "True":
            raise exception.InvalidInput(reason="Invalid attaching mode '%s' for volume %s."
                                         % (mode, volume_id))
        refused = ("Volume %s status must be available, reserved or attaching to attach, "
                   "but it is %s" % (volume_id, volume.status))
        if volume.status not in ("available", "attaching", "reserved") and not (
                volume.multiattach and volume.status == "in-use"):
            raise exception.InvalidVolume(reason=refused)
        attachment = attachments.attachment_for_legacy_attach(volume_id, host_name)
        if volume.status == "available" and attachment is None:
            # Cinder attaches a volume that nobody reserved too: the reservation is made here
            # (one conditional move: of two such attaches, one wins)
            attachment = attachments.attachment_reserve(ctx, volume_id, instance_uuid, mode)
        elif volume.status == "available":
            # reserved by no one, but os-initialize_connection made this host's export
            attachments.volume_move(volume_id, "reserved", ("available",), refused)
        elif attachment is None:
            attachment = attachments.attachment_create_for_connector(
                ctx, volume_id, {"host": host_name})
        attachments.attachment_complete(attachment.id, instance_uuid=instance_uuid,
                                        mountpoint=mountpoint, host_name=host_name, mode=mode)
        LOG.info("Volume %s attached to %s at %s (attachment %s)", volume_id,
                 instance_uuid or host_name, mountpoint, attachment.id)

    def terminate_connection(self, ctx, volume_id, connector):
        volume = self._volume(ctx, volume_id,
                              "volume_extension:volume_actions:terminate_connection")
        attachment = attachments.attachment_for_connector(volume_id, connector)
        if attachment is None:
            return
        self._unexport(ctx, volume, attachment)
        attachments.attachment_clear_export(attachment.id)

    def detach(self, ctx, volume_id, attachment_id=None):
        volume = self._volume(ctx, volume_id, "volume_extension:volume_actions:detach")
        attachment = self._legacy_attachment(volume, attachment_id)
        if attachment is None:
            # Cinder: a detach of a volume that is not attached only settles its status.
            attachments.volume_unreserve(volume_id)
            return
        self._unexport(ctx, volume, attachment)
        attachments.attachment_destroy(attachment.id)

    def force_detach(self, ctx, volume_id, attachment_id=None, connector=None):
        volume = self._volume(ctx, volume_id,
                              "volume_extension:volume_admin_actions:force_detach")
        attachment = (attachments.attachment_for_connector(volume_id, connector)
                      if connector and not attachment_id else
                      self._legacy_attachment(volume, attachment_id))
        if attachment is None:
            raise exception.InvalidVolume(reason="Volume %s has no attachment %s to detach"
                                          % (volume_id, attachment_id or "matching the "
                                             "connector"))
        self._unexport(ctx, volume, attachment)
        attachments.attachment_destroy(attachment.id)
        LOG.warning("Volume %s force-detached from attachment %s", volume_id, attachment.id)

    def _legacy_attachment(self, volume, attachment_id):
        live = attachments.attachments_of_volume(volume.id)
        if attachment_id:
            for attachment in live:
                if attachment.id == attachment_id:
                    return attachment
            raise exception.VolumeAttachmentNotFound(attachment_id=attachment_id)
        if len(live) > 1:
            raise exception.InvalidVolume(reason="Detach volume failed: More than one "
                                                 "attachment, but no attachment_id provided.")
        return live[0] if live else None

    # --- talking to the volume service --------------------------------------------------------

    def _export(self, ctx, volume, attachment_id, connector):
        return self.volume_rpcapi.export_attachment(ctx, volume.host, attachment_id, connector)

    def _unexport(self, ctx, volume, attachment):
        if not attachment.connection_info or not volume.host:
            return
        try:
            self.volume_rpcapi.remove_attachment_export(
                ctx, volume.host, volume.id, attachment.id,
                attachments.connector_of(attachment))
        except Exception as exc:
            self._tell(ctx, volume.id, EVENT_DETACH, "detach volume", exc)
            raise exception.DetachFailed(reason=failure_reason(exc))

    @staticmethod
    def _tell(ctx, volume_id, event_id, action, exc):
        reason = failure_reason(exc)
        LOG.error("%s of volume %s failed: %s", action, volume_id, reason)
        volume_status.record_user_message(ctx, volume_id, event_id,
                                          "%s: %s" % (action, reason))

