"""RPC endpoint of the backup service: thin, it starts flows (backup_worker/flows/).

Backups and restores move a volume's worth of data each, so at most [backup]
backup_max_concurrent of them run at once; the others wait in the work pool's queue, their
backup still `creating` or `restoring` at progress 0 (the log says they wait), rather than
being refused. Deletes and imports only touch the repository's metadata and run on a small
pool of their own, so they never wait behind a long backup. A queue full beyond
backup_max_queued refuses, ending the operation with a "busy" message as the volume service
does. A stopping service stops its running backups and restores at their next progress
report (they end as failures do) and starts no queued one.

At start (init_host, before the RPC server takes work) the operations this host owned when it
stopped (workers rows ("backup", id)) are ended: an interrupted create becomes `error`, its
data and references dropped and its source given back; an interrupted restore leaves the
backup `available` and the volume failed; an interrupted delete or import is run again to
its end. Then the repository's reference counts are recounted from its manifests, which
gives back what a killed backup had taken."""

import collections
import datetime
import logging
import threading

import oslo_messaging as messaging
from oslo_config import cfg

from backup_worker.flows import common
from backup_worker.flows import create_backup as create_flow
from backup_worker.flows import delete_backup as delete_flow
from backup_worker.flows import import_record as import_flow
from backup_worker.flows import restore_backup as restore_flow
from common import backup_status, exception
from common import context as lamina_context
from common import service as common_service
from common.db import api as db
from common.db import backups_api as states
from common.db.models import utcnow
from common.workpool import BoundedWorkPool

LOG = logging.getLogger(__name__)

backup_manager_opts = [
    cfg.IntOpt("backup_max_concurrent", default=2, min=1,
               help="Backups and restores one backup service runs at the same time; more "
                    "wait in its queue (status creating or restoring, progress 0). Each runs "
                    "its own read, compress and write pools (backup_workers)."),
    cfg.IntOpt("backup_max_queued", default=1000, min=1,
               help="Backups and restores that may wait for a free slot; beyond this the "
                    "service refuses new ones (the backup goes to error, or the restore "
                    "fails, with a 'service busy' message)."),
    cfg.IntOpt("backup_metadata_workers", default=4, min=1,
               help="Deletes and imports (repository metadata only) run at the same time."),
    cfg.BoolOpt("backup_repository_shared", default=False,
                help="The posix repository (backup_posix_path) is shared with other backup "
                     "services (an NFS export mounted on several hosts). A backup service "
                     "recounts its repository's references at start only when no other backup "
                     "service is up then, as it does for a rados pool, which is always "
                     "shared: a running backup holds references no manifest shows yet."),
    cfg.IntOpt("backup_operation_timeout", default=600, min=1,
               help="An operation this backup service owns (workers table) for which no flow "
                    "is queued or running in this process for this many seconds (its request "
                    "was lost) is ended as at start: creates error, restores failed, deletes "
                    "and imports run again. Checked every minute."),
]
CONF = cfg.CONF
CONF.register_opts(backup_manager_opts, group="backup")


class _CreateJob:
    """A create submitted here: queued, running, cancelled (force-deleted while queued) or
    done. A delete of the same backup waits for it to end."""

    def __init__(self):
        self.state = "queued"
        self.lock = threading.Lock()
        self.ended = threading.Event()


class BackupManager:
    target = messaging.Target(version="1.1")

    def __init__(self, host):
        self.host = host
        conf = CONF.backup
        self.data_pool = BoundedWorkPool("backup (%s)" % host, conf.backup_max_concurrent,
                                         conf.backup_max_queued)
        self.metadata_pool = BoundedWorkPool("backup metadata (%s)" % host,
                                             conf.backup_metadata_workers,
                                             conf.backup_max_queued)
        self._lock = threading.Lock()
        self._data_jobs = 0  # backups and restores queued or running here
        self._creates = {}   # backup id -> _CreateJob
        # backup id -> flows queued or running here (a create and its force delete: two)
        self._in_flight = collections.Counter()
        # set at shutdown: running backups and restores stop at their next progress report
        # and end as failures; queued ones do not start (the next start ends them)
        self._stopping = threading.Event()

    # --- lifecycle ---------------------------------------------------------------------------

    def init_host(self):
        self.cleanup_interrupted()
        self.check_repository()

    def shutdown(self):
        self._stopping.set()
        self.metadata_pool.shutdown(wait=True)
        self.data_pool.shutdown(wait=True)

    def periodic_tasks(self):
        return [("reap_lost_operations", min(60, CONF.backup.backup_operation_timeout),
                 self.reap_lost_operations)]

    def reap_lost_operations(self):
        """Operations owned here with no flow queued or running, older than the timeout:
        their request was lost (a message dropped). End them as the start-up cleanup does."""
        cutoff = utcnow() - datetime.timedelta(seconds=CONF.backup.backup_operation_timeout)
        ctxt = lamina_context.get_admin_context()
        for worker in db.worker_get_all(host=self.host):
            if worker.resource_type != "backup":
                continue
            with self._lock:
                busy = self._in_flight[worker.resource_id] > 0
            if busy or (worker.updated_at or worker.created_at) > cutoff:
                continue
            LOG.warning("No flow ran for the %s of backup %s since %s; ending it",
                        worker.operation, worker.resource_id,
                        worker.updated_at or worker.created_at)
            try:
                self._clean_up(ctxt, worker, lost=True)
            except Exception:
                LOG.exception("Could not end the lost %s of backup %s", worker.operation,
                              worker.resource_id)

    def cleanup_interrupted(self):
        """End what this service owned when it last stopped (see the module docstring)."""
        ctxt = lamina_context.get_admin_context()
        for worker in db.worker_get_all(host=self.host):
            if worker.resource_type != "backup":
                continue
            try:
                self._clean_up(ctxt, worker)
            except Exception:
                LOG.exception("Could not clean up the interrupted %s of backup %s",
                              worker.operation, worker.resource_id)

    def _clean_up(self, ctxt, worker, lost=False):
        backup = backup_status.db_backup(worker.resource_id)
        if backup is None or backup.deleted:
            db.worker_release("backup", worker.resource_id)
            return
        LOG.warning("Cleaning up the interrupted %s of backup %s (status %s)",
                    worker.operation, backup.id, backup.status)
        if backup.status == states.CREATING and worker.operation == import_flow.OPERATION:
            self._run_now(import_flow, ctxt, backup.id)  # it changes nothing: run it again
        elif backup.status == states.CREATING:
            engine = common.make_engine()
            try:
                create_flow.end_interrupted(ctxt, engine, backup,
                                            create_flow.LOST if lost else create_flow.INTERRUPTED)
            finally:
                engine.store.close()
        elif backup.status == states.RESTORING:
            restore_flow.end_interrupted(
                ctxt, backup, restore_flow.LOST if lost else restore_flow.INTERRUPTED)
        elif backup.status == states.DELETING:
            self._run_now(delete_flow, ctxt, backup.id)
        else:
            db.worker_release("backup", backup.id)

    def check_repository(self):
        """Recount the references from the manifests (what killed backups leaked) and remove
        the temporary files killed writers left. Only while no other live backup service
        could be writing to the same repository: a rados pool is shared by every backup
        service, a posix directory is this host's unless backup_repository_shared."""
        shared = common.store_kind() != "posix" or CONF.backup.backup_repository_shared
        if shared and self._peers_up():
            LOG.info("Other backup services are up: the shared repository is not recounted")
            return
        store = common.make_engine().store
        try:
            fixed, removed = store.recount_references()
            if fixed or removed:
                LOG.warning("Repository recount: %d chunk counts corrected, %d unreferenced "
                            "chunks removed", fixed, removed)
            stale = getattr(store, "remove_stale_temp", None)
            if stale is not None:
                stale()
        except Exception:
            LOG.exception("Could not recount the backup repository's references")
        finally:
            store.close()

    def _peers_up(self):
        return any(svc.host != self.host and common_service.is_up(svc.heartbeat_at)
                   for svc in db.service_get_all(binary=common_service.BACKUP_BINARY))

    # --- RPC methods -------------------------------------------------------------------------

    def create_backup(self, ctxt, backup_id):
        job = _CreateJob()
        with self._lock:
            self._creates[backup_id] = job
        self._submit_data(create_flow, ctxt, backup_id, job=job)

    def restore_backup(self, ctxt, backup_id, volume_id):
        self._submit_data(restore_flow, ctxt, backup_id, volume_id)

    def delete_backup(self, ctxt, backup_id):
        self._submit_metadata(delete_flow, ctxt, backup_id)

    def import_record(self, ctxt, backup_id):
        self._submit_metadata(import_flow, ctxt, backup_id)

    # --- running flows -----------------------------------------------------------------------

    def _submit_data(self, flow, ctxt, backup_id, *args, job=None):
        with self._lock:
            self._in_flight[backup_id] += 1
            waiting = self._data_jobs >= CONF.backup.backup_max_concurrent
            self._data_jobs += 1
        if waiting:
            LOG.info("%s of backup %s waits: %d backups and restores are running or queued "
                     "ahead of it, at most %d run at once", flow.FLOW, backup_id,
                     self._data_jobs - 1, CONF.backup.backup_max_concurrent)
        try:
            self.data_pool.submit(self._run_data, flow, ctxt, backup_id, args, job)
        except exception.ServiceBusy as exc:
            with self._lock:
                self._data_jobs -= 1
                self._in_flight -= collections.Counter([backup_id])
            self._end_failed(flow, ctxt, backup_id, args, str(exc))
            if job is not None:
                self._create_ended(backup_id, job)

    def _run_data(self, flow, ctxt, backup_id, args, job):
        try:
            if self._stopping.is_set():
                LOG.info("%s of backup %s not started: the service is stopping (its next "
                         "start ends it)", flow.FLOW, backup_id)
                return
            if job is not None:
                with job.lock:
                    if job.state == "cancelled":
                        return  # force-deleted while it waited; the delete gave the source back
                    job.state = "running"
            self._run(flow, ctxt, backup_id, *args)
        finally:
            with self._lock:
                self._data_jobs -= 1
                self._in_flight -= collections.Counter([backup_id])
            if job is not None:
                self._create_ended(backup_id, job)

    def _create_ended(self, backup_id, job):
        with job.lock:
            if job.state != "cancelled":
                job.state = "done"
        job.ended.set()
        with self._lock:
            if self._creates.get(backup_id) is job:
                del self._creates[backup_id]

    def _submit_metadata(self, flow, ctxt, backup_id):
        with self._lock:
            self._in_flight[backup_id] += 1
        try:
            self.metadata_pool.submit(self._run_metadata, flow, ctxt, backup_id)
        except exception.ServiceBusy as exc:
            with self._lock:
                self._in_flight -= collections.Counter([backup_id])
            self._end_failed(flow, ctxt, backup_id, (), str(exc))

    def _run_metadata(self, flow, ctxt, backup_id):
        try:
            self._run(flow, ctxt, backup_id)
        finally:
            with self._lock:
                self._in_flight -= collections.Counter([backup_id])

    def _run(self, flow, ctxt, backup_id, *args):
        ctxt.update_store()
        engine = common.make_engine(self._stopping)
        try:
            if flow is delete_flow:
                delete_flow.run(ctxt, engine, self.host, backup_id, self.wait_for_create)
            else:
                flow.run(ctxt, engine, self.host, backup_id, *args)
        except Exception as exc:
            LOG.warning("%s flow for backup %s ended in failure: %s", flow.FLOW, backup_id, exc)
            # Normally the reverts ended the operation; if one of them failed (the database
            # was away, an injected revert failure) end it here. A no-op when they ran.
            try:
                self._end_failed(flow, ctxt, backup_id, args,
                                 "%s (and its rollback did not complete)" % exc)
            except Exception:
                LOG.exception("Could not settle the failed %s of backup %s", flow.FLOW,
                              backup_id)
        finally:
            engine.store.close()

    def _run_now(self, flow, ctxt, backup_id):
        """Run a metadata flow in this thread (start-up cleanup)."""
        self._run(flow, ctxt, backup_id)

    def wait_for_create(self, backup_id):
        """Called by the delete flow: a create of this backup that waits in the queue is
        cancelled (its source given back now); one that runs is waited for (it stops at its
        next progress report, finding the backup `deleting`, and removes what it wrote)."""
        with self._lock:
            job = self._creates.get(backup_id)
        if job is None:
            return
        with job.lock:
            cancelled = job.state == "queued"
            if cancelled:
                job.state = "cancelled"
        if cancelled:
            LOG.info("Backup %s was deleted while it waited; it will not run", backup_id)
            backup_status.fail_create(lamina_context.get_admin_context(), backup_id,
                                      "deleted before it ran")
            job.ended.set()
            return
        job.ended.wait()

    def _end_failed(self, flow, ctxt, backup_id, args, reason):
        if flow is create_flow:
            return backup_status.fail_create(ctxt, backup_id, reason)
        if flow is import_flow:
            return backup_status.fail_create(ctxt, backup_id, reason, give_source_back=False)
        if flow is restore_flow:
            return backup_status.fail_restore(ctxt, backup_id, args[0], reason)
        return backup_status.fail_delete(ctxt, backup_id, reason)
