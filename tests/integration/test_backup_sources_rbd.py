"""The rbd driver's side of backups on the real single-node Ceph (deploy/ceph/ceph-aio.sh),
through the in-process stack and VolumeAPI 1.4: a backup reads the image at a new snapshot
`backup.<id>` (or at a Lamina snapshot's), which is kept as the next incremental's diff base;
changed_ranges between two of them is exactly what was written in between (whole RADOS
objects); the diff bases of backups that are gone are removed, a kept one stays; the restore
target is the image's head, writable. The connections are opened with common/connector.py as
the backup service opens them.

The backups API and the backup service are built beside this: the tests write the rows the
API would write (a backup `creating`, its volume `backing-up`) and what the backup service
writes when it is done (the backup `available`)."""

import json
import random
import uuid

import pytest

from common import connector, context, exception
from common.db import api as db
from common.db import models
from common.db.session import writer
from tests.integration import ceph, scenarios
from tests.stack import Stack
from volume_worker import rpcapi as volume_rpcapi

pytestmark = pytest.mark.integration
MiB = 1024 * 1024
GiB = 1024 * MiB
OBJECT = 4 * MiB  # rbd_store_chunk_size: the granularity of a whole-object diff


@pytest.fixture(scope="module")
def rbd_stack(tmp_path_factory):
    ceph.require()
    stack = Stack(tmp_path_factory.mktemp("rbd-backup"),
                  backends={"ceph": ceph.backend_options()}).start()
    resp = stack.request("POST", "/types", {"volume_type": {
        "name": "ceph", "extra_specs": {"volume_backend_name": "ceph"}}})
    assert resp.status_code == 200, resp.text
    yield stack
    stack.stop()


@pytest.fixture
def ctxt():
    return context.get_admin_context()


@pytest.fixture
def vapi():
    return volume_rpcapi.VolumeAPI()


@pytest.fixture
def volume(rbd_stack):
    created = rbd_stack.create_volume(size=4, volume_type="ceph")
    rbd_stack.wait_volume(created["id"], ("available",), timeout=60)
    yield db.volume_get_internal(created["id"])
    with writer() as s:  # whatever state a test left it in: deletable again
        db.conditional_update(models.Volume, created["id"], {"status": "available"},
                              {"deleted": False}, session=s)
    resp = rbd_stack.request("DELETE", "/volumes/" + created["id"])
    assert resp.status_code == 202, resp.text
    scenarios.wait_for(lambda: ceph.rbd_info("volume-" + created["id"]) is None)


def snaps(volume):
    result = ceph.run("rbd", "snap", "ls", "%s/volume-%s" % (ceph.POOL, volume.id),
                      "--format", "json")
    return sorted(s["name"] for s in json.loads(result.stdout or "[]"))


def new_backup(volume, **fields):
    backup_id = str(uuid.uuid4())
    with writer() as s:
        s.add(models.Backup(id=backup_id, project_id="p1", volume_id=volume.id,
                            status="creating", size=volume.size, host="stack", **fields))
    return backup_id


def finish_backup(backup_id, source_snapshot):
    with writer() as s:
        assert db.conditional_update(models.Backup, backup_id,
                                     {"status": "available",
                                      "source_snapshot": source_snapshot},
                                     {"status": "creating"}, session=s)


def delete_backup_row(backup_id):
    with writer() as s:
        assert db.conditional_update(models.Backup, backup_id, {"deleted": True}, {},
                                     session=s)


def write_objects(ctxt, vapi, volume, indexes, seed):
    """Whole RADOS objects of new data through the restore target (the image's head)."""
    rng = random.Random(seed)
    target = vapi.prepare_restore_target(ctxt, volume.host, volume.id)
    written = {}
    with connector.open_connection(target, writable=True) as opened:
        for index in indexes:
            data = rng.randbytes(OBJECT)
            opened.write(index * OBJECT, data)
            written[index] = data
        opened.flush()
    return written


def covered(ranges):
    """The object indexes a list of byte ranges covers (each range whole objects)."""
    indexes = set()
    for offset, length in ranges:
        assert offset % OBJECT == 0 and length % OBJECT == 0, (offset, length)
        indexes.update(range(offset // OBJECT, (offset + length) // OBJECT))
    return indexes


def test_backup_snapshots_diff_exactly_what_was_written(rbd_stack, ctxt, vapi, volume):
    objects = volume.size * GiB // OBJECT  # 1024
    first = write_objects(ctxt, vapi, volume, [0, 1, 500, 1023], seed=1)
    backup_a = new_backup(volume)
    source = vapi.prepare_backup_source(ctxt, volume.host, volume.id, backup_a)
    assert source["source_snapshot"] == "backup." + backup_a
    assert source["connection"]["driver_volume_type"] == "rbd"
    assert source["connection"]["data"]["snapshot"] == "backup." + backup_a
    assert snaps(volume) == ["backup." + backup_a]
    with pytest.raises(exception.DriverError, match="read-only"):
        connector.open_connection(source["connection"], writable=True)
    with connector.open_connection(source["connection"], writable=False) as opened:
        assert opened.size() == volume.size * GiB
        assert covered(opened.allocated_ranges()) == set(first)
        for index, data in first.items():
            assert opened.read(index * OBJECT, OBJECT) == data
    vapi.release_backup_source(ctxt, volume.host, volume.id, backup_a, True)
    assert snaps(volume) == ["backup." + backup_a]  # kept: the next diff base
    finish_backup(backup_a, source["source_snapshot"])

    # 1% of the volume changes (10 of its 1024 objects, one of them rewritten)
    changed = sorted(random.Random(7).sample(range(2, objects - 1), 9)) + [500]
    second = write_objects(ctxt, vapi, volume, changed, seed=2)
    backup_b = new_backup(volume, parent_id=backup_a, is_incremental=True)
    source_b = vapi.prepare_backup_source(ctxt, volume.host, volume.id, backup_b)
    assert snaps(volume) == sorted(["backup." + backup_a, "backup." + backup_b])
    with connector.open_connection(source_b["connection"], writable=False) as opened:
        assert covered(opened.changed_ranges("backup." + backup_a)) == set(changed)
        assert covered(opened.allocated_ranges()) == set(first) | set(changed)
        assert opened.read(500 * OBJECT, OBJECT) == second[500]
        assert opened.changed_ranges("backup.no-such-snapshot") is None
    # writes after the snapshot are not seen through it
    later = min(set(range(objects)) - set(first) - set(changed))
    write_objects(ctxt, vapi, volume, [later], seed=3)
    with connector.open_connection(source_b["connection"], writable=False) as opened:
        assert opened.read(later * OBJECT, OBJECT) == bytes(OBJECT)

    # A is live: its snapshot stays; once A is gone, the next release drops it
    vapi.release_backup_source(ctxt, volume.host, volume.id, backup_b, True)
    assert snaps(volume) == sorted(["backup." + backup_a, "backup." + backup_b])
    finish_backup(backup_b, source_b["source_snapshot"])
    delete_backup_row(backup_a)
    vapi.release_backup_source(ctxt, volume.host, volume.id, backup_b, True)
    assert snaps(volume) == ["backup." + backup_b]
    # the delete of B: its diff base goes too
    vapi.release_backup_source(ctxt, volume.host, volume.id, backup_b, False)
    assert snaps(volume) == []


def test_a_failed_backup_leaves_no_snapshot(rbd_stack, ctxt, vapi, volume):
    backup_id = new_backup(volume)
    vapi.prepare_backup_source(ctxt, volume.host, volume.id, backup_id)
    # a retried prepare of the same backup reuses its snapshot
    vapi.prepare_backup_source(ctxt, volume.host, volume.id, backup_id)
    assert snaps(volume) == ["backup." + backup_id]
    vapi.release_backup_source(ctxt, volume.host, volume.id, backup_id, False)
    assert snaps(volume) == []


def test_snapshot_source_reads_the_snapshot_and_keeps_it(rbd_stack, ctxt, vapi, volume):
    before = write_objects(ctxt, vapi, volume, [10], seed=4)
    snapshot = rbd_stack.create_snapshot(volume.id)
    rbd_stack.wait_snapshot(snapshot["id"], ("available",), timeout=60)
    write_objects(ctxt, vapi, volume, [10], seed=5)
    backup_id = new_backup(volume, snapshot_id=snapshot["id"])
    source = vapi.prepare_backup_source(ctxt, volume.host, volume.id, backup_id,
                                        snapshot_id=snapshot["id"])
    name = "snapshot-" + snapshot["id"]
    assert source["source_snapshot"] == name
    assert source["connection"]["data"]["snapshot"] == name
    assert snaps(volume) == [name]  # no backup.* snapshot for a backup of a snapshot
    with connector.open_connection(source["connection"], writable=False) as opened:
        assert opened.read(10 * OBJECT, OBJECT) == before[10]
        assert covered(opened.allocated_ranges()) == {10}
    vapi.release_backup_source(ctxt, volume.host, volume.id, backup_id, False)
    assert snaps(volume) == [name]  # the user's snapshot stays
    # backup.* snapshots are not offered as manageable snapshots
    driver = next(svc.manager.driver for svc in rbd_stack.services
                  if svc.host == "stack@ceph")
    other = new_backup(volume)
    vapi.prepare_backup_source(ctxt, volume.host, volume.id, other)
    listed = [e["reference"]["source-name"] for e in
              driver.get_manageable_snapshots({}, {volume.id: volume})]
    assert name in listed and "backup." + other not in listed
    vapi.release_backup_source(ctxt, volume.host, volume.id, other, False)
    resp = rbd_stack.request("DELETE", "/snapshots/" + snapshot["id"])
    assert resp.status_code == 202, resp.text
    rbd_stack.wait_snapshot(snapshot["id"], ("deleted",), timeout=60)


def test_restore_target_is_the_writable_head(rbd_stack, ctxt, vapi, volume):
    target = vapi.prepare_restore_target(ctxt, volume.host, volume.id)
    assert target["driver_volume_type"] == "rbd" and "snapshot" not in target["data"]
    with connector.open_connection(target, writable=True) as opened:
        opened.write(7 * OBJECT + 5, b"restored data")
        opened.punch_hole(0, OBJECT)  # discard: reads zeros
        opened.flush()
    with connector.open_connection(target, writable=False) as opened:
        assert opened.read(7 * OBJECT + 5, 13) == b"restored data"
        assert opened.read(0, OBJECT) == bytes(OBJECT)
