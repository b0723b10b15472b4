"""Snapshot manage and unmanage on the rbd driver against the real single-node Ceph: an RBD
snapshot of a volume's image becomes a snapshot row (renamed snapshot-<id>, protected), and
unmanage leaves it in place; a failure at any step leaves the RBD snapshot as it was."""

import json
import uuid

import pytest

from common import quota
from common.db import api as db
from tests.integration import ceph
from tests.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rbd_stack(tmp_path_factory):
    ceph.require()
    stack = Stack(tmp_path_factory.mktemp("rbd-snapshot-manage"),
                  backends={"ceph": ceph.backend_options()}).start()
    yield stack
    stack.stop()


def snaps(volume_id):
    out = ceph.run("rbd", "snap", "ls", "%s/volume-%s" % (ceph.POOL, volume_id), "--format",
                   "json").stdout
    return {s["name"]: s for s in json.loads(out or "[]")}


def legacy_snapshot(stack, size=1):
    v = stack.create_volume(size=size)
    stack.wait_volume(v["id"], ("available",), timeout=60)
    name = "legacy-" + uuid.uuid4().hex[:8]
    ceph.run("rbd", "snap", "create", "%s/volume-%s@%s" % (ceph.POOL, v["id"], name))
    return v, name


def manage(stack, volume_id, name):
    resp = stack.request("POST", "/os-snapshot-manage", {"snapshot": {
        "volume_id": volume_id, "ref": {"source-name": name}, "name": "adopted"}})
    assert resp.status_code == 202, resp.text
    return resp.json()["snapshot"]["id"]


def delete_volume(stack, volume_id):
    assert stack.request("DELETE", "/volumes/%s?cascade=true" % volume_id).status_code == 202
    stack.wait_volume(volume_id, ("deleted",), timeout=60)


def test_manage_list_and_unmanage_an_rbd_snapshot(rbd_stack):
    v, name = legacy_snapshot(rbd_stack, size=2)
    listed = rbd_stack.request("GET", "/os-snapshot-manage/detail?host=stack@ceph").json()
    entry = [e for e in listed["manageable-snapshots"]
             if e["reference"] == {"source-name": name}][0]
    assert entry["safe_to_manage"] is True and entry["size"] == 2
    assert entry["source_reference"] == {"source-name": "volume-" + v["id"]}
    sid = manage(rbd_stack, v["id"], name)
    done = rbd_stack.wait_snapshot(sid, ("available", "error"), timeout=60)
    assert done["status"] == "available" and done["size"] == 2
    found = snaps(v["id"])
    assert name not in found and "snapshot-" + sid in found
    info = ceph.rbd_info("volume-%s@snapshot-%s" % (v["id"], sid))
    assert info["protected"] in ("true", True)
    listed = rbd_stack.request("GET", "/os-snapshot-manage/detail?host=stack@ceph").json()
    owned = [e for e in listed["manageable-snapshots"]
             if e["reference"] == {"source-name": "snapshot-" + sid}][0]
    assert owned["safe_to_manage"] is False and owned["cinder_id"] == sid
    assert quota.check() == []
    # a volume can be made of it, as of Lamina's own snapshots
    nv = rbd_stack.create_volume(size=2, snapshot_id=sid)
    assert rbd_stack.wait_volume(nv["id"], ("available", "error"), timeout=60)["status"] == \
        "available"
    delete_volume(rbd_stack, nv["id"])
    # unmanage: the row goes, the RBD snapshot stays
    assert rbd_stack.request("POST", "/snapshots/%s/action" % sid,
                             {"os-unmanage": {}}).status_code == 202
    rbd_stack.wait_snapshot(sid, ("deleted",), timeout=60)
    assert "snapshot-" + sid in snaps(v["id"])
    assert quota.check() == [] and db.worker_get_all() == []
    delete_volume(rbd_stack, v["id"])  # the driver removes the image and its snapshots


@pytest.mark.parametrize("step", ["manage_existing_snapshot.get_size",
                                  "manage_existing_snapshot.charge_size",
                                  "manage_existing_snapshot.manage_storage",
                                  "manage_existing_snapshot.mark_available"])
def test_manage_failure_leaves_the_rbd_snapshot_as_it_was(rbd_stack, step):
    v, name = legacy_snapshot(rbd_stack)
    rbd_stack.override("fail_points", [step], group="debug")
    try:
        sid = manage(rbd_stack, v["id"], name)
        done = rbd_stack.wait_snapshot(sid, ("available", "error"), timeout=60)
    finally:
        rbd_stack.override("fail_points", [], group="debug")
    assert done["status"] == "error"
    found = snaps(v["id"])
    assert name in found and "snapshot-" + sid not in found
    assert db.worker_get_all() == [] and quota.check() == []
    assert rbd_stack.request("DELETE", "/snapshots/" + sid).status_code == 202
    rbd_stack.wait_snapshot(sid, ("deleted",), timeout=60)
    assert name in snaps(v["id"])  # deleting the error row touched no storage
    delete_volume(rbd_stack, v["id"])


def test_manage_of_a_missing_rbd_snapshot_ends_error(rbd_stack):
    v, _name = legacy_snapshot(rbd_stack)
    sid = manage(rbd_stack, v["id"], "no-such-snap")
    assert rbd_stack.wait_snapshot(sid, ("available", "error"), timeout=60)["status"] == "error"
    msg = rbd_stack.request("GET", "/messages?resource_uuid=" + sid,
                            version="3.3").json()["messages"][0]["user_message"]
    assert "no RBD snapshot" in msg
    delete_volume(rbd_stack, v["id"])
