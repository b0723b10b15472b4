"""Pieces the backup flows share: running a flow (with its notifications,
common/notifications.py), reading why it failed (common/flows.py), the repository and engine
of this service, the progress reporter that also notices a force delete."""

import logging

from oslo_config import cfg

from backup_worker import engine as backup_engine
from backup_worker.chunkstore import open_store
from common import exception, fault
from common.db import api as db
from common.db import models
from common.flows import failure_reason  # noqa: F401 (the flows use them from here)
from common.notifications import run_flow  # noqa: F401

LOG = logging.getLogger(__name__)
CONF = cfg.CONF


class BackupStateChanged(exception.LaminaException):
    """The backup left the status the operation needs (force delete, reset) under it."""

    code = 400
    fault = "badRequest"
    message = "Invalid backup: %(reason)s"


def store_kind():
    """The repository kind this service writes (the backup row's `service`)."""
    return CONF.backup.backup_chunk_store


def make_engine(stopping=None):
    """A BackupEngine on this service's repository (opened per operation: a posix store is
    one sqlite connection, a rados one a cluster connection; the caller closes it).
    `stopping`: the service's Event, set when it stops (see Progress)."""
    engine = backup_engine.BackupEngine(open_store())
    engine.stopping = stopping
    return engine


class ServiceStopping(exception.LaminaException):
    message = "the backup service was stopped during the operation"


class Progress:
    """The engine's progress callback: backup.progress (percent) on the record while the
    operation runs. The update is conditional on the operation's status, so a backup that
    was force-deleted (or reset) under a running operation stops it at its next report; so
    does a service that is stopping (`stopping`, an Event), its operation then ending as a
    failure does rather than being cut off by the process's end."""

    def __init__(self, flow, backup_id, status, stopping=None):
        self.point = flow + ".progress"
        self.backup_id = backup_id
        self.status = status
        self.stopping = stopping
        self.last = -1

    def __call__(self, percent):
        fault.check(self.point)  # tests: a backup slowed or failed part-way
        if self.stopping is not None and self.stopping.is_set():
            raise ServiceStopping()
        value = int(percent)
        if value == self.last and value < 100:
            return
        won = db.conditional_update(models.Backup, self.backup_id, {"progress": value},
                                    {"status": self.status, "deleted": False})
        if not won:
            raise BackupStateChanged(reason="backup %s is no longer %s; stopping"
                                     % (self.backup_id, self.status))
        self.last = value


def still(backup, status, host):
    """Raise unless the backup is in `status` and owned by this backup service."""
    if backup is None or backup.deleted or backup.status != status:
        raise BackupStateChanged(reason="backup %s is no longer %s"
                                 % (getattr(backup, "id", "?"), status))
    if backup.host != host:
        raise BackupStateChanged(reason="backup %s belongs to backup service %s, not %s"
                                 % (backup.id, backup.host, host))


def own_worker(backup_id, operation, host):
    """Make this service the owner of the backup's workers row (the api writes it; a restore
    into a new volume reaches us through the volume service, which may not have one)."""
    if not db.worker_claim("backup", backup_id, operation, host=host):
        db.worker_set_host("backup", backup_id, host)


def pruning():
    """[backup] backup_pruning, declared with the chain rule in common/db/backups_api.py."""
    try:
        return bool(CONF.backup.backup_pruning)
    except cfg.NoSuchOptError:
        return False

