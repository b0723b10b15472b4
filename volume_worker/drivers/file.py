"""Sparse files in a directory: the embedded default and the test back end.

Each pool is a subdirectory of ``file_volume_dir``; a volume is the sparse file
``<pool>/volume-<id>`` of its full size. Files are thin by nature, so pools report thin
provisioning. A backup of an in-use volume reads the temporary copy ``<pool>/.backup-<backup
id>``, made as a snapshot is."""

import errno
import fcntl
import logging
import os

from oslo_config import cfg

from common import connector, exception
from volume_worker.drivers import base
from volume_worker.targets import tgt

LOG = logging.getLogger(__name__)
GiB = 1024 ** 3

file_opts = [
    cfg.StrOpt("file_volume_dir", default="$state_path/volumes",
               help="Directory that holds the pools (one subdirectory each) of a file back end."),
    cfg.ListOpt("file_pools", default=["pool0"],
                help="Pool names of a file back end; each is a subdirectory of "
                     "file_volume_dir."),
    cfg.IntOpt("file_max_capacity_gb", default=0, min=0,
               help="Capacity each pool reports, in GiB; 0 reports the file system's size. "
                    "Lets several pools share one file system with fixed shares."),
    cfg.StrOpt("target_protocol", default="local", choices=[
        ("local", "hand out the file's path (driver_volume_type local): for the embedded "
                  "all-in-one and hosts that open the file themselves"),
        ("iscsi", "export each attachment through tgt (one target, ACL and CHAP account "
                  "per attachment)")],
               help="How a file back end exports volumes to compute hosts."),
]

FICLONE = 0x40049409  # ioctl: share the source's extents (Btrfs, XFS with reflink)


def copy_sparse(src, dst, size_bytes):
    """Copy src to the new file dst (never an existing one) and make it size_bytes long.

    A reflink when the file system offers one; otherwise only the data extents are copied
    (SEEK_DATA/SEEK_HOLE with copy_file_range), so holes stay holes and a mostly empty
    volume copies in milliseconds. A failed copy leaves no dst behind."""
    with open(src, "rb") as fsrc:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                fcntl.ioctl(fd, FICLONE, fsrc.fileno())
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL,
                                     errno.ENOTTY, errno.EBADF):
                    raise
                _copy_extents(fsrc.fileno(), fd)
            os.ftruncate(fd, size_bytes)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(dst)
            raise
        os.close(fd)


def _copy_extents(src_fd, dst_fd):
    end = os.fstat(src_fd).st_size
    offset = 0
    while offset < end:
        try:
            start = os.lseek(src_fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole remains
                return
            raise
        stop = os.lseek(src_fd, start, os.SEEK_HOLE)
        position = start
        while position < stop:
            copied = os.copy_file_range(src_fd, dst_fd, stop - position, position, position)
            if copied == 0:
                break
            position += copied
        offset = stop


class FileDriver(base.VolumeDriver):
    extra_opts = file_opts + tgt.target_opts

    def __init__(self, backend_name, configuration):
        super().__init__(backend_name, configuration)
        self._target = None

    @property
    def storage_protocol(self):
        return "iSCSI" if self._iscsi else "local"

    @property
    def _iscsi(self):
        return self.configuration.target_protocol == "iscsi"

    @property
    def target(self):
        if self._target is None:
            self._target = tgt.TgtTarget(self.configuration)
        return self._target

    def pool_dir(self, pool):
        return os.path.join(self.configuration.file_volume_dir, pool)

    def volume_path(self, volume):
        pool = base.pool_of(volume.host)
        if pool not in self.configuration.file_pools:
            raise exception.DriverError(reason="volume %s is on unknown pool %r"
                                        % (volume.id, pool))
        return os.path.join(self.pool_dir(pool), "volume-%s" % volume.id)

    def do_setup(self):
        for pool in self.configuration.file_pools:
            os.makedirs(self.pool_dir(pool), exist_ok=True)
        if self._iscsi:
            try:
                self.target.exports()
            except exception.DriverError as exc:
                # Not fatal: volumes can still be made; attachments fail until tgtd is up.
                LOG.warning("Back end %s exports through tgt, which does not answer: %s",
                            self.backend_name, exc)

    def _used_bytes(self, pool):
        used = 0
        with os.scandir(self.pool_dir(pool)) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    used += entry.stat(follow_symlinks=False).st_blocks * 512
        return used

    def get_pools(self):
        pools = []
        for pool in self.configuration.file_pools:
            st = os.statvfs(self.pool_dir(pool))
            fs_total = st.f_blocks * st.f_frsize / GiB
            fs_free = st.f_bavail * st.f_frsize / GiB
            cap = self.configuration.file_max_capacity_gb
            if cap:
                total = float(cap)
                free = max(0.0, min(fs_free, total - self._used_bytes(pool) / GiB))
            else:
                total, free = fs_total, fs_free
            report = self.base_capabilities()
            report.update(pool_name=pool, total_capacity_gb=round(total, 2),
                          free_capacity_gb=round(free, 2), thin_provisioning_support=True,
                          thick_provisioning_support=False, multiattach=True)
            pools.append(report)
        return pools

    def create_volume(self, volume):
        path = self.volume_path(volume)
        # O_EXCL: never adopt (and later delete) a file that some other volume owns.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, volume.size * GiB)
        except OSError:
            os.close(fd)
            os.unlink(path)
            raise
        os.close(fd)
        LOG.info("Created %d GiB sparse file %s", volume.size, path)
        return {"provider_location": path}

    def delete_volume(self, volume):
        path = self.volume_path(volume)
        try:
            os.unlink(path)
            LOG.info("Deleted %s", path)
        except FileNotFoundError:
            LOG.info("%s already gone", path)

    def extend_volume(self, volume, new_size):
        path = self.volume_path(volume)
        if os.path.getsize(path) > new_size * GiB:
            raise exception.DriverError(reason="refusing to shrink %s" % path)
        os.truncate(path, new_size * GiB)
        LOG.info("Extended %s to %d GiB", path, new_size)
        if self._iscsi:
            self.target.refresh_size(path)  # an attached volume: its targets show the new size

    # --- attachments (issue 10): an iSCSI target per attachment, or the file itself ---------

    def initialize_connection(self, volume, connector, attachment_id):
        path = self.volume_path(volume)
        if not self._iscsi:
            return self._local_connection(volume, path)
        data = self.target.create_export(self._export_name(attachment_id), path, connector,
                                         volume.id)
        return {"driver_volume_type": "iscsi", "data": data}

    def terminate_connection(self, volume, connector, attachment_id):
        if attachment_id is None:
            return
        # Also when target_protocol is local now: an export made before a change must go.
        if self._iscsi or self.target.recorded(attachment_id):
            self.target.remove_export(self._export_name(attachment_id))

    def remove_stale_exports(self, live_attachments):
        self.target.remove_exports_except(live_attachments)

    def ensure_export(self, volume, connector, attachment_id, connection_info):
        if (connection_info or {}).get("driver_volume_type") != "iscsi":
            return  # a local connection is the file itself: nothing to restore
        self.target.ensure_export(self._export_name(attachment_id), self.volume_path(volume),
                                  connector, connection_info["data"])

    @staticmethod
    def _export_name(attachment_id):
        if not attachment_id:
            raise exception.DriverError(reason="an iSCSI export is made per attachment: "
                                               "no attachment id given")
        return attachment_id

    @staticmethod
    def _local_connection(volume, path):
        return {"driver_volume_type": "local",
                "data": {"device_path": path, "volume_id": volume.id, "access_mode": "rw"}}

    # --- snapshots and copies: files beside the volume's, in its pool ------------------------

    def snapshot_path(self, snapshot, volume):
        return os.path.join(os.path.dirname(self.volume_path(volume)),
                            "snapshot-%s" % snapshot.id)

    def create_snapshot(self, snapshot, volume):
        path = self.snapshot_path(snapshot, volume)
        copy_sparse(self.volume_path(volume), path, volume.size * GiB)
        LOG.info("Snapshot %s of volume %s is %s", snapshot.id, volume.id, path)
        return {"provider_location": path}

    def delete_snapshot(self, snapshot, volume):
        path = self.snapshot_path(snapshot, volume)
        try:
            os.unlink(path)
            LOG.info("Deleted %s", path)
        except FileNotFoundError:
            LOG.info("%s already gone", path)

    def create_volume_from_snapshot(self, volume, snapshot, snapshot_volume):
        path = self.volume_path(volume)
        copy_sparse(self.snapshot_path(snapshot, snapshot_volume), path, volume.size * GiB)
        LOG.info("Created %s from snapshot %s", path, snapshot.id)
        return {"provider_location": path}

    def create_cloned_volume(self, volume, source_volume):
        path = self.volume_path(volume)
        copy_sparse(self.volume_path(source_volume), path, volume.size * GiB)
        LOG.info("Created %s as a clone of volume %s", path, source_volume.id)
        return {"provider_location": path}

    def revert_to_snapshot(self, volume, snapshot):
        path = self.volume_path(volume)
        staging = path + ".reverting"
        try:
            os.unlink(staging)  # left by an interrupted revert
        except FileNotFoundError:
            pass
        copy_sparse(self.snapshot_path(snapshot, volume), staging, volume.size * GiB)
        os.replace(staging, path)  # atomic: the volume is old or new, never half-written
        LOG.info("Reverted %s to snapshot %s", path, snapshot.id)

    # --- manage existing / unmanage (volume actions of issue 4) -------------------------------

    def _managed_candidate(self, volume, existing_ref):
        name = self.manage_source_name(existing_ref)
        pool = base.pool_of(volume.host)
        if pool not in self.configuration.file_pools:
            raise exception.DriverError(reason="unknown pool %r" % pool)
        path = os.path.join(self.pool_dir(pool), name)
        if name.startswith(".") or name.startswith("snapshot-"):
            raise exception.DriverError(reason="%s is not a volume file" % path)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise exception.DriverError(reason="manage existing: no file %s in pool %s"
                                        % (name, pool))
        import stat

        if not stat.S_ISREG(st.st_mode):
            raise exception.DriverError(reason="manage existing: %s is not a regular file"
                                        % path)
        return path, st

    def manage_existing_get_size(self, volume, existing_ref):
        _path, st = self._managed_candidate(volume, existing_ref)
        return max(1, -(-st.st_size // GiB))

    def manage_existing(self, volume, existing_ref):
        src, _st = self._managed_candidate(volume, existing_ref)
        dst = self.volume_path(volume)
        if src != dst:
            # link + unlink: never replaces a file another volume owns (rename would).
            os.link(src, dst)
            os.unlink(src)
        LOG.info("Managing %s as %s", src, dst)
        return {"provider_location": dst}

    def manage_existing_undo(self, volume, existing_ref):
        name = self.manage_source_name(existing_ref)
        dst = self.volume_path(volume)
        src = os.path.join(os.path.dirname(dst), name)
        if src != dst and os.path.exists(dst):
            os.link(dst, src)
            os.unlink(dst)
            LOG.info("Gave %s its old name %s back", dst, src)

    def unmanage(self, volume):
        LOG.info("Unmanaged %s; the file stays", self.volume_path(volume))

    def migration_connection(self, volume):
        return connector.local_connection(self.volume_path(volume))

    # --- backups (issue 11): the volume file, a snapshot's, or a temporary copy -------------

    def backup_copy_path(self, volume, backup_id):
        # A dot name: never listed as manageable, never taken for a volume or a snapshot.
        return os.path.join(os.path.dirname(self.volume_path(volume)), ".backup-%s" % backup_id)

    def backup_source(self, volume, backup_id, snapshot=None, in_use=False):
        if snapshot is not None:
            path = self.snapshot_path(snapshot, volume)
        elif in_use:
            # The volume is written while it is read: the backup reads a copy made as a
            # snapshot is (a reflink where the file system has them, else the data extents).
            path = self.backup_copy_path(volume, backup_id)
            try:
                os.unlink(path)  # left by an interrupted attempt of this backup
            except FileNotFoundError:
                pass
            copy_sparse(self.volume_path(volume), path, volume.size * GiB)
            LOG.info("Backup %s of in-use volume %s reads the copy %s", backup_id, volume.id,
                     path)
        else:
            path = self.volume_path(volume)
        if not os.path.exists(path):
            raise exception.DriverError(reason="backup source %s does not exist" % path)
        return {"connection": connector.local_connection(path, volume_id=volume.id,
                                                         access_mode="ro"),
                "source_snapshot": None}

    def release_backup_source(self, volume, backup_id, keep_source_snapshot, live_backup_ids):
        path = self.backup_copy_path(volume, backup_id)
        try:
            os.unlink(path)
            LOG.info("Removed %s, the copy backup %s read", path, backup_id)
        except FileNotFoundError:
            pass

    def restore_target(self, volume):
        path = self.volume_path(volume)
        if not os.path.exists(path):
            raise exception.DriverError(reason="restore target %s does not exist" % path)
        return connector.local_connection(path, volume_id=volume.id, access_mode="rw")

    def get_manageable_volumes(self, cinder_volume_ids):
        entries = []
        for pool in self.configuration.file_pools:
            with os.scandir(self.pool_dir(pool)) as items:
                for item in items:
                    if item.name.startswith((".", "snapshot-")) or \
                            item.name.endswith(".reverting") or \
                            not item.is_file(follow_symlinks=False):
                        continue
                    size = max(1, -(-item.stat(follow_symlinks=False).st_size // GiB))
                    entries.append(self.manageable_entry(item.name, size, cinder_volume_ids,
                                                         extra_info="pool %s" % pool))
        return entries

    # --- manage existing snapshots (issue 9): snapshot-* files in the volume's pool -----------
    # A file records no parent: any snapshot-* file in the volume's pool may be managed as a
    # snapshot of it (the admin names the volume, as with Cinder's NFS-like drivers).

    def _snapshot_candidate(self, volume, existing_ref):
        name = self.manage_source_name(existing_ref)
        if not name.startswith("snapshot-"):
            raise exception.DriverError(reason="manage existing snapshot: %s is not a "
                                               "snapshot file (snapshot-*)" % name)
        path = os.path.join(os.path.dirname(self.volume_path(volume)), name)
        import stat

        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise exception.DriverError(reason="manage existing snapshot: no file %s in pool "
                                               "%s" % (name, base.pool_of(volume.host)))
        if not stat.S_ISREG(st.st_mode):
            raise exception.DriverError(reason="manage existing snapshot: %s is not a regular "
                                               "file" % path)
        return path, st

    def manage_existing_snapshot_get_size(self, snapshot, volume, existing_ref):
        _path, st = self._snapshot_candidate(volume, existing_ref)
        return max(1, -(-st.st_size // GiB))

    def manage_existing_snapshot(self, snapshot, volume, existing_ref):
        src, _st = self._snapshot_candidate(volume, existing_ref)
        dst = self.snapshot_path(snapshot, volume)
        if src != dst:
            os.link(src, dst)  # never replaces a file another snapshot owns
            os.unlink(src)
        LOG.info("Managing %s as snapshot %s of volume %s", src, snapshot.id, volume.id)
        return {"provider_location": dst}

    def manage_existing_snapshot_undo(self, snapshot, volume, existing_ref):
        name = self.manage_source_name(existing_ref)
        dst = self.snapshot_path(snapshot, volume)
        src = os.path.join(os.path.dirname(dst), name)
        if src != dst and os.path.exists(dst):
            os.link(dst, src)
            os.unlink(dst)
            LOG.info("Gave %s its old name %s back", dst, src)

    def unmanage_snapshot(self, snapshot, volume):
        LOG.info("Unmanaged snapshot %s; %s stays", snapshot.id,
                 self.snapshot_path(snapshot, volume))

    def get_manageable_snapshots(self, cinder_snapshots, volumes):
        entries = []
        for pool in self.configuration.file_pools:
            with os.scandir(self.pool_dir(pool)) as items:
                for item in items:
                    if not item.name.startswith("snapshot-") or \
                            not item.is_file(follow_symlinks=False):
                        continue
                    size = max(1, -(-item.stat(follow_symlinks=False).st_size // GiB))
                    parent = cinder_snapshots.get(item.name[len("snapshot-"):])
                    entries.append(self.manageable_snapshot_entry(
                        item.name, size, cinder_snapshots,
                        "volume-%s" % parent if parent else None,
                        extra_info="pool %s" % pool if parent else
                        "pool %s; the file does not record its volume" % pool))
        return entries
