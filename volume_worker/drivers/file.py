"""Sparse files in a directory: the embedded default and the test back end.

Each pool is a subdirectory of ``file_volume_dir``; a volume is the sparse file
``<pool>/volume-<id>`` of its full size. Files are thin by nature, so pools report thin
provisioning."""

import logging
import os

from oslo_config import cfg

from common import exception
from volume_worker.drivers import base

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
]



class FileDriver(base.VolumeDriver):
    storage_protocol = "iSCSI"
    extra_opts = file_opts

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
