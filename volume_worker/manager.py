"""RPC endpoint of one volume service (host@backend): thin, it starts flows.

Flows run on a bounded pool of native threads; the RPC thread only submits them, so a slow
back end never stalls message handling, and a full pool refuses work with a clear error."""

import datetime
import logging
import threading

import oslo_messaging as messaging
from oslo_config import cfg

from common import context as lamina_context
from common import exception, volume_status
from common.db import api as db
from common.db import attachments_api as attachments
from common.db.models import utcnow
from common.workpool import BoundedWorkPool
from scheduler import rpcapi as scheduler_rpcapi
from volume_worker import image_cache
from volume_worker.flows import attach_volume as attach_flow
from volume_worker.flows import create_snapshot as create_snapshot_flow
from volume_worker.flows import create_volume as create_flow
from volume_worker.flows import delete_snapshot as delete_snapshot_flow
from volume_worker.flows import delete_volume as delete_flow
from volume_worker.flows import detach_volume as detach_flow
from volume_worker.flows import extend_volume as extend_flow
from volume_worker.flows import group_common
from volume_worker.flows import manage_existing as manage_flow
from volume_worker.flows import manage_existing_snapshot as manage_snapshot_flow
from volume_worker.flows import migrate_volume as migrate_flow
from volume_worker.flows import reimage_volume as reimage_flow
from volume_worker.flows import revert_to_snapshot as revert_flow
from volume_worker.flows import unmanage_snapshot as unmanage_snapshot_flow
from volume_worker.flows import unmanage_volume as unmanage_flow
from volume_worker.flows import upload_image as upload_flow

LOG = logging.getLogger(__name__)

volume_manager_opts = [
    cfg.IntOpt("volume_flow_workers", default=32, min=1,
               help="Flows one volume service runs at the same time."),
    cfg.IntOpt("volume_flow_backlog", default=2000, min=1,
               help="Flows that may wait for a free worker; beyond this the service refuses "
                    "new work (the volume goes to error with a 'service busy' message)."),
    cfg.IntOpt("pool_report_interval", default=10, min=1,
               help="Seconds between a volume service's pool capacity reports."),
    cfg.IntOpt("volume_operation_timeout", default=600, min=1,
               help="An operation this service owns (workers table) for which no flow has "
                    "run in this process for this many seconds (its request was lost) is "
                    "cleaned up as at start: creates reverted, deletes finished, extends "
                    "marked error_extending. Checked every minute."),
]
CONF = cfg.CONF
CONF.register_opts(volume_manager_opts)


class VolumeManager:
    target = messaging.Target(version="1.7")

    def __init__(self, host, driver):
        self.host = host  # host@backend
        self.driver = driver
        self.scheduler_rpcapi = scheduler_rpcapi.SchedulerAPI()
        self.pool = BoundedWorkPool("volume (%s)" % host, CONF.volume_flow_workers,
                                    CONF.volume_flow_backlog)
        # Volumes with a flow queued or running here: the reaper leaves them alone.
        self._in_flight = set()
        self._in_flight_lock = threading.Lock()
        # The pools as this service last reported them (control status, pool refresh).
        self._pool_states = []

    # --- lifecycle ---------------------------------------------------------------------------

    def init_host(self):
        self.driver.do_setup()
        self.report_pools()
        db.pools_recount(self.host)
        self.cleanup_interrupted()
        image_cache.ImageVolumeCache(self.driver, self.host).clean_up_interrupted()
        self.restore_exports()

    def shutdown(self):
        self.pool.shutdown(wait=True)

    def periodic_tasks(self):
        return [("report_pools", CONF.pool_report_interval, self.report_pools),
                ("reap_lost_operations", min(60, CONF.volume_operation_timeout),
                 self.reap_lost_operations)]

    def cleanup_interrupted(self):
        """Finish or revert what this service owned when it last stopped.

        A create that was interrupted is reverted (its storage removed, the volume `error`):
        half-made storage cannot be trusted. An interrupted delete is finished. Runs before
        the RPC server starts, so no new request races it; a request for the same volume that
        still waits in the queue finds it no longer `creating` and does nothing."""
        ctxt = lamina_context.get_admin_context()
        for worker in db.worker_get_all(host=self.host):
            self._clean_up(ctxt, worker)

    def restore_exports(self):
        """Exports of live attachments made before this start: make sure each is there (the
        target daemon may have restarted with the host), so compute hosts keep working; and
        the exports of attachments that are gone removed."""
        live = attachments.attachments_on_host(self.host)
        for attachment, volume in live:
            try:
                self.driver.ensure_export(volume, attachments.connector_of(attachment),
                                          attachment.id,
                                          attachments.connection_info_of(attachment))
            except Exception:
                LOG.exception("Could not restore the export of volume %s for attachment %s",
                              volume.id, attachment.id)
        try:
            self.driver.remove_stale_exports(attachments.live_attachment_ids)
        except Exception:
            LOG.exception("Could not remove the exports of attachments that are gone")

    def reap_lost_operations(self):
        """Operations owned here with no flow queued or running, older than the timeout:
        their request was lost (a message dropped, a flow thread killed). End them."""
        cutoff = utcnow() - datetime.timedelta(seconds=CONF.volume_operation_timeout)
        ctxt = lamina_context.get_admin_context()
        for worker in db.worker_get_all(host=self.host):
            with self._in_flight_lock:
                busy = worker.resource_id in self._in_flight
            if busy or (worker.updated_at or worker.created_at) > cutoff:
                continue
            LOG.warning("No flow ran for the %s of %s %s since %s; cleaning it up",
                        worker.operation, worker.resource_type, worker.resource_id,
                        worker.updated_at)
            self._clean_up(ctxt, worker)

    def _clean_up(self, ctxt, worker):
        if worker.resource_type in group_common.RESOURCE_TYPES:
            group_common.clean_up(self, ctxt, worker)
            return
        if worker.resource_type == "snapshot":
            self._clean_up_snapshot(ctxt, worker)
            return
        volume = db.volume_get_internal(worker.resource_id)
        if volume is None or volume.deleted:
            db.worker_release(worker.resource_type, worker.resource_id)
            return
        LOG.warning("Cleaning up interrupted %s of volume %s (status %s)",
                    worker.operation, volume.id, volume.status)
        if volume.status == "creating":
            self._revert_interrupted_create(ctxt, volume)
        elif volume.status == "deleting":
            self._run(delete_flow, ctxt, volume.id)
        elif volume.status == "extending":
            # Whether the storage grew is unknown; the extra claim stays (it may have).
            volume_status.fail_operation(
                ctxt, volume.id, "extending", "error_extending", volume_status.EVENT_EXTEND,
                "extend volume", "the operation was interrupted (volume service restart or lost "
                "request)")
        elif volume.status == "reverting":
            restoring = [snap.id for snap in db.snapshot_get_all_for_volume(volume.id)
                         if snap.status == "restoring"]
            volume_status.fail_operation(
                ctxt, volume.id, "reverting", "error", volume_status.EVENT_REVERT,
                "revert volume to snapshot", "the revert was interrupted (volume service "
                "restart or lost request); the volume's data may be part-way",
                release=revert_flow.snapshot_back_to_available(restoring[0])
                if restoring else None)
        elif volume.status == reimage_flow.REIMAGING:
            reimage_flow.fail(ctxt, volume.id, "the reimage was interrupted (volume service "
                              "restart or lost request); the volume's data may be part-way")
        elif volume.status == "managing":
            manage_flow.end_interrupted(ctxt, volume)
        elif volume.status == "unmanaging":
            self._run(unmanage_flow, ctxt, volume.id)  # finish it: nothing on storage changes
        elif volume.status in migrate_flow.MOVING:
            migrate_flow.end_interrupted(ctxt, volume)
        elif volume.status == "uploading":
            # back to available / in-use: the volume's data never changed
            upload_flow.end_interrupted(ctxt, volume)
        else:
            db.worker_release(worker.resource_type, worker.resource_id)

    def _clean_up_snapshot(self, ctxt, worker):
        snapshot = db.snapshot_get_internal(worker.resource_id)
        volume = snapshot and db.volume_get_internal(snapshot.volume_id)
        if snapshot is None or snapshot.deleted or volume is None:
            db.worker_release(worker.resource_type, worker.resource_id)
            return
        LOG.warning("Cleaning up interrupted %s of snapshot %s (status %s)",
                    worker.operation, snapshot.id, snapshot.status)
        if snapshot.status == "creating" and worker.operation == manage_snapshot_flow.OPERATION:
            # The storage was there before the row: never remove it.
            manage_snapshot_flow.end_interrupted(ctxt, snapshot)
        elif snapshot.status == "unmanaging":
            self._run(unmanage_snapshot_flow, ctxt, snapshot.id)  # nothing on storage changes
        elif snapshot.status == "creating":
            try:
                self.driver.delete_snapshot(snapshot, volume)
            except Exception:
                LOG.exception("Could not remove interrupted snapshot %s", snapshot.id)
            volume_status.fail_snapshot_operation(
                ctxt, snapshot.id, "creating", "error", volume_status.EVENT_SNAPSHOT_CREATE,
                "create snapshot", "the creation was interrupted (volume service restart or "
                "lost request); delete the snapshot and create it again")
        elif snapshot.status == "deleting":
            self._run(delete_snapshot_flow, ctxt, snapshot.id)
        else:
            db.worker_release(worker.resource_type, worker.resource_id)

    def _revert_interrupted_create(self, ctxt, volume):
        try:
            self.driver.delete_volume(volume)
        except Exception:
            LOG.exception("Could not remove storage of interrupted volume %s", volume.id)
        volume_status.fail_operation(
            ctxt, volume.id, "creating", "error", volume_status.EVENT_CREATE, "create volume",
            "the creation was interrupted (the volume service restarted or the request was "
            "lost); delete the volume and create it again",
            release=volume_status.release_volume_claim)

    # --- capacity reports -------------------------------------------------------------------

    def report_pools(self):
        try:
            pools = self.driver.get_pools()
        except Exception as exc:
            LOG.error("Back end %s cannot report capacity (%s); reporting its pools as down",
                      self.host, exc)
            pools = []
            for pool in db.pool_get_all(host=self.host):
                pools.append({"pool_name": pool.pool_name, "total_capacity_gb": 0,
                              "free_capacity_gb": 0, "backend_state": "down",
                              "volume_backend_name": pool.volume_backend_name})
        db.pools_report(self.host, pools, availability_zone=CONF.storage_availability_zone)
        self._pool_states = [
            {"pool": "%s#%s" % (self.host, p["pool_name"]),
             "state": p.get("backend_state", "up"),
             "total_capacity_gb": p.get("total_capacity_gb"),
             "free_capacity_gb": p.get("free_capacity_gb"),
             "reported_at": utcnow().isoformat()} for p in pools]
        try:
            self.scheduler_rpcapi.update_pool_capabilities(
                lamina_context.get_admin_context(), self.host, pools)
        except Exception as exc:
            # The report is in the database already; schedulers reload it periodically.
            # (No scheduler has declared the fanout exchange yet, or the broker is away.)
            LOG.warning("Could not tell the schedulers about %s's pools: %s", self.host, exc)

    # --- operators: lamina-manage and the workers cleanup API -------------------------------

    def control_status(self):
        """What a volume service adds to its control status (common/control.py): the
        operations this process has queued or running now, from its own memory (with the
        workers row of each, when it has one), and its pools as last reported."""
        with self._in_flight_lock:
            running = sorted(self._in_flight)
        owned = {w.resource_id: w for w in db.worker_get_all(host=self.host)}
        in_flight = []
        for resource_id in running:
            worker = owned.get(resource_id)
            in_flight.append({
                "resource_id": resource_id,
                "resource_type": worker.resource_type if worker else None,
                "operation": worker.operation if worker else None,
                "since": (worker.updated_at or worker.created_at).isoformat()
                if worker else None})
        return {"in_flight": in_flight, "pools": list(self._pool_states)}

    def refresh_pools(self, ctxt):
        """Report the pools now (they are reported every pool_report_interval anyway)."""
        self.report_pools()
        return list(self._pool_states)

    def clean_up_operations(self, ctxt, of_host=None):
        """End the operations the workers table gives of_host, as a service's start-up ends
        its own interrupted ones (cleanup_interrupted): creates reverted, deletes finished,
        the others back to a stable status. Of this service's own (of_host None or its
        host), only those no flow here has queued or running and that are older than
        service_down_time (a newer one's request may still be in the queue). Of another
        (dead) host's, all: this service takes them over with its own driver, which reaches
        that host's storage when the two run the same back end (volume_backend_name); else
        what only that host's storage holds (an interrupted create's) stays there.
        Returns the operations ended."""
        of_host = of_host or self.host
        own = of_host == self.host
        # Of a dead host's operations, this service acts as that host (the flows check that
        # the resource is on the host that runs them).
        acting = self if own else VolumeManager(of_host, self.driver)
        cutoff = utcnow() - datetime.timedelta(seconds=CONF.service_down_time)
        ended = []
        try:
            for worker in db.worker_get_all(host=of_host):
                if own:
                    with self._in_flight_lock:
                        busy = worker.resource_id in self._in_flight
                    if busy or (worker.updated_at or worker.created_at) > cutoff:
                        continue
                LOG.warning("Ending the %s of %s %s owned by %s (operator cleanup)",
                            worker.operation, worker.resource_type, worker.resource_id,
                            of_host)
                acting._clean_up(ctxt, worker)
                ended.append({"resource_type": worker.resource_type,
                              "resource_id": worker.resource_id,
                              "operation": worker.operation})
        finally:
            if not own:
                acting.pool.shutdown(wait=True)
        return ended

    # --- RPC methods -------------------------------------------------------------------------

    def create_volume(self, ctxt, volume_id):
        self._submit(create_flow, ctxt, volume_id)

    def delete_volume(self, ctxt, volume_id):
        self._submit(delete_flow, ctxt, volume_id)

    def extend_volume(self, ctxt, volume_id, new_size):
        self._submit(extend_flow, ctxt, volume_id, new_size)

    def create_snapshot(self, ctxt, snapshot_id):
        self._submit(create_snapshot_flow, ctxt, snapshot_id)

    # --- generic volume groups (issue 9; flows in volume_worker/flows/*group*.py) ----------

    def create_group(self, ctxt, group_id):
        from volume_worker.flows import create_group
        group_common.submit(self, create_group, ctxt, group_id)

    def delete_group(self, ctxt, group_id):
        from volume_worker.flows import delete_group
        group_common.submit(self, delete_group, ctxt, group_id)

    def create_group_snapshot(self, ctxt, group_snapshot_id):
        from volume_worker.flows import create_group_snapshot
        group_common.submit(self, create_group_snapshot, ctxt, group_snapshot_id)

    def delete_group_snapshot(self, ctxt, group_snapshot_id):
        from volume_worker.flows import delete_group_snapshot
        group_common.submit(self, delete_group_snapshot, ctxt, group_snapshot_id)

    def create_group_from_src(self, ctxt, group_id):
        from volume_worker.flows import create_group_from_src
        group_common.submit(self, create_group_from_src, ctxt, group_id)

    def delete_snapshot(self, ctxt, snapshot_id):
        self._submit(delete_snapshot_flow, ctxt, snapshot_id)

    def reimage_volume(self, ctxt, volume_id, image_id):
        self._submit(reimage_flow, ctxt, volume_id, image_id)

    def revert_to_snapshot(self, ctxt, volume_id, snapshot_id):
        self._submit(revert_flow, ctxt, volume_id, snapshot_id)

    def manage_existing(self, ctxt, volume_id, pool, ref):
        self._submit(manage_flow, ctxt, volume_id, pool, ref)

    def unmanage_volume(self, ctxt, volume_id):
        self._submit(unmanage_flow, ctxt, volume_id)

    def manage_existing_snapshot(self, ctxt, snapshot_id, ref):
        self._submit(manage_snapshot_flow, ctxt, snapshot_id, ref)

    def unmanage_snapshot(self, ctxt, snapshot_id):
        self._submit(unmanage_snapshot_flow, ctxt, snapshot_id)

    def copy_volume_to_image(self, ctxt, volume_id, image_id):
        self._submit(upload_flow, ctxt, volume_id, image_id)

    # --- attachments: the caller waits for these (RPC call) -----------------------------------

    def export_attachment(self, ctxt, attachment_id, connector):
        return self._call_flow(attach_flow, ctxt, attachment_id, connector)

    def remove_attachment_export(self, ctxt, volume_id, attachment_id, connector):
        return self._call_flow(detach_flow, ctxt, volume_id, attachment_id, connector)

    def _call_flow(self, flow, ctxt, *args):
        """Run a flow on the work pool (bounded like every other) and wait for its result;
        a failure is raised to the caller, whose request ends the operation."""
        future = self.pool.submit(self._run_for_caller, flow, ctxt, *args)
        try:
            return future.result()
        except Exception as exc:
            LOG.warning("%s flow %s ended in failure: %s", flow.FLOW, args[:2], exc)
            raise

    def _run_for_caller(self, flow, ctxt, *args):
        ctxt.update_store()
        return flow.run(ctxt, self.driver, self.host, *args)

    # --- backups (1.4): the backup service waits for these (RPC call) -------------------------

    def prepare_backup_source(self, ctxt, volume_id, backup_id, snapshot_id=None):
        """A readable connection on a point in time of the volume for the backup
        (docs/backups-design.md). A temporary snapshot may take a while (a file is copied
        where there are no reflinks): on the work pool, bounded like any other work."""
        return self._call_on_pool(self._backup_source, ctxt, volume_id, backup_id,
                                  snapshot_id)

    def release_backup_source(self, ctxt, volume_id, backup_id, keep_source_snapshot):
        return self._call_on_pool(self._release_backup_source, ctxt, volume_id, backup_id,
                                  keep_source_snapshot)

    def prepare_restore_target(self, ctxt, volume_id):
        """Quick (the connection of the volume's storage): on the RPC thread."""
        return self.driver.restore_target(self._volume_here(volume_id))

    def _call_on_pool(self, fn, ctxt, *args):
        future = self.pool.submit(self._on_pool, fn, ctxt, *args)
        try:
            return future.result()
        except Exception as exc:
            LOG.warning("%s%s failed: %s", fn.__name__.lstrip("_"), args[:2], exc)
            raise

    @staticmethod
    def _on_pool(fn, ctxt, *args):
        ctxt.update_store()
        return fn(ctxt, *args)

    def _volume_here(self, volume_id):
        volume = db.volume_get_internal(volume_id)
        if volume is None or volume.deleted:
            raise exception.VolumeNotFound(volume_id=volume_id)
        if not volume.host or volume.host.split("#")[0] != self.host:
            raise exception.InvalidVolume(reason="volume %s is not on %s" % (volume_id,
                                                                            self.host))
        return volume

    def _backup_source(self, ctxt, volume_id, backup_id, snapshot_id):
        volume = self._volume_here(volume_id)
        snapshot = None
        if snapshot_id:
            snapshot = db.snapshot_get_internal(snapshot_id)
            if snapshot is None or snapshot.deleted or snapshot.volume_id != volume_id:
                raise exception.SnapshotNotFound(snapshot_id=snapshot_id)
        # A volume being backed up keeps the status it came from in previous_status.
        statuses = {volume.status, volume.previous_status if volume.status == "backing-up"
                    else None}
        in_use = snapshot is None and ("in-use" in statuses or volume.attach_status ==
                                       "attached")
        source = self.driver.backup_source(volume, backup_id, snapshot=snapshot, in_use=in_use)
        LOG.info("Backup %s of volume %s reads %s", backup_id, volume_id,
                 "snapshot %s" % snapshot_id if snapshot else
                 "a temporary snapshot (in use)" if in_use else "the volume")
        return source

    def _release_backup_source(self, ctxt, volume_id, backup_id, keep_source_snapshot):
        volume = db.volume_get_internal(volume_id)
        if volume is None or volume.deleted:
            return None  # its storage went with it, temporary snapshots too
        volume = self._volume_here(volume_id)
        self.driver.release_backup_source(volume, backup_id, keep_source_snapshot,
                                          _live_backup_ids(volume_id))
        return None

    def get_manageable_snapshots(self, ctxt):
        """The back end's snapshots; what a live snapshot row owns is marked not safe."""
        from common.db import volume_actions_api

        volumes = {vid: None for vid in volume_actions_api.volumes_on_backend(self.host)}
        return self.driver.get_manageable_snapshots(db.snapshots_on_backend(self.host),
                                                    volumes)

    def migrate_volume(self, ctxt, volume_id, dest_pool, new_type_id):
        with self._in_flight_lock:
            self._in_flight.add(volume_id)
        try:
            self.pool.submit(self._run_migration, ctxt, volume_id, dest_pool, new_type_id)
        except exception.ServiceBusy as exc:
            with self._in_flight_lock:
                self._in_flight.discard(volume_id)
            migrate_flow.fail(ctxt, volume_id, dest_pool, str(exc))

    def _run_migration(self, ctxt, volume_id, dest_pool, new_type_id):
        ctxt.update_store()
        try:
            migrate_flow.run(ctxt, self, self.host, volume_id, dest_pool, new_type_id)
        except Exception as exc:
            LOG.warning("Migration of volume %s to %s ended in failure: %s", volume_id,
                        dest_pool, exc)
            try:  # a no-op when the reverts ended it
                migrate_flow.fail(ctxt, volume_id, dest_pool,
                                  "%s (and its rollback did not complete)" % exc)
            except Exception:
                LOG.exception("Could not settle the failed migration of %s", volume_id)
        finally:
            with self._in_flight_lock:
                self._in_flight.discard(volume_id)

    def migration_target(self, ctxt, volume, dest_pool, create):
        """Make (or remove) a migration's copy on dest_pool, on this back end or through
        the destination's service."""
        if dest_pool.split("#")[0] == self.host:
            return self._migration_target(volume.id, dest_pool, create)
        rpc = migrate_flow.target_rpc()
        if create:
            return rpc.create_migration_target(ctxt, dest_pool, volume.id, dest_pool)
        return rpc.delete_migration_target(ctxt, dest_pool, volume.id, dest_pool)

    def create_migration_target(self, ctxt, volume_id, dest_pool):
        return self._migration_target(volume_id, dest_pool, True)

    def delete_migration_target(self, ctxt, volume_id, dest_pool):
        return self._migration_target(volume_id, dest_pool, False)

    def _migration_target(self, volume_id, dest_pool, create):
        target = migrate_flow.placed(db.volume_get_internal(volume_id), dest_pool)
        if not create:
            self.driver.delete_volume(target)
            return None
        update = self.driver.create_volume(target) or {}
        try:
            return {"connection": self.driver.migration_connection(target),
                    "provider_location": update.get("provider_location")}
        except Exception:
            self.driver.delete_volume(target)
            raise

    @staticmethod
    def _unplaced_pool(flow, args):
        """The pool a request names for a volume not placed yet (manage: args[0])."""
        return args[0] if flow is manage_flow else ""

    def get_manageable_volumes(self, ctxt):
        """The back end's storage; what a live volume or the image-volume cache owns is
        marked not safe to manage."""
        from common.db import volume_actions_api

        cached = {entry.id for entry in image_cache.ImageVolumeCache(
            self.driver, self.host).entries() if entry.host.split("#")[0] == self.host}
        return self.driver.get_manageable_volumes(
            set(volume_actions_api.volumes_on_backend(self.host)) | cached)

    # flow -> how a refused or failed request ends: (status while queued or running, status
    # after failure, event, release)
    _FAILURE_ENDINGS = {
        create_flow.FLOW: ("creating", "error", volume_status.EVENT_CREATE,
                             lambda args: volume_status.release_volume_claim),
        delete_flow.FLOW: ("deleting", "error_deleting", volume_status.EVENT_DELETE,
                             lambda args: None),
        extend_flow.FLOW: ("extending", "error_extending", volume_status.EVENT_EXTEND,
                             lambda args: volume_status.release_extra_claim(args[0])),
        # a reimage's failure also tells a rebuild waiting on it (_end_failed)
        reimage_flow.FLOW: (reimage_flow.REIMAGING, "error", volume_status.EVENT_REIMAGE,
                            lambda args: None),
        revert_flow.FLOW: ("reverting", "error", volume_status.EVENT_REVERT,
                           lambda args: revert_flow.snapshot_back_to_available(args[0])),
        manage_flow.FLOW: ("managing", "error_managing", volume_status.EVENT_MANAGE,
                           lambda args: manage_flow.release_managed_claim),
        unmanage_flow.FLOW: ("unmanaging", "error_unmanaging", volume_status.EVENT_UNMANAGE,
                             lambda args: None),
        # an upload ends in what the attachments say, not one status (_end_failed)
        upload_flow.FLOW: ("uploading", None, volume_status.EVENT_UPLOAD, lambda args: None),
    }
    # The same for flows whose resource is a snapshot: (status while queued or running,
    # status after failure, event).
    _SNAPSHOT_FAILURE_ENDINGS = {
        create_snapshot_flow.FLOW: ("creating", "error", volume_status.EVENT_SNAPSHOT_CREATE),
        delete_snapshot_flow.FLOW: ("deleting", "error_deleting",
                                    volume_status.EVENT_SNAPSHOT_DELETE),
        manage_snapshot_flow.FLOW: ("creating", "error", volume_status.EVENT_SNAPSHOT_CREATE),
        unmanage_snapshot_flow.FLOW: ("unmanaging", "error_deleting",
                                      volume_status.EVENT_SNAPSHOT_DELETE),
    }

    def _end_failed(self, flow, ctxt, resource_id, args, reason):
        """End a refused or failed operation: status, claims, workers row, user message.
        A no-op when it already ended (the conditional update no longer matches)."""
        action = flow.FLOW.replace("_", " ")
        if flow is upload_flow:
            won = upload_flow.fail(ctxt, resource_id, reason)
            if won:
                upload_flow.delete_image(ctxt, args[0], only_unfinished=True)
            return won
        if flow is reimage_flow:
            return reimage_flow.fail(ctxt, resource_id, reason)
        if flow.FLOW in self._SNAPSHOT_FAILURE_ENDINGS:
            from_status, to_status, event = self._SNAPSHOT_FAILURE_ENDINGS[flow.FLOW]
            return volume_status.fail_snapshot_operation(ctxt, resource_id, from_status,
                                                         to_status, event, action, reason)
        from_status, to_status, event, release = self._FAILURE_ENDINGS[flow.FLOW]
        return volume_status.fail_operation(ctxt, resource_id, from_status, to_status, event,
                                            action, reason, release=release(args))

    def _submit(self, flow, ctxt, volume_id, *args):
        with self._in_flight_lock:
            self._in_flight.add(volume_id)
        try:
            self.pool.submit(self._run, flow, ctxt, volume_id, *args)
        except exception.ServiceBusy as exc:
            with self._in_flight_lock:
                self._in_flight.discard(volume_id)
            self._end_failed(flow, ctxt, volume_id, args, str(exc))

    def _run(self, flow, ctxt, volume_id, *args):
        ctxt.update_store()
        try:
            flow.run(ctxt, self.driver, self.host, volume_id, *args)
        except Exception as exc:
            LOG.warning("%s flow for %s ended in failure: %s", flow.FLOW, volume_id, exc)
            self._settle_failed_flow(flow, ctxt, volume_id, args, exc)
        finally:
            with self._in_flight_lock:
                self._in_flight.discard(volume_id)

    def _settle_failed_flow(self, flow, ctxt, volume_id, args, exc):
        """Normally the flow's reverts have already ended the operation (status, claim,
        workers row). If a revert itself failed (say the database was away), the volume
        would stay in its transitional status: end it here. A no-op when the reverts ran,
        since the conditional update no longer matches."""
        try:
            if flow.FLOW in self._SNAPSHOT_FAILURE_ENDINGS:
                snapshot = db.snapshot_get_internal(volume_id)
                volume = snapshot and db.volume_get_internal(snapshot.volume_id)
                from_status = self._SNAPSHOT_FAILURE_ENDINGS[flow.FLOW][0]
                row = snapshot
            else:
                volume = row = db.volume_get_internal(volume_id)
                from_status = self._FAILURE_ENDINGS[flow.FLOW][0]
            if row is None or row.status != from_status or volume is None or \
                    (volume.host or self._unplaced_pool(flow, args)).split("#")[0] != self.host:
                return
            if flow is create_flow:
                self.driver.delete_volume(volume)
            elif flow is create_snapshot_flow:
                self.driver.delete_snapshot(snapshot, volume)
            self._end_failed(flow, ctxt, volume_id, args,
                             "%s (and its rollback did not complete)" % exc)
        except Exception:
            # The reaper ends it after volume_operation_timeout.
            LOG.exception("Could not settle the failed %s of volume %s", flow.FLOW, volume_id)


def _live_backup_ids(volume_id):
    """Ids of the volume's backups that are neither deleted nor failed: the ones whose
    diff-base snapshots may still serve an incremental."""
    from sqlalchemy import select

    from common.db import backups_api, models
    from common.db.session import reader

    with reader() as s:
        return set(s.scalars(select(models.Backup.id).where(
            models.Backup.volume_id == volume_id, models.Backup.deleted.is_(False),
            models.Backup.status != backups_api.ERROR)))
