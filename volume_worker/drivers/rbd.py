"""Ceph RBD through the rados/rbd Python bindings (Debian's python3-rados/python3-rbd; PyPI
has none: see deploy/ceph/README.md for linking them into the venv).

A volume is the RBD image `volume-<id>` (format 2, layering on) in the Ceph pool that is its
Lamina pool. One connected cluster handle is kept per back end and rebuilt after a failure;
every librados operation has a timeout, so a stopped cluster turns into an error, and the
volume service reports the pool down instead of hanging.

A backup reads the image at its own image snapshot `backup.<backup id>` (not a Lamina
snapshot: never listed as one), kept afterwards as the diff base of the next incremental and
removed once no live backup names it.

A volume from an image that Glance keeps in its rbd store in this same cluster (the image's
direct_url or locations: rbd://<fsid>/<pool>/<image>/<snap>) is a copy-on-write clone of that
snapshot (clone_image), as Cinder's RBD driver makes it; rbd_user needs read access to
Glance's pool (`profile rbd-read-only pool=images`)."""

import json
import logging
import threading
import urllib.parse

from oslo_config import cfg

from common import exception
from volume_worker.drivers import base

LOG = logging.getLogger(__name__)
GiB = 1024 ** 3

rbd_opts = [
    cfg.StrOpt("rbd_pool", default="volumes", help="Ceph pool holding this back end's volumes."),
    cfg.StrOpt("rbd_user", default="lamina", help="Cephx user (without `client.`)."),
    cfg.StrOpt("rbd_keyring", help="Keyring of rbd_user; default: what rbd_ceph_conf names."),
    cfg.StrOpt("rbd_ceph_conf", default="/etc/ceph/ceph.conf",
               help="Ceph configuration file (monitors, cluster fsid)."),
    cfg.StrOpt("rbd_cluster_name", default="ceph", help="Ceph cluster name."),
    cfg.StrOpt("rbd_secret_uuid",
               help="Libvirt secret UUID holding rbd_user's key on compute hosts; handed to "
                    "them in the connection info."),
    cfg.IntOpt("rados_connect_timeout", default=5, min=1,
               help="Seconds to wait for the Ceph monitors when connecting."),
    cfg.IntOpt("rados_op_timeout", default=30, min=1,
               help="Seconds a single Ceph monitor or OSD operation may take before it "
                    "fails (instead of hanging while the cluster is unreachable)."),
    cfg.IntOpt("rbd_max_clone_depth", default=5, min=0,
               help="Clones of clones deeper than this are flattened (0: always flatten)."),
    cfg.IntOpt("rbd_store_chunk_size", default=4, min=1,
               help="Object size of new images, in MiB."),
]


def _import_bindings():
    try:
        import rados
        import rbd
    except ImportError as exc:
        raise exception.DriverError(
            reason="the rados/rbd Python bindings are not importable (%s); install Debian's "
                   "python3-rados and python3-rbd and link them into the venv "
                   "(deploy/ceph/ceph-aio.sh pybind)" % exc)
    return rados, rbd


class RBDDriver(base.VolumeDriver):
    storage_protocol = "ceph"
    extra_opts = rbd_opts

    def __init__(self, backend_name, configuration):
        super().__init__(backend_name, configuration)
        self._client = None
        self._users = {}  # id(handle) -> calls using it now
        self._lock = threading.Lock()

    # --- connection --------------------------------------------------------------------------

    def _connect(self):
        rados, _rbd = _import_bindings()
        conf = self.configuration
        options = {"rados_osd_op_timeout": str(conf.rados_op_timeout),
                   "rados_mon_op_timeout": str(conf.rados_op_timeout),
                   "client_mount_timeout": str(conf.rados_connect_timeout)}
        if conf.rbd_keyring:
            options["keyring"] = conf.rbd_keyring
        client = rados.Rados(conffile=conf.rbd_ceph_conf, rados_id=conf.rbd_user,
                             clustername=conf.rbd_cluster_name, conf=options)
        try:
            client.connect(timeout=conf.rados_connect_timeout)
        except Exception as exc:
            client.shutdown()
            raise exception.DriverError(reason="cannot connect to Ceph cluster %s as %s: %s"
                                        % (conf.rbd_cluster_name, conf.rbd_user, exc))
        return client

    def _borrow(self):
        """The cluster handle, counted as in use until _give_back: threads share one handle,
        and librados can hang shutting down a handle another thread is inside."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            self._users[id(self._client)] = self._users.get(id(self._client), 0) + 1
            return self._client

    def _give_back(self, client):
        with self._lock:
            self._users[id(client)] -= 1
            retired = self._users[id(client)] == 0 and client is not self._client
            if retired:
                del self._users[id(client)]
        if retired:
            self._shutdown(client)

    def _drop_connection(self, client):
        """Ceph failed on `client`: the next call connects anew. The old handle is shut down
        once no call uses it any more (now, or at its last _give_back)."""
        with self._lock:
            if client is not self._client:
                return  # already dropped, maybe replaced by a working handle
            self._client = None
            idle = self._users.get(id(client), 0) == 0
            if idle:
                self._users.pop(id(client), None)
        if idle:
            self._shutdown(client)

    @staticmethod
    def _shutdown(client):
        try:
            client.shutdown()
        except Exception:  # the handle is already broken; nothing more to release
            LOG.debug("Ceph handle shutdown failed", exc_info=True)

    def _ioctx(self, pool):
        return _IoctxGuard(self, pool)

    def _mon_command(self, prefix, **args):
        cmd = dict(prefix=prefix, format="json", **args)
        client = self._borrow()
        try:
            ret, out, err = client.mon_command(json.dumps(cmd), b"",
                                               timeout=self.configuration.rados_op_timeout)
        except Exception as exc:
            self._drop_connection(client)
            raise exception.DriverError(reason="ceph %s failed: %s" % (prefix, exc))
        finally:
            self._give_back(client)
        if ret != 0:
            raise exception.DriverError(reason="ceph %s failed (%d): %s" % (prefix, ret, err))
        return json.loads(out or b"{}")

    def do_setup(self):
        _import_bindings()  # fail at start, clearly, if the bindings are missing

    # --- capacity ----------------------------------------------------------------------------

    def get_pools(self):
        """Capacity of the Ceph pool as `ceph df` reports it: total = stored + max_avail (what
        the pool holds plus what it can still take at its replication), free = max_avail."""
        df = self._mon_command("df", detail="detail")
        pool_name = self.configuration.rbd_pool
        stats = next((p["stats"] for p in df.get("pools", []) if p["name"] == pool_name), None)
        if stats is None:
            raise exception.DriverError(reason="Ceph pool %s does not exist" % pool_name)
        stored = stats.get("stored", stats.get("bytes_used", 0))
        free = stats["max_avail"]
        report = self.base_capabilities()
        report.update(pool_name=pool_name,
                      total_capacity_gb=round((stored + free) / GiB, 2),
                      free_capacity_gb=round(free / GiB, 2),
                      thin_provisioning_support=True, thick_provisioning_support=False,
                      multiattach=True, location_info="ceph:%s" % pool_name)
        return [report]

    # --- volumes -----------------------------------------------------------------------------

    @staticmethod
    def image_name(volume):
        return "volume-%s" % volume.id

    def _pool_of(self, volume):
        pool = base.pool_of(volume.host)
        if pool != self.configuration.rbd_pool:
            raise exception.DriverError(reason="volume %s is on unknown pool %r"
                                        % (volume.id, pool))
        return pool

    def create_volume(self, volume):
        _rados, rbd = _import_bindings()
        pool = self._pool_of(volume)
        name = self.image_name(volume)
        with self._ioctx(pool) as ioctx:
            try:
                rbd.RBD().create(ioctx, name, volume.size * GiB, order=self._order(),
                                 old_format=False, features=rbd.RBD_FEATURE_LAYERING)
            except rbd.ImageExists:
                # Never adopt an image this request did not make.
                raise exception.DriverError(reason="RBD image %s/%s already exists"
                                            % (pool, name))
        LOG.info("Created RBD image %s/%s (%d GiB)", pool, name, volume.size)
        return {"provider_location": "rbd:%s/%s" % (pool, name)}

    def delete_volume(self, volume):
        _rados, rbd = _import_bindings()
        pool = self._pool_of(volume)
        name = self.image_name(volume)
        with self._ioctx(pool) as ioctx:
            try:
                with rbd.Image(ioctx, name) as image:
                    if list(image.list_children2()):
                        raise exception.DriverError(
                            reason="volume %s has dependent clones; delete them first"
                            % volume.id)
                    for snap in list(image.list_snaps()):
                        if image.is_protected_snap(snap["name"]):
                            image.unprotect_snap(snap["name"])
                        image.remove_snap(snap["name"])
                rbd.RBD().remove(ioctx, name)
            except rbd.ImageNotFound:
                LOG.info("RBD image %s/%s already gone", pool, name)
                return
        LOG.info("Deleted RBD image %s/%s", pool, name)

    def extend_volume(self, volume, new_size):
        _rados, rbd = _import_bindings()
        with self._ioctx(self._pool_of(volume)) as ioctx:
            with rbd.Image(ioctx, self.image_name(volume)) as image:
                image.resize(new_size * GiB)
        LOG.info("Extended RBD image of volume %s to %d GiB", volume.id, new_size)

    def _order(self):
        return (self.configuration.rbd_store_chunk_size * 1024 * 1024).bit_length() - 1

    # --- snapshots and clones ------------------------------------------------------------------

    @staticmethod
    def snapshot_name(snapshot):
        return "snapshot-%s" % snapshot.id

    def create_snapshot(self, snapshot, volume):
        _rados, rbd = _import_bindings()
        pool = self._pool_of(volume)
        name = self.snapshot_name(snapshot)
        with self._ioctx(pool) as ioctx, rbd.Image(ioctx, self.image_name(volume)) as image:
            try:
                image.create_snap(name)
            except rbd.ImageExists:
                raise exception.DriverError(reason="RBD snapshot %s already exists" % name)
            try:
                image.protect_snap(name)  # a clone's parent must be protected
            except Exception:
                image.remove_snap(name)
                raise
        LOG.info("Created RBD snapshot %s/%s@%s", pool, self.image_name(volume), name)
        return {"provider_location": "rbd:%s/%s@%s" % (pool, self.image_name(volume), name)}

    def delete_snapshot(self, snapshot, volume):
        _rados, rbd = _import_bindings()
        pool = self._pool_of(volume)
        name = self.snapshot_name(snapshot)
        with self._ioctx(pool) as ioctx:
            try:
                with rbd.Image(ioctx, self.image_name(volume)) as image:
                    if name not in {snap["name"] for snap in image.list_snaps()}:
                        LOG.info("RBD snapshot %s of volume %s already gone", name, volume.id)
                        return
                    self._flatten_children(ioctx, image, name)
                    if image.is_protected_snap(name):
                        try:
                            image.unprotect_snap(name)
                        except rbd.ImageBusy:
                            # A volume cloned from it has snapshots of its own, taken while
                            # it was a clone: they keep this one as their parent.
                            raise exception.SnapshotIsBusy(
                                snapshot_id=snapshot.id,
                                reason="snapshots of volumes created from it still depend on "
                                       "it; delete those snapshots first")
                    image.remove_snap(name)
            except rbd.ImageNotFound:
                LOG.info("RBD image of volume %s already gone", volume.id)
                return
        LOG.info("Deleted RBD snapshot %s/%s@%s", pool, self.image_name(volume), name)

    def _flatten_children(self, ioctx, image, snap_name):
        """Volumes cloned from this snapshot get their own copy of the data it shares."""
        _rados, rbd = _import_bindings()
        image.set_snap(snap_name)
        try:
            children = list(image.list_children2())
        finally:
            image.set_snap(None)
        for child in children:
            with self._ioctx(child["pool"]) as child_ioctx, \
                    rbd.Image(child_ioctx, child["image"]) as child_image:
                LOG.info("Flattening %s/%s before its parent snapshot %s goes",
                         child["pool"], child["image"], snap_name)
                child_image.flatten()

    def _clone_depth(self, ioctx, image):
        _rados, rbd = _import_bindings()
        depth, current, opened = 0, image, []
        try:
            while True:
                try:
                    parent = current.get_parent_image_spec()
                except rbd.ImageNotFound:
                    return depth
                depth += 1
                current = rbd.Image(ioctx, parent["image_name"], read_only=True)
                opened.append(current)
        finally:
            for parent_image in opened:
                parent_image.close()

    def _clone(self, ioctx, parent_name, snap_name, volume, always_flatten):
        _rados, rbd = _import_bindings()
        name = self.image_name(volume)
        try:
            rbd.RBD().clone(ioctx, parent_name, snap_name, ioctx, name,
                            features=rbd.RBD_FEATURE_LAYERING, order=self._order())
        except rbd.ImageExists:
            raise exception.DriverError(reason="RBD image %s already exists" % name)
        return self._finish_clone(ioctx, name, volume, depth=None, always_flatten=always_flatten)

    def _finish_clone(self, ioctx, name, volume, depth, always_flatten=False):
        """Grow a fresh clone to the volume's size and flatten it when its chain would be
        deeper than rbd_max_clone_depth (depth None: count it); on any failure remove it."""
        _rados, rbd = _import_bindings()
        try:
            with rbd.Image(ioctx, name) as image:
                if image.size() < volume.size * GiB:
                    image.resize(volume.size * GiB)
                if depth is None:
                    depth = self._clone_depth(ioctx, image)
                if always_flatten or depth > self.configuration.rbd_max_clone_depth:
                    LOG.info("Flattening %s (clone depth %d, rbd_max_clone_depth %d)", name,
                             depth, self.configuration.rbd_max_clone_depth)
                    image.flatten()
        except Exception:
            rbd.RBD().remove(ioctx, name)
            raise
        return {"provider_location": "rbd:%s/%s" % (self._pool_of(volume), name)}

    def create_volume_from_snapshot(self, volume, snapshot, snapshot_volume):
        with self._ioctx(self._pool_of(volume)) as ioctx:
            update = self._clone(ioctx, self.image_name(snapshot_volume),
                                 self.snapshot_name(snapshot), volume, always_flatten=False)
        LOG.info("Created volume %s from snapshot %s (RBD clone)", volume.id, snapshot.id)
        return update

    def create_cloned_volume(self, volume, source_volume):
        """A copy-on-write clone of a temporary snapshot of the source, flattened at once so
        the source stays free to change or go; the temporary snapshot is then removed."""
        _rados, rbd = _import_bindings()
        source_name = self.image_name(source_volume)
        temp_snap = "clone-%s" % volume.id
        with self._ioctx(self._pool_of(volume)) as ioctx:
            with rbd.Image(ioctx, source_name) as source:
                source.create_snap(temp_snap)
                source.protect_snap(temp_snap)
            try:
                update = self._clone(ioctx, source_name, temp_snap, volume, always_flatten=True)
            finally:
                with rbd.Image(ioctx, source_name) as source:
                    source.unprotect_snap(temp_snap)
                    source.remove_snap(temp_snap)
        LOG.info("Created volume %s as a copy of volume %s", volume.id, source_volume.id)
        return update

    # --- volumes from images in Glance's rbd store ----------------------------------------------

    @staticmethod
    def parse_rbd_location(location):
        """(fsid, pool, image, snapshot) of rbd://fsid/pool/image/snap, the parts URL-quoted as
        Glance's rbd store writes them; None for any other location."""
        prefix = "rbd://"
        if not isinstance(location, str) or not location.startswith(prefix):
            return None
        parts = [urllib.parse.unquote(part) for part in location[len(prefix):].split("/")]
        if len(parts) != 4 or not all(parts):
            return None
        return tuple(parts)

    def _cluster_facts(self, pool):
        """(this cluster's fsid, whether `pool` exists in it)."""
        rados, _rbd = _import_bindings()
        client = self._borrow()
        try:
            return client.get_fsid(), client.pool_exists(pool)
        except rados.Error as exc:
            self._drop_connection(client)
            raise exception.DriverError(reason="Ceph: %s" % exc)
        finally:
            self._give_back(client)

    def clone_image(self, volume, image_location, image_meta):
        """A copy-on-write clone of the image's snapshot in Glance's rbd store (what Cinder's
        RBD driver does), when the location is one of this cluster's, the image is raw, its
        snapshot is protected, readable by rbd_user and fits in the volume. The clone is
        resized to the volume's size and, past rbd_max_clone_depth (the Glance image counts
        as one level), flattened, as any clone of this driver. Unflattened, the volume keeps
        Glance's snapshot busy: Glance refuses to delete the image (409) until the volume
        is deleted (or flattened: a snapshot of it cloned deep enough, a migration)."""
        spec = self.parse_rbd_location(image_location)
        if spec is None:
            return None  # another store's location
        fsid, parent_pool, parent_name, snap_name = spec
        image_id = image_meta.get("id")
        if image_meta.get("disk_format") != "raw":
            LOG.info("Image %s is %s, not raw: not cloned from %s", image_id,
                     image_meta.get("disk_format"), image_location)
            return None
        this_fsid, pool_exists = self._cluster_facts(parent_pool)
        if fsid != this_fsid:
            LOG.info("Image %s lives in Ceph cluster %s, this back end in %s: not cloned",
                     image_id, fsid, this_fsid)
            return None
        if not pool_exists:
            LOG.info("Image %s: pool %s does not exist in this cluster: not cloned",
                     image_id, parent_pool)
            return None
        with self._ioctx(parent_pool) as parent_ioctx, \
                self._ioctx(self._pool_of(volume)) as ioctx:
            update = self._clone_parent(parent_ioctx, ioctx, parent_name, snap_name, volume,
                                        image_id)
        if update is not None:
            LOG.info("Created volume %s from image %s as an RBD clone of %s/%s@%s", volume.id,
                     image_id, parent_pool, parent_name, snap_name)
        return update

    def _clone_parent(self, parent_ioctx, ioctx, parent_name, snap_name, volume, image_id):
        _rados, rbd = _import_bindings()
        where = "%s/%s@%s" % (parent_ioctx.get_pool_name(), parent_name, snap_name)
        try:
            with rbd.Image(parent_ioctx, parent_name, snapshot=snap_name,
                           read_only=True) as parent:
                parent_size = parent.size()
                protected = parent.is_protected_snap(snap_name)
                depth = 1 + self._clone_depth(parent_ioctx, parent)
        except (rbd.ImageNotFound, rbd.PermissionError) as exc:
            # gone, or rbd_user may not read the image service's pool (its caps)
            LOG.warning("Image %s: cannot open %s as cephx user %s (%s): not cloned",
                        image_id, where, self.configuration.rbd_user, exc)
            return None
        if not protected:
            LOG.info("Image %s: snapshot %s is not protected: not cloned", image_id, where)
            return None
        if parent_size > volume.size * GiB:
            LOG.info("Image %s: %s holds %d bytes, more than volume %s's %d GiB: not cloned",
                     image_id, where, parent_size, volume.id, volume.size)
            return None
        name = self.image_name(volume)
        try:
            # the clone's object size and striping are the parent's (Glance's chunk size)
            rbd.RBD().clone(parent_ioctx, parent_name, snap_name, ioctx, name,
                            features=rbd.RBD_FEATURE_LAYERING)
        except rbd.ImageExists:
            raise exception.DriverError(reason="RBD image %s already exists" % name)
        except rbd.PermissionError as exc:
            LOG.warning("Image %s: cephx user %s may not clone %s (%s): not cloned", image_id,
                        self.configuration.rbd_user, where, exc)
            return None
        return self._finish_clone(ioctx, name, volume, depth)

    def revert_to_snapshot(self, volume, snapshot):
        _rados, rbd = _import_bindings()
        with self._ioctx(self._pool_of(volume)) as ioctx, \
                rbd.Image(ioctx, self.image_name(volume)) as image:
            image.rollback_to_snap(self.snapshot_name(snapshot))
            if image.size() < volume.size * GiB:  # the volume was extended after the snapshot
                image.resize(volume.size * GiB)
        LOG.info("Reverted volume %s to snapshot %s", volume.id, snapshot.id)

    def monitors(self):
        mon_map = self._mon_command("mon dump")
        hosts, ports = [], []
        for mon in mon_map.get("mons", []):
            addr = mon.get("public_addr") or mon.get("addr", "")
            host, _, port = addr.split("/")[0].rpartition(":")
            hosts.append(host.strip("[]"))
            ports.append(port)
        return hosts, ports

    def initialize_connection(self, volume, connector, attachment_id=None):
        """What a compute host needs to open the volume with librbd (qemu's rbd driver): the
        keys Cinder's RBD driver hands out. Nothing is exported, so every attachment gets the
        same data; attachment_id is optional for callers that attach without one."""
        hosts, ports = self.monitors()
        conf = self.configuration
        return {
            "driver_volume_type": "rbd",
            "data": {
                "name": "%s/%s" % (self._pool_of(volume), self.image_name(volume)),
                "hosts": hosts,
                "ports": ports,
                "cluster_name": conf.rbd_cluster_name,
                "auth_enabled": True,
                "auth_username": conf.rbd_user,
                "secret_type": "ceph",
                "secret_uuid": conf.rbd_secret_uuid,
                "volume_id": volume.id,
                "discard": True,
                "access_mode": "rw",
                "encrypted": False,
            },
        }

    def terminate_connection(self, volume, connector, attachment_id=None):
        """Nothing is exported for RBD: the compute host talks to Ceph itself."""

    def ensure_export(self, volume, connector, attachment_id, connection_info):
        """Nothing to restore: the image is reachable through Ceph as long as it exists."""

    # --- manage existing / unmanage (volume actions of issue 4) -------------------------------

    def manage_existing_get_size(self, volume, existing_ref):
        _rados, rbd = _import_bindings()
        name = self.manage_source_name(existing_ref)
        with self._ioctx(self._pool_of(volume)) as ioctx:
            try:
                with rbd.Image(ioctx, name, read_only=True) as image:
                    size = image.size()
            except rbd.ImageNotFound:
                raise exception.DriverError(reason="manage existing: no RBD image %s in pool "
                                                   "%s" % (name, self._pool_of(volume)))
        return max(1, -(-size // GiB))

    def manage_existing(self, volume, existing_ref):
        _rados, rbd = _import_bindings()
        name = self.manage_source_name(existing_ref)
        pool = self._pool_of(volume)
        target = self.image_name(volume)
        if name != target:
            with self._ioctx(pool) as ioctx:
                try:
                    rbd.RBD().rename(ioctx, name, target)  # refuses an existing target
                except rbd.ImageExists:
                    raise exception.DriverError(reason="RBD image %s/%s already exists"
                                                % (pool, target))
        LOG.info("Managing RBD image %s/%s as %s", pool, name, target)
        return {"provider_location": "rbd:%s/%s" % (pool, target)}

    def manage_existing_undo(self, volume, existing_ref):
        _rados, rbd = _import_bindings()
        name = self.manage_source_name(existing_ref)
        target = self.image_name(volume)
        if name != target:
            with self._ioctx(self._pool_of(volume)) as ioctx:
                rbd.RBD().rename(ioctx, target, name)
            LOG.info("Gave RBD image %s its old name %s back", target, name)

    def unmanage(self, volume):
        LOG.info("Unmanaged volume %s; RBD image %s stays", volume.id, self.image_name(volume))

    def migration_connection(self, volume):
        conf = self.configuration
        return {"driver_volume_type": "rbd",
                "data": {"pool": self._pool_of(volume), "image": self.image_name(volume),
                         "user": conf.rbd_user, "conf": conf.rbd_ceph_conf,
                         "keyring": conf.rbd_keyring, "cluster_name": conf.rbd_cluster_name,
                         "timeout": conf.rados_connect_timeout,
                         "op_timeout": conf.rados_op_timeout}}

    # --- backups (issue 11): an image snapshot per backup, kept as the next diff base -------

    BACKUP_SNAP_PREFIX = "backup."

    @classmethod
    def backup_snapshot_name(cls, backup_id):
        return cls.BACKUP_SNAP_PREFIX + backup_id

    def backup_source(self, volume, backup_id, snapshot=None, in_use=False):
        """The image at a snapshot: the Lamina snapshot's, or the new `backup.<backup_id>`
        (in use or not: an image snapshot is instant and consistent), which stays after the
        backup as the point in time the next incremental diffs against. Either is named in
        source_snapshot."""
        _rados, rbd = _import_bindings()
        if snapshot is not None:
            snap_name = self.snapshot_name(snapshot)
        else:
            snap_name = self.backup_snapshot_name(backup_id)
        with self._ioctx(self._pool_of(volume)) as ioctx, \
                rbd.Image(ioctx, self.image_name(volume)) as image:
            names = {snap["name"] for snap in image.list_snaps()}
            if snapshot is not None and snap_name not in names:
                raise exception.DriverError(reason="RBD snapshot %s@%s not found"
                                            % (self.image_name(volume), snap_name))
            # Present already: an earlier attempt of this backup made it (a retried call);
            # it serves the same backup.
            if snapshot is None and snap_name not in names:
                image.create_snap(snap_name)
                LOG.info("Created RBD snapshot %s@%s for backup %s", self.image_name(volume),
                         snap_name, backup_id)
        connection = self.migration_connection(volume)
        connection["data"]["snapshot"] = snap_name
        return {"connection": connection, "source_snapshot": snap_name}

    def release_backup_source(self, volume, backup_id, keep_source_snapshot, live_backup_ids):
        """Drop `backup.<backup_id>` unless it is kept, and the backup.* snapshots of
        backups that are gone or failed (nothing diffs against them any more). Snapshots of
        backups still live stay: each is the diff base of an incremental made on its
        backup once the newer ones are deleted."""
        _rados, rbd = _import_bindings()
        own = self.backup_snapshot_name(backup_id)
        live = set(live_backup_ids)
        with self._ioctx(self._pool_of(volume)) as ioctx:
            try:
                with rbd.Image(ioctx, self.image_name(volume)) as image:
                    for snap in list(image.list_snaps()):
                        name = snap["name"]
                        if not name.startswith(self.BACKUP_SNAP_PREFIX):
                            continue
                        if name == own:
                            if keep_source_snapshot:
                                continue
                        elif name[len(self.BACKUP_SNAP_PREFIX):] in live:
                            continue
                        try:
                            image.remove_snap(name)
                        except rbd.ImageNotFound:
                            continue  # another release removed it meanwhile
                        LOG.info("Removed RBD snapshot %s@%s (backup source)",
                                 self.image_name(volume), name)
            except rbd.ImageNotFound:
                LOG.info("RBD image of volume %s gone: no backup snapshot to remove",
                         volume.id)

    def restore_target(self, volume):
        return self.migration_connection(volume)

    def get_manageable_volumes(self, cinder_volume_ids):
        _rados, rbd = _import_bindings()
        pool = self.configuration.rbd_pool
        entries = []
        with self._ioctx(pool) as ioctx:
            for name in sorted(rbd.RBD().list(ioctx)):
                try:
                    with rbd.Image(ioctx, name, read_only=True) as image:
                        size = max(1, -(-image.size() // GiB))
                except rbd.ImageNotFound:
                    continue  # removed while listing
                entries.append(self.manageable_entry(name, size, cinder_volume_ids,
                                                     extra_info="pool %s" % pool))
        return entries


    # --- manage existing snapshots (issue 9): RBD snapshots of the volume's image --------------

    def _snap_of(self, image, existing_ref):
        name = self.manage_source_name(existing_ref)
        for snap in image.list_snaps():
            if snap["name"] == name:
                return snap
        raise exception.DriverError(reason="manage existing snapshot: image %s has no RBD "
                                           "snapshot %s" % (image.get_name(), name))

    def manage_existing_snapshot_get_size(self, snapshot, volume, existing_ref):
        _rados, rbd = _import_bindings()
        with self._ioctx(self._pool_of(volume)) as ioctx, \
                rbd.Image(ioctx, self.image_name(volume), read_only=True) as image:
            snap = self._snap_of(image, existing_ref)
        return max(1, -(-snap["size"] // GiB))

    def manage_existing_snapshot(self, snapshot, volume, existing_ref):
        _rados, rbd = _import_bindings()
        pool = self._pool_of(volume)
        target = self.snapshot_name(snapshot)
        with self._ioctx(pool) as ioctx, rbd.Image(ioctx, self.image_name(volume)) as image:
            name = self._snap_of(image, existing_ref)["name"]
            if name != target:
                image.rename_snap(name, target)
            if not image.is_protected_snap(target):
                image.protect_snap(target)  # as create_snapshot: clones may be made of it
        LOG.info("Managing RBD snapshot %s@%s as %s", self.image_name(volume), name, target)
        return {"provider_location": "rbd:%s/%s@%s" % (pool, self.image_name(volume), target)}

    def manage_existing_snapshot_undo(self, snapshot, volume, existing_ref):
        _rados, rbd = _import_bindings()
        name = self.manage_source_name(existing_ref)
        target = self.snapshot_name(snapshot)
        with self._ioctx(self._pool_of(volume)) as ioctx, \
                rbd.Image(ioctx, self.image_name(volume)) as image:
            if name != target and target in {s["name"] for s in image.list_snaps()}:
                image.rename_snap(target, name)
                LOG.info("Gave RBD snapshot %s its old name %s back", target, name)

    def unmanage_snapshot(self, snapshot, volume):
        LOG.info("Unmanaged snapshot %s; RBD snapshot %s@%s stays", snapshot.id,
                 self.image_name(volume), self.snapshot_name(snapshot))

    def get_manageable_snapshots(self, cinder_snapshots, volumes):
        _rados, rbd = _import_bindings()
        pool = self.configuration.rbd_pool
        entries = []
        with self._ioctx(pool) as ioctx:
            for vid in sorted(volumes):
                image_name = "volume-%s" % vid
                try:
                    with rbd.Image(ioctx, image_name, read_only=True) as image:
                        snaps = list(image.list_snaps())
                except rbd.ImageNotFound:
                    continue  # removed while listing
                for snap in snaps:
                    if snap["name"].startswith(("clone-", self.BACKUP_SNAP_PREFIX)):
                        # a clone's temporary snapshot, a backup's diff base: not snapshots
                        # a user made
                        continue
                    entries.append(self.manageable_snapshot_entry(
                        snap["name"], max(1, -(-snap["size"] // GiB)), cinder_snapshots,
                        image_name, extra_info="pool %s" % pool))
        return entries

class _IoctxGuard:
    """`with driver._ioctx(pool) as ioctx`: opens an I/O context, and drops the cluster
    handle when Ceph fails so the next call reconnects."""

    def __init__(self, driver, pool):
        self.driver = driver
        self.pool = pool
        self.ioctx = None
        self.client = None

    def __enter__(self):
        rados, _rbd = _import_bindings()
        self.client = self.driver._borrow()
        try:
            self.ioctx = self.client.open_ioctx(self.pool)
        except rados.ObjectNotFound:
            self.driver._give_back(self.client)
            raise exception.DriverError(reason="Ceph pool %s does not exist" % self.pool)
        except rados.Error as exc:
            self.driver._drop_connection(self.client)
            self.driver._give_back(self.client)
            raise exception.DriverError(reason="cannot open Ceph pool %s: %s"
                                        % (self.pool, exc))
        return self.ioctx

    def __exit__(self, exc_type, exc, tb):
        try:
            self.ioctx.close()
            if exc is not None and not isinstance(exc, exception.LaminaException):
                rados, rbd = _import_bindings()
                if isinstance(exc, (rados.TimedOut, rados.ConnectionShutdown, rbd.Timeout)):
                    self.driver._drop_connection(self.client)
                    raise exception.DriverError(
                        reason="Ceph operation timed out after %ds: the cluster is "
                               "unreachable or the pool is full (%s)"
                               % (self.driver.configuration.rados_op_timeout, exc)) from exc
                raise exception.DriverError(reason="Ceph: %s" % exc) from exc
            return False
        finally:
            self.driver._give_back(self.client)
