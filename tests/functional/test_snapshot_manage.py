"""Manage existing snapshots and unmanage them through the API (file driver, whole stack in
one process): happy paths, refusals, the manageable snapshot list, failure at each step of
both flows, and os-update_snapshot_status."""

import os

import pytest

from common import quota
from common.db import api as db

GiB = 1024 ** 3
HOST = "stack@file#pool0"
MANAGE_STEPS = ["manage_existing_snapshot.check_creating", "manage_existing_snapshot.get_size",
                "manage_existing_snapshot.charge_size",
                "manage_existing_snapshot.manage_storage",
                "manage_existing_snapshot.mark_available"]
UNMANAGE_STEPS = ["unmanage_snapshot.check_unmanaging", "unmanage_snapshot.unmanage_storage",
                  "unmanage_snapshot.mark_unmanaged"]


def pool_dir(stack):
    return os.path.join(stack.workdir, "file", "pool0")


def make_file(stack, name, size=GiB + 1, data=b"old snapshot"):
    path = os.path.join(pool_dir(stack), name)
    with open(path, "wb") as f:
        f.write(data)
        f.truncate(size)
    return path


def available_volume(stack, size=1):
    v = stack.create_volume(size=size)
    stack.wait_volume(v["id"], ("available",))
    return v


def manage(stack, volume_id, name, path="/os-snapshot-manage", **kw):
    body = {"snapshot": {"volume_id": volume_id, "ref": {"source-name": name},
                         "name": "adopted"}}
    body["snapshot"].update(kw.pop("fields", {}))
    return stack.request("POST", path, body, **kw)


def used():
    return quota.project_usage("p1", ["snapshots", "gigabytes"])


def messages_for(stack, resource_id):
    return stack.request("GET", "/messages?resource_uuid=" + resource_id,
                         version="3.3").json()["messages"]


def test_manage_existing_snapshot_file(stack):
    v = available_volume(stack, size=1)
    src = make_file(stack, "snapshot-legacy", size=2 * GiB + 1)
    resp = manage(stack, v["id"], "snapshot-legacy", fields={"metadata": {"a": "b"},
                                                             "description": "d"})
    assert resp.status_code == 202, resp.text
    snap = resp.json()["snapshot"]
    assert snap["status"] == "creating" and snap["name"] == "adopted"
    assert snap["volume_id"] == v["id"] and snap["metadata"] == {"a": "b"}
    done = stack.wait_snapshot(snap["id"], ("available", "error"))
    assert done["status"] == "available"
    assert done["size"] == 3  # 2 GiB + 1 byte rounds up; the volume is 1 GiB
    assert done["os-extended-snapshot-attributes:progress"] == "100%"
    path = os.path.join(pool_dir(stack), "snapshot-" + snap["id"])
    assert not os.path.exists(src) and os.path.exists(path)
    with open(path, "rb") as f:
        assert f.read(12) == b"old snapshot"
    assert used() == {"snapshots": 1, "gigabytes": 1 + 3}
    assert quota.check() == [] and db.worker_get_all() == []
    # a managed snapshot is an ordinary one: a volume can be made of it, it can be deleted
    nv = stack.create_volume(size=3, snapshot_id=snap["id"])
    assert stack.wait_volume(nv["id"], ("available", "error"))["status"] == "available"
    assert stack.request("DELETE", "/volumes/" + nv["id"]).status_code == 202
    stack.wait_volume(nv["id"], ("deleted",))
    assert stack.request("DELETE", "/snapshots/" + snap["id"]).status_code == 202
    stack.wait_snapshot(snap["id"], ("deleted",))
    assert stack.snapshot_files() == []
    assert used() == {"snapshots": 0, "gigabytes": 1} and quota.check() == []


def test_manageable_snapshots_list_and_3_8_routes(stack, monkeypatch):
    from api import microversion

    v = available_volume(stack)
    own = stack.create_snapshot(v["id"])
    stack.wait_snapshot(own["id"], ("available",))
    make_file(stack, "snapshot-a", size=3 * GiB)
    make_file(stack, "snapshot-b")
    make_file(stack, "not-a-snapshot")
    # /manageable_snapshots needs 3.8, above today's maximum
    assert manage(stack, v["id"], "snapshot-a", path="/manageable_snapshots").status_code \
        == 404
    assert stack.request("GET", "/manageable_snapshots?host=stack@file").status_code == 404
    monkeypatch.setattr(microversion, "MAX_VERSION", (3, 8))
    listed = stack.request("GET", "/manageable_snapshots/detail?host=stack@file",
                           version="3.8")
    assert listed.status_code == 200, listed.text
    entries = {e["reference"]["source-name"]: e
               for e in listed.json()["manageable-snapshots"]}
    assert set(entries) == {"snapshot-a", "snapshot-b", "snapshot-" + own["id"]}
    assert entries["snapshot-a"]["safe_to_manage"] is True and entries["snapshot-a"]["size"] == 3
    owned = entries["snapshot-" + own["id"]]
    assert owned["safe_to_manage"] is False and owned["cinder_id"] == own["id"]
    assert owned["reason_not_safe"] == "already managed"
    assert owned["source_reference"] == {"source-name": "volume-" + v["id"]}
    summary = stack.request("GET", "/os-snapshot-manage?host=stack@file&sort=size:desc")
    first = summary.json()["manageable-snapshots"][0]
    assert first == {"reference": {"source-name": "snapshot-a"}, "size": 3,
                     "safe_to_manage": True, "source_reference": {"source-name": None}}
    names = [e["reference"]["source-name"] for e in stack.request(
        "GET", "/os-snapshot-manage?host=stack@file").json()["manageable-snapshots"]]
    assert names == sorted(names)
    page = stack.request("GET", "/os-snapshot-manage?host=stack@file&limit=1&offset=1")
    assert [e["reference"]["source-name"] for e in page.json()["manageable-snapshots"]] == \
        names[1:2]
    after = stack.request("GET", "/os-snapshot-manage?host=stack@file&marker=" + names[0])
    assert len(after.json()["manageable-snapshots"]) == 2
    assert stack.request("GET", "/os-snapshot-manage?host=stack@file&marker=nope") \
        .status_code == 400
    assert stack.request("GET", "/os-snapshot-manage?host=stack@file",
                         token="bob:p1").status_code == 403
    assert stack.request("GET", "/os-snapshot-manage").status_code == 400
    assert stack.request("GET", "/os-snapshot-manage?host=nohost@x").status_code == 404
    resp = manage(stack, v["id"], "snapshot-a", path="/manageable_snapshots", version="3.8")
    assert resp.status_code == 202, resp.text
    assert stack.wait_snapshot(resp.json()["snapshot"]["id"], ("available",))["size"] == 3


def test_manage_snapshot_refusals_create_nothing(stack):
    v = available_volume(stack)
    make_file(stack, "snapshot-x")
    cases = [
        ({"snapshot": {"ref": {"source-name": "snapshot-x"}}}, 400, None),    # no volume_id
        ({"snapshot": {"volume_id": v["id"]}}, 400, None),                     # no ref
        ({"snapshot": {"volume_id": v["id"], "ref": "snapshot-x"}}, 400, None),
        ({"snapshot": {"volume_id": v["id"], "ref": {}, "x": 1}}, 400, None),  # unknown key
        ({"volume": {}}, 400, None),
        ({"snapshot": {"volume_id": "0" * 32, "ref": {"source-name": "snapshot-x"}}}, 404,
         None),
        ({"snapshot": {"volume_id": v["id"], "ref": {"source-name": "snapshot-x"}}}, 403,
         "bob:p1"),
    ]
    for body, code, token in cases:
        resp = stack.request("POST", "/os-snapshot-manage", body, token=token)
        assert resp.status_code == code, (body, resp.text)
    stack.request("POST", "/volumes/%s/action" % v["id"],
                  {"os-reset_status": {"status": "error"}})
    assert manage(stack, v["id"], "snapshot-x").status_code == 400  # volume not available
    assert db.snapshot_get_all(_admin(), all_projects=True) == []
    assert sorted(os.listdir(pool_dir(stack))) == ["snapshot-x", "volume-" + v["id"]]
    assert used() == {"snapshots": 0, "gigabytes": 1} and quota.check() == []


def test_manage_snapshot_over_quota_is_413(stack):
    v = available_volume(stack)
    make_file(stack, "snapshot-x")
    stack.request("PUT", "/os-quota-sets/p1", {"quota_set": {"snapshots": 0}})
    resp = manage(stack, v["id"], "snapshot-x")
    assert resp.status_code == 413, resp.text
    assert db.snapshot_get_all(_admin(), all_projects=True) == []
    # a snapshot bigger than the room left fails in the flow: the charge is the API's
    stack.request("PUT", "/os-quota-sets/p1", {"quota_set": {"snapshots": 5, "gigabytes": 3}})
    make_file(stack, "snapshot-big", size=5 * GiB)
    sid = manage(stack, v["id"], "snapshot-big").json()["snapshot"]["id"]
    assert stack.wait_snapshot(sid, ("error", "available"))["status"] == "error"
    assert os.path.exists(os.path.join(pool_dir(stack), "snapshot-big"))
    assert used() == {"snapshots": 1, "gigabytes": 2} and quota.check() == []


@pytest.mark.parametrize("name,why", [("snapshot-missing", "no file"),
                                      ("volume-x", "not a snapshot file")])
def test_manage_of_bad_reference_ends_error(stack, name, why):
    v = available_volume(stack)
    if name.startswith("volume-"):
        make_file(stack, name)
    sid = manage(stack, v["id"], name).json()["snapshot"]["id"]
    assert stack.wait_snapshot(sid, ("error", "available"))["status"] == "error"
    assert why in messages_for(stack, sid)[0]["user_message"]
    assert db.worker_get_all() == [] and quota.check() == []
    # an error snapshot may be deleted: the row goes and its charge with it
    assert stack.request("DELETE", "/snapshots/" + sid).status_code == 202
    stack.wait_snapshot(sid, ("deleted",))
    assert used() == {"snapshots": 0, "gigabytes": 1}


def test_manage_of_a_managed_snapshots_storage_refused(stack):
    v = available_volume(stack)
    own = stack.create_snapshot(v["id"])
    stack.wait_snapshot(own["id"], ("available",))
    sid = manage(stack, v["id"], "snapshot-" + own["id"]).json()["snapshot"]["id"]
    assert stack.wait_snapshot(sid, ("error", "available"))["status"] == "error"
    assert "belongs to a managed snapshot" in messages_for(stack, sid)[0]["user_message"]
    assert os.path.exists(os.path.join(pool_dir(stack), "snapshot-" + own["id"]))


@pytest.mark.parametrize("step", MANAGE_STEPS)
def test_manage_snapshot_failure_at_each_step(make_stack, step):
    stack = make_stack(overrides={"debug.fail_points": [step]})
    v = available_volume(stack)
    make_file(stack, "snapshot-legacy", size=3 * GiB)
    sid = manage(stack, v["id"], "snapshot-legacy").json()["snapshot"]["id"]
    done = stack.wait_snapshot(sid, ("error", "available"))
    assert done["status"] == "error"
    assert done["size"] == 1  # the charge the API made, at the volume's size
    assert step in messages_for(stack, sid)[0]["user_message"]
    assert sorted(os.listdir(pool_dir(stack))) == ["snapshot-legacy", "volume-" + v["id"]]
    assert used() == {"snapshots": 1, "gigabytes": 2} and quota.check() == []
    assert db.worker_get_all() == []
    stack.override("fail_points", [], group="debug")
    assert stack.request("DELETE", "/snapshots/" + sid).status_code == 202
    stack.wait_snapshot(sid, ("deleted",))
    assert os.path.exists(os.path.join(pool_dir(stack), "snapshot-legacy"))
    assert used() == {"snapshots": 0, "gigabytes": 1} and quota.check() == []


# --- unmanage ----------------------------------------------------------------------------------

def test_unmanage_snapshot_leaves_storage(stack):
    v = available_volume(stack, size=2)
    snap = stack.create_snapshot(v["id"])
    stack.wait_snapshot(snap["id"], ("available",))
    assert used() == {"snapshots": 1, "gigabytes": 4}
    resp = stack.request("POST", "/snapshots/%s/action" % snap["id"], {"os-unmanage": {}})
    assert resp.status_code == 202, resp.text
    stack.wait_snapshot(snap["id"], ("deleted",))
    assert os.path.exists(os.path.join(pool_dir(stack), "snapshot-" + snap["id"]))
    assert used() == {"snapshots": 0, "gigabytes": 2} and quota.check() == []
    assert db.worker_get_all() == []
    # and it can be managed back
    listed = stack.request("GET", "/os-snapshot-manage/detail?host=stack@file").json()
    assert listed["manageable-snapshots"][0]["safe_to_manage"] is True
    sid = manage(stack, v["id"], "snapshot-" + snap["id"]).json()["snapshot"]["id"]
    assert stack.wait_snapshot(sid, ("available",))["size"] == 2
    assert os.path.exists(os.path.join(pool_dir(stack), "snapshot-" + sid))


def test_unmanage_snapshot_refusals(stack):
    v = available_volume(stack)
    snap = stack.create_snapshot(v["id"])
    stack.wait_snapshot(snap["id"], ("available",))
    path = "/snapshots/%s/action" % snap["id"]
    assert stack.request("POST", path, {"os-unmanage": {}}, token="bob:p1").status_code \
        in (403, 404)
    assert stack.request("POST", path, {"os-unmanage": {"x": 1}}).status_code == 400
    stack.request("POST", path, {"os-reset_status": {"status": "creating"}})
    assert stack.request("POST", path, {"os-unmanage": {}}).status_code == 400
    r = db.snapshot_get_internal(snap["id"])
    assert (r.status, r.deleted) == ("creating", False)
    assert db.worker_get_all() == []


@pytest.mark.parametrize("step", UNMANAGE_STEPS)
def test_unmanage_snapshot_failure_at_each_step(make_stack, step):
    stack = make_stack(overrides={"debug.fail_points": [step]})
    v = available_volume(stack)
    snap = stack.create_snapshot(v["id"])
    stack.wait_snapshot(snap["id"], ("available",))
    stack.request("POST", "/snapshots/%s/action" % snap["id"], {"os-unmanage": {}})
    done = stack.wait_snapshot(snap["id"], ("error_deleting", "deleted"))
    assert done["status"] == "error_deleting"
    assert step in messages_for(stack, snap["id"])[0]["user_message"]
    assert used() == {"snapshots": 1, "gigabytes": 2} and quota.check() == []
    assert db.worker_get_all() == [] and len(stack.snapshot_files()) == 1
    # a failed unmanage may be retried
    stack.override("fail_points", [], group="debug")
    assert stack.request("POST", "/snapshots/%s/action" % snap["id"],
                         {"os-unmanage": {}}).status_code == 202
    stack.wait_snapshot(snap["id"], ("deleted",))
    assert len(stack.snapshot_files()) == 1
    assert used() == {"snapshots": 0, "gigabytes": 1} and quota.check() == []


def _manager(stack, host="stack@file"):
    return [svc for svc in stack.services if svc.host == host][0].manager


@pytest.mark.parametrize("operation,status,expected", [("manage", "creating", "error"),
                                                       ("unmanage", "unmanaging", "deleted")])
def test_interrupted_snapshot_manage_ends_at_start_and_keeps_storage(stack, operation,
                                                                      status, expected):
    from common.db import models
    from common.db.session import writer

    v = available_volume(stack)
    snap = stack.create_snapshot(v["id"])
    stack.wait_snapshot(snap["id"], ("available",))
    with writer() as s:
        s.query(models.Snapshot).filter(models.Snapshot.id == snap["id"]).update(
            {"status": status})
        s.add(models.Worker(resource_type="snapshot", resource_id=snap["id"],
                            operation=operation, host="stack@file"))
    _manager(stack).cleanup_interrupted()
    r = db.snapshot_get_internal(snap["id"])
    assert (r.status if not r.deleted else "deleted") == expected
    assert db.worker_get_all() == [] and len(stack.snapshot_files()) == 1
    assert quota.check() == []


# --- os-update_snapshot_status ----------------------------------------------------------------

def test_update_snapshot_status(stack):
    v = available_volume(stack)
    snap = stack.create_snapshot(v["id"])
    stack.wait_snapshot(snap["id"], ("available",))
    path = "/snapshots/%s/action" % snap["id"]
    # available is not a status a compute service may move
    resp = stack.request("POST", path, {"os-update_snapshot_status": {"status": "error"}})
    assert resp.status_code == 400, resp.text
    stack.request("POST", path, {"os-reset_status": {"status": "creating"}})
    for body in ({"status": "deleting"}, {"progress": "1%"}, {"status": "error", "x": 1}):
        resp = stack.request("POST", path, {"os-update_snapshot_status": body})
        assert resp.status_code == 400, (body, resp.text)
    resp = stack.request("POST", path, {"os-update_snapshot_status": {"status": "error",
                                                                      "progress": "80%"}})
    assert resp.status_code == 202, resp.text
    shown = stack.request("GET", "/snapshots/" + snap["id"]).json()["snapshot"]
    assert shown["status"] == "error"
    assert shown["os-extended-snapshot-attributes:progress"] == "80%"
    # the project's members may call it (Cinder: admin or owner); error moves nowhere
    assert stack.request("POST", path, {"os-update_snapshot_status": {"status": "error"}},
                         token="bob:p1").status_code == 400


def _admin():
    from common import context

    return context.get_admin_context()


def test_snapshot_manage_through_cinderclient(stack):
    """python-cinderclient's snapshot-manage, manageable-list and snapshot-unmanage (3.0:
    the os-snapshot-manage paths)."""
    from cinderclient import client as cinder_client
    from keystoneauth1 import session as ks_session
    from keystoneauth1 import token_endpoint

    auth = token_endpoint.Token("%s/v3/p1" % stack.url, "admin:p1")
    c = cinder_client.Client("3.0", session=ks_session.Session(auth=auth))
    v = available_volume(stack)
    make_file(stack, "snapshot-legacy")
    listed = c.volume_snapshots.list_manageable("stack@file", detailed=True)
    assert [e.reference for e in listed] == [{"source-name": "snapshot-legacy"}]
    snap = c.volume_snapshots.manage(v["id"], {"source-name": "snapshot-legacy"},
                                     name="adopted", description=None, metadata={"k": "v"})
    done = stack.wait_snapshot(snap.id, ("available", "error"))
    assert done["status"] == "available" and done["metadata"] == {"k": "v"}
    c.volume_snapshots.unmanage(snap)
    stack.wait_snapshot(snap.id, ("deleted",))
    assert os.path.exists(os.path.join(pool_dir(stack), "snapshot-" + snap.id))
    assert used() == {"snapshots": 0, "gigabytes": 1} and quota.check() == []
