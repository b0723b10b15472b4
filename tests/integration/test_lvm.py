"""The lvm driver against real LVM commands on a loop device.

This machine's kernel has no device-mapper (../shared/recipes/storage-on-this-machine.md, 3), so
each test gets a sparse file on a loop device, a PV and a VG on it, and a private lvm.conf
(LVM_SYSTEM_DIR) that sees only that loop device, keeps no archives and has
`global/activation = 0`: LVM then runs every metadata command for real (lvcreate, lvextend,
lvremove, lvrename, lvs/vgs reports) and refuses what needs the kernel:

- CoW snapshots (`lvcreate -s`), thin pools and thin LVs: "Can't create ... without using
  device-mapper kernel driver". The tests check the driver issues the right command and turns
  the refusal into a DriverError leaving nothing behind. To test what the driver does with
  existing snapshots and thin pools, the tests write them into the VG's metadata the only ways
  LVM allows without the kernel: `lvconvert -s -Zn` (an LV made a snapshot's CoW store) and
  `vgcfgrestore` of edited metadata (a thin pool and thin LVs).
- Activation (`lvchange -ay` answers 0 and makes nothing), so /dev/<vg>/<lv> never exists:
  data copies (dd) and iSCSI exports of an LV fail, with a message saying so.

Without lvm2, root or loop devices the tests skip saying why; with LAMINA_REQUIRE_LVM=1 (make
test) they fail instead."""

import json
import os
import secrets
import shutil
import string
import subprocess
import uuid
from types import SimpleNamespace

import pytest
from oslo_config import cfg

from common import exception
from volume_worker.drivers import base
from volume_worker.drivers.lvm import LVMDriver

pytestmark = pytest.mark.integration
GiB = 1024 ** 3
PV_SIZE = 10 * GiB
NO_DM = "without using device-mapper kernel driver"

LVM_CONF = """devices {
    filter = [ "a|^%(loop)s$|", "r|.*|" ]
    use_devicesfile = 0
    obtain_device_list_from_udev = 0
}
global {
    activation = 0
    use_lvmpolld = 0
    locking_dir = "%(dir)s/lock"
}
activation { udev_sync = 0  udev_rules = 0  monitoring = 0 }
backup { backup = 0  archive = 0 }
"""


def _missing():
    if not shutil.which("lvcreate"):
        return "lvm2 is not installed (apt-get install lvm2)"
    if os.geteuid() != 0:
        return "LVM and loop devices need root"
    if not os.path.exists("/dev/loop-control") or not shutil.which("losetup"):
        return "no loop devices (/dev/loop-control)"
    return None


def _require():
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("LAMINA_REQUIRE_LVM") == "1":
        pytest.fail("LVM is required here (LAMINA_REQUIRE_LVM=1): " + reason)
    pytest.skip(reason)


class LVMHost:
    """One test's loop device, PV, VG and lvm.conf, and the LVM commands seen from outside
    the driver (what an operator would type)."""

    def __init__(self, workdir):
        self.dir = str(workdir)
        self.vg = "lamina-test-%s" % secrets.token_hex(3)
        self.image = os.path.join(self.dir, "pv.img")
        self.loop = None
        self.env = dict(os.environ, LVM_SYSTEM_DIR=os.path.join(self.dir, "etc"),
                        LVM_SUPPRESS_FD_WARNINGS="1")

    def setup(self):
        os.makedirs(os.path.join(self.dir, "etc"))
        os.makedirs(os.path.join(self.dir, "lock"))
        with open(self.image, "wb") as f:
            f.truncate(PV_SIZE)
        self.loop = subprocess.run(["losetup", "-f", "--show", self.image], check=True,
                                   capture_output=True, text=True).stdout.strip()
        with open(os.path.join(self.dir, "etc", "lvm.conf"), "w") as f:
            f.write(LVM_CONF % {"loop": self.loop, "dir": self.dir})
        self.run("pvcreate", self.loop)
        self.run("vgcreate", self.vg, self.loop)

    def teardown(self):
        if self.loop is None:
            return
        self.run("vgremove", "-f", self.vg, check=False)
        self.run("pvremove", "-ff", "-y", self.loop, check=False)
        subprocess.run(["losetup", "-d", self.loop], check=True)

    def run(self, *argv, check=True):
        result = subprocess.run(list(argv), capture_output=True, text=True, env=self.env)
        if check and result.returncode != 0:
            raise RuntimeError("%s: %s" % (" ".join(argv), result.stderr))
        return result

    def lvs(self):
        out = self.run("lvs", "-a", "--reportformat", "json", "--units", "b", "--nosuffix",
                       "-o", "lv_name,lv_size,lv_attr,origin,segtype", self.vg).stdout
        return {row["lv_name"]: row for row in json.loads(out)["report"][0]["lv"]}

    def vgs(self):
        out = self.run("vgs", "--reportformat", "json", "--units", "b", "--nosuffix",
                       "-o", "vg_size,vg_free,vg_extent_size", self.vg).stdout
        return {k: int(v) for k, v in json.loads(out)["report"][0]["vg"][0].items()}

    def make_snapshot_metadata(self, origin, name, size):
        """A CoW snapshot's metadata without the kernel: a plain LV converted into the
        origin's snapshot store without zeroing it (-Zn; with zeroing lvconvert needs the LV
        active)."""
        self.run("lvcreate", "-y", "-L", size, "-n", name, self.vg)
        self.run("lvconvert", "-y", "-Zn", "-s", "%s/%s" % (self.vg, origin),
                 "%s/%s" % (self.vg, name))

    def make_thin_pool_metadata(self, pool, size, thin_lvs=()):
        """A thin pool of `size` (LVM size string) and thin LVs {name: GiB} in the VG's
        metadata, through vgcfgrestore (lvcreate refuses thin pools without the kernel):
        two plain LVs are allocated for the pool's data and metadata, then the metadata text
        is rewritten to make them the pool's hidden sub-LVs (names with _tdata and _tmeta
        are LVM's own: lvcreate refuses them)."""
        self.run("lvcreate", "-y", "-L", size, "-n", "pooldata", self.vg)
        self.run("lvcreate", "-y", "-L", "8m", "-n", "poolmeta", self.vg)
        backup = os.path.join(self.dir, "vg.txt")
        self.run("vgcfgbackup", "-f", backup, self.vg)
        with open(backup) as f:
            text = f.read()
        extent = self.vgs()["vg_extent_size"]
        data_extents = int(self.lvs()["pooldata"]["lv_size"]) // extent
        for plain, sub in (("pooldata", "_tdata"), ("poolmeta", "_tmeta")):
            text = text.replace("\t\t%s {" % plain, "\t\t%s%s {" % (pool, sub))
        blocks = [_lv_block(pool, ["READ", "WRITE", "VISIBLE"], data_extents, [
            'type = "thin-pool"', 'metadata = "%s_tmeta"' % pool, 'pool = "%s_tdata"' % pool,
            "transaction_id = %d" % len(thin_lvs), "chunk_size = 128",
            'discards = "passdown"', "zero_new_blocks = 1"])]
        for device_id, (name, gib) in enumerate(sorted(thin_lvs.items()), start=1):
            blocks.append(_lv_block(name, ["READ", "WRITE", "VISIBLE"], gib * GiB // extent, [
                'type = "thin"', 'thin_pool = "%s"' % pool,
                "transaction_id = %d" % (device_id - 1), "device_id = %d" % device_id]))
        for sub in ("_tdata", "_tmeta"):
            start = text.index("\t\t%s%s {" % (pool, sub))
            status = text.index('status = ["READ", "WRITE", "VISIBLE"]', start)
            text = text[:status] + 'status = ["READ", "WRITE"]' + \
                text[status + len('status = ["READ", "WRITE", "VISIBLE"]'):]
        anchor = text.index("\t\t%s_tdata {" % pool)
        text = text[:anchor] + "".join(blocks) + text[anchor:]
        with open(backup, "w") as f:
            f.write(text)
        self.run("vgcfgrestore", "--force", "-f", backup, self.vg)


def _lvm_id():
    chars = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    parts, at = [], 0
    for width in (6, 4, 4, 4, 4, 4, 6):
        parts.append(chars[at:at + width])
        at += width
    return "-".join(parts)


def _lv_block(name, status, extents, segment_lines):
    segment = "".join("\t\t\t\t%s\n" % line for line in segment_lines)
    return ("\t\t%s {\n\t\t\tid = \"%s\"\n\t\t\tstatus = %s\n\t\t\tflags = []\n"
            "\t\t\tsegment_count = 1\n\n\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n"
            "\t\t\t\textent_count = %d\n%s\t\t\t}\n\t\t}\n\n"
            % (name, _lvm_id(), json.dumps(status).replace(",", ", ").replace(",  ", ", "),
               extents, segment))


@pytest.fixture
def host(tmp_path):
    _require()
    h = LVMHost(tmp_path)
    try:
        h.setup()
        yield h
    finally:
        h.teardown()


class Recorder:
    """The driver's command runner, wrapped: every command issued is kept."""

    def __init__(self, driver):
        self.commands = []
        self._run = driver.execute
        driver.execute = self

    def __call__(self, *argv):
        self.commands.append(list(argv))
        return self._run(*argv)

    def issued(self, program):
        return [c for c in self.commands if c[0] == program]


def make_driver(host, **options):
    conf = cfg.ConfigOpts()
    section = base.register_backend_opts(conf, "lvm", LVMDriver.extra_opts)
    settings = dict(volume_driver="lvm", volume_group=host.vg,
                    lvm_conf_dir=os.path.join(host.dir, "etc"))
    settings.update(options)
    for name, value in settings.items():
        conf.set_override(name, value, group="lvm")
    driver = LVMDriver("lvm", section)
    return driver, Recorder(driver)


def volume(vg, size, vid=None):
    return SimpleNamespace(id=vid or str(uuid.uuid4()), size=size, host="h@lvm#%s" % vg)


def snapshot(vol):
    return SimpleNamespace(id=str(uuid.uuid4()), volume_id=vol.id, volume_size=vol.size)


# --- thick volumes ---------------------------------------------------------------------------


def test_thick_create_extend_delete_as_lvs_shows(host):
    driver, rec = make_driver(host)
    driver.do_setup()
    vol = volume(host.vg, 1)
    update = driver.create_volume(vol)
    name = "volume-" + vol.id
    assert update == {"provider_location": "lvm:%s/%s" % (host.vg, name)}
    assert rec.issued("lvcreate")[-1] == ["lvcreate", "--yes", "-L", "1g", "-n", name, host.vg]
    row = host.lvs()[name]
    assert int(row["lv_size"]) == 1 * GiB
    assert row["segtype"] == "linear"
    driver.extend_volume(vol, 3)
    assert int(host.lvs()[name]["lv_size"]) == 3 * GiB
    assert rec.issued("lvextend")[-1] == ["lvextend", "-L", "3g", "%s/%s" % (host.vg, name)]
    with pytest.raises(exception.DriverError, match="shrink"):
        driver.extend_volume(vol, 2)
    assert int(host.lvs()[name]["lv_size"]) == 3 * GiB
    driver.delete_volume(vol)
    assert name not in host.lvs()
    driver.delete_volume(vol)  # already gone: fine
    assert rec.issued("lvremove") == [["lvremove", "-f", "%s/%s" % (host.vg, name)]]


def test_capacity_is_what_vgs_reports(host):
    driver, _rec = make_driver(host)
    before = host.vgs()
    [pool] = driver.get_pools()
    assert pool["pool_name"] == host.vg
    assert pool["total_capacity_gb"] == round(before["vg_size"] / GiB, 2)
    assert pool["free_capacity_gb"] == round(before["vg_free"] / GiB, 2)
    assert pool["provisioned_capacity_gb"] == 0
    assert pool["thick_provisioning_support"] is True
    assert pool["thin_provisioning_support"] is False
    assert pool["multiattach"] is False
    assert pool["storage_protocol"] == "iSCSI"
    assert pool["location_info"].split(":")[0] == "LVMVolumeDriver"
    assert pool["location_info"].split(":")[2:] == [host.vg, "default", "0"]
    for size in (1, 2):
        driver.create_volume(volume(host.vg, size))
    after = host.vgs()
    assert before["vg_free"] - after["vg_free"] == 3 * GiB
    [pool] = driver.get_pools()
    assert pool["free_capacity_gb"] == round(after["vg_free"] / GiB, 2)
    assert pool["total_capacity_gb"] == round(after["vg_size"] / GiB, 2)
    assert pool["provisioned_capacity_gb"] == 3.0


def test_failed_create_leaves_nothing_behind(host):
    driver, _rec = make_driver(host)
    existing = volume(host.vg, 1)
    driver.create_volume(existing)
    before = host.lvs()
    with pytest.raises(exception.DriverError, match="insufficient free space"):
        driver.create_volume(volume(host.vg, 20))
    # The same name again (a replayed request): refused, and the LV stays as it was.
    with pytest.raises(exception.DriverError, match="already exists"):
        driver.create_volume(volume(host.vg, 2, vid=existing.id))
    assert host.lvs() == before
    with pytest.raises(exception.DriverError, match="unknown pool"):
        driver.create_volume(SimpleNamespace(id="x", size=1, host="h@lvm#other"))


def test_missing_volume_group_fails_setup(host):
    driver, _rec = make_driver(host, volume_group="no-such-vg")
    with pytest.raises(exception.DriverError, match="no-such-vg"):
        driver.do_setup()


# --- snapshots and copies ----------------------------------------------------------------------


def test_thick_snapshot_needs_device_mapper(host):
    """lvcreate -s is what the driver runs; without the kernel's dm-snapshot LVM refuses."""
    driver, rec = make_driver(host)
    vol = volume(host.vg, 1)
    driver.create_volume(vol)
    snap = snapshot(vol)
    with pytest.raises(exception.DriverError, match="Can't create snapshot " + NO_DM):
        driver.create_snapshot(snap, vol)
    assert rec.issued("lvcreate")[-1] == [
        "lvcreate", "--yes", "-s", "-L", "1g", "-n", "_snapshot-" + snap.id,
        "%s/volume-%s" % (host.vg, vol.id)]
    assert sorted(host.lvs()) == ["volume-" + vol.id]


def test_snapshot_delete_and_a_volume_with_snapshots(host):
    driver, _rec = make_driver(host)
    vol = volume(host.vg, 1)
    driver.create_volume(vol)
    snap = snapshot(vol)
    host.make_snapshot_metadata("volume-" + vol.id, "_snapshot-" + snap.id, "1g")
    assert host.lvs()["_snapshot-" + snap.id]["origin"] == "volume-" + vol.id
    with pytest.raises(exception.DriverError, match="has snapshots"):
        driver.delete_volume(vol)
    assert "volume-" + vol.id in host.lvs()
    # Snapshots are neither volumes to manage nor provisioned twice.
    assert [e["reference"]["source-name"] for e in driver.get_manageable_volumes([])] == [
        "volume-" + vol.id]
    assert driver.get_pools()[0]["provisioned_capacity_gb"] == 2.0
    driver.delete_snapshot(snap, vol)
    assert "_snapshot-" + snap.id not in host.lvs()
    driver.delete_snapshot(snap, vol)  # already gone: fine
    driver.delete_volume(vol)
    assert host.lvs() == {}


def test_volume_from_snapshot_copy_needs_active_lvs(host):
    """A thick volume from a snapshot is a new LV and a dd of the snapshot's bytes into it;
    /dev/<vg>/<lv> never exists here, so the copy fails with that reason and the new LV is
    removed again."""
    driver, rec = make_driver(host)
    vol = volume(host.vg, 1)
    driver.create_volume(vol)
    snap = snapshot(vol)
    host.make_snapshot_metadata("volume-" + vol.id, "_snapshot-" + snap.id, "1g")
    new = volume(host.vg, 2)
    with pytest.raises(exception.DriverError) as err:
        driver.create_volume_from_snapshot(new, snap, vol)
    message = str(err.value)
    assert "/dev/%s/_snapshot-%s" % (host.vg, snap.id) in message
    assert "device-mapper" in message
    [dd] = rec.issued("dd")
    assert dd[1:4] == ["if=/dev/%s/_snapshot-%s" % (host.vg, snap.id),
                       "of=/dev/%s/volume-%s" % (host.vg, new.id), "bs=1M"]
    assert "count=1024" in dd  # the snapshot's size, not the new volume's
    assert "volume-" + new.id not in host.lvs()
    assert sorted(host.lvs()) == sorted(["volume-" + vol.id, "_snapshot-" + snap.id])


def test_thick_clone_needs_device_mapper(host):
    """A thick clone copies from a temporary snapshot of the source: refused at lvcreate -s,
    before anything is made."""
    driver, rec = make_driver(host)
    src = volume(host.vg, 1)
    driver.create_volume(src)
    clone = volume(host.vg, 1)
    with pytest.raises(exception.DriverError, match=NO_DM):
        driver.create_cloned_volume(clone, src)
    assert rec.issued("lvcreate")[-1][:3] == ["lvcreate", "--yes", "-s"]
    assert rec.issued("lvcreate")[-1][-2:] == ["_clone-" + clone.id,
                                               "%s/volume-%s" % (host.vg, src.id)]
    assert sorted(host.lvs()) == ["volume-" + src.id]


def test_export_needs_the_lv_device(host):
    driver, _rec = make_driver(host)
    vol = volume(host.vg, 1)
    driver.create_volume(vol)
    connector = {"initiator": "iqn.1993-08.org.debian:01:test", "ip": "127.0.0.1"}
    with pytest.raises(exception.DriverError, match="does not exist.*device-mapper"):
        driver.initialize_connection(vol, connector, str(uuid.uuid4()))
    assert driver.migration_connection(vol) == {
        "driver_volume_type": "local",
        "data": {"device_path": "/dev/%s/volume-%s" % (host.vg, vol.id)}}


# --- manage existing ---------------------------------------------------------------------------


def test_manage_existing_unmanage_and_manageable_list(host):
    driver, rec = make_driver(host)
    host.run("lvcreate", "-y", "-L", "1536m", "-n", "legacy", host.vg)
    owned = volume(host.vg, 1)
    driver.create_volume(owned)
    entries = {e["reference"]["source-name"]: e
               for e in driver.get_manageable_volumes([owned.id])}
    assert entries["legacy"]["size"] == 2  # 1.5 GiB, rounded up
    assert entries["legacy"]["safe_to_manage"] is True
    assert entries["volume-" + owned.id]["safe_to_manage"] is False
    assert entries["volume-" + owned.id]["cinder_id"] == owned.id

    vol = volume(host.vg, 2)
    ref = {"source-name": "legacy"}
    assert driver.manage_existing_get_size(vol, ref) == 2
    assert driver.manage_existing(vol, ref) == {
        "provider_location": "lvm:%s/volume-%s" % (host.vg, vol.id)}
    assert rec.issued("lvrename")[-1] == ["lvrename", host.vg, "legacy", "volume-" + vol.id]
    lvs = host.lvs()
    assert "legacy" not in lvs and int(lvs["volume-" + vol.id]["lv_size"]) == 1536 * 1024 ** 2
    driver.manage_existing_undo(vol, ref)  # a later step of the flow failed
    assert "legacy" in host.lvs() and "volume-" + vol.id not in host.lvs()

    with pytest.raises(exception.DriverError, match="no LV missing"):
        driver.manage_existing(vol, {"source-name": "missing"})
    # Another volume's LV as the target name: lvrename refuses, nothing changes.
    taken = volume(host.vg, 2, vid=owned.id)
    with pytest.raises(exception.DriverError, match="already exists"):
        driver.manage_existing(taken, ref)
    assert sorted(host.lvs()) == sorted(["legacy", "volume-" + owned.id])
    driver.unmanage(owned)
    assert "volume-" + owned.id in host.lvs()


def test_revert_to_snapshot_needs_device_mapper(host):
    """Revert is lvconvert --merge (then the snapshot is made again, as the merge consumes
    it); LVM cannot start a merge without the kernel's snapshot-merge target, and nothing
    changes."""
    driver, rec = make_driver(host)
    vol = volume(host.vg, 1)
    driver.create_volume(vol)
    snap = snapshot(vol)
    host.make_snapshot_metadata("volume-" + vol.id, "_snapshot-" + snap.id, "1g")
    before = host.lvs()
    with pytest.raises(exception.DriverError, match="Can't initialize snapshot merge"):
        driver.revert_to_snapshot(vol, snap)
    assert rec.issued("lvconvert") == [["lvconvert", "--merge",
                                        "%s/_snapshot-%s" % (host.vg, snap.id)]]
    assert host.lvs() == before
    with pytest.raises(exception.DriverError, match="not found"):
        driver.revert_to_snapshot(vol, snapshot(vol))


# --- thin --------------------------------------------------------------------------------------


def test_thin_pool_creation_needs_device_mapper(host):
    driver, rec = make_driver(host, lvm_type="thin")
    with pytest.raises(exception.DriverError, match="Can't create thin-pool " + NO_DM):
        driver.do_setup()
    assert rec.issued("lvcreate") == [["lvcreate", "--yes", "--type", "thin-pool", "-l",
                                       "95%FREE", "-n", host.vg + "-pool", host.vg]]
    assert host.lvs() == {}


def test_thin_pool_over_subscription_and_thin_volumes(host):
    """A thin pool of 4 GiB holding thin LVs of 3 + 5 GiB (written into the metadata: see
    make_thin_pool_metadata): the pool reports its own size, and 8 GiB provisioned, which the
    scheduler checks against max_over_subscription_ratio."""
    pool = host.vg + "-pool"
    existing = volume(host.vg, 3)
    host.make_thin_pool_metadata(pool, "4g", {"volume-" + existing.id: 3, "thin-legacy": 5})
    driver, rec = make_driver(host, lvm_type="thin", max_over_subscription_ratio=10.0)
    driver.do_setup()  # the pool exists: nothing to make
    assert rec.issued("lvcreate") == []
    lvs = host.lvs()
    assert lvs[pool]["segtype"] == "thin-pool"
    assert int(lvs["thin-legacy"]["lv_size"]) == 5 * GiB
    [report] = driver.get_pools()
    assert report["total_capacity_gb"] == 4.0
    assert report["free_capacity_gb"] == 4.0  # an inactive pool has no usage figure
    assert report["provisioned_capacity_gb"] == 8.0
    assert report["provisioned_capacity_gb"] > report["total_capacity_gb"]
    assert report["thin_provisioning_support"] is True
    assert report["thick_provisioning_support"] is False
    assert report["max_over_subscription_ratio"] == 10.0
    assert report["location_info"].endswith(":%s:thin:0" % host.vg)

    # Thin LVs: extended and removed in metadata; made (lvcreate -T) only with the kernel.
    driver.extend_volume(existing, 6)
    assert int(host.lvs()["volume-" + existing.id]["lv_size"]) == 6 * GiB
    new = volume(host.vg, 2)
    with pytest.raises(exception.DriverError, match="Can't create thin " + NO_DM):
        driver.create_volume(new)
    assert rec.issued("lvcreate")[-1] == ["lvcreate", "--yes", "-T", "-V", "2g", "-n",
                                          "volume-" + new.id, "%s/%s" % (host.vg, pool)]
    snap = snapshot(existing)
    with pytest.raises(exception.DriverError, match=NO_DM):
        driver.create_snapshot(snap, existing)
    assert rec.issued("lvcreate")[-1] == ["lvcreate", "--yes", "-s", "-kn", "-n",
                                          "_snapshot-" + snap.id,
                                          "%s/volume-%s" % (host.vg, existing.id)]
    assert sorted(host.lvs()) == sorted([pool, "[%s_tdata]" % pool, "[%s_tmeta]" % pool,
                                         "volume-" + existing.id, "thin-legacy"])

    entries = {e["reference"]["source-name"]: e
               for e in driver.get_manageable_volumes([existing.id])}
    assert sorted(entries) == sorted(["thin-legacy", "volume-" + existing.id])
    assert entries["thin-legacy"]["safe_to_manage"] is True
    assert entries["thin-legacy"]["size"] == 5

    # Managing a thin LV renames it (metadata only); a thick back end refuses thin LVs.
    thick_driver, _ = make_driver(host)
    with pytest.raises(exception.DriverError, match="thin LV"):
        thick_driver.manage_existing(volume(host.vg, 5), {"source-name": "thin-legacy"})
    managed = volume(host.vg, 5)
    driver.manage_existing(managed, {"source-name": "thin-legacy"})
    assert int(host.lvs()["volume-" + managed.id]["lv_size"]) == 5 * GiB

    # lvremove of a thin LV writes the metadata, then fails to tell the (inactive) pool:
    # the LV is gone, and so the delete has done what was asked.
    for vol in (existing, managed):
        driver.delete_volume(vol)
        assert "volume-" + vol.id not in host.lvs()
        driver.delete_volume(vol)
    assert driver.get_pools()[0]["provisioned_capacity_gb"] == 0


# --- the data path, with activation played by the test -----------------------------------------
# LVM cannot activate an LV here, so /dev/<vg>/<lv> never exists. What activation would give is
# the LV's bytes as a block device; for a linear LV in one segment those are a range of the PV,
# which a loop device with an offset serves (the recipe's work-around). The test plays
# activation that way: /dev/<vg>/<lv> becomes a link to such a loop device, and the driver's
# export (real tgt, read by qemu as a compute host would) and data copy (real dd) then run on
# the LV's own bytes. Snapshots' data cannot be played this way (copy-on-write needs the
# kernel); a snapshot of an unchanged origin reads as the origin, which is what is played.

COMPUTE = "iqn.1994-05.com.example:lamina-lvm-compute"
MiB = 1024 ** 2


def _tgt_missing():
    if not shutil.which("tgtadm") or not shutil.which("qemu-io"):
        return "tgt or qemu-io is not installed (deploy/tgt/tgt-aio.sh)"
    result = subprocess.run(["tgtadm", "-C", "0", "--lld", "iscsi", "--op", "show", "--mode",
                             "system"], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        return "tgtd does not answer (deploy/tgt/tgt-aio.sh start): " + result.stderr.strip()
    return None


class Activation:
    """/dev/<vg>/<lv> links to loop devices over the LVs' extents of the PV."""

    def __init__(self, host):
        self.host = host
        self.devices = []
        self.links = []

    def lv_offset(self, name):
        out = self.host.run("lvs", "--reportformat", "json", "--units", "b", "--nosuffix",
                            "-o", "lv_size,seg_pe_ranges", "%s/%s" % (self.host.vg, name)).stdout
        rows = json.loads(out)["report"][0]["lv"]
        assert len(rows) == 1, "LV %s is not in one segment: %s" % (name, rows)
        first_pe = int(rows[0]["seg_pe_ranges"].split(":")[1].split("-")[0])
        pv = json.loads(self.host.run("pvs", "--reportformat", "json", "--units", "b",
                                      "--nosuffix", "-o", "pe_start", self.host.loop).stdout)
        pe_start = int(pv["report"][0]["pv"][0]["pe_start"])
        return pe_start + first_pe * self.host.vgs()["vg_extent_size"], int(rows[0]["lv_size"])

    def activate(self, name, extents_of=None):
        offset, size = self.lv_offset(extents_of or name)
        device = subprocess.run(["losetup", "-f", "--show", "-o", str(offset), "--sizelimit",
                                 str(size), self.host.loop], check=True, capture_output=True,
                                text=True).stdout.strip()
        self.devices.append(device)
        os.makedirs("/dev/%s" % self.host.vg, exist_ok=True)
        link = "/dev/%s/%s" % (self.host.vg, name)
        os.symlink(device, link)
        self.links.append(link)
        return offset

    def teardown(self):
        for link in self.links:
            os.unlink(link)
        if os.path.isdir("/dev/%s" % self.host.vg):
            os.rmdir("/dev/%s" % self.host.vg)
        for device in self.devices:
            subprocess.run(["losetup", "-d", device], check=True)


@pytest.fixture
def activation(host):
    a = Activation(host)
    yield a
    a.teardown()


@pytest.fixture
def tgt_exports():
    """Attachment ids the test exports; their targets go (by tgtadm) whatever the test did."""
    reason = _tgt_missing()
    if reason is not None:
        if os.environ.get("LAMINA_REQUIRE_TGT") == "1":
            pytest.fail("tgtd is required here (make test starts it): " + reason)
        pytest.skip(reason)
    from volume_worker.targets import tgt

    made = []

    def new():
        made.append(str(uuid.uuid4()))
        return made[-1]

    yield new
    shown = subprocess.run(["tgtadm", "-C", "0", "--lld", "iscsi", "--op", "show", "--mode",
                            "target"], capture_output=True, text=True, timeout=30).stdout
    targets = tgt.parse_targets(shown)
    for attachment_id in made:
        found = targets.get("iqn.2010-10.org.openstack:" + attachment_id)
        if found:
            subprocess.run(["tgtadm", "-C", "0", "--lld", "iscsi", "--op", "delete", "--mode",
                            "target", "--tid", str(found["tid"]), "--force"], timeout=30)
            for account in found["accounts"]:
                subprocess.run(["tgtadm", "-C", "0", "--lld", "iscsi", "--op", "delete",
                                "--mode", "account", "--user", account], timeout=30)


def _pv_bytes(host, offset, length):
    with open(host.image, "rb") as f:
        f.seek(offset)
        return f.read(length)


def test_iscsi_export_of_an_lv_write_detach_reattach_read(host, activation, tgt_exports,
                                                          tmp_path):
    from tests import compute_client

    driver, _rec = make_driver(host, tgt_state_dir=str(tmp_path / "tgt"))
    vol = volume(host.vg, 1)
    driver.create_volume(vol)
    offset = activation.activate("volume-" + vol.id)

    first = tgt_exports()
    connection = driver.initialize_connection(vol, {"initiator": COMPUTE}, first)
    assert connection["driver_volume_type"] == "iscsi"
    assert connection["data"]["volume_id"] == vol.id
    assert connection["data"]["target_iqn"].endswith(first)
    disk = compute_client.connect(connection, initiator=COMPUTE)
    disk.write_pattern(0xA5, 1 * MiB, 4 * MiB)
    assert disk.read_pattern(0xA5, 1 * MiB, 4 * MiB)
    assert not disk.read_pattern(0xA6, 1 * MiB, 4 * MiB)  # the check can fail
    # The bytes are in the LV's extents of the PV.
    assert _pv_bytes(host, offset + 1 * MiB, 4 * MiB) == b"\xa5" * 4 * MiB
    driver.terminate_connection(vol, {"initiator": COMPUTE}, first)
    with pytest.raises(compute_client.ConnectError):
        compute_client.connect(connection, initiator=COMPUTE).read_pattern(0xA5, 0, MiB)
    driver.terminate_connection(vol, {"initiator": COMPUTE}, first)  # already gone: fine

    second = tgt_exports()
    connection = driver.initialize_connection(vol, {"initiator": COMPUTE}, second)
    assert compute_client.connect(connection, initiator=COMPUTE).read_pattern(
        0xA5, 1 * MiB, 4 * MiB)
    # Extend while attached: the LUN is made anew on the same device and still serves the
    # data (the played device keeps 1 GiB: a grown LV is a second segment on the PV).
    driver.extend_volume(vol, 2)
    assert int(host.lvs()["volume-" + vol.id]["lv_size"]) == 2 * GiB
    assert compute_client.connect(connection, initiator=COMPUTE).read_pattern(
        0xA5, 1 * MiB, 4 * MiB)
    driver.terminate_connection(vol, {"initiator": COMPUTE}, second)


def test_volume_from_snapshot_copies_the_bytes_with_dd(host, activation):
    """The dd of create_volume_from_snapshot on played-activated LVs: the new LV holds the
    snapshot's bytes (the unchanged origin's), and is 2 GiB while the copy is 1 GiB."""
    driver, rec = make_driver(host)
    vol = volume(host.vg, 1)
    driver.create_volume(vol)
    snap = snapshot(vol)
    host.make_snapshot_metadata("volume-" + vol.id, "_snapshot-" + snap.id, "1g")
    origin = activation.activate("volume-" + vol.id)
    with open(host.image, "r+b") as f:
        f.seek(origin + 3 * MiB)
        f.write(b"\x3c" * 2 * MiB)
    activation.activate("_snapshot-" + snap.id, extents_of="volume-" + vol.id)
    new = volume(host.vg, 2)
    run = rec._run

    def activate_then_run(*argv):  # LVM would have activated the new LV at lvcreate
        if argv[0] == "dd":
            activation.activate("volume-" + new.id)
        return run(*argv)

    rec._run = activate_then_run
    driver.create_volume_from_snapshot(new, snap, vol)
    assert len(rec.issued("dd")) == 1
    copy, size = activation.lv_offset("volume-" + new.id)
    assert size == 2 * GiB
    assert _pv_bytes(host, copy + 3 * MiB, 2 * MiB) == b"\x3c" * 2 * MiB
    assert _pv_bytes(host, copy, 3 * MiB) == _pv_bytes(host, origin, 3 * MiB)


# --- through the API -------------------------------------------------------------------------


def _wait(fn, timeout=30):
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_lvm_volume_through_the_whole_stack(host, tmp_path):
    """API -> scheduler -> volume service -> lvm driver -> real LVM: create, extend, a
    snapshot LVM refuses here (the snapshot ends in error, the volume stays available),
    delete."""
    from tests.stack import Stack

    stack = Stack(tmp_path / "stack", backends={"lvm": {
        "volume_driver": "lvm", "volume_group": host.vg,
        "lvm_conf_dir": os.path.join(host.dir, "etc")}}).start()
    try:
        vol = stack.create_volume(size=1, name="on-lvm")
        vol = stack.wait_volume(vol["id"], ("available", "error"))
        assert vol["status"] == "available"
        assert vol["os-vol-host-attr:host"] == "stack@lvm#%s" % host.vg
        name = "volume-" + vol["id"]
        assert int(host.lvs()[name]["lv_size"]) == 1 * GiB

        pools = _wait(lambda: stack.request(
            "GET", "/scheduler-stats/get_pools?detail=true").json()["pools"])
        [pool] = pools
        assert pool["name"] == "stack@lvm#%s" % host.vg
        vgs = host.vgs()
        assert pool["capabilities"]["total_capacity_gb"] == round(vgs["vg_size"] / GiB, 2)
        assert pool["capabilities"]["location_info"].endswith(":%s:default:0" % host.vg)

        resp = stack.request("POST", "/volumes/%s/action" % vol["id"],
                             {"os-extend": {"new_size": 2}})
        assert resp.status_code == 202, resp.text
        _wait(lambda: int(host.lvs()[name]["lv_size"]) == 2 * GiB)
        assert stack.wait_volume(vol["id"], ("available", "error_extending"))["size"] == 2

        resp = stack.request("POST", "/snapshots", {"snapshot": {"volume_id": vol["id"]}})
        assert resp.status_code == 202, resp.text
        snap_id = resp.json()["snapshot"]["id"]
        snap = _wait(lambda: (lambda s: s if s["status"] in ("available", "error") else None)(
            stack.request("GET", "/snapshots/" + snap_id).json()["snapshot"]))
        assert snap["status"] == "error"  # lvcreate -s needs device-mapper
        assert "_snapshot-" + snap_id not in host.lvs()
        assert stack.wait_volume(vol["id"], ("available",))["status"] == "available"
        assert stack.request("DELETE", "/snapshots/" + snap_id).status_code == 202
        _wait(lambda: stack.request("GET", "/snapshots/" + snap_id).status_code == 404)

        assert stack.request("DELETE", "/volumes/" + vol["id"]).status_code == 202
        stack.wait_volume(vol["id"], ("deleted",))
        assert name not in host.lvs()
    finally:
        stack.stop()


def test_a_command_stuck_on_a_lock_times_out(host):
    """Another holder of the VG's lock (an admin's lvm command, say) makes lvcreate wait; the
    driver stops it after lvm_command_timeout and fails, and nothing is made."""
    import fcntl

    driver, _rec = make_driver(host, lvm_command_timeout=1)
    lock_path = os.path.join(host.dir, "lock", "V_" + host.vg)
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(exception.DriverError, match="timed out after 1 second"):
            driver.create_volume(volume(host.vg, 1))
    assert host.lvs() == {}
