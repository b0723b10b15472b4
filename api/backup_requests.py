"""The request-handling layer for backups: check input against state, reserve quota, write
the database, choose the backup service and cast to it. It never touches storage; the split
of the work with the backup and volume services is docs/backups-design.md, the states are in
common/db/backups_api.py."""

import logging

from api.backends import refuse_if_frozen
from backup_worker import rpcapi as backup_rpcapi
from common import backup_status, exception, quota
from common.db import api as db
from common.db import backups_api, models
from common.db.models import utcnow
from common.db.session import writer

LOG = logging.getLogger(__name__)
CONF = backups_api.CONF


class BackupRequests:
    def __init__(self, volume_requests=None):
        self.backup_rpcapi = backup_rpcapi.BackupAPI()
        # A restore to a new volume creates and schedules it as POST /volumes does.
        self.volume_requests = volume_requests

    # --- create ------------------------------------------------------------------------------

    def create(self, ctx, volume_id, name=None, description=None, container=None,
               incremental=False, force=False, snapshot_id=None, metadata=None,
               availability_zone=None):
        volume = db.volume_get(ctx, volume_id)  # 404 for a volume the caller cannot see
        snapshot = db.snapshot_get(ctx, snapshot_id) if snapshot_id else None
        self._check_source(volume, snapshot, force)
        refuse_if_frozen(volume.host)
        zone = availability_zone or volume.availability_zone
        # 503 (and nothing written) when no backup service can read this volume
        host = backups_api.choose_backup_host(volume.host, zone)
        backup_id = db.new_id()
        with writer() as s:
            # Locked: a concurrent delete or a second backup of the volume sees this one's
            # `backing-up`, or this sees theirs; the checks are made again on the rows as
            # they are now.
            locked = db.volume_get_locked(s, volume_id)
            if locked is None:
                raise exception.VolumeNotFound(volume_id=volume_id)
            if snapshot is not None:
                snapshot = s.get(models.Snapshot, snapshot_id)
                if snapshot is None or snapshot.deleted:
                    raise exception.SnapshotNotFound(snapshot_id=snapshot_id)
            self._check_source(locked, snapshot, force)
            parent = None
            if incremental:
                parent = backups_api.newest_available_backup(
                    s, volume_id, ctx.project_id,
                    before=snapshot.created_at if snapshot is not None else None)
                if parent is None:
                    raise backups_api.InvalidBackup(
                        reason="No backups available to do an incremental backup.")
            # 413 (and the transaction rolled back) when over the backups quotas
            quota.reserve_backup(ctx.project_id, locked.size, session=s)
            backup = backups_api.backup_add(s, {
                "id": backup_id, "project_id": ctx.project_id, "user_id": ctx.user_id,
                "volume_id": volume_id, "snapshot_id": snapshot_id, "host": host,
                "availability_zone": zone, "name": name, "description": description,
                "container": container, "status": backups_api.CREATING, "size": locked.size,
                "object_count": 0, "parent_id": parent.id if parent else None,
                "is_incremental": parent is not None, "num_dependent_backups": 0,
                "data_timestamp": snapshot.created_at if snapshot is not None else utcnow(),
                "progress": 0,
            }, metadata=metadata)
            if parent is not None and not backups_api.add_dependent(s, parent.id, 1):
                raise backups_api.InvalidBackup(
                    reason="The parent backup must be available for incremental backup.")
            if snapshot is not None:
                moved = db.conditional_update(
                    models.Snapshot, snapshot_id, {"status": backups_api.SNAPSHOT_BACKING_UP},
                    {"status": "available", "deleted": False}, session=s)
            else:
                moved = db.conditional_update(
                    models.Volume, volume_id,
                    {"status": backups_api.VOLUME_BACKING_UP, "previous_status": locked.status},
                    {"status": locked.status, "deleted": False}, session=s)
            if not moved:
                raise exception.InvalidVolume(reason="Volume %s changed status meanwhile."
                                              % volume_id)
            if not db.worker_claim("backup", backup_id, "create", host=host, session=s):
                raise backups_api.InvalidBackup(reason="backup %s is busy" % backup_id)
        try:
            self.backup_rpcapi.create_backup(ctx, host, backup_id)
        except Exception as exc:
            self._fail_unsent_create(ctx, backup, exc)
            raise exception.ServiceBusy(service="backup")
        LOG.info("Backup %s of volume %s (%s) accepted for %s", backup_id, volume_id,
                 "incremental on %s" % parent.id if parent else "full", host)
        return backup

    @staticmethod
    def _check_source(volume, snapshot, force):
        """400 in Cinder's words when the volume (or the snapshot) cannot be read now."""
        if snapshot is not None:
            if snapshot.volume_id != volume.id:
                raise exception.InvalidVolume(
                    reason="Volume %s does not match with snapshot.volume_id %s."
                           % (volume.id, snapshot.volume_id))
            if snapshot.status != "available":
                raise exception.InvalidSnapshot(
                    reason='Snapshot to be backed up must be available, but the current '
                           'status is "%s".' % snapshot.status)
            return
        if volume.status not in backups_api.BACKUP_SOURCE_STATUSES:
            raise exception.InvalidVolume(
                reason='Volume to be backed up must be available or in-use, but the current '
                       'status is "%s".' % volume.status)
        if volume.status == "in-use" and not force:
            raise exception.InvalidVolume(
                reason="Backing up an in-use volume must use the force flag.")

    @staticmethod
    def _fail_unsent_create(ctx, backup, exc):
        """The cast did not leave: the backup ends `error`, its source back as it was, as
        the backup service ends a failed create (common/backup_status.py)."""
        backup_status.fail_create(ctx, backup.id,
                                  "the backup service could not be reached (%s)" % exc)

    # --- restore -----------------------------------------------------------------------------

    def restore(self, ctx, backup_id, volume_id=None, name=None):
        """Restore to an existing volume, or (no volume_id) to a new one created and
        scheduled as POST /volumes creates one. Returns the volume."""
        backup = backups_api.backup_get(ctx, backup_id)
        if backup.status != backups_api.AVAILABLE:
            raise backups_api.InvalidBackup(reason="Backup status must be available")
        if volume_id is None:
            # checks the backup service is up too (503 before the volume is made)
            return self.volume_requests.create(
                ctx, backup.size, name=name or "restore_backup_%s" % backup_id,
                description="auto-created_from_restore_from_backup", metadata={},
                backup_id=backup_id)
        volume = db.volume_get(ctx, volume_id)
        refuse_if_frozen(volume.host)
        self._check_target(volume, backup)
        host = backups_api.require_backup_host(backup.host)
        with writer() as s:
            locked = db.volume_get_locked(s, volume_id)
            if locked is None:
                raise exception.VolumeNotFound(volume_id=volume_id)
            self._check_target(locked, backup)
            if not db.conditional_update(models.Backup, backup_id,
                                         {"status": backups_api.RESTORING,
                                          "restore_volume_id": volume_id},
                                         {"status": backups_api.AVAILABLE, "deleted": False},
                                         session=s):
                raise backups_api.InvalidBackup(reason="Backup status must be available")
            if not db.conditional_update(models.Volume, volume_id,
                                         {"status": backups_api.VOLUME_RESTORING},
                                         {"status": "available", "deleted": False,
                                          "attach_status": "detached"}, session=s):
                raise exception.InvalidVolume(
                    reason="Volume to be restored to must be available")
            db.worker_release("backup", backup_id, session=s)
            db.worker_claim("backup", backup_id, "restore", host=host, session=s)
        try:
            self.backup_rpcapi.restore_backup(ctx, host, backup_id, volume_id)
        except Exception as exc:
            self._fail_unsent_restore(backup_id, volume_id, exc)
            raise exception.ServiceBusy(service="backup")
        LOG.info("Restore of backup %s onto volume %s accepted", backup_id, volume_id)
        return locked

    @staticmethod
    def _check_target(volume, backup):
        if volume.status != "available":
            raise exception.InvalidVolume(reason="Volume to be restored to must be available")
        if backup.size > volume.size:
            raise exception.InvalidVolume(
                reason="volume size %d is too small to restore backup of size %d."
                       % (volume.size, backup.size))

    @staticmethod
    def _fail_unsent_restore(backup_id, volume_id, exc):
        """Nothing was written to the volume: both go back to available."""
        with writer() as s:
            if db.conditional_update(models.Backup, backup_id,
                                     {"status": backups_api.AVAILABLE, "restore_volume_id": None},
                                     {"status": backups_api.RESTORING,
                                      "restore_volume_id": volume_id}, session=s):
                db.conditional_update(models.Volume, volume_id, {"status": "available"},
                                      {"status": backups_api.VOLUME_RESTORING}, session=s)
                db.worker_release("backup", backup_id, session=s)
        LOG.error("Restore of backup %s onto volume %s not sent: %s", backup_id, volume_id,
                  exc)

    # --- delete, admin actions ---------------------------------------------------------------

    def delete(self, ctx, backup_id, force=False):
        """force (admin os-force_delete): from FORCE_DELETABLE (not while restoring)."""
        backup = backups_api.backup_get(ctx, backup_id)
        allowed = backups_api.FORCE_DELETABLE if force else backups_api.DELETABLE
        if backup.status not in allowed:
            raise backups_api.InvalidBackup(
                reason="Backup status must be available or error" if not force else
                "Backup status must be one of %s to force delete, currently %s."
                % (", ".join(allowed), backup.status))
        pruning = CONF.backup.backup_pruning
        if backup.num_dependent_backups and not pruning:
            raise backups_api.InvalidBackup(reason="Incremental backups exist for this backup.")
        host = backups_api.require_backup_host(backup.host)
        expected = {"status": allowed, "deleted": False}
        if not pruning:
            # an incremental made meanwhile on this one keeps it
            expected["num_dependent_backups"] = 0
        with writer() as s:
            if backups_api.volumes_restoring_from(s, backup_id):
                raise backups_api.InvalidBackup(
                    reason="a volume is being created from backup %s; delete it when that is "
                           "done" % backup_id)
            won = db.conditional_update(models.Backup, backup_id,
                                        {"status": backups_api.DELETING}, expected, session=s)
            if won:
                db.worker_release("backup", backup_id, session=s)
                db.worker_claim("backup", backup_id, "delete", host=host, session=s)
        if not won:
            raise backups_api.InvalidBackup(
                reason="Backup status must be available or error, and no incremental backups "
                       "may exist for it; another request changed it.")
        try:
            self.backup_rpcapi.delete_backup(ctx, host, backup_id)
        except Exception as exc:
            backup_status.fail_delete(ctx, backup_id,
                                      "the backup service could not be reached (%s)" % exc)
            raise exception.ServiceBusy(service="backup")
        LOG.info("Backup %s delete accepted%s", backup_id, " (forced)" if force else "")

    @staticmethod
    def reset_status(ctx, backup_id, status):
        """Admin: set the status without touching the repository. An operation the backup
        service still owns is given up, so its cleanup cannot flip the status back later."""
        backups_api.backup_get(ctx, backup_id)
        with writer() as s:
            db.conditional_update(models.Backup, backup_id,
                                  {"status": status, "restore_volume_id": None},
                                  {"deleted": False}, session=s)
            db.worker_release("backup", backup_id, session=s)
        LOG.warning("Backup %s status reset to %s by %s", backup_id, status, ctx.user_id)

    # --- export and import of records ---------------------------------------------------------

    @staticmethod
    def export_record(ctx, backup_id):
        from common import backup_record

        backup = backups_api.backup_get(ctx, backup_id)
        if backup.status != backups_api.AVAILABLE:
            raise backups_api.InvalidBackup(reason="Backup status must be available and not "
                                                   "%s." % backup.status)
        # `service` (the repository kind) is set by the backup service when the backup
        # completes; a backup reset to available by an admin may have none.
        return {"backup_service": backup_record.cinder_service(backup.service),
                "backup_url": backup_record.encode(backup)}

    def import_record(self, ctx, backup_service, backup_url):
        from common import backup_record

        record = backup_record.decode(backup_url)  # 400 for garbage, before anything
        metadata = record.pop("metadata")
        backup_id = record["id"]
        live = [h for h in (record.get("host"),) if h]
        try:
            # the service whose repository held it, else any live one (it checks the
            # manifest is in its repository)
            host = backups_api.require_backup_host(live[0]) if live else None
        except backups_api.BackupServiceNotFound:
            host = None
        host = host or backups_api.any_backup_host()
        values = dict(record, project_id=ctx.project_id, user_id=ctx.user_id,
                      status=backups_api.CREATING, host=host,
                      service=record.get("service") or backup_record.lamina_service(
                          backup_service), fail_reason=None,
                      restore_volume_id=None, progress=0, deleted=False, deleted_at=None)
        with writer() as s:
            existing = backups_api.backup_get_internal(backup_id, session=s)
            if existing is not None and not existing.deleted:
                raise backups_api.InvalidBackup(reason="Backup already exists in database.")
            quota.reserve_backup(ctx.project_id, values["size"], session=s)  # 413
            values["num_dependent_backups"] = backups_api.count_dependents(s, backup_id)
            if existing is None:
                backup = backups_api.backup_add(s, values, metadata=metadata)
            else:
                # Cinder revives the deleted row too (its id links the incrementals)
                backup = backups_api.backup_revive(s, backup_id, values, metadata=metadata)
            backups_api.add_dependent(s, values.get("parent_id"), 1, parent_status=None)
            db.worker_release("backup", backup_id, session=s)
            db.worker_claim("backup", backup_id, "import", host=host, session=s)
        try:
            self.backup_rpcapi.import_record(ctx, host, backup_id)
        except Exception as exc:
            # an import has no source to give back
            backup_status.fail_create(ctx, backup_id, "the backup service could not be "
                                      "reached (%s)" % exc, give_source_back=False)
            raise exception.ServiceBusy(service="backup")
        LOG.info("Backup record %s imported, sent to %s to check", backup_id, host)
        return backup
