"""Backups of rbd volumes end to end on the real single-node Ceph: the in-process stack with an
rbd back end and its backup service keeping chunks in the `backups` RADOS pool. Through the
HTTP API: a volume holding a known pattern, 1% of it changed, an incremental (from the RBD
diff between the two backups' snapshots), each restored to a new volume and compared byte for
byte through librbd; the same from an in-use volume with force and from a snapshot; every
chunk and manifest object gone from the pool once the backups are deleted."""

import hashlib
import random

import pytest

from common import quota
from common.db import api as db
from tests.integration import ceph, scenarios
from tests.stack import Stack

pytestmark = pytest.mark.integration
MiB = 1024 * 1024
BACKUP_POOL = "backups"
CONNECTOR = {"host": "compute1", "initiator": "iqn.2026-12.org.example:compute1"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    ceph.require()
    import backup_worker.chunkstore.rados  # noqa: F401  (registers its [backup] options)
    s = Stack(tmp_path_factory.mktemp("backups-rbd"), backends={"ceph": ceph.backend_options()},
              overrides={"backup.backup_chunk_store": "rados",
                         "backup.backup_ceph_pool": BACKUP_POOL,
                         "backup.backup_ceph_conf": ceph.CONF,
                         "backup.backup_ceph_user": ceph.USER,
                         "backup.backup_ceph_keyring": ceph.KEYRING,
                         # 1 MiB chunks: a 1% change of a 1 GiB volume is a handful of them
                         "backup.backup_chunk_size": MiB}).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def cluster():
    import rados

    client = rados.Rados(conffile=ceph.CONF, rados_id=ceph.USER,
                         conf={"keyring": ceph.KEYRING})
    client.connect(timeout=10)
    yield client
    client.shutdown()


def image(cluster, volume_id):
    import rbd

    ioctx = cluster.open_ioctx(ceph.POOL)
    return ioctx, rbd.Image(ioctx, "volume-" + volume_id)


def write_regions(cluster, volume_id, seed, offsets, length=MiB):
    rng = random.Random(seed)
    ioctx, img = image(cluster, volume_id)
    try:
        for offset in offsets:
            img.write(rng.randbytes(length), offset)
        img.flush()
    finally:
        img.close()
        ioctx.close()


def sha256_of(cluster, volume_id):
    ioctx, img = image(cluster, volume_id)
    try:
        digest, size = hashlib.sha256(), img.size()
        for offset in range(0, size, 8 * MiB):
            digest.update(img.read(offset, min(8 * MiB, size - offset)))
        return digest.hexdigest()
    finally:
        img.close()
        ioctx.close()


def pool_objects(cluster, backup_ids):
    """The manifest objects of these backups still in the pool."""
    ioctx = cluster.open_ioctx(BACKUP_POOL)
    try:
        names = {obj.key for obj in ioctx.list_objects()}
    finally:
        ioctx.close()
    return {name for name in names if any(b in name for b in backup_ids)}


def new_volume(stack, size=1):
    volume = stack.create_volume(size=size)
    return stack.wait_volume(volume["id"], ("available", "error"), timeout=60)


def backup(stack, volume_id, **fields):
    resp = stack.request("POST", "/backups", {"backup": dict(volume_id=volume_id, **fields)})
    assert resp.status_code == 202, resp.text
    backup_id = resp.json()["backup"]["id"]
    done = scenarios.wait_for(lambda: (lambda b: b if b["status"] in ("available", "error")
                                       else None)(show(stack, backup_id)), timeout=120)
    assert done["status"] == "available", done
    return done


def show(stack, backup_id):
    resp = stack.request("GET", "/backups/" + backup_id)
    return resp.json()["backup"] if resp.status_code == 200 else {"status": "deleted"}


def restored(stack, backup_id):
    resp = stack.request("POST", "/backups/%s/restore" % backup_id, {"restore": {}})
    assert resp.status_code == 202, resp.text
    volume_id = resp.json()["restore"]["volume_id"]
    done = stack.wait_volume(volume_id, ("available", "error"), timeout=120)
    assert done["status"] == "available", done
    scenarios.wait_for(lambda: show(stack, backup_id)["status"] == "available", timeout=60)
    return volume_id


def delete_all(stack, backup_ids, volume_ids):
    for backup_id in reversed(backup_ids):  # incrementals first: the chain rule
        assert stack.request("DELETE", "/backups/" + backup_id).status_code == 202
        scenarios.wait_for(lambda b=backup_id: show(stack, b)["status"] == "deleted", timeout=120)
    for volume_id in volume_ids:
        assert stack.request("DELETE", "/volumes/" + volume_id).status_code == 202
        stack.wait_volume(volume_id, ("deleted",), timeout=120)


def test_full_then_incremental_of_one_percent_restore_each(stack, cluster):
    volume = new_volume(stack)
    assert volume["status"] == "available"
    vid = volume["id"]
    write_regions(cluster, vid, 1, [i * 64 * MiB for i in range(16)])
    full_sum = sha256_of(cluster, vid)
    full = backup(stack, vid, name="full")
    assert full["is_incremental"] is False
    # 1% of 1 GiB: ten 1 MiB regions rewritten
    write_regions(cluster, vid, 2, [i * 100 * MiB + 3 * MiB for i in range(10)])
    incr_sum = sha256_of(cluster, vid)
    assert incr_sum != full_sum
    incr = backup(stack, vid, name="incr", incremental=True)
    assert incr["is_incremental"] is True and show(stack, full["id"])["has_dependent_backups"]
    # the incremental diffed against the full one's snapshot: it is the volume's diff base now
    snaps = {s["name"] for s in image_snaps(cluster, vid)}
    assert "backup.%s" % incr["id"] in snaps

    full_copy, incr_copy = restored(stack, full["id"]), restored(stack, incr["id"])
    assert sha256_of(cluster, full_copy) == full_sum
    assert sha256_of(cluster, incr_copy) == incr_sum
    delete_all(stack, [full["id"], incr["id"]], [vid, full_copy, incr_copy])
    assert pool_objects(cluster, [full["id"], incr["id"]]) == set()
    assert db.worker_get_all() == [] and quota.check() == []


def image_snaps(cluster, volume_id):
    ioctx, img = image(cluster, volume_id)
    try:
        return list(img.list_snaps())
    finally:
        img.close()
        ioctx.close()


def test_in_use_with_force_and_from_a_snapshot(stack, cluster):
    volume = new_volume(stack)
    vid = volume["id"]
    write_regions(cluster, vid, 3, [0, 500 * MiB])
    for name, args in (("os-reserve", None),
                       ("os-initialize_connection", {"connector": CONNECTOR}),
                       ("os-attach", {"instance_uuid": "0b8f6f0c-6a51-4a49-9f5b-6f1d9e7c2a10",
                                      "mountpoint": "/dev/vdb", "host_name": "compute1"})):
        resp = stack.request("POST", "/volumes/%s/action" % vid, {name: args})
        assert resp.status_code in (200, 202), resp.text
    stack.wait_volume(vid, ("in-use",))
    attached_sum = sha256_of(cluster, vid)
    refused = stack.request("POST", "/backups", {"backup": {"volume_id": vid}})
    assert refused.status_code == 400 and "force" in refused.text
    forced = backup(stack, vid, force=True)
    assert stack.wait_volume(vid, ("in-use",))["status"] == "in-use"

    resp = stack.request("POST", "/snapshots",
                         {"snapshot": {"volume_id": vid, "force": True}})
    assert resp.status_code == 202, resp.text
    snapshot_id = resp.json()["snapshot"]["id"]
    scenarios.wait_for(lambda: stack.request("GET", "/snapshots/" + snapshot_id)
                       .json()["snapshot"]["status"] == "available", timeout=60)
    write_regions(cluster, vid, 4, [200 * MiB])  # after the snapshot: not in its backup
    of_snapshot = backup(stack, vid, snapshot_id=snapshot_id, force=True)
    assert of_snapshot["snapshot_id"] == snapshot_id

    assert sha256_of(cluster, restored(stack, forced["id"])) == attached_sum
    copy = restored(stack, of_snapshot["id"])
    assert sha256_of(cluster, copy) == attached_sum
    assert stack.request("DELETE", "/snapshots/" + snapshot_id).status_code == 202
    for name, args in (("os-detach", {}),
                       ("os-terminate_connection", {"connector": CONNECTOR})):
        resp = stack.request("POST", "/volumes/%s/action" % vid, {name: args})
        assert resp.status_code in (200, 202), resp.text
    stack.wait_volume(vid, ("available",))
    scenarios.wait_for(lambda: stack.request("GET", "/snapshots/" + snapshot_id)
                       .status_code == 404, timeout=60)
    restored_ids = [v["id"] for v in stack.request("GET", "/volumes").json()["volumes"]
                    if v["id"] != vid]
    delete_all(stack, [forced["id"], of_snapshot["id"]], [vid] + restored_ids)
    assert pool_objects(cluster, [forced["id"], of_snapshot["id"]]) == set()
    assert db.worker_get_all() == [] and quota.check() == []
