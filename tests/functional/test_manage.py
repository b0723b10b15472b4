"""Manage existing storage and unmanage through the API (file driver, whole stack in one
process): happy paths, refusals, the manageable list, failure at each step of both flows."""

import os

import pytest

from common.db import api as db

GiB = 1024 ** 3
HOST = "stack@file#pool0"
MANAGE_STEPS = ["manage_existing.check_managing", "manage_existing.get_size",
                "manage_existing.claim_capacity", "manage_existing.manage_storage",
                "manage_existing.mark_managed"]
UNMANAGE_STEPS = ["unmanage_volume.check_unmanaging", "unmanage_volume.unmanage_storage",
                  "unmanage_volume.mark_unmanaged"]


def pool_dir(stack):
    return os.path.join(stack.workdir, "file", "pool0")


def make_file(stack, name, size=GiB + 1, data=b"legacy data"):
    path = os.path.join(pool_dir(stack), name)
    with open(path, "wb") as f:
        f.write(data)
        f.truncate(size)
    return path


def manage(stack, name, host=HOST, path="/os-volume-manage", **kw):
    body = {"volume": {"host": host, "ref": {"source-name": name}, "name": "adopted"}}
    body["volume"].update(kw.pop("fields", {}))
    return stack.request("POST", path, body, **kw)


def messages_for(stack, volume_id):
    return stack.request("GET", "/messages?resource_uuid=" + volume_id,
                         version="3.3").json()["messages"]


def test_manage_existing_file(stack):
    src = make_file(stack, "legacy-disk")
    resp = manage(stack, "legacy-disk", fields={"bootable": True, "metadata": {"a": "b"}})
    assert resp.status_code == 202, resp.text
    volume = resp.json()["volume"]
    assert volume["status"] == "managing" and volume["name"] == "adopted"
    done = stack.wait_volume(volume["id"], ("available", "error_managing"))
    assert done["status"] == "available"
    assert done["size"] == 2  # 1 GiB + 1 byte rounds up
    assert done["bootable"] == "true" and done["metadata"] == {"a": "b"}
    assert done["os-vol-host-attr:host"] == HOST
    path = os.path.join(pool_dir(stack), "volume-" + volume["id"])
    assert not os.path.exists(src) and os.path.exists(path)
    with open(path, "rb") as f:
        assert f.read(11) == b"legacy data"
    pool = db.pool_get(HOST)
    assert (pool.allocated_capacity_gb, pool.volume_count) == (2, 1)
    assert db.worker_get_all() == []
    # a managed volume is an ordinary one: it can be extended and deleted
    assert stack.request("POST", "/volumes/%s/action" % volume["id"],
                         {"os-extend": {"new_size": 3}}).status_code == 202
    assert stack.wait_volume(volume["id"], ("available",))["size"] == 3
    assert stack.request("DELETE", "/volumes/" + volume["id"]).status_code == 202
    stack.wait_volume(volume["id"], ("deleted",))
    assert os.listdir(pool_dir(stack)) == []
    pool = db.pool_get(HOST)
    assert (pool.allocated_capacity_gb, pool.volume_count) == (0, 0)


def test_manage_backend_host_without_pool_and_manageable_volumes_3_8(stack, monkeypatch):
    from api import microversion

    make_file(stack, "legacy-a", size=3 * GiB)
    resp = manage(stack, "legacy-a", host="stack@file")
    assert resp.status_code == 202, resp.text
    # /manageable_volumes needs 3.8, above today's maximum
    assert manage(stack, "x", path="/manageable_volumes").status_code == 404
    monkeypatch.setattr(microversion, "MAX_VERSION", (3, 8))
    stack.wait_volume(resp.json()["volume"]["id"], ("available",))
    make_file(stack, "legacy-b")
    listed = stack.request("GET", "/manageable_volumes/detail?host=stack@file", version="3.8")
    assert listed.status_code == 200, listed.text
    entries = {e["reference"]["source-name"]: e for e in listed.json()["manageable-volumes"]}
    vid = resp.json()["volume"]["id"]
    assert entries["legacy-b"]["safe_to_manage"] is True and entries["legacy-b"]["size"] == 2
    owned = entries["volume-" + vid]
    assert owned["safe_to_manage"] is False and owned["cinder_id"] == vid
    assert owned["reason_not_safe"] == "already managed"
    summary = stack.request("GET", "/manageable_volumes?host=stack@file&sort=size:desc",
                            version="3.8").json()["manageable-volumes"]
    assert summary[0] == {"reference": {"source-name": "volume-" + vid}, "size": 3,
                          "safe_to_manage": False}
    page = stack.request("GET", "/manageable_volumes?host=stack@file&limit=1&offset=1",
                         version="3.8").json()["manageable-volumes"]
    assert [e["reference"]["source-name"] for e in page] == ["volume-" + vid]
    resp = manage(stack, "legacy-b", path="/manageable_volumes", version="3.8")
    assert resp.status_code == 202
    assert stack.wait_volume(resp.json()["volume"]["id"], ("available",))["size"] == 2


def test_manage_refusals_create_nothing(stack):
    make_file(stack, "legacy")
    cases = [
        ({"volume": {"ref": {"source-name": "legacy"}}}, 400, None),          # no host
        ({"volume": {"host": HOST}}, 400, None),                              # no ref
        ({"volume": {"host": HOST, "ref": "legacy"}}, 400, None),             # ref not a dict
        ({"volume": {"host": HOST, "ref": {}, "x": 1}}, 400, None),           # unknown key
        ({"volume": {"host": "nohost@none#p", "ref": {"source-name": "legacy"}}}, 404, None),
        ({"volume": {"host": HOST, "ref": {"source-name": "legacy"},
                     "volume_type": "nosuchtype"}}, 404, None),
        ({"volume": {"host": HOST, "ref": {"source-name": "legacy"}}}, 403, "bob:p1"),
    ]
    for body, code, token in cases:
        resp = stack.request("POST", "/os-volume-manage", body, token=token)
        assert resp.status_code == code, (body, resp.text)
    assert db.volume_get_all(_admin(), all_projects=True) == []
    assert os.listdir(pool_dir(stack)) == ["legacy"]
    assert stack.request("GET", "/os-volume-manage?host=stack@file",
                         token="bob:p1").status_code == 403
    assert stack.request("GET", "/os-volume-manage").status_code == 400
    assert stack.request("GET", "/os-volume-manage?host=nohost@x").status_code == 404
    assert stack.request("GET", "/os-volume-manage?host=stack@file&cluster=c").status_code \
        == 400


def test_manage_type_of_another_backend_refused(make_stack):
    stack = make_stack(backends={"file": {}, "other": {}})
    stack.request("POST", "/types", {"volume_type": {
        "name": "other-only", "extra_specs": {"volume_backend_name": "other"}}})
    make_file(stack, "legacy")
    resp = manage(stack, "legacy", fields={"volume_type": "other-only"})
    assert resp.status_code == 400 and "other" in resp.text
    assert db.volume_get_all(_admin(), all_projects=True) == []


@pytest.mark.parametrize("name,why", [("missing-file", "no file"),
                                      ("snapshot-x", "not a volume file")])
def test_manage_of_bad_reference_ends_error_managing(stack, name, why):
    if name.startswith("snapshot-"):
        make_file(stack, name)
    resp = manage(stack, name)
    assert resp.status_code == 202
    vid = resp.json()["volume"]["id"]
    done = stack.wait_volume(vid, ("error_managing", "available"))
    assert done["status"] == "error_managing" and done["size"] == 0
    assert why in messages_for(stack, vid)[0]["user_message"]
    pool = db.pool_get(HOST)
    assert (pool.allocated_capacity_gb, pool.volume_count) == (0, 0)
    assert db.worker_get_all() == []
    # an error_managing volume may be deleted: the row goes, no storage is touched
    assert stack.request("DELETE", "/volumes/" + vid).status_code == 202
    stack.wait_volume(vid, ("deleted",))


def test_manage_of_a_managed_volumes_storage_refused(stack):
    v = stack.create_volume(size=1)
    stack.wait_volume(v["id"], ("available",))
    resp = manage(stack, "volume-" + v["id"])
    vid = resp.json()["volume"]["id"]
    assert stack.wait_volume(vid, ("error_managing", "available"))["status"] == \
        "error_managing"
    assert "belongs to a managed volume" in messages_for(stack, vid)[0]["user_message"]
    assert os.path.exists(os.path.join(pool_dir(stack), "volume-" + v["id"]))


def test_manage_without_room_ends_error_managing(make_stack):
    stack = make_stack(backends={"file": {"file_max_capacity_gb": 10,
                                          "max_over_subscription_ratio": 1.0}})
    make_file(stack, "huge", size=20 * GiB)
    vid = manage(stack, "huge").json()["volume"]["id"]
    assert stack.wait_volume(vid, ("error_managing", "available"))["status"] == \
        "error_managing"
    assert "no room" in messages_for(stack, vid)[0]["user_message"]
    assert os.path.exists(os.path.join(pool_dir(stack), "huge"))
    assert db.pool_get(HOST).allocated_capacity_gb == 0


@pytest.mark.parametrize("step", MANAGE_STEPS)
def test_manage_failure_at_each_step(make_stack, step):
    stack = make_stack(overrides={"debug.fail_points": [step]})
    make_file(stack, "legacy")
    vid = manage(stack, "legacy").json()["volume"]["id"]
    done = stack.wait_volume(vid, ("error_managing", "available"))
    assert done["status"] == "error_managing"
    assert step in messages_for(stack, vid)[0]["user_message"]
    assert os.listdir(pool_dir(stack)) == ["legacy"]  # the storage is where it was
    pool = db.pool_get(HOST)
    assert (pool.allocated_capacity_gb, pool.volume_count) == (0, 0)
    assert db.worker_get_all() == []
    assert db.volume_get_internal(vid).host is None


def test_manage_whose_rollback_fails_still_ends(make_stack):
    stack = make_stack(overrides={"debug.fail_points": [
        "manage_existing.mark_managed", "manage_existing.check_managing.revert"]})
    make_file(stack, "legacy")
    vid = manage(stack, "legacy").json()["volume"]["id"]
    assert stack.wait_volume(vid, ("error_managing", "available"))["status"] == \
        "error_managing"
    assert db.worker_get_all() == []
    assert db.pool_get(HOST).allocated_capacity_gb == 0


# --- unmanage ----------------------------------------------------------------------------------

def test_unmanage_leaves_storage(stack):
    v = stack.create_volume(size=2)
    stack.wait_volume(v["id"], ("available",))
    resp = stack.request("POST", "/volumes/%s/action" % v["id"], {"os-unmanage": {}})
    assert resp.status_code == 202, resp.text
    stack.wait_volume(v["id"], ("deleted",))
    assert os.listdir(pool_dir(stack)) == ["volume-" + v["id"]]
    pool = db.pool_get(HOST)
    assert (pool.allocated_capacity_gb, pool.volume_count) == (0, 0)
    assert db.worker_get_all() == []
    # and it can be managed back
    listed = stack.request("GET", "/os-volume-manage/detail?host=stack@file").json()
    assert listed["manageable-volumes"][0]["safe_to_manage"] is True
    vid = manage(stack, "volume-" + v["id"]).json()["volume"]["id"]
    assert stack.wait_volume(vid, ("available",))["size"] == 2


def test_unmanage_refusals(stack):
    v = stack.create_volume(size=1)
    stack.wait_volume(v["id"], ("available",))
    path = "/volumes/%s/action" % v["id"]
    assert stack.request("POST", path, {"os-unmanage": {}}, token="bob:p1").status_code == 403
    assert stack.request("POST", path, {"os-unmanage": {"x": 1}}).status_code == 400
    stack.request("POST", path, {"os-reset_status": {"status": "in-use"}})
    assert stack.request("POST", path, {"os-unmanage": None}).status_code == 400
    r = db.volume_get_internal(v["id"])
    assert (r.status, r.deleted) == ("in-use", False)
    assert db.worker_get_all() == []


@pytest.mark.parametrize("step", UNMANAGE_STEPS)
def test_unmanage_failure_at_each_step(make_stack, step):
    stack = make_stack(overrides={"debug.fail_points": [step]})
    v = stack.create_volume(size=1)
    stack.wait_volume(v["id"], ("available",))
    stack.request("POST", "/volumes/%s/action" % v["id"], {"os-unmanage": {}})
    done = stack.wait_volume(v["id"], ("error_unmanaging", "deleted"))
    assert done["status"] == "error_unmanaging"
    assert step in messages_for(stack, v["id"])[0]["user_message"]
    assert db.pool_get(HOST).allocated_capacity_gb == 1  # the volume still holds its claim
    assert db.worker_get_all() == []
    assert len(stack.volume_files()) == 1
    # a failed unmanage may be retried
    stack.override("fail_points", [], group="debug")
    assert stack.request("POST", "/volumes/%s/action" % v["id"],
                         {"os-unmanage": {}}).status_code == 202
    stack.wait_volume(v["id"], ("deleted",))
    assert len(stack.volume_files()) == 1
    assert db.pool_get(HOST).allocated_capacity_gb == 0


def _admin():
    from common import context

    return context.get_admin_context()


# --- operations interrupted by a volume service restart ----------------------------------------

def _manager(stack, host="stack@file"):
    return [svc for svc in stack.services if svc.host == host][0].manager


@pytest.mark.parametrize("status,expected", [("managing", "error_managing"),
                                             ("unmanaging", "deleted"),
                                             ("maintenance", "available"),
                                             ("retyping", "available")])
def test_interrupted_operations_end_at_start(stack, status, expected):
    """What the start-up cleanup (VolumeManager.cleanup_interrupted) does with a workers row
    this service owned when it stopped, for the operations of the volume actions."""
    from common.db import models
    from common.db.session import writer

    v = stack.create_volume(size=1)
    stack.wait_volume(v["id"], ("available",))
    values = {"status": status, "previous_status": "available"}
    if status in ("maintenance", "retyping"):
        values["migration_status"] = "migrating"
    if status == "managing":
        values.update(size=1)
    with writer() as s:
        s.query(models.Volume).filter(models.Volume.id == v["id"]).update(values)
        s.add(models.Worker(resource_type="volume", resource_id=v["id"],
                            operation=status, host="stack@file"))
    _manager(stack).cleanup_interrupted()
    r = db.volume_get_internal(v["id"])
    assert (r.status if not r.deleted else "deleted") == expected
    assert db.worker_get_all() == []
    if status in ("maintenance", "retyping"):
        assert (r.host, r.migration_status) == (HOST, "error")
        assert "interrupted" in messages_for(stack, v["id"])[0]["user_message"]
    if status == "managing":
        assert r.host is None and r.size == 0
        assert db.pool_get(HOST).allocated_capacity_gb == 0
    if status == "unmanaging":
        assert len(stack.volume_files()) == 1  # the storage stays
        assert db.pool_get(HOST).allocated_capacity_gb == 0
