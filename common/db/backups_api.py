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
