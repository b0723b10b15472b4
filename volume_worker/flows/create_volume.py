"""create_volume: make the storage of a scheduled volume and make it available.

Tasks, in order (each has a revert):
  check_still_creating  the row is still `creating` on this host; revert: `error`, release the
                        pool claim and the workers row, tell the user why
  fetch_image           only with volume.image_id: the image's record, asked of the image
                        service with the user's token (still there, still active); revert:
                        nothing to undo
  create_storage        the driver makes the storage (empty, or from the snapshot or source
                        volume the row names; for an image, in this order: a clone of the
                        image's data where the image service keeps it, when the driver can
                        use one of its locations (driver.clone_image: rbd, an image of
                        Glance's rbd store in the same cluster), a clone of the back end's
                        cached copy of it (volume_worker/image_cache.py), or empty storage
                        the next task writes); revert: the driver removes it
  write_image_data      only for an image neither cloned nor found in the cache: its data
                        written into the storage (volume_worker/image_data.py: raw streamed,
                        other formats converted), then a copy kept in the cache when the
                        back end has one;
                        revert: nothing of its own (create_storage's revert removes the
                        storage, the cached copy is the cache's)
  mark_available        `creating` -> `available` and release the workers row (one
                        transaction; for an image also `bootable` and the image's metadata
                        as volume_image_metadata); revert: nothing to undo, the row stays
                        `creating` and the first task's revert sets `error`. Skipped for a
                        volume created from a backup (volume.backup_id), which start_restore
                        ends instead
  start_restore         only with volume.backup_id (a restore to a new volume, or POST /volumes
                        with backup_id): `creating` -> `restoring-backup`, the volume's workers
                        row handed to the backup service (released, and ("backup", id,
                        "restore") claimed for the backup's host) in one transaction, then the
                        cast of backup_rpcapi.restore_backup to the backup's service, which
                        ends the volume `available` (or `error`); revert: the volume back to
                        `creating` and the backup's workers row released, so the earlier
                        reverts remove the storage and end the create in `error` as any
                        failed create
"""

import logging

from taskflow.patterns import linear_flow

from backup_worker import rpcapi as backup_rpcapi
from common import exception, fault, image_service, volume_status
from common.db import api as db
from common.db import backups_api, models
from common.db.models import utcnow
from common.db.session import committed_despite, reader, writer
from volume_worker import image_cache, image_data
from volume_worker.flows import common

LOG = logging.getLogger(__name__)
FLOW = "create_volume"
GiB = 1024 ** 3


class CheckStillCreating(common.Task):
    default_provides = "volume"

    def execute(self, ctxt, volume_id, host):
        fault.check(FLOW + ".check_still_creating")
        # the row's own columns (db.volume_row): what the later tasks and the driver read
        volume = db.volume_row(volume_id)
        if volume is None or volume.status != "creating" or volume.deleted:
            raise exception.InvalidVolume(reason="volume %s is no longer creating" % volume_id)
        if not volume.host or volume.host.split("#")[0] != host:
            raise exception.InvalidVolume(reason="volume %s is not scheduled to %s"
                                          % (volume_id, host))
        return volume

    def revert(self, ctxt, volume_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_still_creating.revert")
        volume_status.fail_operation(ctxt, volume_id, "creating", "error",
                                     volume_status.EVENT_CREATE, "create volume",
                                     common.failure_reason(flow_failures),
                                     release=volume_status.release_volume_claim)


def _live_source(row, kind, ident):
    # The API checked the source; it may have gone since (deleted while this waited).
    if row is None or row.deleted or row.status in ("deleting", "error", "error_deleting"):
        raise exception.InvalidVolume(reason="source %s %s is gone or unusable"
                                      % (kind, ident))
    return row


class FetchImage(common.Task):
    default_provides = "image"

    def execute(self, ctxt, volume):
        if not volume.image_id:
            return None
        fault.check(FLOW + ".fetch_image")
        image = image_service.show(ctxt, volume.image_id)
        if image.get("status") != "active":
            raise exception.ImageUnacceptable(image_id=volume.image_id,
                                              reason="its status is %s, not active"
                                              % image.get("status"))
        return image

    def revert(self, volume, **kwargs):
        LOG.debug("fetch_image reverted for %s: nothing to undo", volume.id)


class CreateStorage(common.Task):
    default_provides = ("model_update", "image_data_written")

    def __init__(self, driver, cache):
        super().__init__(name="create_storage")
        self.driver = driver
        self.cache = cache

    def execute(self, volume, image):
        fault.check(FLOW + ".create_storage")
        if image is not None:
            cloned = self._clone_image(volume, image)
            if cloned is not None:
                return cloned, True
            cached = self.cache.clone(volume, image)
            if cached is not None:
                return cached, True
            return self.driver.create_volume(volume) or {}, False
        return self._create(volume), False

    def _clone_image(self, volume, image):
        for location in image_service.locations(image):
            update = self.driver.clone_image(volume, location, image)
            if update is not None:
                LOG.info("Volume %s made from image %s by a clone of %s", volume.id,
                         image["id"], location)
                return update
        return None

    def _create(self, volume):
        if volume.snapshot_id:
            snapshot = _live_source(db.snapshot_get_internal(volume.snapshot_id), "snapshot",
                                    volume.snapshot_id)
            snapshot_volume = db.volume_get_internal(snapshot.volume_id)
            return self.driver.create_volume_from_snapshot(volume, snapshot,
                                                           snapshot_volume) or {}
        if volume.source_volid:
            source = _live_source(db.volume_get_internal(volume.source_volid), "volume",
                                  volume.source_volid)
            return self.driver.create_cloned_volume(volume, source) or {}
        return self.driver.create_volume(volume) or {}

    def revert(self, volume, result, **kwargs):
        if not isinstance(result, tuple):
            # The driver raised: it cleans up its own partial work; deleting here could remove
            # storage another volume owns (e.g. "already exists").
            return
        LOG.warning("Removing storage of volume %s after a later step failed", volume.id)
        self.driver.delete_volume(volume)


class WriteImageData(common.Task):
    def __init__(self, driver, cache):
        super().__init__(name="write_image_data")
        self.driver = driver
        self.cache = cache

    def execute(self, ctxt, volume, image, image_data_written):
        if image is None or image_data_written:
            return
        fault.check(FLOW + ".write_image_data")
        image_data.write_image(ctxt, image, self.driver.migration_connection(volume),
                               volume.size * GiB)
        fault.check(FLOW + ".write_image_data.written")
        try:
            self.cache.fill(volume, image)
        except Exception:  # a cache that cannot keep a copy fails no create
            LOG.exception("Could not cache image %s after volume %s", image["id"], volume.id)

    def revert(self, volume, **kwargs):
        LOG.debug("write_image_data reverted for %s: create_storage removes the storage",
                  volume.id)


class MarkAvailable(common.Task):
    def execute(self, volume, volume_id, model_update, image):
        if volume.backup_id:
            return  # start_restore ends it: the volume is not available before its data is
        fault.check(FLOW + ".mark_available")
        values = dict(model_update, status="available", launched_at=utcnow())
        if image is not None:
            values["bootable"] = True
        try:
            with writer() as s:
                # available and its workers row released (db.volume_create_finish)
                won = db.volume_create_finish(volume_id, values, s)
                if won and image is not None:
                    s.add_all(models.VolumeGlanceMetadata(volume_id=volume_id, key=key,
                                                          value=value)
                              for key, value in image_data.glance_metadata(image).items())
        except Exception as exc:
            # Only this task moves the volume out of `creating` to available: if it is
            # available now, the commit landed and the storage must stay (reverting would
            # leave an available volume with no storage).
            if not committed_despite(exc, lambda s: _status_is(s, models.Volume, volume_id,
                                                               "available")):
                raise
            LOG.warning("Volume %s: the database went away under the commit making it "
                        "available, which had landed", volume_id)
            won = True
        if not won:
            raise exception.InvalidVolume(reason="volume %s left `creating` while its storage "
                                                 "was being made" % volume_id)
        LOG.info("Volume %s is available", volume_id)

    def revert(self, volume_id, **kwargs):
        # Nothing of ours to undo: the status change is the last thing this task does.
        LOG.debug("mark_available reverted for %s", volume_id)


def _status_is(session, model, row_id, status):
    row = session.get(model, row_id)
    return row is not None and not row.deleted and row.status == status


class StartRestore(common.Task):
    """A volume created from a backup is written by the backup service: hand it over."""

    def execute(self, ctxt, volume, model_update):
        if not volume.backup_id:
            return None
        fault.check(FLOW + ".start_restore")
        backup = _backup_row(volume.backup_id)
        if backup is None or backup.deleted or backup.status != backups_api.RESTORING or \
                backup.restore_volume_id != volume.id:
            raise exception.InvalidVolume(reason="backup %s is no longer being restored to "
                                                 "volume %s" % (volume.backup_id, volume.id))
        values = dict(model_update, status=backups_api.VOLUME_RESTORING, launched_at=utcnow())
        with writer() as s:
            won = db.conditional_update(models.Volume, volume.id, values,
                                        {"status": "creating", "deleted": False}, session=s)
            if won:
                db.worker_release("volume", volume.id, session=s)
                # The backup service owns the restore from here: a restart of it ends the
                # restore (volume `error`) instead of leaving it `restoring-backup` for ever.
                # The backup is `restoring` onto this volume: no other operation holds it,
                # so a row left under its id is stale (the api restores the same way).
                db.worker_release("backup", backup.id, session=s)
                db.worker_claim("backup", backup.id, "restore", host=backup.host, session=s)
        if not won:
            raise exception.InvalidVolume(reason="volume %s left `creating` while its storage "
                                                 "was being made" % volume.id)
        backup_rpcapi.BackupAPI().restore_backup(ctxt, backup.host, backup.id, volume.id)
        LOG.info("Volume %s is made; backup %s is being restored onto it by %s", volume.id,
                 backup.id, backup.host)
        return backup.id

    def revert(self, volume, **kwargs):
        if not volume.backup_id:
            return
        fault.check(FLOW + ".start_restore.revert")
        # Back to `creating` (when this task got that far), so the earlier reverts remove the
        # storage and end the create in `error`, giving the backup back.
        with writer() as s:
            moved = db.conditional_update(models.Volume, volume.id, {"status": "creating"},
                                          {"status": backups_api.VOLUME_RESTORING,
                                           "deleted": False}, session=s)
            if moved:
                db.worker_release("backup", volume.backup_id, session=s)
        if moved:
            LOG.warning("Restore of backup %s onto volume %s not started", volume.backup_id,
                        volume.id)


def _backup_row(backup_id):
    with reader() as s:
        return s.get(models.Backup, backup_id)


def build(driver, host):
    cache = image_cache.ImageVolumeCache(driver, host)
    return linear_flow.Flow(FLOW).add(
        CheckStillCreating(name="check_still_creating"),
        FetchImage(name="fetch_image"),
        CreateStorage(driver, cache),
        WriteImageData(driver, cache),
        MarkAvailable(name="mark_available"),
        StartRestore(name="start_restore"),
    )


def run(ctxt, driver, host, volume_id):
    flow = common.shared_flow(build, driver, host)
    common.run_flow(flow, {"ctxt": ctxt, "volume_id": volume_id, "host": host})
