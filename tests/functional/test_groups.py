"""Generic volume groups (3.11-3.20) on the in-process stack (file driver): group types and
specs, groups, volumes created into a group, group snapshots, groups from a group snapshot
or another group (data compared in the volume files), failure injection at each flow step.

Every response is checked against Tempest's schemas by tests/contract.py (conftest)."""

import pytest

from common import quota
from common.db import api as db
from tests.functional.test_snapshots import read_at, volume_path, write_at

GiB = 1024 ** 3
V = "3.20"  # every group call is live at it (and at the 3.42 maximum)
MEMBER = "alice:p1"


def req(stack, method, path, body=None, version=V, **kwargs):
    return stack.request(method, path, body, version=version, **kwargs)


def group_type(stack, name="gt", **fields):
    resp = req(stack, "POST", "/group_types", {"group_type": dict(name=name, **fields)})
    assert resp.status_code == 202, resp.text
    return resp.json()["group_type"]


def wait_group(stack, group_id, statuses, timeout=30):
    import time

    deadline = time.monotonic() + timeout
    while True:
        resp = req(stack, "GET", "/groups/" + group_id)
        if resp.status_code == 404 and "deleted" in statuses:
            return {"status": "deleted"}
        assert resp.status_code == 200, resp.text
        group = resp.json()["group"]
        if group["status"] in statuses:
            return group
        assert time.monotonic() < deadline, group
        time.sleep(0.05)


def wait_group_snapshot(stack, gs_id, statuses, timeout=30):
    import time

    deadline = time.monotonic() + timeout
    while True:
        resp = req(stack, "GET", "/group_snapshots/" + gs_id)
        if resp.status_code == 404 and "deleted" in statuses:
            return {"status": "deleted"}
        assert resp.status_code == 200, resp.text
        gs = resp.json()["group_snapshot"]
        if gs["status"] in statuses:
            return gs
        assert time.monotonic() < deadline, gs
        time.sleep(0.05)


def volume_type_id(stack, name="__DEFAULT__"):
    return db.volume_type_get_by_name(name).id


def new_group(stack, gtype=None, wait=True, **fields):
    gtype = gtype or group_type(stack, name="gt-%d" % len(db.pool_get_all()))
    fields.setdefault("name", "group")  # Tempest's schemas take a name that is a string
    body = dict(group_type=gtype["id"], volume_types=[volume_type_id(stack)], **fields)
    resp = req(stack, "POST", "/groups", {"group": body})
    assert resp.status_code == 202, resp.text
    group = resp.json()["group"]
    assert set(group) == {"id", "name"}
    return wait_group(stack, group["id"], ("available", "error")) if wait else group


def volume_in(stack, group_id, size=1):
    resp = req(stack, "POST", "/volumes", {"volume": {"size": size, "group_id": group_id,
                                                      "volume_type": "__DEFAULT__"}})
    assert resp.status_code == 202, resp.text
    assert resp.json()["volume"]["group_id"] == group_id
    volume_id = resp.json()["volume"]["id"]
    stack.wait_volume(volume_id, ("available", "error"))
    return req(stack, "GET", "/volumes/" + volume_id).json()["volume"]


def gs_body(group):
    return {"group_snapshot": {"group_id": group["id"], "name": "gs"}}


def admin():
    from common import context

    return context.get_admin_context()


# --- group types and specs -------------------------------------------------------------------

def test_group_type_calls(stack):
    gt = group_type(stack, name="gold", description="d", group_specs={"k": "v"})
    assert gt["group_specs"] == {"k": "v"} and gt["is_public"] is True
    assert req(stack, "GET", "/group_types").json()["group_types"][0]["id"] == gt["id"]
    assert req(stack, "GET", "/group_types/" + gt["id"]).json()["group_type"]["name"] == "gold"
    resp = req(stack, "PUT", "/group_types/" + gt["id"], {"group_type": {"name": "silver"}})
    assert resp.status_code == 200 and resp.json()["group_type"]["name"] == "silver"
    # specs
    path = "/group_types/%s/group_specs" % gt["id"]
    resp = req(stack, "POST", path, {"group_specs": {"a": "1"}})
    assert resp.status_code == 202 and resp.json() == {"group_specs": {"a": "1"}}
    assert req(stack, "GET", path).json() == {"group_specs": {"k": "v", "a": "1"}}
    assert req(stack, "GET", path + "/a").json() == {"a": "1"}
    assert req(stack, "PUT", path + "/a", {"a": "2"}).json() == {"a": "2"}
    assert req(stack, "PUT", path + "/a", {"b": "2"}).status_code == 400
    assert req(stack, "DELETE", path + "/a").status_code == 202
    assert req(stack, "GET", path + "/a").status_code == 404
    assert req(stack, "DELETE", path + "/a").status_code == 404
    # the default group type: unset -> 404, set -> shown
    assert req(stack, "GET", "/group_types/default").status_code == 404
    stack.override("default_group_type", "silver")
    assert req(stack, "GET", "/group_types/default").json()["group_type"]["id"] == gt["id"]
    # a member sees public types without their specs, and may not write
    shown = req(stack, "GET", "/group_types/" + gt["id"], token=MEMBER).json()["group_type"]
    assert "group_specs" not in shown
    assert req(stack, "POST", "/group_types", {"group_type": {"name": "x"}},
               token=MEMBER).status_code == 403
    assert req(stack, "GET", path, token=MEMBER).status_code == 403
    assert req(stack, "DELETE", "/group_types/" + gt["id"], token=MEMBER).status_code == 403
    assert req(stack, "DELETE", "/group_types/" + gt["id"]).status_code == 202
    assert req(stack, "GET", "/group_types/" + gt["id"]).status_code == 404


@pytest.mark.parametrize("body, code", [
    ({"group_type": {}}, 400),
    ({"group_type": {"name": ""}}, 400),
    ({"group_type": {"name": "x", "bogus": 1}}, 400),
    ({"group_type": {"name": "x", "is_public": "maybe"}}, 400),
    ({"group_type": {"name": "x", "group_specs": {"k": 1}}}, 400),
    ({}, 400),
])
def test_group_type_bad_input(stack, body, code):
    assert req(stack, "POST", "/group_types", body).status_code == code
    assert req(stack, "GET", "/group_types").json()["group_types"] == []


def test_group_type_name_taken_and_in_use(stack):
    gt = group_type(stack, name="one")
    assert req(stack, "POST", "/group_types", {"group_type": {"name": "one"}}).status_code == 409
    assert req(stack, "PUT", "/group_types/" + gt["id"], {"group_type": {}}).status_code == 400
    group = new_group(stack, gt)
    resp = req(stack, "DELETE", "/group_types/" + gt["id"])
    assert resp.status_code == 400 and "groups present" in resp.text
    assert req(stack, "POST", "/groups/%s/action" % group["id"],
               {"delete": {"delete-volumes": False}}).status_code == 202
    wait_group(stack, group["id"], ("deleted",))
    assert req(stack, "DELETE", "/group_types/" + gt["id"]).status_code == 202


@pytest.mark.parametrize("path, old, new", [
    ("/group_types", "3.10", "3.11"),
    ("/groups", "3.12", "3.13"),
    ("/groups/detail", "3.12", "3.13"),
    ("/group_snapshots", "3.13", "3.14"),
    ("/group_snapshots/detail", "3.13", "3.14"),
])
def test_microversion_gates(stack, path, old, new):
    assert req(stack, "GET", path, version=old).status_code == 404
    assert req(stack, "GET", path, version=new).status_code == 200


def test_group_type_list_sort_and_is_public(stack):
    """As Tempest's test_group_type_list_by_optional_params."""
    group_type(stack, name="a-type")
    group_type(stack, name="b-type", is_public=False)

    def names(query):
        resp = req(stack, "GET", "/group_types" + query)
        assert resp.status_code == 200, resp.text
        return [t["name"] for t in resp.json()["group_types"]]
    assert names("?sort=name:asc&is_public=None") == ["a-type", "b-type"]
    assert names("?sort=name:desc&is_public=None") == ["b-type", "a-type"]
    assert names("?sort_key=name&sort_dir=desc&is_public=None") == ["b-type", "a-type"]
    assert names("?is_public=False") == ["b-type"]
    assert names("?is_public=True") == ["a-type"]
    assert names("?limit=1&sort=name") == ["a-type"]
    assert req(stack, "GET", "/group_types?sort=bogus").status_code == 400
    # a member: public types only, whatever it asks
    resp = req(stack, "GET", "/group_types?is_public=None", token=MEMBER)
    assert [t["name"] for t in resp.json()["group_types"]] == ["a-type"]


# --- groups ----------------------------------------------------------------------------------

def test_group_lifecycle(stack):
    gt = group_type(stack)
    group = new_group(stack, gt, name="g", description="d")
    assert group["status"] == "available" and group["group_type"] == gt["id"]
    assert group["volume_types"] == [volume_type_id(stack)]
    assert group["group_snapshot_id"] is None and group["source_group_id"] is None
    assert "replication_status" not in group  # 3.38
    shown = req(stack, "GET", "/groups/" + group["id"], version="3.38").json()["group"]
    assert shown["replication_status"] == "disabled"
    assert "group_snapshot_id" not in req(stack, "GET", "/groups/" + group["id"],
                                          version="3.13").json()["group"]
    assert req(stack, "GET", "/groups").json()["groups"] == [{"id": group["id"], "name": "g"}]
    assert req(stack, "GET", "/groups/detail?name=g").json()["groups"][0]["id"] == group["id"]
    assert req(stack, "GET", "/groups/detail?name=h").json()["groups"] == []
    assert req(stack, "GET", "/groups?bogus=1").status_code == 400
    # volumes into the group land on its back end and show group_id (3.13)
    v1 = volume_in(stack, group["id"])
    assert v1["status"] == "available" and v1["group_id"] == group["id"]
    assert v1["os-vol-host-attr:host"].split("#")[0] == "stack@file"
    assert "group_id" not in stack.request("GET", "/volumes/" + v1["id"],
                                           version="3.12").json()["volume"]
    resp = stack.request("DELETE", "/volumes/" + v1["id"])
    assert resp.status_code == 400 and "belong to a group" in resp.text
    # 3.25: with list_volume=true, show and detail list the member volumes' ids
    listed = "/groups/%s?list_volume=true" % group["id"]
    assert req(stack, "GET", listed, version="3.25").json()["group"]["volumes"] == [v1["id"]]
    assert "volumes" not in req(stack, "GET", listed, version="3.24").json()["group"]
    assert "volumes" not in req(stack, "GET", "/groups/" + group["id"],
                                version="3.25").json()["group"]
    assert req(stack, "GET", "/groups/detail?list_volume=1",
               version="3.25").json()["groups"][0]["volumes"] == [v1["id"]]
    assert req(stack, "GET", "/groups?list_volume=1",
               version="3.25").json()["groups"] == [{"id": group["id"], "name": "g"}]
    assert req(stack, "GET", "/groups/%s?list_volume=maybe" % group["id"],
               version="3.25").status_code == 400
    loose = stack.wait_volume(stack.create_volume(size=1)["id"], ("available",))
    # update: name, add and remove volumes
    resp = req(stack, "PUT", "/groups/" + group["id"],
               {"group": {"name": "g2", "add_volumes": loose["id"]}})
    assert resp.status_code == 202, resp.text
    assert "group_id" not in stack.wait_volume(loose["id"], ("available",))  # 3.0 view
    assert req(stack, "GET", "/volumes/" + loose["id"]).json()["volume"]["group_id"] == \
        group["id"]
    resp = req(stack, "PUT", "/groups/" + group["id"],
               {"group": {"remove_volumes": loose["id"]}})
    assert resp.status_code == 202
    assert req(stack, "GET", "/volumes/" + loose["id"]).json()["volume"]["group_id"] is None
    assert req(stack, "GET", "/groups/" + group["id"]).json()["group"]["name"] == "g2"
    assert req(stack, "PUT", "/groups/" + group["id"], {"group": {}}).status_code == 400
    # delete: refused with volumes unless delete-volumes
    resp = req(stack, "POST", "/groups/%s/action" % group["id"], {"delete": {}})
    assert resp.status_code == 400 and "delete-volumes" in resp.text
    resp = req(stack, "POST", "/groups/%s/action" % group["id"],
               {"delete": {"delete-volumes": True}})
    assert resp.status_code == 202
    wait_group(stack, group["id"], ("deleted",))
    stack.wait_volume(v1["id"], ("deleted",))
    assert [p for p in stack.volume_files() if v1["id"] in p] == []
    assert db.worker_get_all() == []
    assert quota.project_usage("p1", ["groups", "volumes"]) == {"groups": 0, "volumes": 1}
    assert quota.check() == []


def test_group_bad_input_and_refusals(stack):
    gt = group_type(stack)
    vt = volume_type_id(stack)
    missing = "0f0e0d0c-0000-4000-8000-000000000000"
    for body, code in [
        ({"group": {"group_type": gt["id"]}}, 400),
        ({"group": {"volume_types": [vt]}}, 400),
        ({"group": {"group_type": gt["id"], "volume_types": []}}, 400),
        ({"group": {"group_type": missing, "volume_types": [vt]}}, 404),
        ({"group": {"group_type": gt["id"], "volume_types": ["nope"]}}, 404),
        ({"group": {"group_type": gt["id"], "volume_types": [vt], "bogus": 1}}, 400),
        ({"group": {"group_type": gt["id"], "volume_types": [vt],
                    "availability_zone": "elsewhere"}}, 400),
    ]:
        resp = req(stack, "POST", "/groups", body)
        assert resp.status_code == code, (body, resp.text)
    assert req(stack, "GET", "/groups").json()["groups"] == []
    assert quota.project_usage("p1", ["groups"]) in ({"groups": 0}, {})
    # group_id on volume create: refused before 3.13, for a missing group, for a type the
    # group does not take
    resp = req(stack, "POST", "/volumes", {"volume": {"size": 1, "group_id": missing}},
               version="3.12")
    assert resp.status_code == 400
    resp = req(stack, "POST", "/volumes", {"volume": {"size": 1, "group_id": missing}})
    assert resp.status_code == 404
    group = new_group(stack, gt)
    other = stack.request("POST", "/types", {"volume_type": {"name": "other"}})
    assert other.status_code == 200
    resp = req(stack, "POST", "/volumes", {"volume": {"size": 1, "group_id": group["id"],
                                                      "volume_type": "other"}})
    assert resp.status_code == 400 and "supported by group" in resp.text
    # actions
    path = "/groups/%s/action" % group["id"]
    assert req(stack, "POST", path, {"bogus": {}}).status_code == 400
    assert req(stack, "POST", path, {"delete": {"bogus": 1}}).status_code == 400
    assert req(stack, "POST", path, {"reset_status": {"status": "error"}},
               version="3.19").status_code == 404
    assert req(stack, "POST", path, {"reset_status": {"status": "bogus"}}).status_code == 400
    # members: 403 on admin calls; another project sees nothing
    assert req(stack, "POST", path, {"reset_status": {"status": "error"}},
               token=MEMBER).status_code == 403
    assert req(stack, "GET", "/groups/" + group["id"], token="bob:p2",
               project="p2").status_code == 404
    assert req(stack, "POST", path, {"reset_status": {"status": "error"}}).status_code == 202
    assert req(stack, "GET", "/groups/" + group["id"]).json()["group"]["status"] == "error"
    resp = req(stack, "POST", "/volumes", {"volume": {"size": 1, "group_id": group["id"],
                                                      "volume_type": "__DEFAULT__"}})
    assert resp.status_code == 400  # the group is not available


def test_member_may_use_groups(stack):
    gt = group_type(stack)
    body = {"group": {"group_type": gt["id"], "volume_types": [volume_type_id(stack)],
                      "name": "g"}}
    resp = req(stack, "POST", "/groups", body, token=MEMBER)
    assert resp.status_code == 202, resp.text
    group = wait_group(stack, resp.json()["group"]["id"], ("available",))
    assert req(stack, "GET", "/groups/" + group["id"], token=MEMBER).status_code == 200
    assert req(stack, "POST", "/groups/%s/action" % group["id"], {"delete": {}},
               token=MEMBER).status_code == 202
    wait_group(stack, group["id"], ("deleted",))


def test_groups_quota(stack):
    gt = group_type(stack)
    assert stack.request("PUT", "/os-quota-sets/p1",
                         {"quota_set": {"groups": 1}}).status_code == 200
    new_group(stack, gt)
    body = {"group": {"group_type": gt["id"], "volume_types": [volume_type_id(stack)],
                      "name": "g"}}
    resp = req(stack, "POST", "/groups", body)
    assert resp.status_code == 413 and "groups" in resp.text
    assert len(req(stack, "GET", "/groups").json()["groups"]) == 1
    assert quota.project_usage("p1", ["groups"]) == {"groups": 1}
    assert quota.check() == []


@pytest.mark.parametrize("step", ["create_group.check_still_creating",
                                  "create_group.create_group_storage",
                                  "create_group.mark_available"])
def test_group_create_failure_at_each_step(stack, step):
    gt = group_type(stack)
    stack.override("fail_points", [step], group="debug")
    group = new_group(stack, gt)
    assert group["status"] == "error"
    assert db.worker_get_all() == []
    msgs = stack.request("GET", "/messages?resource_uuid=" + group["id"], version="3.3").json()
    assert len(msgs["messages"]) == 1 and step in msgs["messages"][0]["user_message"]
    assert quota.project_usage("p1", ["groups"]) == {"groups": 1}  # until deleted, as Cinder
    stack.override("fail_points", [], group="debug")
    assert req(stack, "POST", "/groups/%s/action" % group["id"], {"delete": {}}).status_code \
        == 202
    wait_group(stack, group["id"], ("deleted",))
    assert quota.project_usage("p1", ["groups"]) == {"groups": 0}
    assert quota.check() == []


@pytest.mark.parametrize("step", ["delete_group.check_deleting",
                                  "delete_group.delete_members",
                                  "delete_group.delete_group_storage",
                                  "delete_group.mark_deleted",
                                  "delete_volume.delete_storage"])
def test_group_delete_failure_at_each_step(stack, step):
    group = new_group(stack)
    member = volume_in(stack, group["id"])
    stack.override("fail_points", [step], group="debug")
    assert req(stack, "POST", "/groups/%s/action" % group["id"],
               {"delete": {"delete-volumes": True}}).status_code == 202
    assert wait_group(stack, group["id"], ("error_deleting", "deleted"))["status"] == \
        "error_deleting"
    assert db.worker_get_all() == []
    left = stack.wait_volume(member["id"], ("error_deleting", "deleted", "available"))
    assert left["status"] in ("error_deleting", "deleted")
    assert quota.project_usage("p1", ["groups"]) == {"groups": 1}
    assert quota.check() == []
    # it can be deleted again once the failure is gone
    stack.override("fail_points", [], group="debug")
    if left["status"] == "error_deleting":
        stack.request("POST", "/volumes/%s/action" % member["id"],
                      {"os-reset_status": {"status": "error"}})
    assert req(stack, "POST", "/groups/%s/action" % group["id"],
               {"delete": {"delete-volumes": True}}).status_code == 202
    wait_group(stack, group["id"], ("deleted",))
    stack.wait_volume(member["id"], ("deleted",))
    assert stack.volume_files() == []
    assert quota.project_usage("p1", ["groups", "volumes"]) == {"groups": 0, "volumes": 0}
    assert quota.check() == []


# --- group snapshots and groups from sources ---------------------------------------------------

def two_volume_group(stack):
    group = new_group(stack)
    members = [volume_in(stack, group["id"]) for _ in range(2)]
    for index, member in enumerate(members):
        path = volume_path(stack, member["id"])
        write_at(path, 0, b"member-%d-data" % index)
        write_at(path, GiB - 4, b"END%d" % index)
    return group, members


def test_group_snapshot_and_group_from_it_data_equal(stack):
    group, members = two_volume_group(stack)
    resp = req(stack, "POST", "/group_snapshots",
               gs_body(group))
    assert resp.status_code == 202, resp.text
    created = resp.json()["group_snapshot"]
    assert set(created) == {"id", "name", "group_type_id"}
    gs = wait_group_snapshot(stack, created["id"], ("available", "error"))
    assert gs["status"] == "available" and gs["group_id"] == group["id"]
    snaps = stack.request("GET", "/snapshots/detail", version=V).json()["snapshots"]
    assert len(snaps) == 2 and {s["group_snapshot_id"] for s in snaps} == {gs["id"]}
    assert {s["volume_id"] for s in snaps} == {m["id"] for m in members}
    # the data changes after the snapshot; the new group has the data of the snapshot
    for member in members:
        write_at(volume_path(stack, member["id"]), 0, b"changed-after!!")
    resp = req(stack, "POST", "/groups/action",
               {"create-from-src": {"group_snapshot_id": gs["id"], "name": "copy"}})
    assert resp.status_code == 202, resp.text
    copy = wait_group(stack, resp.json()["group"]["id"], ("available", "error"))
    assert copy["status"] == "available" and copy["group_snapshot_id"] == gs["id"]
    new_members = [v for v in stack.request("GET", "/volumes/detail?group_id=" + copy["id"],
                                            version=V).json()["volumes"]]
    assert len(new_members) == 2
    by_source = {next(s["volume_id"] for s in snaps if s["id"] == v["snapshot_id"]): v
                 for v in new_members}
    for index, member in enumerate(members):
        path = volume_path(stack, by_source[member["id"]]["id"])
        assert read_at(path, 0, 13) == b"member-%d-data" % index
        assert read_at(path, GiB - 4, 4) == b"END%d" % index
    # from another group: a clone of its current data
    resp = req(stack, "POST", "/groups/action",
               {"create-from-src": {"source_group_id": group["id"], "name": "c"}})
    assert resp.status_code == 202, resp.text
    clone = wait_group(stack, resp.json()["group"]["id"], ("available", "error"))
    assert clone["status"] == "available" and clone["source_group_id"] == group["id"]
    cloned = stack.request("GET", "/volumes/detail?group_id=" + clone["id"],
                           version=V).json()["volumes"]
    assert sorted(read_at(volume_path(stack, v["id"]), 0, 15) for v in cloned) == \
        [b"changed-after!!"] * 2
    # a group with a group snapshot is not deleted; the group snapshot goes first
    resp = req(stack, "POST", "/groups/%s/action" % group["id"],
               {"delete": {"delete-volumes": True}})
    assert resp.status_code == 400
    for g in (copy, clone):
        assert req(stack, "POST", "/groups/%s/action" % g["id"],
                   {"delete": {"delete-volumes": True}}).status_code == 202
        wait_group(stack, g["id"], ("deleted",))
    assert req(stack, "DELETE", "/group_snapshots/" + gs["id"]).status_code == 202
    wait_group_snapshot(stack, gs["id"], ("deleted",))
    assert stack.snapshot_files() == []
    assert req(stack, "POST", "/groups/%s/action" % group["id"],
               {"delete": {"delete-volumes": True}}).status_code == 202
    wait_group(stack, group["id"], ("deleted",))
    assert stack.volume_files() == []
    assert db.worker_get_all() == []
    assert quota.project_usage("p1", ["groups", "volumes", "snapshots"]) == {
        "groups": 0, "volumes": 0, "snapshots": 0}
    assert quota.check() == []


def test_group_snapshot_calls_and_refusals(stack):
    group, _ = two_volume_group(stack)
    missing = "0f0e0d0c-0000-4000-8000-000000000000"
    assert req(stack, "POST", "/group_snapshots", {"group_snapshot": {}}).status_code == 400
    assert req(stack, "POST", "/group_snapshots",
               {"group_snapshot": {"group_id": missing}}).status_code == 404
    assert req(stack, "POST", "/group_snapshots", gs_body(group),
               version="3.13").status_code == 404
    resp = req(stack, "POST", "/group_snapshots", gs_body(group),
               token=MEMBER)
    assert resp.status_code == 202
    gs = wait_group_snapshot(stack, resp.json()["group_snapshot"]["id"], ("available",))
    assert req(stack, "GET", "/group_snapshots").json()["group_snapshots"] == [
        {"id": gs["id"], "name": gs["name"]}]
    assert len(req(stack, "GET", "/group_snapshots/detail?group_id=" + group["id"]).json()[
        "group_snapshots"]) == 1
    path = "/group_snapshots/%s/action" % gs["id"]
    assert req(stack, "POST", path, {"reset_status": {"status": "error"}},
               version="3.18").status_code == 404
    assert req(stack, "POST", path, {"reset_status": {"status": "error"}},
               token=MEMBER).status_code == 403
    assert req(stack, "POST", path, {"reset_status": {"status": "bogus"}}).status_code == 400
    assert req(stack, "POST", path, {"reset_status": {"status": "error"}}).status_code == 202
    assert req(stack, "GET", "/group_snapshots/" + gs["id"]).json()[
        "group_snapshot"]["status"] == "error"
    assert req(stack, "GET", "/group_snapshots/" + gs["id"], token="bob:p2",
               project="p2").status_code == 404
    for body in ({"create-from-src": {}},
                 {"create-from-src": {"group_snapshot_id": gs["id"],
                                      "source_group_id": group["id"]}},
                 {"create-from-src": {"group_snapshot_id": gs["id"], "bogus": 1}}):
        assert req(stack, "POST", "/groups/action", body).status_code == 400
    resp = req(stack, "POST", "/groups/action",
               {"create-from-src": {"group_snapshot_id": gs["id"], "name": "c"}})
    assert resp.status_code == 400  # the group snapshot is `error`
    assert req(stack, "DELETE", "/group_snapshots/" + gs["id"], token=MEMBER).status_code == 202
    wait_group_snapshot(stack, gs["id"], ("deleted",))
    assert stack.snapshot_files() == []
    assert quota.check() == []


@pytest.mark.parametrize("step", ["create_group_snapshot.check_still_creating",
                                  "create_group_snapshot.create_member_snapshots",
                                  "create_group_snapshot.create_member_snapshots.member",
                                  "create_group_snapshot.mark_available"])
def test_group_snapshot_create_failure_at_each_step(stack, step):
    group, _ = two_volume_group(stack)
    stack.override("fail_points", [step], group="debug")
    resp = req(stack, "POST", "/group_snapshots", gs_body(group))
    assert resp.status_code == 202
    gs = wait_group_snapshot(stack, resp.json()["group_snapshot"]["id"], ("error", "available"))
    assert gs["status"] == "error"
    assert stack.snapshot_files() == []
    assert db.worker_get_all() == []
    snaps = stack.request("GET", "/snapshots/detail", version=V).json()["snapshots"]
    assert [s["status"] for s in snaps] == ["error", "error"]
    msgs = stack.request("GET", "/messages?resource_uuid=" + gs["id"], version="3.3").json()
    assert len(msgs["messages"]) == 1 and step in msgs["messages"][0]["user_message"]
    assert quota.project_usage("p1", ["snapshots"]) == {"snapshots": 2}
    stack.override("fail_points", [], group="debug")
    assert req(stack, "DELETE", "/group_snapshots/" + gs["id"]).status_code == 202
    wait_group_snapshot(stack, gs["id"], ("deleted",))
    assert quota.project_usage("p1", ["snapshots"]) == {"snapshots": 0}
    assert quota.check() == []


@pytest.mark.parametrize("step", ["delete_group_snapshot.check_deleting",
                                  "delete_group_snapshot.delete_member_storage",
                                  "delete_group_snapshot.mark_deleted"])
def test_group_snapshot_delete_failure_at_each_step(stack, step):
    group, _ = two_volume_group(stack)
    resp = req(stack, "POST", "/group_snapshots", gs_body(group))
    gs = wait_group_snapshot(stack, resp.json()["group_snapshot"]["id"], ("available",))
    stack.override("fail_points", [step], group="debug")
    assert req(stack, "DELETE", "/group_snapshots/" + gs["id"]).status_code == 202
    assert wait_group_snapshot(stack, gs["id"], ("error_deleting", "deleted"))["status"] == \
        "error_deleting"
    assert db.worker_get_all() == []
    assert quota.project_usage("p1", ["snapshots"]) == {"snapshots": 2}
    assert quota.check() == []
    stack.override("fail_points", [], group="debug")
    assert req(stack, "DELETE", "/group_snapshots/" + gs["id"]).status_code == 202
    wait_group_snapshot(stack, gs["id"], ("deleted",))
    assert stack.snapshot_files() == []
    assert quota.project_usage("p1", ["snapshots"]) == {"snapshots": 0}


@pytest.mark.parametrize("step", ["create_group_from_src.check_still_creating",
                                  "create_group_from_src.create_members",
                                  "create_group_from_src.create_members.member",
                                  "create_group_from_src.mark_available"])
def test_group_from_src_failure_at_each_step(stack, step):
    group, members = two_volume_group(stack)
    files_before = sorted(stack.volume_files())
    pool_before = db.pool_get("stack@file#pool0").allocated_capacity_gb
    stack.override("fail_points", [step], group="debug")
    resp = req(stack, "POST", "/groups/action",
               {"create-from-src": {"source_group_id": group["id"], "name": "c"}})
    assert resp.status_code == 202, resp.text
    copy = wait_group(stack, resp.json()["group"]["id"], ("error", "available"))
    assert copy["status"] == "error"
    assert sorted(stack.volume_files()) == files_before  # no leftover member files
    assert db.worker_get_all() == []
    failed = stack.request("GET", "/volumes/detail?group_id=" + copy["id"],
                           version=V).json()["volumes"]
    assert [v["status"] for v in failed] == ["error", "error"]
    assert db.pool_get("stack@file#pool0").allocated_capacity_gb == pool_before
    msgs = stack.request("GET", "/messages?resource_uuid=" + copy["id"], version="3.3").json()
    assert len(msgs["messages"]) == 1 and step in msgs["messages"][0]["user_message"]
    stack.override("fail_points", [], group="debug")
    assert req(stack, "POST", "/groups/%s/action" % copy["id"],
               {"delete": {"delete-volumes": True}}).status_code == 202
    wait_group(stack, copy["id"], ("deleted",))
    assert sorted(stack.volume_files()) == files_before
    assert quota.project_usage("p1", ["groups", "volumes"]) == {"groups": 1, "volumes": 2}
    assert quota.check() == []


# --- interrupted operations (the volume service's start-up cleanup) ------------------------------

def _manager(stack, host="stack@file"):
    return [svc for svc in stack.services if svc.host == host][0].manager


@pytest.mark.parametrize("resource, status, operation, expected", [
    ("group", "creating", "create", "error"),
    ("group", "deleting", "delete", "deleted"),
    ("group_snapshot", "creating", "create", "error"),
    ("group_snapshot", "deleting", "delete", "deleted"),
])
def test_interrupted_group_operations_end_at_start(stack, resource, status, operation,
                                                   expected):
    import time

    from common.db import models
    from common.db.session import writer

    group, _ = two_volume_group(stack)
    model, ident = models.Group, group["id"]
    if resource == "group_snapshot":
        resp = req(stack, "POST", "/group_snapshots", gs_body(group))
        ident = wait_group_snapshot(stack, resp.json()["group_snapshot"]["id"],
                                    ("available",))["id"]
        model = models.GroupSnapshot
    elif operation == "delete":
        from api.group_requests import GroupRequests

        volumes = db.volume_get_all(admin(), filters={"group_id": ident}, all_projects=True)
        assert len(volumes) == 2
        with writer() as s:  # as the API leaves the members of a group it deletes
            for volume in volumes:
                GroupRequests._mark_member_deleting(s, ident, volume)
    with writer() as s:
        s.query(model).filter(model.id == ident).update({"status": status})
        if resource == "group_snapshot":
            s.query(models.Snapshot).filter(models.Snapshot.group_snapshot_id == ident).update(
                {"status": status})
        s.add(models.Worker(resource_type=resource, resource_id=ident, operation=operation,
                            host="stack@file"))
    _manager(stack).cleanup_interrupted()
    deadline = time.monotonic() + 30
    while True:
        with writer() as s:
            row = s.get(model, ident)
            now = "deleted" if row.deleted else row.status
        if now == expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    msgs = stack.request("GET", "/messages?resource_uuid=" + ident, version="3.3").json()
    assert now == expected, msgs
    assert db.worker_get_all() == []
    assert quota.check() == []
    if resource == "group_snapshot":
        assert stack.snapshot_files() == []


def test_a_group_snapshot_member_is_not_deleted_alone(stack):
    group, _ = two_volume_group(stack)
    resp = req(stack, "POST", "/group_snapshots", gs_body(group))
    gs = wait_group_snapshot(stack, resp.json()["group_snapshot"]["id"], ("available",))
    members = [s for s in req(stack, "GET", "/snapshots/detail").json()["snapshots"]
               if s.get("group_snapshot_id") == gs["id"]]
    assert len(members) == 2
    for snap in members:
        alone = req(stack, "DELETE", "/snapshots/" + snap["id"])
        assert alone.status_code == 400 and "group" in alone.text, alone.text
        forced = req(stack, "POST", "/snapshots/%s/action" % snap["id"],
                     {"os-force_delete": {}})
        assert forced.status_code == 400, forced.text
    assert req(stack, "DELETE", "/group_snapshots/" + gs["id"]).status_code == 202
    wait_group_snapshot(stack, gs["id"], ("deleted",))
    assert stack.snapshot_files() == []
