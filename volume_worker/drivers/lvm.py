"""Logical volumes in one LVM volume group, through the LVM commands; exported by iSCSI (tgt).

A volume is the LV ``volume-<id>`` in ``volume_group``: a linear (thick) LV, or with
``lvm_type = thin`` a thin LV in the pool ``lvm_thin_pool_name``. A snapshot is the LV
``_snapshot-<id>`` (LVM reserves names that begin with "snapshot"): a copy-on-write snapshot of
the volume's LV (``lvcreate -s``, as large as the volume), or a thin snapshot. A backup of an
in-use volume reads the temporary snapshot LV ``_backup-<backup id>``, made the same way. The
back end is one pool named after the volume group.

What needs the kernel's device-mapper: every data operation (a thick clone or a volume from a
thick snapshot copies the bytes between the /dev/<vg>/<lv> nodes with dd, an export hands
/dev/<vg>/<lv> to tgt), CoW snapshots and everything about thin pools (their creation, thin
LVs, their usage figures). On a host without device-mapper (the test machine: see
docs/architecture.md) only the metadata commands run, with ``global/activation = 0`` in the
lvm.conf of ``lvm_conf_dir``; the rest fails with LVM's own message as a DriverError.

Every command goes through ``self.execute(*argv) -> stdout`` (injectable: the tests record
what is issued), which raises DriverError with the command's stderr."""

import json
import logging
import os
import socket
import subprocess

from oslo_config import cfg

from common import connector, exception
from volume_worker.drivers import base
from volume_worker.targets import tgt

LOG = logging.getLogger(__name__)
GiB = 1024 ** 3
MiB = 1024 ** 2

lvm_opts = [
    cfg.StrOpt("volume_group", default="lamina-volumes",
               help="LVM volume group holding an lvm back end's volumes; the back end's one "
                    "pool is named after it. It must exist (vgcreate) before the service "
                    "starts."),
    cfg.StrOpt("lvm_type", default="default",
               choices=[("default", "thick (linear) LVs, each allocated in full"),
                        ("thin", "thin LVs in the thin pool lvm_thin_pool_name (made at "
                                 "start when missing); the pool may be over-subscribed up "
                                 "to max_over_subscription_ratio")],
               help="How the volumes of an lvm back end are provisioned."),
    cfg.StrOpt("lvm_thin_pool_name",
               help="Thin pool of thin LVs (lvm_type = thin). Default: <volume_group>-pool."),
    cfg.StrOpt("lvm_conf_dir", default="",
               help="Directory with the lvm.conf the LVM commands use (their LVM_SYSTEM_DIR), "
                    "e.g. to restrict them to some devices or turn activation off; empty: the "
                    "host's (/etc/lvm)."),
    cfg.IntOpt("lvm_command_timeout", default=300, min=1,
               help="Seconds one LVM command may take (e.g. waiting for a lock another "
                    "command holds) before it is stopped and the operation fails. Data copies "
                    "(dd) are not limited: they take as long as the volume's size needs."),
]

# LVM writes these on every command in a set-up like the test machine's; they are not the
# reason a command failed, so they are kept out of error messages.
_NOISE = ("WARNING: Activation disabled", "File descriptor", "WARNING: This metadata update "
          "is NOT backed up", "WARNING: Skipping zeroing", "WARNING: Logical volume")


def _host():
    """This service's host name ([DEFAULT] host, registered by common.service)."""
    return cfg.CONF.host if "host" in cfg.CONF else socket.gethostname()


def _reason(exc):
    """The reason a DriverError was raised with, without its generic prefix."""
    return str(exc).removeprefix("Storage back end error: ")


class LVMDriver(base.VolumeDriver):
    storage_protocol = "iSCSI"
    extra_opts = lvm_opts + tgt.target_opts

    def __init__(self, backend_name, configuration, execute=None):
        super().__init__(backend_name, configuration)
        self.execute = execute or self._run
        self._target = None

    # --- commands ----------------------------------------------------------------------------

    def _run(self, *argv):
        """Run one command (LVM's, or dd for a data copy) with this back end's lvm.conf."""
        env = dict(os.environ, LVM_SUPPRESS_FD_WARNINGS="1")
        if self.configuration.lvm_conf_dir:
            env["LVM_SYSTEM_DIR"] = self.configuration.lvm_conf_dir
        timeout = None if argv[0] == "dd" else self.configuration.lvm_command_timeout
        try:
            result = subprocess.run(list(argv), capture_output=True, text=True, env=env,
                                    timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise exception.DriverError(reason="%s failed: %s" % (" ".join(argv), exc))
        if result.returncode != 0:
            lines = [line.strip() for line in (result.stderr or result.stdout).splitlines()
                     if line.strip() and not line.strip().startswith(_NOISE)]
            raise exception.DriverError(reason="%s failed (exit %d): %s" % (
                " ".join(argv), result.returncode, " ".join(lines)))
        return result.stdout

    @property
    def vg(self):
        return self.configuration.volume_group

    @property
    def thin(self):
        return self.configuration.lvm_type == "thin"

    @property
    def thin_pool(self):
        return self.configuration.lvm_thin_pool_name or "%s-pool" % self.vg

    def _report(self, command, kind, *args):
        out = self.execute(command, "--reportformat", "json", "--units", "b", "--nosuffix",
                           *args)
        return json.loads(out)["report"][0][kind]

    def _vg_report(self):
        rows = self._report("vgs", "vg", "-o", "vg_name,vg_size,vg_free", self.vg)
        if not rows:
            raise exception.DriverError(reason="volume group %s not found" % self.vg)
        return rows[0]

    def _lvs(self):
        """{lv name: row} of every LV of the volume group (hidden ones in [brackets] too)."""
        rows = self._report("lvs", "lv", "-a", "-o",
                            "lv_name,lv_size,lv_attr,origin,pool_lv,data_percent,segtype",
                            self.vg)
        return {row["lv_name"]: row for row in rows}

    def _lv(self, name):
        return self._lvs().get(name)

    def lv_path(self, name):
        return "/dev/%s/%s" % (self.vg, name)

    # --- set-up and capacity -----------------------------------------------------------------

    def do_setup(self):
        self._vg_report()  # fail at start, clearly, when the volume group is missing
        if self.thin and self.thin_pool not in self._lvs():
            # As Cinder: the pool takes 95% of the group's free space; the rest is left for
            # the pool's metadata to grow into.
            self.execute("lvcreate", "--yes", "--type", "thin-pool", "-l", "95%FREE",
                         "-n", self.thin_pool, self.vg)
            LOG.info("Created thin pool %s/%s", self.vg, self.thin_pool)

    def get_pools(self):
        """Capacity as Cinder's LVM driver reports it: thick pools the volume group's size and
        free space; thin pools the thin pool's size and its unused share (data_percent), with
        provisioned_capacity_gb the sum of the LVs' sizes, for the over-subscription check."""
        vg = self._vg_report()
        lvs = self._lvs()
        provisioned = sum(int(row["lv_size"]) for name, row in lvs.items()
                          if not name.startswith("[") and row["segtype"] != "thin-pool")
        if self.thin:
            pool = lvs.get(self.thin_pool)
            if pool is None:
                raise exception.DriverError(reason="thin pool %s/%s not found"
                                            % (self.vg, self.thin_pool))
            total = int(pool["lv_size"])
            if pool["data_percent"] in ("", None):
                # An inactive pool reports no usage (always so without device-mapper): the
                # written share is unknown, so only the provisioned figure limits placement.
                LOG.warning("Thin pool %s/%s reports no usage (not active)", self.vg,
                            self.thin_pool)
                used = 0.0
            else:
                used = total * float(pool["data_percent"]) / 100
            free = total - used
        else:
            total, free = int(vg["vg_size"]), int(vg["vg_free"])
        report = self.base_capabilities()
        report.update(
            pool_name=self.vg, total_capacity_gb=round(total / GiB, 2),
            free_capacity_gb=round(free / GiB, 2),
            provisioned_capacity_gb=round(provisioned / GiB, 2),
            thin_provisioning_support=self.thin, thick_provisioning_support=not self.thin,
            location_info="LVMVolumeDriver:%s:%s:%s:0" % (_host(), self.vg,
                                                          self.configuration.lvm_type),
            # One export per attachment would let several hosts open the LV, but nothing
            # here makes concurrent writers safe: not claimed until it is proved.
            multiattach=False)
        return [report]

    # --- volumes -----------------------------------------------------------------------------

    @staticmethod
    def volume_name(volume):
        return "volume-%s" % volume.id

    @staticmethod
    def snapshot_name(snapshot):
        return "_snapshot-%s" % snapshot.id

    def _check_pool(self, volume):
        pool = base.pool_of(volume.host)
        if pool is not None and pool != self.vg:
            raise exception.DriverError(reason="volume %s is on unknown pool %r"
                                        % (volume.id, pool))

    def _location(self, name):
        return {"provider_location": "lvm:%s/%s" % (self.vg, name)}

    def _create_lv(self, name, size_gb):
        if self.thin:
            self.execute("lvcreate", "--yes", "-T", "-V", "%dg" % size_gb, "-n", name,
                         "%s/%s" % (self.vg, self.thin_pool))
        else:
            self.execute("lvcreate", "--yes", "-L", "%dg" % size_gb, "-n", name, self.vg)

    def _remove_lv(self, name):
        """lvremove; succeeds when the LV is already gone."""
        if self._lv(name) is None:
            LOG.info("LV %s/%s already gone", self.vg, name)
            return
        try:
            self.execute("lvremove", "-f", "%s/%s" % (self.vg, name))
        except exception.DriverError as exc:
            # lvremove of a thin LV commits the metadata before it tells the pool; when the
            # second step fails the LV is gone all the same, which is what was asked.
            if self._lv(name) is not None:
                raise
            LOG.warning("LV %s/%s is gone, but lvremove failed: %s", self.vg, name,
                        _reason(exc))
            return
        LOG.info("Removed LV %s/%s", self.vg, name)

    def create_volume(self, volume):
        self._check_pool(volume)
        name = self.volume_name(volume)
        # lvcreate refuses an existing name, so another volume's LV is never adopted; a
        # failed lvcreate leaves no LV behind.
        self._create_lv(name, volume.size)
        LOG.info("Created LV %s/%s (%d GiB, %s)", self.vg, name, volume.size,
                 self.configuration.lvm_type)
        return self._location(name)

    def delete_volume(self, volume):
        self._check_pool(volume)
        name = self.volume_name(volume)
        # CoW snapshots (attr s/S) depend on their origin; thin snapshots do not.
        snapshots = [lv for lv, row in self._lvs().items()
                     if row["origin"] == name and row["lv_attr"][:1] in ("s", "S")]
        if snapshots:
            # lvremove -f would take the CoW snapshots with it: refuse, as Cinder does.
            raise exception.DriverError(reason="volume %s has snapshots (%s); delete them "
                                        "first" % (volume.id, ", ".join(sorted(snapshots))))
        self._remove_lv(name)

    def extend_volume(self, volume, new_size):
        self._check_pool(volume)
        name = self.volume_name(volume)
        row = self._lv(name)
        if row is None:
            raise exception.DriverError(reason="LV %s/%s not found" % (self.vg, name))
        if int(row["lv_size"]) > new_size * GiB:
            raise exception.DriverError(reason="refusing to shrink %s/%s" % (self.vg, name))
        if int(row["lv_size"]) < new_size * GiB:
            self.execute("lvextend", "-L", "%dg" % new_size, "%s/%s" % (self.vg, name))
        LOG.info("Extended LV %s/%s to %d GiB", self.vg, name, new_size)
        self._refresh_exports(name)

    def _refresh_exports(self, name):
        """An attached volume: tgtd keeps a LUN's size from when it was made, so its targets
        get their LUN anew. A tgtd that does not answer holds no sessions to refresh, and
        ensure_export makes the LUNs with the new size when it is back."""
        try:
            self.target.refresh_size(self.lv_path(name))
        except exception.DriverError as exc:
            LOG.warning("Targets of %s/%s not refreshed after extend: %s", self.vg, name,
                        _reason(exc))

    # --- snapshots and copies ------------------------------------------------------------------

    def _snapshot_lv(self, origin, name, size_gb):
        if self.thin:
            # A thin snapshot shares the pool; -kn: activated like any volume (LVM would
            # otherwise mark it to be skipped by activation).
            self.execute("lvcreate", "--yes", "-s", "-kn", "-n", name,
                         "%s/%s" % (self.vg, origin))
        else:
            # As large as the origin: the CoW store can then never overflow (and invalidate
            # the snapshot) however much of the volume is rewritten.
            self.execute("lvcreate", "--yes", "-s", "-L", "%dg" % size_gb, "-n", name,
                         "%s/%s" % (self.vg, origin))

    def create_snapshot(self, snapshot, volume):
        self._check_pool(volume)
        name = self.snapshot_name(snapshot)
        self._snapshot_lv(self.volume_name(volume), name, volume.size)
        LOG.info("Created snapshot LV %s/%s of volume %s", self.vg, name, volume.id)
        return self._location(name)

    def delete_snapshot(self, snapshot, volume):
        self._remove_lv(self.snapshot_name(snapshot))

    def _copy_data(self, source, target, size_gb):
        """Copy size_gb GiB of the source LV's bytes into the target LV: needs both LVs active
        (their /dev nodes), which needs device-mapper."""
        src, dst = self.lv_path(source), self.lv_path(target)
        try:
            self.execute("dd", "if=%s" % src, "of=%s" % dst, "bs=1M",
                         "count=%d" % (size_gb * GiB // MiB), "iflag=direct", "oflag=direct",
                         "conv=fdatasync,notrunc", "status=none")
        except exception.DriverError as exc:
            missing = [p for p in (src, dst) if not os.path.exists(p)]
            hint = ("; %s does not exist: copying LV data needs active LVs (the kernel's "
                    "device-mapper), which this host does not offer" % " and ".join(missing)
                    if missing else "")
            raise exception.DriverError(reason="copying the data of %s/%s into %s/%s failed: "
                                        "%s%s" % (self.vg, source, self.vg, target,
                                                  _reason(exc), hint))

    def _create_copy(self, volume, source_lv, source_size):
        """A new thick LV for `volume` with source_lv's data; removed again on failure."""
        name = self.volume_name(volume)
        self._create_lv(name, volume.size)
        try:
            self._copy_data(source_lv, name, min(source_size, volume.size))
        except Exception:
            self._remove_lv(name)
            raise
        return self._location(name)

    def _create_thin_copy(self, volume, source_lv):
        """A thin snapshot of source_lv as the volume's LV: metadata only, the data is
        shared in the pool; grown to the volume's size."""
        name = self.volume_name(volume)
        self._snapshot_lv(source_lv, name, volume.size)
        try:
            self.extend_volume(volume, volume.size)
        except Exception:
            self._remove_lv(name)
            raise
        return self._location(name)

    def create_volume_from_snapshot(self, volume, snapshot, snapshot_volume):
        self._check_pool(volume)
        source = self.snapshot_name(snapshot)
        if self.thin:
            update = self._create_thin_copy(volume, source)
        else:
            # The snapshot is as large as the volume was when it was taken.
            size = getattr(snapshot, "volume_size", None) or snapshot_volume.size
            update = self._create_copy(volume, source, size)
        LOG.info("Created volume %s from snapshot %s", volume.id, snapshot.id)
        return update

    def create_cloned_volume(self, volume, source_volume):
        """Thin: a thin snapshot of the source. Thick: the data copied from a temporary CoW
        snapshot of the source (consistent while the source is written), then dropped."""
        self._check_pool(volume)
        source = self.volume_name(source_volume)
        if self.thin:
            update = self._create_thin_copy(volume, source)
        else:
            temp = "_clone-%s" % volume.id
            self._snapshot_lv(source, temp, source_volume.size)
            try:
                update = self._create_copy(volume, temp, source_volume.size)
            finally:
                self._remove_lv(temp)
        LOG.info("Created volume %s as a copy of volume %s", volume.id, source_volume.id)
        return update

    def revert_to_snapshot(self, volume, snapshot):
        """lvconvert --merge puts the snapshot's data back and consumes the snapshot, so it
        is made again (of the reverted volume) for the snapshot row to keep its storage."""
        self._check_pool(volume)
        name = self.snapshot_name(snapshot)
        if self._lv(name) is None:
            raise exception.DriverError(reason="snapshot LV %s/%s not found" % (self.vg, name))
        origin = "%s/%s" % (self.vg, self.volume_name(volume))
        self.execute("lvconvert", "--merge", "%s/%s" % (self.vg, name))
        # An active origin merges at its next activation: deactivate and activate it so the
        # merge runs now and the snapshot's name is free again (the volume is not attached:
        # the API reverts only available volumes).
        self.execute("lvchange", "-an", origin)
        self.execute("lvchange", "-ay", origin)
        self._snapshot_lv(self.volume_name(volume), name, volume.size)
        LOG.info("Reverted volume %s to snapshot %s", volume.id, snapshot.id)

    # --- exports (iSCSI through tgt) -----------------------------------------------------------

    @property
    def target(self):
        """The tgt helper of this back end (tests may set their own)."""
        if self._target is None:
            self._target = tgt.TgtTarget(self.configuration)
        return self._target

    @target.setter
    def target(self, value):
        self._target = value

    @staticmethod
    def _export_name(attachment_id):
        if not attachment_id:
            raise exception.DriverError(reason="an iSCSI export is made per attachment: no "
                                               "attachment id given")
        return attachment_id

    def initialize_connection(self, volume, connector, attachment_id):
        """One tgt target per attachment with /dev/<vg>/<lv> as its LUN. That node exists
        only while the LV is active, which needs the kernel's device-mapper."""
        export_name = self._export_name(attachment_id)
        path = self.lv_path(self.volume_name(volume))
        if not os.path.exists(path):
            raise exception.DriverError(
                reason="cannot export volume %s: %s does not exist (the LV is not active; "
                       "active LVs need the kernel's device-mapper)" % (volume.id, path))
        data = self.target.create_export(export_name, path, connector, volume.id)
        return {"driver_volume_type": "iscsi", "data": data}

    def terminate_connection(self, volume, connector, attachment_id):
        if attachment_id is None:
            return
        self.target.remove_export(self._export_name(attachment_id))

    def remove_stale_exports(self, live_attachments):
        self.target.remove_exports_except(live_attachments)

    def ensure_export(self, volume, connector, attachment_id, connection_info):
        if (connection_info or {}).get("driver_volume_type") != "iscsi":
            return
        self.target.ensure_export(self._export_name(attachment_id),
                                  self.lv_path(self.volume_name(volume)), connector,
                                  connection_info["data"])

    def migration_connection(self, volume):
        return {"driver_volume_type": "local",
                "data": {"device_path": self.lv_path(self.volume_name(volume))}}

    # --- backups (issue 11): the LV, a snapshot's LV, or a temporary snapshot LV -------------

    @staticmethod
    def backup_snapshot_name(backup_id):
        return "_backup-%s" % backup_id

    def backup_source(self, volume, backup_id, snapshot=None, in_use=False):
        """The LV's device node. An in-use volume is read through a temporary snapshot LV
        (CoW, as large as the volume, or thin), made as snapshots are: a consistent point in
        time while the volume is written. Reading needs the LV active (device-mapper)."""
        self._check_pool(volume)
        if snapshot is not None:
            name = self.snapshot_name(snapshot)
        elif in_use:
            name = self.backup_snapshot_name(backup_id)
            if self._lv(name) is not None:  # left by an interrupted attempt of this backup
                self._remove_lv(name)
            self._snapshot_lv(self.volume_name(volume), name, volume.size)
            LOG.info("Backup %s of in-use volume %s reads snapshot LV %s/%s", backup_id,
                     volume.id, self.vg, name)
        else:
            name = self.volume_name(volume)
        try:
            if self._lv(name) is None:
                raise exception.DriverError(reason="backup source LV %s/%s not found"
                                            % (self.vg, name))
            return {"connection": self._local(name, volume, "ro"), "source_snapshot": None}
        except Exception:
            if name == self.backup_snapshot_name(backup_id):
                self._remove_lv(name)
            raise

    def release_backup_source(self, volume, backup_id, keep_source_snapshot, live_backup_ids):
        self._remove_lv(self.backup_snapshot_name(backup_id))

    def restore_target(self, volume):
        self._check_pool(volume)
        name = self.volume_name(volume)
        if self._lv(name) is None:
            raise exception.DriverError(reason="restore target LV %s/%s not found"
                                        % (self.vg, name))
        return self._local(name, volume, "rw")

    def _local(self, name, volume, access_mode):
        return connector.local_connection(self.lv_path(name), volume_id=volume.id,
                                          access_mode=access_mode)

    # --- manage existing / unmanage ------------------------------------------------------------

    def _manage_candidate(self, volume, existing_ref):
        self._check_pool(volume)
        name = self.manage_source_name(existing_ref)
        row = self._lv(name)
        if row is None:
            raise exception.DriverError(reason="manage existing: no LV %s in volume group %s"
                                        % (name, self.vg))
        if not self._is_volume_lv(name, row):
            raise exception.DriverError(reason="manage existing: %s/%s is not a volume (a "
                                        "snapshot, a pool or an LVM internal LV)"
                                        % (self.vg, name))
        if self.thin != (row["segtype"] == "thin"):
            raise exception.DriverError(reason="manage existing: %s/%s is a %s LV; this back "
                                        "end makes %s ones" % (
                                            self.vg, name, row["segtype"],
                                            "thin" if self.thin else "thick"))
        return name, row

    def _is_volume_lv(self, name, row):
        return not (name.startswith(("[", "_snapshot-", "_clone-", "_backup-"))
                    or row["segtype"] in ("snapshot", "thin-pool")
                    or row["lv_attr"][:1] in ("s", "S", "t"))

    def manage_existing_get_size(self, volume, existing_ref):
        _name, row = self._manage_candidate(volume, existing_ref)
        return max(1, -(-int(row["lv_size"]) // GiB))

    def manage_existing(self, volume, existing_ref):
        name, _row = self._manage_candidate(volume, existing_ref)
        target = self.volume_name(volume)
        if name != target:
            # lvrename refuses an existing target name: another volume's LV stays its own.
            self.execute("lvrename", self.vg, name, target)
        LOG.info("Managing LV %s/%s as %s", self.vg, name, target)
        return self._location(target)

    def manage_existing_undo(self, volume, existing_ref):
        name = self.manage_source_name(existing_ref)
        target = self.volume_name(volume)
        if name != target and self._lv(target) is not None:
            self.execute("lvrename", self.vg, target, name)
            LOG.info("Gave LV %s/%s its old name %s back", self.vg, target, name)

    def unmanage(self, volume):
        LOG.info("Unmanaged volume %s; LV %s/%s stays", volume.id, self.vg,
                 self.volume_name(volume))

    def get_manageable_volumes(self, cinder_volume_ids):
        entries = []
        for name, row in sorted(self._lvs().items()):
            if not self._is_volume_lv(name, row):
                continue
            entry = self.manageable_entry(name, max(1, -(-int(row["lv_size"]) // GiB)),
                                          cinder_volume_ids,
                                          extra_info="%s LV in %s" % (row["segtype"], self.vg))
            if entry["safe_to_manage"] and row["lv_attr"][5:6] == "o":
                entry.update(safe_to_manage=False, reason_not_safe="volume in use")
            elif entry["safe_to_manage"] and self.thin != (row["segtype"] == "thin"):
                entry.update(safe_to_manage=False,
                             reason_not_safe="%s LV; the back end makes %s ones" % (
                                 row["segtype"], "thin" if self.thin else "thick"))
            entries.append(entry)
        return entries
