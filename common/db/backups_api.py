"""Backups: the states of a backup and of the volume (or snapshot) it reads or writes, in one
place, and the queries on the backups table.

A backup goes

    creating --(the backup service stored every chunk and the manifest)--> available
        creating --(failure, or the service restarted mid-backup)--> error
    available | error --(delete)--> deleting --(manifest and references gone)--> (row deleted)
        deleting --(failure)--> error_deleting
    available --(restore)--> restoring --(done, or failed)--> available

while its source is `backing-up`: the volume (from `available`, or `in-use` with force; it
returns to the status kept in previous_status) or, for a backup of a snapshot, the snapshot
(from and back to `available`; the volume is untouched then). A restore writes a volume that
is `restoring-backup`: an existing `available` volume, which ends `available` (or
`error_restoring` when the restore failed), or a new one created for it (POST
/backups/{id}/restore without volume_id, or POST /volumes with backup_id at 3.47), which is
`creating` first (volumes.backup_id names the backup) and ends `available` (or `error`).

Admins reset a backup's status (available, error) and force-delete it from any status but
`restoring`. A backup whose incrementals depend on it (num_dependent_backups > 0) is refused
deletion unless [backup] backup_pruning is on: every manifest lists all its chunks, so the
dependents restore on their own and are re-pointed to the deleted backup's parent.

A backup counts in the quotas `backups` and `backup_gigabytes` (its volume's size) from its
insert until its row is deleted (common/quota.py reserve_backup/release_backup). The backup
service that owns a running operation holds a workers row ("backup", id) as the volume
service does, so a restart ends it (common/backup_status.py)."""

from oslo_config import cfg
from sqlalchemy import false, func, select, update

from common import exception, service
from common.db import api as db
from common.db import models
from common.db.models import utcnow
from common.db.session import reader, writer

CREATING, AVAILABLE, ERROR = "creating", "available", "error"
DELETING, ERROR_DELETING = "deleting", "error_deleting"
RESTORING = "restoring"

# The source's status while a backup reads it, and a restore target's while one writes it.
VOLUME_BACKING_UP = "backing-up"
SNAPSHOT_BACKING_UP = "backing-up"
VOLUME_RESTORING = "restoring-backup"
VOLUME_RESTORE_FAILED = "error_restoring"

# Volume statuses a backup may read (in-use only with force).
BACKUP_SOURCE_STATUSES = ("available", "in-use")
DELETABLE = (AVAILABLE, ERROR)
FORCE_DELETABLE = (AVAILABLE, ERROR, CREATING, DELETING, ERROR_DELETING)
RESET_STATUSES = (AVAILABLE, ERROR)

backup_opts = [
    cfg.BoolOpt("backup_pruning", default=False,
                help="Allow deleting a backup that later incremental backups depend on. Every "
                     "manifest lists all its chunks, so the dependents still restore on their "
                     "own; they are re-pointed to the deleted backup's parent. Off: such a "
                     "delete is refused, as Cinder refuses it."),
]
CONF = cfg.CONF
CONF.register_opts(backup_opts, group="backup")


# Cinder's exceptions for backups (names and messages as its API answers them).
class BackupNotFound(exception.NotFound):
    message = "Backup %(backup_id)s could not be found."


class InvalidBackup(exception.BadRequest):
    message = "Invalid backup: %(reason)s"


class BackupServiceNotFound(exception.LaminaException):
    """No live, enabled backup service can take the request: nothing was written."""

    code = 503
    fault = "serviceUnavailable"
    message = "Service %(service)s could not be found."


# --- reads -------------------------------------------------------------------------------------

def _scope(ctx, stmt, project_only=True):
    stmt = stmt.where(models.Backup.deleted == false())
    if project_only or not ctx.is_admin:
        stmt = stmt.where(models.Backup.project_id == ctx.project_id)
    return stmt


def backup_get(ctx, backup_id, project_only=True):
    """The live backup in the caller's project (an admin sees every project's); 404 else."""
    with reader() as s:
        backup = s.scalars(_scope(ctx, select(models.Backup).where(
            models.Backup.id == backup_id), project_only=project_only and not ctx.is_admin)
        ).first()
        if backup is None:
            raise BackupNotFound(backup_id=backup_id)
        return backup


def backup_get_internal(backup_id, session=None):
    """A backup row by id for the services (no project scope, deleted rows too); None when
    there is none."""
    stmt = select(models.Backup).where(models.Backup.id == backup_id)
    if session is not None:
        return session.scalars(stmt).first()
    with reader() as s:
        return s.scalars(stmt).first()


FILTER_COLUMNS = ("name", "status", "volume_id", "project_id")


def _filters(stmt, filters):
    for key, value in (filters or {}).items():
        if key not in FILTER_COLUMNS:
            raise exception.InvalidInput(reason="Invalid filters %s are found in query "
                                                "options." % key)
        stmt = stmt.where(getattr(models.Backup, key) == value)
    return stmt


def backup_get_all(ctx, filters=None, marker=None, limit=None, offset=0,
                   sort_keys=("created_at",), sort_dirs=("desc",), all_projects=False):
    """The list (GET /backups[/detail]): filters on FILTER_COLUMNS, marker pagination over
    sort_keys (id the tie-breaker), then offset rows skipped, at most limit returned."""
    project_only = not (all_projects and ctx.is_admin)
    with reader() as s:
        stmt = _filters(_scope(ctx, select(models.Backup), project_only=project_only), filters)
        marker_row = None
        if marker is not None:
            marker_row = s.scalars(_scope(ctx, select(models.Backup).where(
                models.Backup.id == marker), project_only=project_only)).first()
            if marker_row is None:
                raise exception.MarkerNotFound(marker=marker)
        stmt = db.paginate(stmt, models.Backup, sort_keys, sort_dirs, marker_row, None)
        if offset:
            stmt = stmt.offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list(s.scalars(stmt))


def backup_count(ctx, filters=None, all_projects=False):
    """with_count (3.45): how many backups the list's filters match, paging aside."""
    with reader() as s:
        return s.scalar(_filters(_scope(ctx, select(func.count(models.Backup.id)),
                                        project_only=not (all_projects and ctx.is_admin)),
                                 filters))


def newest_available_backup(session, volume_id, project_id, before=None):
    """The parent of an incremental: the newest `available` backup of the volume in the
    project by the point in time its data is from; for a backup of a snapshot, only those
    whose data is older than the snapshot (a later full backup is not its base)."""
    stmt = select(models.Backup).where(
        models.Backup.volume_id == volume_id, models.Backup.project_id == project_id,
        models.Backup.deleted == false(), models.Backup.status == AVAILABLE)
    if before is not None:
        stmt = stmt.where(models.Backup.data_timestamp < before)
    stmt = stmt.order_by(models.Backup.data_timestamp.desc(), models.Backup.created_at.desc())
    return session.scalars(stmt.limit(1)).first()


def volumes_restoring_from(session, backup_id):
    """Is a volume being created from this backup (3.47, or a restore to a new volume)?"""
    return session.scalars(select(models.Volume.id).where(
        models.Volume.deleted == false(), models.Volume.backup_id == backup_id,
        models.Volume.status.in_(("creating", VOLUME_RESTORING))).limit(1)).first() is not None


# --- the backup service ------------------------------------------------------------------------

def _live_backup_services():
    return [row for row in db.service_get_all(binary=service.BACKUP_BINARY)
            if not row.disabled and service.is_up(row.heartbeat_at)]


def choose_backup_host(volume_host, availability_zone):
    """The backup service a new backup of a volume on volume_host (host@backend#pool) goes
    to: the live one on the volume's own host (file and lvm volumes are read through a local
    connection, so only it can read them), else any live one in the availability zone.
    None: 503, before anything is written (docs/backups-design.md)."""
    storage_host = (volume_host or "").split("#")[0].split("@")[0]
    # the backup's zone is its service's (3.51 asks for one)
    in_zone = [row for row in _live_backup_services()
               if not availability_zone or row.availability_zone == availability_zone]
    for row in in_zone:
        if row.host == storage_host:
            return row.host
    in_zone = sorted(row.host for row in in_zone)
    if not in_zone:
        raise BackupServiceNotFound(service=service.BACKUP_BINARY)
    return in_zone[0]


def any_backup_host():
    """A live backup service for work not tied to a volume (an import); 503 when none."""
    hosts = sorted(row.host for row in _live_backup_services())
    if not hosts:
        raise BackupServiceNotFound(service=service.BACKUP_BINARY)
    return hosts[0]


def require_backup_host(host):
    """A restore or a delete goes to the service that holds the backup's data: refused the
    same way when it is down or disabled."""
    if not host or host not in {row.host for row in _live_backup_services()}:
        raise BackupServiceNotFound(service=service.BACKUP_BINARY)
    return host


# --- writes ------------------------------------------------------------------------------------

def backup_add(session, values, metadata=None):
    """Insert a backup and its metadata in the caller's transaction (the caller claims the
    workers row and charges the quota in the same one)."""
    values = dict(values)
    values.setdefault("id", db.new_id())
    backup = models.Backup(**values)
    backup.backup_metadata = [models.BackupMetadata(key=k, value=v)
                              for k, v in (metadata or {}).items()]
    session.add(backup)
    session.flush()
    session.refresh(backup)
    return backup


def add_dependent(session, parent_id, delta, parent_status=AVAILABLE):
    """Count (delta 1) or uncount (-1) an incremental on its parent, never below zero; when
    parent_status is given, only while the parent still has it. Whether the row changed."""
    if parent_id is None:
        return False
    stmt = update(models.Backup).where(models.Backup.id == parent_id,
                                       models.Backup.deleted == false())
    if parent_status is not None:
        stmt = stmt.where(models.Backup.status == parent_status)
    if delta < 0:
        stmt = stmt.where(models.Backup.num_dependent_backups >= -delta)
    return session.execute(stmt.values(
        num_dependent_backups=models.Backup.num_dependent_backups + delta,
        updated_at=utcnow())).rowcount == 1


def count_dependents(session, backup_id):
    """How many live backups name this one their parent (an imported record's count)."""
    return session.scalar(select(func.count(models.Backup.id)).where(
        models.Backup.parent_id == backup_id, models.Backup.deleted == false()))


def backup_update(backup_id, values, metadata=None):
    """PUT /backups/{id}: plain fields (name, description) and, given, the whole metadata
    (3.43 replaces it as Cinder does)."""
    with writer() as s:
        backup = s.scalars(select(models.Backup).where(
            models.Backup.id == backup_id, models.Backup.deleted == false())).first()
        if backup is None:
            raise BackupNotFound(backup_id=backup_id)
        for key, value in values.items():
            setattr(backup, key, value)
        if metadata is not None:
            existing = {m.key: m for m in backup.backup_metadata}
            for key in set(existing) - set(metadata):
                backup.backup_metadata.remove(existing[key])
            for key, value in metadata.items():
                if key in existing:
                    existing[key].value = value
                else:
                    backup.backup_metadata.append(models.BackupMetadata(key=key, value=value))
        backup.updated_at = utcnow()
        s.flush()
        s.refresh(backup)
        return backup


def backup_revive(session, backup_id, values, metadata=None):
    """An import of a backup whose row was deleted: the row comes back with the record's
    values (Cinder reuses it too), its old metadata replaced."""
    backup = session.get(models.Backup, backup_id)
    for key, value in values.items():
        setattr(backup, key, value)
    backup.backup_metadata = [models.BackupMetadata(key=k, value=v)
                              for k, v in (metadata or {}).items()]
    session.flush()
    session.refresh(backup)
    return backup
