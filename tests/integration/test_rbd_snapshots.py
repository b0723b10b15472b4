"""Snapshots, clones and revert on the real single-node Ceph cluster, driven through
python-cinderclient; data written with qemu-io through the volumes' connection info."""

import pytest

from common.db import api as db
from tests.integration import ceph, scenarios
from tests.integration.test_rbd import qemu_io, qemu_rbd_url, wait_status
from tests.stack import Stack

pytestmark = pytest.mark.integration
GiB = 1024 ** 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    ceph.require()
    s = Stack(tmp_path_factory.mktemp("rbdsnap"),
              backends={"ceph": ceph.backend_options(rbd_max_clone_depth=1)}).start()
    yield s
    s.stop()


def cinder(stack, version="3.0"):
    from cinderclient import client as cinder_client
    from keystoneauth1 import session as ks_session
    from keystoneauth1 import token_endpoint

    auth = token_endpoint.Token("%s/v3/p1" % stack.url, "admin:p1")
    return cinder_client.Client(version, session=ks_session.Session(auth=auth))


def url_of(stack, volume_id):
    driver = next(svc.manager.driver for svc in stack.services if svc.host == "stack@ceph")
    return qemu_rbd_url(driver.initialize_connection(db.volume_get_internal(volume_id), {}))


def holds(stack, volume_id, pattern, offset="0", length="1M"):
    out = qemu_io(url_of(stack, volume_id), "read -P %s %s %s" % (pattern, offset, length))
    return "Pattern verification failed" not in out


def wait_snapshot(c, snapshot_id, statuses=("available", "error")):
    return scenarios.wait_for(
        lambda: (lambda s: s if s.status in statuses else None)(
            c.volume_snapshots.get(snapshot_id)), timeout=60)


def rbd_snaps(image):
    out = ceph.run("rbd", "snap", "ls", "%s/%s" % (ceph.POOL, image), "--format", "json",
                   check=False)
    import json

    return [s["name"] for s in json.loads(out.stdout or "[]")] if out.returncode == 0 else None


def test_snapshot_clone_and_revert_keep_the_data(stack):
    c = cinder(stack)
    c40 = cinder(stack, "3.40")
    volume = wait_status(c, c.volumes.create(1).id, ("available", "error"))
    assert volume.status == "available"
    qemu_io(url_of(stack, volume.id), "write -P 0xab 0 1M")
    snap = wait_snapshot(c, c.volume_snapshots.create(volume.id, name="s1").id)
    assert snap.status == "available" and snap.size == 1
    assert rbd_snaps("volume-" + volume.id) == ["snapshot-" + snap.id]
    qemu_io(url_of(stack, volume.id), "write -P 0xcd 0 1M")

    # from the snapshot: a copy-on-write clone (depth 1 <= rbd_max_clone_depth 1), bigger
    from_snap = wait_status(c, c.volumes.create(2, snapshot_id=snap.id).id,
                            ("available", "error"))
    assert from_snap.status == "available"
    info = ceph.rbd_info("volume-" + from_snap.id)
    assert info["size"] == 2 * GiB
    assert info["parent"]["snapshot"] == "snapshot-" + snap.id
    assert holds(stack, from_snap.id, "0xab")

    # from the volume: an independent copy of its current data, no temporary snapshot left
    clone = wait_status(c, c.volumes.create(1, source_volid=volume.id).id,
                        ("available", "error"))
    assert clone.status == "available"
    assert "parent" not in ceph.rbd_info("volume-" + clone.id)
    assert holds(stack, clone.id, "0xcd")
    assert rbd_snaps("volume-" + volume.id) == ["snapshot-" + snap.id]

    # a clone of a clone is deeper than rbd_max_clone_depth: flattened
    snap2 = wait_snapshot(c, c.volume_snapshots.create(from_snap.id).id)
    deeper = wait_status(c, c.volumes.create(2, snapshot_id=snap2.id).id,
                         ("available", "error"))
    assert deeper.status == "available"
    assert "parent" not in ceph.rbd_info("volume-" + deeper.id)
    assert holds(stack, deeper.id, "0xab")

    # revert the volume to its latest snapshot (3.40)
    c40.volumes.revert_to_snapshot(volume, snap)
    volume = wait_status(c, volume.id, ("available", "error"))
    assert volume.status == "available"
    assert holds(stack, volume.id, "0xab")
    assert c.volume_snapshots.get(snap.id).status == "available"

    # while a snapshot of its clone depends on it, the snapshot cannot go: it stays available
    # and the user is told why
    c.volume_snapshots.delete(snap)
    scenarios.wait_for(lambda: stack.request(
        "GET", "/messages?resource_uuid=" + snap.id, version="3.3").json()["messages"])
    assert wait_snapshot(c, snap.id).status == "available"
    msg = stack.request("GET", "/messages?resource_uuid=" + snap.id,
                        version="3.3").json()["messages"][0]
    assert "depend" in msg["user_message"]
    c.volume_snapshots.delete(snap2)
    scenarios.wait_for(lambda: rbd_snaps("volume-" + from_snap.id) == [])
    # now deleting it flattens the volume cloned from it, whose data stays
    c.volume_snapshots.delete(snap)
    scenarios.wait_for(lambda: rbd_snaps("volume-" + volume.id) == [])
    assert "parent" not in ceph.rbd_info("volume-" + from_snap.id)
    assert holds(stack, from_snap.id, "0xab")

    # cascade delete takes a volume with its snapshots; nothing stays in the pool
    c.volumes.delete(from_snap, cascade=True)
    for v in (volume, clone, deeper):
        c.volumes.delete(v)
    for v in (volume, clone, deeper, from_snap):
        scenarios.wait_for(lambda v=v: ceph.rbd_info("volume-" + v.id) is None, timeout=60)
    # the claims go with the rows, just after the images
    scenarios.wait_for(lambda: db.pool_get("stack@ceph#volumes").allocated_capacity_gb == 0,
                       timeout=60)


def test_revert_refuses_an_older_snapshot(stack):
    from cinderclient import exceptions as cinder_exc

    c = cinder(stack, "3.40")
    volume = wait_status(c, c.volumes.create(1).id, ("available",))
    old = wait_snapshot(c, c.volume_snapshots.create(volume.id).id)
    new = wait_snapshot(c, c.volume_snapshots.create(volume.id).id)
    with pytest.raises(cinder_exc.BadRequest, match="not the latest"):
        c.volumes.revert_to_snapshot(volume, old)
    with pytest.raises(cinder_exc.BadRequest):
        c.volumes.delete(volume)  # it has snapshots
    assert c.volumes.get(volume.id).status == "available"
    c.volumes.revert_to_snapshot(volume, new)
    assert wait_status(c, volume.id, ("available", "error")).status == "available"
    c.volumes.delete(volume, cascade=True)
    scenarios.wait_for(lambda: ceph.rbd_info("volume-" + volume.id) is None, timeout=60)


@pytest.mark.parametrize("step", ["create_snapshot.check_still_creating",
                                  "create_snapshot.create_snapshot_storage",
                                  "create_snapshot.mark_available"])
def test_snapshot_failure_leaves_no_rbd_snapshot(stack, step):
    c = cinder(stack)
    volume = wait_status(c, c.volumes.create(1).id, ("available",))
    stack.override("fail_points", [step], group="debug")
    try:
        snap = wait_snapshot(c, c.volume_snapshots.create(volume.id).id)
    finally:
        stack.override("fail_points", [], group="debug")
    assert snap.status == "error"
    assert rbd_snaps("volume-" + volume.id) == []
    c.volume_snapshots.delete(snap)
    scenarios.wait_for(lambda: snap.id not in [s.id for s in c.volume_snapshots.list()])
    c.volumes.delete(volume)
    scenarios.wait_for(lambda: ceph.rbd_info("volume-" + volume.id) is None, timeout=60)


@pytest.mark.parametrize("source", ["snapshot", "volume"])
def test_failed_clone_leaves_no_image(stack, source):
    c = cinder(stack)
    volume = wait_status(c, c.volumes.create(1).id, ("available",))
    snap = wait_snapshot(c, c.volume_snapshots.create(volume.id).id)
    stack.override("fail_points", ["create_volume.mark_available"], group="debug")
    try:
        kwargs = {"snapshot_id": snap.id} if source == "snapshot" else {
            "source_volid": volume.id}
        new = wait_status(c, c.volumes.create(1, **kwargs).id, ("available", "error"))
    finally:
        stack.override("fail_points", [], group="debug")
    assert new.status == "error"
    assert ceph.rbd_info("volume-" + new.id) is None
    assert rbd_snaps("volume-" + volume.id) == ["snapshot-" + snap.id]  # no temporary left
    c.volumes.delete(volume, cascade=True)
    c.volumes.delete(new)
    scenarios.wait_for(lambda: ceph.rbd_info("volume-" + volume.id) is None, timeout=60)
