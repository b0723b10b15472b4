"""The request-handling layer of the volume actions and of manage/unmanage: check input
against state, write the database, cast to the volume service. Never touches storage.

Policy rules are Cinder's names (api/policy.py). Admin-only by default: os-reset_status,
os-force_delete, os-extend_volume_completion, os-unmanage, manage existing and the manageable
list. The volume is read (project scoped: 404 for another project's) before the rule is
checked on it (403)."""

import logging

from oslo_config import cfg

from api import policy, views
from api.backends import refuse_if_frozen
from common import exception, image_service, quota, volume_status
from common.db import api as db
from common.db import models, types_api
from common.db import volume_actions_api as adb
from common.db.session import writer
from scheduler import rpcapi as scheduler_rpcapi
from volume_worker import rpcapi as volume_rpcapi

LOG = logging.getLogger(__name__)

upload_image_opts = [
    cfg.BoolOpt("enable_force_upload", default=True,
                help="Whether os-volume_upload_image with force=True may upload an in-use "
                     "volume (its data read while the instance may be writing it: crash "
                     "consistent at best). False ignores force, as Cinder's default does, "
                     "so only available volumes are uploaded."),
]
cfg.CONF.register_opts(upload_image_opts)

# disk formats os-volume_upload_image writes: raw as it is, the others through qemu-img
# convert (volume_worker/flows/upload_image.py); Cinder's ploop qemu-img cannot write
UPLOAD_DISK_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx")
# Cinder's glance_core_properties: volume_image_metadata keys that describe the image the
# volume was made from, not the new one; the rest are copied as the new image's properties
GLANCE_CORE_PROPERTIES = ("checksum", "container_format", "disk_format", "image_name",
                          "image_id", "min_disk", "min_ram", "name", "size")

ATTACH_STATUSES = ("attached", "detached")
# Cinder's VolumeMigrationStatus values; "none" clears it.
MIGRATION_STATUSES = ("migrating", "error", "success", "completing", "none", "starting")
DELETABLE_STATUSES = ("available", "error", "error_restoring", "error_extending",
                      "error_managing")
DELETE_REFUSED = ("Volume status must be available or error or error_restoring or "
                  "error_extending or error_managing and must not be migrating, attached, "
                  "belong to a group, have snapshots or be disassociated from snapshots after "
                  "volume transfer.")


# Rules Cinder has that api/policy.py may not register yet -> the registered rule whose
# default is the same.
_FALLBACK = {
    "volume_extension:volume_image_metadata:show": "volume:get",
    "volume_extension:volume_image_metadata:set": "volume:update_volume_metadata",
    "volume_extension:volume_image_metadata:remove": "volume:delete_volume_metadata",
    "volume_extension:volume_admin_actions:extend_volume_completion":
        "volume_extension:volume_admin_actions:reset_status",
    "volume_extension:list_manageable": "volume_extension:volume_manage",
}


def authorize(ctx, rule, target=None):
    if rule in _FALLBACK and rule not in policy.get_enforcer().registered_rules:
        rule = _FALLBACK[rule]
    policy.authorize(ctx, rule, target)


class VolumeActions:
    def __init__(self):
        self.volume_rpcapi = volume_rpcapi.VolumeAPI()
        self.scheduler_rpcapi = scheduler_rpcapi.SchedulerAPI()

    # --- admin status reset ------------------------------------------------------------------

    def reset_status(self, ctx, volume_id, status=None, attach_status=None,
                     migration_status=None):
        authorize(ctx, "volume_extension:volume_admin_actions:reset_status",
                  db.volume_get(ctx, volume_id))
        values = {}
        if status is not None:
            status = status.lower()
            if status not in adb.ALL_VOLUME_STATUSES:
                raise exception.InvalidInput(reason="Invalid status: %s" % status)
            values["status"] = status
        if attach_status is not None:
            attach_status = attach_status.lower()
            if attach_status not in ATTACH_STATUSES:
                raise exception.InvalidInput(reason="Invalid attach_status: %s"
                                             % attach_status)
            values["attach_status"] = attach_status
        if migration_status is not None:
            migration_status = migration_status.lower()
            if migration_status not in MIGRATION_STATUSES:
                raise exception.InvalidInput(reason="Invalid migration_status: %s"
                                             % migration_status)
            values["migration_status"] = None if migration_status == "none" \
                else migration_status
        if not values:
            raise exception.InvalidInput(reason="Must specify 'status', 'attach_status' or "
                                                "'migration_status' for update.")
        old = adb.volume_reset_status(volume_id, values)
        LOG.warning("Volume %s statuses reset by admin from %s to %s (operation in flight, if "
                    "any, abandoned)", volume_id, old, values)

    # --- force delete and unmanage -----------------------------------------------------------

    def force_delete(self, ctx, volume_id):
        volume = db.volume_get(ctx, volume_id)
        authorize(ctx, "volume_extension:volume_admin_actions:force_delete", volume)
        # as Cinder: a forced delete is refused on a frozen back end too; unmanage is not
        refuse_if_frozen(volume.host)
        self._remove(ctx, volume_id, "deleting", "delete", expected_status=None)

    def unmanage(self, ctx, volume_id):
        authorize(ctx, "volume_extension:volume_unmanage", db.volume_get(ctx, volume_id))
        # error_unmanaging too: a failed unmanage touched no storage and may be retried.
        self._remove(ctx, volume_id, "unmanaging", "unmanage",
                     expected_status=DELETABLE_STATUSES + ("error_unmanaging",))

    def _remove(self, ctx, volume_id, to_status, operation, expected_status):
        for _attempt in range(3):
            volume = db.volume_get(ctx, volume_id)
            result = adb.volume_begin_removal(volume, to_status, operation,
                                              expected_status=expected_status)
            if result is not None:
                break
            again = db.volume_get(ctx, volume_id)
            if again.host == volume.host:
                raise exception.InvalidVolume(reason=DELETE_REFUSED)
            # The scheduler placed it between the read and the update: read again.
        else:
            raise exception.InvalidVolume(reason=DELETE_REFUSED)
        if result == "cast":
            if operation == "delete":
                self.volume_rpcapi.delete_volume(ctx, volume.host, volume_id)
            else:
                self.volume_rpcapi.unmanage_volume(ctx, volume.host, volume_id)
        LOG.info("Volume %s %s accepted (was %s)", volume_id, operation, volume.status)

    # --- flags -------------------------------------------------------------------------------

    def set_bootable(self, ctx, volume_id, bootable):
        authorize(ctx, "volume:update_bootable", db.volume_get(ctx, volume_id))
        if not adb.volume_set_bootable(volume_id, bootable):
            raise exception.InvalidVolume(reason="The volume cannot be updated during "
                                                 "maintenance.")

    def update_readonly_flag(self, ctx, volume_id, readonly):
        authorize(ctx, "volume:update_readonly_flag", db.volume_get(ctx, volume_id))
        if not adb.admin_metadata_set(volume_id, "readonly", str(bool(readonly)),
                                      expected_status="available"):
            raise exception.InvalidVolume(reason="Volume status must be available to update "
                                                 "readonly flag.")

    # --- image metadata ----------------------------------------------------------------------

    def show_image_metadata(self, ctx, volume_id):
        authorize(ctx, "volume_extension:volume_image_metadata:show",
                  db.volume_get(ctx, volume_id))
        return adb.glance_metadata_get(volume_id)

    def set_image_metadata(self, ctx, volume_id, metadata):
        authorize(ctx, "volume_extension:volume_image_metadata:set",
                  db.volume_get(ctx, volume_id))
        merged = adb.glance_metadata_update(volume_id, metadata)
        if merged is None:
            raise exception.InvalidVolume(reason="The volume metadata cannot be updated when "
                                                 "the volume is in maintenance mode.")
        return merged

    def unset_image_metadata(self, ctx, volume_id, key):
        authorize(ctx, "volume_extension:volume_image_metadata:remove",
                  db.volume_get(ctx, volume_id))
        result = adb.glance_metadata_delete(volume_id, key)
        if result == "refused":
            raise exception.InvalidVolume(reason="The volume metadata cannot be deleted when "
                                                 "the volume is in maintenance mode.")
        if result == "missing":
            raise exception.NotFound("Metadata item was not found")

    # --- extend completion (3.71) ------------------------------------------------------------

    def extend_volume_completion(self, ctx, volume_id, error):
        volume = db.volume_get(ctx, volume_id)
        authorize(ctx, "volume_extension:volume_admin_actions:extend_volume_completion", volume)
        if volume.status != "extending":
            raise exception.InvalidVolume(reason="Volume status must be 'extending', "
                                                 "currently %s." % volume.status)
        meta = adb.admin_metadata_get(volume_id)
        if "extend_new_size" not in meta:
            # Only an extend of an attached volume (3.42) waits for the compute service's
            # feedback; Lamina has no attachments yet, so nothing ever waits.
            raise exception.InvalidVolume(reason="The volume is not waiting for external "
                                                 "feedback on an extend operation.")
        raise exception.InvalidVolume(reason="completing an attached volume's extend is not "
                                             "supported yet")

    # --- upload to an image (os-volume_upload_image) -----------------------------------------

    def upload_image(self, ctx, volume_id, image_name, force=False, disk_format="raw",
                     container_format="bare", visibility=None, protected=None):
        """Create the image in Glance with the user's token, move the volume to `uploading`
        (from available, or in-use with force) with a workers row for its service, cast the
        copy. Whatever fails after the image exists deletes it and puts the volume back."""
        volume = db.volume_get(ctx, volume_id)
        authorize(ctx, "volume_extension:volume_actions:upload_image", volume)
        if visibility == "public":
            authorize(ctx, "volume_extension:volume_actions:upload_public", volume)
        disk_format = disk_format.lower()
        if disk_format not in UPLOAD_DISK_FORMATS:
            raise exception.InvalidInput(reason="Invalid disk-format '%s' is specified. "
                                                "Allowed disk-formats are %s."
                                         % (disk_format, ", ".join(UPLOAD_DISK_FORMATS)))
        if force and not cfg.CONF.enable_force_upload:
            LOG.info("Force upload to image is disabled; force ignored for volume %s",
                     volume_id)
            force = False
        statuses = ("available", "in-use") if force else ("available",)
        refused = "Volume %s status must be %s, currently %s." % (
            volume_id, " or ".join(statuses), volume.status)
        # checked before Glance is asked: a refused request leaves no image behind
        if volume.status not in statuses or not volume.host or volume.migration_status in \
                adb.MIGRATION_BUSY:
            raise exception.InvalidVolume(reason=refused)
        meta = {"name": image_name, "disk_format": disk_format,
                "container_format": container_format}
        if visibility is not None:
            meta["visibility"] = visibility
        if protected is not None:
            meta["protected"] = bool(protected)
        skip = set(GLANCE_CORE_PROPERTIES) | set(image_service.CORE)
        meta.update({k: v for k, v in adb.glance_metadata_get(volume_id).items()
                     if k not in skip and k not in meta})
        image = image_service.create(ctx, **meta)
        try:
            self._begin_upload(volume, statuses, refused)
        except Exception:
            self._delete_image(ctx, image["id"])
            raise
        try:
            self.volume_rpcapi.copy_volume_to_image(ctx, volume.host, volume_id, image["id"])
        except Exception as exc:
            back = "in-use" if volume.attach_status == "attached" else "available"
            volume_status.fail_operation(ctx, volume_id, "uploading", back,
                                         volume_status.EVENT_UPLOAD, "copy volume to image",
                                         "the volume service could not be reached (%s)" % exc)
            self._delete_image(ctx, image["id"])
            raise exception.ServiceBusy(service="volume")
        LOG.info("Upload of volume %s to image %s (%s) accepted", volume_id, image["id"],
                 disk_format)
        volume = db.volume_get(ctx, volume_id)
        body = {"id": volume.id, "updated_at": views.isotime(volume.updated_at),
                "status": "uploading", "display_description": volume.description,
                "size": volume.size,
                "volume_type": views.volume_type(volume.volume_type, ctx)
                if volume.volume_type is not None else None,
                "image_id": image["id"], "container_format": image["container_format"],
                "disk_format": image["disk_format"], "image_name": image["name"]}
        if visibility is not None or protected is not None:
            body.update(protected=image.get("protected"), visibility=image.get("visibility"))
        return body

    @staticmethod
    def _begin_upload(volume, statuses, refused):
        with writer() as s:
            won = db.conditional_update(models.Volume, volume.id,
                                        {"status": "uploading", "previous_status": volume.status},
                                        {"status": list(statuses), "host": volume.host,
                                         "deleted": False}, session=s)
            if won:
                db.worker_release("volume", volume.id, session=s)
                db.worker_claim("volume", volume.id, "upload_image",
                                host=volume.host.split("#")[0], session=s)
        if not won:
            raise exception.InvalidVolume(reason=refused + " Another request changed it.")

    @staticmethod
    def _delete_image(ctx, image_id):
        try:
            image_service.delete(ctx, image_id)
        except exception.ImageNotFound:
            pass
        except Exception:
            LOG.exception("Could not delete image %s of a refused upload", image_id)

    # --- manage existing ---------------------------------------------------------------------

    @staticmethod
    def resolve_pool(host):
        """'host@backend#pool', or 'host@backend' of a back end with a single pool."""
        if "#" in host:
            pool = db.pool_get(host)
            if pool is None:
                raise exception.ServiceNotFound(service=host)
            return pool
        pools = db.pool_get_all(host=host)
        if not pools:
            raise exception.ServiceNotFound(service=host)
        if len(pools) > 1:
            raise exception.InvalidInput(reason="back end %s has several pools (%s); name one "
                                                "as host@backend#pool"
                                         % (host, ", ".join(p.pool_name for p in pools)))
        return pools[0]

    def manage(self, ctx, volume_requests, host, ref, name=None, description=None,
               volume_type=None, availability_zone=None, metadata=None, bootable=False):
        authorize(ctx, "volume_extension:volume_manage")
        pool = self.resolve_pool(host)
        refuse_if_frozen(pool.host)
        vtype = volume_requests.resolve_type(volume_type)
        backend_name = {e.key: e.value for e in vtype.extra_specs}.get("volume_backend_name")
        if backend_name and backend_name != pool.volume_backend_name:
            raise exception.InvalidInput(
                reason="volume type %s asks for back end %s; %s is %s"
                       % (vtype.name, backend_name, pool.name, pool.volume_backend_name))
        zone = availability_zone or pool.availability_zone or volume_requests.default_zone()
        if pool.availability_zone and zone != pool.availability_zone:
            raise exception.InvalidInput(reason="Availability zone '%s' is invalid for %s."
                                         % (zone, pool.name))
        volume = adb.volume_create_managing({
            "project_id": ctx.project_id, "user_id": ctx.user_id, "name": name,
            "description": description, "availability_zone": zone,
            "volume_type_id": vtype.id, "bootable": bool(bootable),
        }, metadata, backend_host=pool.host)
        try:
            self.volume_rpcapi.manage_existing(ctx, pool.host, volume.id, pool.name, ref)
        except Exception as exc:
            volume_status.fail_operation(ctx, volume.id, "managing", "error_managing",
                                         volume_status.EVENT_MANAGE, "manage existing volume",
                                         "the volume service could not be reached (%s)" % exc)
            raise exception.ServiceBusy(service="volume")
        LOG.info("Manage of %s on %s accepted as volume %s", ref, pool.name, volume.id)
        return db.volume_get(ctx, volume.id)

    def manageable_volumes(self, ctx, host):
        """What the back end host@backend holds that no volume owns (and what it does)."""
        authorize(ctx, "volume_extension:list_manageable")
        if "#" in host:
            host = host.split("#")[0]
        if not db.pool_get_all(host=host):
            raise exception.ServiceNotFound(service=host)
        return self.volume_rpcapi.get_manageable_volumes(ctx, host)

    # --- retype and migrate ------------------------------------------------------------------

    def retype(self, ctx, volume_id, new_type, migration_policy=None):
        volume = db.volume_get(ctx, volume_id)
        authorize(ctx, "volume:retype", volume)
        refuse_if_frozen(volume.host)
        policy_name = (migration_policy or "never").lower()
        if policy_name not in ("never", "on-demand"):
            raise exception.InvalidInput(reason="migration_policy must be 'never' or "
                                                "'on-demand', got %r" % migration_policy)
        vtype = db.volume_type_get_by_name_or_id(new_type)
        if vtype.id == volume.volume_type_id:
            raise exception.InvalidInput(reason="New volume type must be different from the "
                                                "original (%s)." % vtype.name)
        # Cinder's rules (every version; 3.50 only says the service has multiattach volumes):
        # whether the volume is multiattach changes only while it is available (an attached
        # instance was attached as the volume was), and multiattach does not go with
        # encryption. The volume takes the type's multiattach when the retype is done.
        to_multiattach = types_api.multiattach(vtype)
        if bool(volume.multiattach) != to_multiattach and volume.status != "available":
            raise exception.InvalidInput(
                reason="Invalid volume_type passed, retypes affecting multiattach are only "
                       "allowed on available volumes, the specified volume however currently "
                       "has a status of: %s." % volume.status)
        if to_multiattach and vtype.encryption is not None:
            raise exception.InvalidInput(reason="Retype requested both encryption and "
                                                "multi-attach, which is not supported.")
        # Lamina encrypts no data (encryption types are metadata only): a retype that would
        # change the volume's encryption would only relabel plain bytes
        if types_api.encryption_changed(volume.volume_type_id, vtype.id):
            raise exception.InvalidInput(reason="Retype cannot change encryption "
                                                "requirements.")
        quota.check_type_room(volume.project_id, volume.size, vtype.name)  # 413 when full
        self._begin(ctx, volume, "retyping", "retype", ("available", "in-use"),
                    "Volume status must be available or in-use and must not be migrating or "
                    "have an operation in flight to retype.")
        self.scheduler_rpcapi.retype(ctx, volume_id, vtype.id, policy_name)
        LOG.info("Volume %s retype to %s (%s) accepted", volume_id, vtype.name, policy_name)

    def migrate(self, ctx, volume_id, host, force_host_copy=False):
        volume = db.volume_get(ctx, volume_id)
        authorize(ctx, "volume_extension:volume_admin_actions:migrate_volume", volume)
        refuse_if_frozen(volume.host)
        pool = self.resolve_pool(host)
        if volume.host and pool.name == volume.host:
            raise exception.InvalidInput(reason="Destination host must be different than the "
                                                "current host.")
        if adb.volume_snapshot_count(volume_id):
            raise exception.InvalidVolume(reason="Volume must not have snapshots.")
        if volume.status != "available" or not volume.host:
            raise exception.InvalidVolume(reason="Volume status must be available to migrate "
                                                 "(migrating an attached volume needs a "
                                                 "compute service), currently %s."
                                                 % volume.status)
        self._begin(ctx, volume, "maintenance", "migrate", ("available",),
                    "Volume status must be available and not migrating.")
        self.scheduler_rpcapi.migrate_volume_to_host(ctx, volume_id, pool.name)
        LOG.info("Volume %s migration to %s accepted", volume_id, pool.name)

    @staticmethod
    def _begin(ctx, volume, to_status, operation, from_statuses, refused):
        if not volume.host:
            raise exception.InvalidVolume(reason=refused)
        if not adb.volume_begin_move(volume, to_status, operation, from_statuses):
            raise exception.InvalidVolume(reason=refused)
