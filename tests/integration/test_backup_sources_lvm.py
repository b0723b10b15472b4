"""The lvm driver's side of backups (docs/backups-design.md) against real LVM commands on a
loop device, as tests/integration/test_lvm.py runs them (its fixtures): this machine's kernel
has no device-mapper, so LVM runs every metadata command for real and refuses CoW snapshots,
and no LV is ever active (/dev/<vg>/<lv> never exists).

What runs here: the connection of an idle volume's LV and of a snapshot's LV (with the host
named), the refusal of the temporary snapshot LV an in-use volume needs (nothing left
behind), its removal on release (the snapshot written into the metadata the way test_lvm.py
does), the restore target, and that `_backup-*` LVs are no storage to manage. What cannot
run: reading or writing the LVs' data through those connections (needs active LVs), a real
temporary snapshot of an in-use volume (needs dm-snapshot)."""

import uuid

import pytest

from common import connector, exception
from tests.integration.test_lvm import NO_DM, host, make_driver, snapshot, volume  # noqa: F401

pytestmark = pytest.mark.integration


def test_an_idle_volume_is_read_from_its_lv(host):  # noqa: F811
    driver, rec = make_driver(host)
    vol = volume(host.vg, 1)
    driver.create_volume(vol)
    backup_id = str(uuid.uuid4())
    source = driver.backup_source(vol, backup_id)
    assert source == {"source_snapshot": None, "connection": {
        "driver_volume_type": "local",
        "data": {"device_path": "/dev/%s/volume-%s" % (host.vg, vol.id),
                 "host": connector.this_host(), "volume_id": vol.id, "access_mode": "ro"}}}
    assert len(rec.issued("lvcreate")) == 1  # the volume's own: no snapshot of an idle one
    # Opening it needs the LV active, which needs device-mapper: not on this machine.
    with pytest.raises(FileNotFoundError):
        connector.open_connection(source["connection"], writable=False)
    driver.release_backup_source(vol, backup_id, True, set())
    assert rec.issued("lvremove") == [] and sorted(host.lvs()) == ["volume-" + vol.id]


def test_an_in_use_volume_needs_a_snapshot_lv_and_leaves_nothing(host):  # noqa: F811
    driver, rec = make_driver(host)
    vol = volume(host.vg, 1)
    driver.create_volume(vol)
    backup_id = str(uuid.uuid4())
    # an earlier, interrupted attempt of this backup left its snapshot LV: removed first
    host.make_snapshot_metadata("volume-" + vol.id, "_backup-" + backup_id, "1g")
    with pytest.raises(exception.DriverError, match="Can't create snapshot " + NO_DM):
        driver.backup_source(vol, backup_id, in_use=True)
    assert rec.issued("lvremove") == [["lvremove", "-f", "%s/_backup-%s" % (host.vg, backup_id)]]
    assert rec.issued("lvcreate")[-1] == [
        "lvcreate", "--yes", "-s", "-L", "1g", "-n", "_backup-" + backup_id,
        "%s/volume-%s" % (host.vg, vol.id)]
    assert sorted(host.lvs()) == ["volume-" + vol.id]


def test_release_removes_the_temporary_snapshot_lv(host):  # noqa: F811
    driver, rec = make_driver(host)
    vol = volume(host.vg, 1)
    driver.create_volume(vol)
    backup_id = str(uuid.uuid4())
    # what backup_source makes on a host with device-mapper, written into the metadata
    host.make_snapshot_metadata("volume-" + vol.id, "_backup-" + backup_id, "1g")
    assert host.lvs()["_backup-" + backup_id]["origin"] == "volume-" + vol.id
    # not storage an admin could manage while it exists
    assert [e["reference"]["source-name"] for e in driver.get_manageable_volumes([])] == [
        "volume-" + vol.id]
    driver.release_backup_source(vol, backup_id, True, set())
    assert sorted(host.lvs()) == ["volume-" + vol.id]
    driver.release_backup_source(vol, backup_id, True, set())  # again: nothing to remove
    assert len(rec.issued("lvremove")) == 1
    driver.delete_volume(vol)  # no snapshot left to block it
    assert host.lvs() == {}


def test_a_snapshot_is_read_from_its_lv(host):  # noqa: F811
    driver, rec = make_driver(host)
    vol = volume(host.vg, 1)
    driver.create_volume(vol)
    snap = snapshot(vol)
    host.make_snapshot_metadata("volume-" + vol.id, "_snapshot-" + snap.id, "1g")
    backup_id = str(uuid.uuid4())
    source = driver.backup_source(vol, backup_id, snapshot=snap, in_use=True)
    assert source["connection"]["data"]["device_path"] == "/dev/%s/_snapshot-%s" % (
        host.vg, snap.id)
    assert len(rec.issued("lvcreate")) == 1  # the snapshot is the point in time: no other
    driver.release_backup_source(vol, backup_id, False, set())
    assert "_snapshot-" + snap.id in host.lvs()  # the user's snapshot stays
    missing = snapshot(vol)
    with pytest.raises(exception.DriverError, match="not found"):
        driver.backup_source(vol, backup_id, snapshot=missing)


def test_restore_target_is_the_lv(host):  # noqa: F811
    driver, _rec = make_driver(host)
    vol = volume(host.vg, 1)
    driver.create_volume(vol)
    assert driver.restore_target(vol) == {
        "driver_volume_type": "local",
        "data": {"device_path": "/dev/%s/volume-%s" % (host.vg, vol.id),
                 "host": connector.this_host(), "volume_id": vol.id, "access_mode": "rw"}}
    with pytest.raises(exception.DriverError, match="not found"):
        driver.restore_target(volume(host.vg, 1))
