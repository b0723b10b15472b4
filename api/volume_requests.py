"""The request-handling layer for volumes: check input against state, write the database,
cast to the services. It never touches storage; the API answers at once and clients poll."""

import logging
import threading
import time

import flask
from oslo_config import cfg

from api import image_source, policy
from api.backends import refuse_if_frozen
from api.routes import type_access
from common import exception, extra_specs, quota, volume_status
from common.db import api as db
from common.db import backups_api, models, types_api
from common.db.session import writer
from scheduler import rpcapi as scheduler_rpcapi
from volume_worker import rpcapi as volume_rpcapi

LOG = logging.getLogger(__name__)

volume_api_opts = [
    cfg.StrOpt("default_volume_type", default="__DEFAULT__",
               help="Volume type given to volumes created without one."),
    cfg.StrOpt("default_availability_zone",
               help="Availability zone of volumes created without one; defaults to "
                    "storage_availability_zone."),
]
CONF = cfg.CONF
CONF.register_opts(volume_api_opts)

# Statuses from which a volume may be deleted (Cinder's API reference).
DELETABLE_STATUSES = ("available", "error", "error_restoring", "error_extending",
                      "error_managing")


class VolumeRequests:
    def __init__(self):
        self.scheduler_rpcapi = scheduler_rpcapi.SchedulerAPI()
        self.volume_rpcapi = volume_rpcapi.VolumeAPI()
        self._zones = (0.0, frozenset())
        self._zones_lock = threading.Lock()

    # --- helpers -----------------------------------------------------------------------------

    def known_zones(self):
        """Zones that some pool reports, plus the default; cached for a few seconds."""
        with self._zones_lock:
            fetched_at, zones = self._zones
            if time.monotonic() - fetched_at > 10:
                zones = frozenset({p.availability_zone for p in db.pool_get_all()
                                   if p.availability_zone} | {self.default_zone()})
                self._zones = (time.monotonic(), zones)
            return zones

    @staticmethod
    def default_zone():
        return CONF.default_availability_zone or CONF.storage_availability_zone

    @staticmethod
    def resolve_type(ident):
        if ident:
            return db.volume_type_get_by_name_or_id(ident)
        # The requesting project's own default (default-types, 3.62) comes first, at every
        # version, as Cinder's; a default whose type is gone since counts as none. Only for
        # reads and creates: the type routes' update and delete ask for the default to keep
        # the configured default_volume_type from being renamed or deleted.
        context = flask.g.get("ctx") if flask.has_request_context() else None
        if (context is not None and context.project_id
                and flask.request.method in ("GET", "POST")):
            project_default = types_api.default_type_get(context.project_id)
            if project_default is not None:
                try:
                    return db.volume_type_get(project_default.volume_type_id)
                except exception.VolumeTypeNotFound:
                    pass
        try:
            return db.volume_type_get_by_name(CONF.default_volume_type)
        except exception.VolumeTypeNotFound:
            raise exception.InvalidVolumeType(
                reason="the default volume type %s does not exist" % CONF.default_volume_type)

    # --- operations --------------------------------------------------------------------------

    def create(self, ctx, size, name=None, description=None, volume_type=None,
               availability_zone=None, metadata=None, snapshot_id=None, source_volid=None,
               group_id=None, backup_id=None, image_id=None):
        """A new volume: empty, or with the data of a snapshot or of another volume (then on
        that source's back end, of its type and zone), or of a backup (backup_id: 3.47 and
        restores to a new volume; the backup service writes it once it is placed), or of an
        image (image_id, checked here with the caller's token; the volume service writes
        its data)."""
        source = None
        if image_id:
            image, size, snapshot_id = image_source.checked_image(ctx, image_id, size)
            image_id = image["id"] if snapshot_id is None else None
        if backup_id:
            # 404 outside the project; then, before anything is written, the backup must be
            # available and its backup service (which will write the volume) up, else 503
            backup = backups_api.backup_get(ctx, backup_id)
            if backup.status != backups_api.AVAILABLE:
                raise backups_api.InvalidBackup(reason="Backup status must be available")
            backups_api.require_backup_host(backup.host)
            size = max(size or 0, backup.size)  # at least the backup's size
        if snapshot_id:
            source = db.snapshot_get(ctx, snapshot_id)
            source_volume = db.volume_get_internal(source.volume_id)
            kind, minimum = "snapshot", source.volume_size
        elif source_volid:
            source = source_volume = db.volume_get(ctx, source_volid)
            kind, minimum = "source volume", source.size
        if source is not None:
            size = size or minimum
            if size < minimum:
                raise exception.InvalidInput(
                    reason="Volume size '%d'GB cannot be smaller than the %s size %dGB. They "
                           "must be >= original %s size." % (size, kind, minimum, kind))
            vtype = self._source_type(volume_type, source_volume)
            zone = availability_zone or source_volume.availability_zone
            if zone != source_volume.availability_zone:
                raise exception.InvalidInput(
                    reason="Availability zone must be the same as the %s's (%s)."
                           % (kind, source_volume.availability_zone))
        else:
            vtype = self.resolve_type(volume_type)
            # a private type not granted: 404, named as asked
            type_access.check_visible(vtype, ctx, volume_type or vtype.name)
            zone = availability_zone or self.default_zone()
        type_zones = extra_specs.availability_zones({e.key: e.value for e in vtype.extra_specs})
        if type_zones is not None:
            # As Cinder: the type's zones that exist; a zone asked for (or the source's) must
            # be one of them; without one the default zone if the type allows it, else the
            # first the type names.
            usable = [z for z in type_zones if z in self.known_zones()]
            if not usable:
                raise exception.InvalidInput(
                    reason="Volume type is only supported in these availability zones: %s"
                           % ",".join(type_zones))
            if not (availability_zone or source is not None) and zone not in usable:
                zone = usable[0]
        else:
            usable = None
        if zone not in self.known_zones() or (usable is not None and zone not in usable):
            raise exception.InvalidInput(reason="Availability zone '%s' is invalid." % zone)
        values = {
            "project_id": ctx.project_id, "user_id": ctx.user_id, "name": name,
            "description": description, "size": size, "status": "creating",
            "attach_status": "detached", "availability_zone": zone,
            "volume_type_id": vtype.id, "snapshot_id": snapshot_id or None,
            "source_volid": source_volid or None, "backup_id": backup_id or None,
            "image_id": image_id or None,
            # Multiattach comes from the type (the scheduler then picks a pool that has it).
            "multiattach": extra_specs.is_true(
                {spec.key: spec.value for spec in vtype.extra_specs}.get("multiattach")),
        }
        if group_id:
            # 3.13: into a group, of one of its volume types, made on its back end
            from api.group_requests import GroupRequests

            group = GroupRequests.check_volume_into_group(ctx, group_id, vtype)
            if availability_zone and zone != group.availability_zone:
                raise exception.InvalidInput(
                    reason="Availability zone must be the group's (%s)."
                           % group.availability_zone)
            values["availability_zone"] = group.availability_zone
            values["group_id"] = group_id
        if backup_id:
            volume = self._create_from_backup(backup_id, values, metadata)
        elif source is None:
            # the row and its quota charge in one transaction (413, nothing written, if over)
            volume = quota.create_volume(values, metadata)
        else:
            volume = self._create_from(source_volume, snapshot_id, source_volid, values,
                                       metadata)
        LOG.info("Volume %s (%d GiB, type %s) accepted", volume.id, size, vtype.name)
        try:
            self.scheduler_rpcapi.create_volume(ctx, volume.id)
        except Exception as exc:
            self._fail_unsent(ctx, volume, exc)
            raise exception.ServiceBusy(service="scheduler")
        return volume

    def _source_type(self, volume_type, source_volume):
        # Seed 000: a volume made from a snapshot has its source volume's type.
        if not volume_type:
            return db.volume_type_get(source_volume.volume_type_id)
        vtype = self.resolve_type(volume_type)
        if vtype.id != source_volume.volume_type_id:
            raise exception.InvalidInput(
                reason="Volume type must be the source's (%s): the data stays on the source's "
                       "back end" % source_volume.volume_type_id)
        return vtype

    @staticmethod
    def _create_from(source_volume, snapshot_id, source_volid, values, metadata):
        """Insert the new volume while the source's volume row is locked, re-checking the
        source: a concurrent delete of the snapshot or volume either sees this volume
        `creating` from it (and is refused) or has already moved the source on (and this is
        refused)."""
        with writer() as s:
            locked = db.volume_get_locked(s, source_volume.id)
            if snapshot_id:
                snapshot = s.get(models.Snapshot, snapshot_id)
                if snapshot is None or snapshot.deleted or snapshot.status != "available":
                    raise exception.InvalidSnapshot(
                        reason="Originating snapshot status must be 'available', currently %s."
                               % (snapshot.status if snapshot else "deleted"))
            elif locked is None or locked.status not in ("available", "in-use"):
                raise exception.InvalidVolume(
                    reason="Source volume status must be 'available' or 'in-use', currently %s."
                           % (locked.status if locked else "deleted"))
            quota.charge_new_volume(s, values)  # 413, and nothing written, if over quota
            # a copy of a bootable volume boots too, with the same image metadata
            volume = db.volume_add(s, dict(values, bootable=bool(locked and locked.bootable)),
                                   metadata=metadata)
            db.glance_metadata_copy(
                s, {"snapshot_id": snapshot_id} if snapshot_id else {"volume_id": source_volid},
                {"volume_id": volume.id})
            return volume

    @staticmethod
    def _create_from_backup(backup_id, values, metadata):
        """Insert the volume, charge its quota and move the backup to `restoring` onto it, in
        one transaction: a concurrent delete or restore of the backup either sees it
        `restoring` (and is refused) or has moved it on first (and this is refused)."""
        values = dict(values, id=db.new_id())
        with writer() as s:
            if not db.conditional_update(models.Backup, backup_id,
                                         {"status": backups_api.RESTORING,
                                          "restore_volume_id": values["id"]},
                                         {"status": backups_api.AVAILABLE, "deleted": False},
                                         session=s):
                raise backups_api.InvalidBackup(reason="Backup status must be available")
            quota.charge_new_volume(s, values)  # 413, and nothing written, if over quota
            return db.volume_add(s, values, metadata=metadata)

    @staticmethod
    def _fail_unsent(ctx, volume, exc):
        volume_status.fail_operation(ctx, volume.id, "creating", "error",
                                     volume_status.EVENT_SCHEDULE, "schedule allocate volume",
                                     "the scheduler could not be reached (%s)" % exc,
                                     expected={"host": None})

    def delete(self, ctx, volume_id, cascade=False, force=False, volume=None):
        """Delete a volume; with cascade its snapshots (available or error) go with it.
        `force` (3.23 `?force=true`, an admin's) takes the volume and, with cascade, its
        snapshots in any status, as Cinder does. `volume`: the row as the caller just read
        it (the conditional update below decides on the current row, whatever it says)."""
        if volume is None:
            volume = db.volume_get(ctx, volume_id)
        refuse_if_frozen(volume.host)
        expected = {"status": DELETABLE_STATUSES, "attach_status": "detached",
                    # as Cinder: a finished or failed migration does not block a delete
                    "migration_status": (None, "deleting", "error", "success"),
                    "deleted": False, "host": volume.host,
                    # as Cinder: a group's member goes with its group (or leaves it first)
                    "group_id": None}
        if force:
            del expected["status"]
        with writer() as s:
            db.volume_lock(s, volume_id)
            snapshots = self._check_deletable_snapshots(s, volume_id, cascade, force)
            if db.volumes_creating_from(s, source_volid=volume_id):
                raise exception.InvalidVolume(reason="a volume is being created from volume "
                                                     "%s; delete it when that is done"
                                                     % volume_id)
            won = db.conditional_update(models.Volume, volume_id, {"status": "deleting"},
                                        expected, session=s)
            if won:
                quota.release_volume(s, volume)  # charged again if the delete fails
                for snapshot in snapshots:
                    db.conditional_update(models.Snapshot, snapshot.id, {"status": "deleting"},
                                          {"status": snapshot.status}, session=s)
                db.worker_release("volume", volume_id, session=s)
                if volume.host:
                    db.worker_claim("volume", volume_id, "delete",
                                    host=volume.host.split("#")[0], session=s)
                else:
                    # Never placed: no storage and no claim exist, so the row just goes.
                    db.volume_mark_deleted(volume_id, session=s)
        if not won:
            raise exception.InvalidVolume(
                reason="Volume status must be available or error or error_restoring or "
                       "error_extending or error_managing and must not be migrating, "
                       "attached, belong to a group, have snapshots or be disassociated from "
                       "snapshots after volume transfer.")
        if volume.host:
            self.volume_rpcapi.delete_volume(ctx, volume.host, volume_id)
        LOG.info("Volume %s delete accepted", volume_id)

    @staticmethod
    def _check_deletable_snapshots(session, volume_id, cascade, force=False):
        snapshots = db.snapshot_get_all_for_volume(volume_id, session=session)
        if snapshots and not cascade:
            raise exception.InvalidVolume(
                reason="Volume %s still has %d dependent snapshots; delete them first or "
                       "use cascade=true." % (volume_id, len(snapshots)))
        for snapshot in snapshots:
            if not force and snapshot.status not in ("available", "error"):
                raise exception.InvalidVolume(
                    reason="Snapshot %s of volume %s is %s; a cascade delete takes only "
                           "available or error snapshots." % (snapshot.id, volume_id,
                                                              snapshot.status))
            if db.volumes_creating_from(session, snapshot_id=snapshot.id):
                raise exception.InvalidVolume(
                    reason="a volume is being created from snapshot %s" % snapshot.id)
        return snapshots

    def revert(self, ctx, volume_id, snapshot_id):
        """Revert the volume to its latest snapshot (3.40): volume `reverting`, snapshot
        `restoring`, in one transaction; the volume service does the rest."""
        volume = db.volume_get(ctx, volume_id)
        policy.authorize(ctx, "volume:revert_to_snapshot", volume)
        snapshot = db.snapshot_get(ctx, snapshot_id)
        if snapshot.volume_id != volume_id:
            raise exception.InvalidSnapshot(reason="snapshot %s is not a snapshot of volume %s"
                                            % (snapshot_id, volume_id))
        with writer() as s:
            locked = db.volume_get_locked(s, volume_id)
            if locked is None:
                raise exception.VolumeNotFound(volume_id=volume_id)
            snapshots = db.snapshot_get_all_for_volume(volume_id, session=s)
            latest = snapshots[0] if snapshots else None
            if latest is None or latest.id != snapshot_id:
                raise exception.InvalidSnapshot(
                    reason="Specified snapshot %s is not the latest one of volume %s."
                           % (snapshot_id, volume_id))
            if locked.size != latest.volume_size:
                raise exception.InvalidVolume(
                    reason="Can't revert volume %s to its latest snapshot %s. The volume size "
                           "must be equal to the snapshot size." % (volume_id, snapshot_id))
            if locked.status != "available" or locked.attach_status != "detached":
                raise exception.InvalidVolume(
                    reason="Volume status must be 'available' and detached to revert, "
                           "currently %s." % locked.status)
            if latest.status != "available":
                raise exception.InvalidSnapshot(
                    reason="Snapshot status must be 'available' to revert, currently %s."
                           % latest.status)
            db.conditional_update(models.Volume, volume_id, {"status": "reverting"},
                                  {"status": "available"}, session=s)
            db.conditional_update(models.Snapshot, snapshot_id, {"status": "restoring"},
                                  {"status": "available"}, session=s)
            db.worker_release("volume", volume_id, session=s)
            db.worker_claim("volume", volume_id, "revert", host=volume.host.split("#")[0],
                            session=s)
        self.volume_rpcapi.revert_to_snapshot(ctx, volume.host, volume_id, snapshot_id)
        LOG.info("Volume %s revert to snapshot %s accepted", volume_id, snapshot_id)

    def reimage(self, ctx, volume_id, image_id, reimage_reserved=False):
        """Replace the volume's data with the image's (3.68): the image checked with the
        caller's token (it must fit the volume), the volume `downloading` (from `available`
        or `error`, or `reserved` with reimage_reserved: a rebuild of the server booted from
        it) with a workers row, in one transaction; the volume service does the rest."""
        volume = db.volume_get(ctx, volume_id)
        policy.authorize(ctx, "volume:reimage_reserved" if reimage_reserved
                         else "volume:reimage", volume)
        allowed = ("available", "error") + (("reserved",) if reimage_reserved else ())
        if volume.status not in allowed:
            raise exception.InvalidVolume(
                reason="Volume status must be %s to reimage, currently %s."
                       % (" or ".join(allowed), volume.status))
        image_source.checked_image(ctx, image_id, volume.size, for_reimage=True)
        refuse_if_frozen(volume.host)
        with writer() as s:
            locked = db.volume_get_locked(s, volume_id)
            if locked is None or locked.status not in allowed:
                raise exception.InvalidVolume(
                    reason="Volume status must be %s to reimage, currently %s."
                           % (" or ".join(allowed), locked.status if locked else "deleted"))
            db.conditional_update(models.Volume, volume_id,
                                  {"status": "downloading", "previous_status": locked.status},
                                  {"status": locked.status}, session=s)
            db.worker_release("volume", volume_id, session=s)
            db.worker_claim("volume", volume_id, "reimage", host=volume.host.split("#")[0],
                            session=s)
        try:
            self.volume_rpcapi.reimage_volume(ctx, volume.host, volume_id, image_id)
        except Exception as exc:
            volume_status.fail_operation(ctx, volume_id, "downloading", "error",
                                         volume_status.EVENT_REIMAGE, "reimage volume",
                                         "the volume service could not be reached (%s)" % exc)
            raise exception.ServiceBusy(service="volume")
        LOG.info("Volume %s reimage with image %s accepted", volume_id, image_id)

    def update(self, ctx, volume_id, values, metadata=None):
        db.volume_get(ctx, volume_id)
        return db.volume_update(volume_id, values, metadata=metadata)

    def extend(self, ctx, volume_id, new_size, attached_ok=False):
        """attached_ok (3.42): an in-use volume may grow too; it goes back to in-use and
        the compute service is told (volume_worker/flows/extend_volume.py)."""
        volume = db.volume_get(ctx, volume_id)
        policy.authorize(ctx, "volume:extend", volume)
        refuse_if_frozen(volume.host)
        allowed = ("available", "in-use") if attached_ok else ("available",)
        if volume.status == "in-use" and attached_ok:
            policy.authorize(ctx, "volume:extend_attached_volume", volume)
        if volume.status not in allowed:
            raise exception.InvalidVolume(
                reason="Volume status must be '%s' to extend, currently %s."
                       % ("' or '".join(allowed), volume.status))
        if new_size <= volume.size:
            raise exception.InvalidInput(
                reason="New size for extend must be greater than current size. (current: "
                       "%d, extended: %d)." % (volume.size, new_size))
        if not volume.host:  # (an unplaced volume an admin reset to available)
            raise exception.InvalidVolume(reason="Volume %s is on no back end (it was never "
                                                 "placed), so it cannot be extended."
                                          % volume_id)
        with writer() as s:
            won = db.conditional_update(models.Volume, volume_id,
                                        {"status": "extending",
                                         "previous_status": volume.status},
                                        {"status": volume.status, "size": volume.size,
                                         "deleted": False}, session=s)
            if won:
                # 413 (and the status change rolled back) when over quota
                quota.reserve_extend(s, volume, new_size)
                db.worker_release("volume", volume_id, session=s)
                db.worker_claim("volume", volume_id, "extend",
                                host=volume.host.split("#")[0], session=s)
        if not won:
            raise exception.InvalidVolume(reason="Volume status must be '%s' to extend; "
                                                 "another request changed it." % volume.status)
        self.scheduler_rpcapi.extend_volume(ctx, volume_id, new_size)
        LOG.info("Volume %s extend to %d GiB accepted", volume_id, new_size)
