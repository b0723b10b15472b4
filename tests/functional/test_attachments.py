"""Attachments on the in-process stack (file back end, `local` connections: the functional
layer has no target daemon; tests/integration/test_attach_iscsi.py exports over tgt).

The attachments API (3.27; os-complete 3.44 and mode 3.54 are above the advertised maximum,
so those tests raise MAX_VERSION as the transfers tests do), the legacy actions of seed 004,
multiattach from the volume type, delete refusals, failure injection at every attach step,
and 20 concurrent attachment creates on one volume."""

import os

import pytest

from api import microversion
from common.db import api as db
from common.db import attachments_api
from tests import races

V = "3.27"
CONNECTOR = {"host": "compute1", "initiator": "iqn.2026-12.org.example:compute1",
             "ip": "127.0.0.1", "multipath": False, "platform": "x86_64", "os_type": "linux"}
ATTACH_STEPS = ["attach_volume.check_attachment", "attach_volume.create_export",
                "attach_volume.describe_connection", "attach_volume.save_export"]


@pytest.fixture
def late(monkeypatch):
    """Microversions up to 3.54 for os-complete and mode (built, above the maximum)."""
    monkeypatch.setattr(microversion, "MAX_VERSION", (3, 54))


def _available(stack, **fields):
    volume = stack.create_volume(**fields)
    return stack.wait_volume(volume["id"], ("available",))


def create_attachment(stack, volume_id, connector=None, instance=None, version=V, **kw):
    body = {"volume_uuid": volume_id}
    if connector is not None:
        body["connector"] = connector
    if instance is not None:
        body["instance_uuid"] = instance
    return stack.request("POST", "/attachments", {"attachment": body}, version=version, **kw)


def action(stack, volume_id, name, args=None, **kw):
    return stack.request("POST", "/volumes/%s/action" % volume_id, {name: args}, **kw)


def volume_of(stack, volume_id):
    return stack.request("GET", "/volumes/" + volume_id).json()["volume"]


def test_attach_reserve_update_complete_delete(stack, late):
    volume = _available(stack)
    instance = "6f4a3e2c-0d7b-4d7e-9a55-1b2c3d4e5f60"
    resp = create_attachment(stack, volume["id"], instance=instance)
    assert resp.status_code == 200, resp.text
    attachment = resp.json()["attachment"]
    assert (attachment["status"], attachment["instance"], attachment["connection_info"]) == (
        "reserved", instance, None)
    assert volume_of(stack, volume["id"])["status"] == "reserved"

    resp = stack.request("PUT", "/attachments/" + attachment["id"],
                         {"attachment": {"connector": CONNECTOR}}, version=V)
    assert resp.status_code == 200, resp.text
    info = resp.json()["attachment"]["connection_info"]
    assert info["driver_volume_type"] == "local"
    assert os.path.exists(info["data"]["device_path"])
    assert (info["data"]["attachment_id"], info["data"]["access_mode"]) == (
        attachment["id"], "rw")
    assert resp.json()["attachment"]["status"] == "attaching"
    assert volume_of(stack, volume["id"])["status"] == "attaching"

    complete = stack.request("POST", "/attachments/%s/action" % attachment["id"],
                             {"os-complete": None}, version="3.44")
    assert complete.status_code == 204, complete.text
    shown = volume_of(stack, volume["id"])
    assert (shown["status"], len(shown["attachments"])) == ("in-use", 1)
    item = shown["attachments"][0]
    assert (item["attachment_id"], item["server_id"], item["host_name"]) == (
        attachment["id"], instance, "compute1")
    assert stack.request("GET", "/attachments/" + attachment["id"],
                         version=V).json()["attachment"]["status"] == "attached"
    listed = stack.request("GET", "/attachments?volume_id=" + volume["id"], version=V).json()
    assert [a["id"] for a in listed["attachments"]] == [attachment["id"]]
    detail = stack.request("GET", "/attachments/detail", version=V).json()["attachments"]
    assert detail[0]["connection_info"]["driver_volume_type"] == "local"

    # an attached volume is not deleted, not even by force
    assert stack.request("DELETE", "/volumes/" + volume["id"]).status_code == 400
    assert action(stack, volume["id"], "os-force_delete").status_code == 400

    resp = stack.request("DELETE", "/attachments/" + attachment["id"], version=V)
    assert resp.status_code == 200 and resp.json() == {"attachments": []}
    shown = volume_of(stack, volume["id"])
    assert (shown["status"], shown["attachments"]) == ("available", [])
    assert stack.request("GET", "/attachments/" + attachment["id"],
                         version=V).status_code == 404
    assert stack.request("DELETE", "/volumes/" + volume["id"]).status_code == 202
    stack.wait_volume(volume["id"], ("deleted",))


def test_create_with_connector_answers_connection_info(stack):
    volume = _available(stack)
    resp = create_attachment(stack, volume["id"], connector=CONNECTOR)
    assert resp.status_code == 200, resp.text
    body = resp.json()["attachment"]
    assert body["status"] == "attaching" and body["connection_info"]["data"]["volume_id"] == \
        volume["id"]
    # one attachment per volume that is not multiattach
    again = create_attachment(stack, volume["id"], connector=CONNECTOR)
    assert again.status_code == 400 and "status must be available" in again.text
    stack.request("DELETE", "/attachments/" + body["id"], version=V)
    assert volume_of(stack, volume["id"])["status"] == "available"


def test_attachments_bad_input_and_gates(stack):
    volume = _available(stack)
    assert create_attachment(stack, volume["id"], version="3.26").status_code == 404
    for body in ({}, {"attachment": {}}, {"attachment": {"volume_uuid": "x"}},
                 {"attachment": {"volume_uuid": volume["id"], "mode": "rw"}},
                 {"attachment": {"volume_uuid": volume["id"], "connector": "x"}},
                 {"attachment": {"volume_uuid": volume["id"], "extra": 1}}):
        resp = stack.request("POST", "/attachments", body, version=V)
        assert resp.status_code == 400, (body, resp.text)
    missing = "00000000-0000-0000-0000-000000000000"
    assert create_attachment(stack, missing).status_code == 404
    assert create_attachment(stack, volume["id"], token="bob:p2",
                             project="p2").status_code == 404
    assert stack.request("GET", "/attachments/" + missing, version=V).status_code == 404
    assert stack.request("PUT", "/attachments/" + missing,
                         {"attachment": {"connector": CONNECTOR}}, version=V).status_code == 404
    assert stack.request("DELETE", "/attachments/" + missing, version=V).status_code == 404
    assert stack.request("GET", "/attachments?bogus=1", version=V).status_code == 400
    # os-complete is 3.44, above the maximum
    assert stack.request("POST", "/attachments/%s/action" % missing, {"os-complete": None},
                         version=V).status_code == 404
    # nothing was made by any of it
    assert attachments_api.attachments_of_volume(volume["id"]) == []
    assert volume_of(stack, volume["id"])["status"] == "available"


def test_member_of_other_project_cannot_see_attachment(stack):
    volume = _available(stack)
    attachment = create_attachment(stack, volume["id"]).json()["attachment"]
    other = stack.request("GET", "/attachments/" + attachment["id"], version=V,
                          token="bob:p2", project="p2")
    assert other.status_code == 404
    assert stack.request("GET", "/attachments", version=V, token="bob:p2",
                         project="p2").json()["attachments"] == []
    stack.request("DELETE", "/attachments/" + attachment["id"], version=V)


def test_mode_ro_at_354(stack, late):
    volume = _available(stack)
    resp = stack.request("POST", "/attachments", {"attachment": {
        "volume_uuid": volume["id"], "connector": CONNECTOR, "mode": "ro"}}, version="3.54")
    assert resp.status_code == 200, resp.text
    body = resp.json()["attachment"]
    assert body["attach_mode"] == "ro"
    assert body["connection_info"]["data"]["access_mode"] == "ro"
    stack.request("DELETE", "/attachments/" + body["id"], version=V)


def test_multiattach_type_attaches_twice(stack, late):
    vtype = stack.request("POST", "/types", {"volume_type": {
        "name": "multi", "extra_specs": {"multiattach": "<is> True"}}}).json()["volume_type"]
    volume = _available(stack, volume_type=vtype["id"])
    assert volume["multiattach"] is True
    ids = []
    for host in ("compute1", "compute2"):
        connector = dict(CONNECTOR, host=host, initiator="iqn.2026-12.org.example:" + host)
        resp = create_attachment(stack, volume["id"], connector=connector)
        assert resp.status_code == 200, resp.text
        ids.append(resp.json()["attachment"]["id"])
        complete = stack.request("POST", "/attachments/%s/action" % ids[-1],
                                 {"os-complete": None}, version="3.44")
        assert complete.status_code == 204
    shown = volume_of(stack, volume["id"])
    assert shown["status"] == "in-use" and len(shown["attachments"]) == 2
    stack.request("DELETE", "/attachments/" + ids[0], version=V)
    assert volume_of(stack, volume["id"])["status"] == "in-use"
    stack.request("DELETE", "/attachments/" + ids[1], version=V)
    assert volume_of(stack, volume["id"])["status"] == "available"


def test_multiattach_request_flag_refused(stack):
    resp = stack.request("POST", "/volumes", {"volume": {"size": 1, "multiattach": True}})
    assert resp.status_code == 400 and "multiattach parameter has been removed" in resp.text


def test_legacy_reserve_initialize_attach_detach(stack):
    volume = _available(stack)
    vid = volume["id"]
    assert action(stack, vid, "os-reserve").status_code == 202
    assert volume_of(stack, vid)["status"] == "attaching"
    second = action(stack, vid, "os-reserve")
    assert second.status_code == 400 and "to reserve" in second.text
    resp = action(stack, vid, "os-initialize_connection", {"connector": CONNECTOR})
    assert resp.status_code == 200, resp.text
    info = resp.json()["connection_info"]
    assert info["driver_volume_type"] == "local"
    assert action(stack, vid, "os-attach", {
        "instance_uuid": "6f4a3e2c-0d7b-4d7e-9a55-1b2c3d4e5f61", "mountpoint": "/dev/vdb",
        "host_name": "compute1", "mode": "rw"}).status_code == 202
    shown = volume_of(stack, vid)
    assert (shown["status"], shown["attachments"][0]["device"]) == ("in-use", "/dev/vdb")
    assert shown["metadata"].get("attached_mode") == "rw"
    assert action(stack, vid, "os-begin_detaching").status_code == 202
    assert volume_of(stack, vid)["status"] == "detaching"
    assert action(stack, vid, "os-roll_detaching").status_code == 202
    assert volume_of(stack, vid)["status"] == "in-use"
    assert action(stack, vid, "os-begin_detaching").status_code == 202
    assert action(stack, vid, "os-terminate_connection",
                  {"connector": CONNECTOR}).status_code == 202
    attachment_id = shown["attachments"][0]["attachment_id"]
    assert action(stack, vid, "os-detach",
                  {"attachment_id": attachment_id}).status_code == 202
    shown = volume_of(stack, vid)
    assert (shown["status"], shown["attachments"]) == ("available", [])
    assert "attached_mode" not in shown["metadata"]


def test_legacy_unreserve_and_refusals(stack):
    volume = _available(stack)
    vid = volume["id"]
    missing = "00000000-0000-0000-0000-000000000000"
    for name in ("os-reserve", "os-unreserve", "os-begin_detaching", "os-detach"):
        assert action(stack, missing, name).status_code == 404, name
    assert action(stack, missing, "os-initialize_connection",
                  {"connector": CONNECTOR}).status_code == 404
    not_attached = action(stack, vid, "os-begin_detaching")
    assert not_attached.status_code == 400 and "in-use" in not_attached.text
    assert action(stack, vid, "os-initialize_connection", {}).status_code == 400
    assert action(stack, vid, "os-attach", {"mountpoint": "/dev/vdb"}).status_code == 400
    assert action(stack, vid, "os-attach", {"mountpoint": "/dev/vdb", "host_name": "h",
                                            "mode": "xx"}).status_code == 400
    # as Cinder, os-attach of a volume nobody reserved attaches it (Tempest's force-detach
    # and attach tests do so); a second attach of the in-use volume is refused
    assert action(stack, vid, "os-attach", {"mountpoint": "/dev/vdb",
                                            "host_name": "h"}).status_code == 202
    shown = volume_of(stack, vid)
    assert (shown["status"], [a["device"] for a in shown["attachments"]]) == (
        "in-use", ["/dev/vdb"])
    again = action(stack, vid, "os-attach", {"mountpoint": "/dev/vdc", "host_name": "h2"})
    assert again.status_code == 400 and "in-use" in again.text
    assert action(stack, vid, "os-detach", {}).status_code == 202
    assert volume_of(stack, vid)["status"] == "available"
    assert action(stack, vid, "os-reserve").status_code == 202
    assert action(stack, vid, "os-unreserve").status_code == 202
    assert volume_of(stack, vid)["status"] == "available"
    # a member may not force-detach
    assert action(stack, vid, "os-force_detach", {}, token="bob:%s" % stack.project
                  ).status_code in (403, 404)
    assert attachments_api.attachments_of_volume(vid) == []


def test_force_detach_removes_attachment(stack):
    volume = _available(stack)
    attachment = create_attachment(stack, volume["id"], connector=CONNECTOR).json()[
        "attachment"]
    resp = action(stack, volume["id"], "os-force_detach",
                  {"attachment_id": attachment["id"], "connector": CONNECTOR})
    assert resp.status_code == 202, resp.text
    assert volume_of(stack, volume["id"])["status"] == "available"
    assert attachments_api.attachments_of_volume(volume["id"]) == []


def test_force_detach_of_a_volume_reset_to_error_leaves_it_available(stack):
    """Tempest's test_force_detach_volume: attached, reset to `error` by an admin, force
    detached: `available` with no attachment, as Cinder."""
    vid = _available(stack)["id"]
    assert action(stack, vid, "os-attach", {"mountpoint": "/dev/vdb",
                                            "host_name": "h"}).status_code == 202
    attachment_id = volume_of(stack, vid)["attachments"][0]["attachment_id"]
    assert action(stack, vid, "os-reset_status", {"status": "error"}).status_code == 202
    assert action(stack, vid, "os-force_detach", {"attachment_id": attachment_id,
                                                  "connector": None}).status_code == 202
    shown = volume_of(stack, vid)
    assert (shown["status"], shown["attachments"]) == ("available", [])


@pytest.mark.parametrize("step", ATTACH_STEPS)
def test_failure_at_each_attach_step_leaves_volume_available(make_stack, step):
    stack = make_stack(overrides={"debug.fail_points": [step]})
    volume = _available(stack)
    resp = create_attachment(stack, volume["id"], connector=CONNECTOR)
    assert resp.status_code == 500, resp.text
    assert "Unable to create attachment" in resp.text
    assert volume_of(stack, volume["id"])["status"] == "available"
    assert attachments_api.attachments_of_volume(volume["id"]) == []
    messages = stack.request("GET", "/messages", version="3.3").json()["messages"]
    assert any(m["resource_uuid"] == volume["id"] for m in messages)
    # and the volume still attaches once the fault is gone
    stack.override("fail_points", [], group="debug")
    ok = create_attachment(stack, volume["id"], connector=CONNECTOR)
    assert ok.status_code == 200, ok.text


def test_create_export_revert_failing_still_ends_attachment(make_stack):
    stack = make_stack(overrides={"debug.fail_points": [
        "attach_volume.save_export", "attach_volume.create_export.revert"]})
    volume = _available(stack)
    assert create_attachment(stack, volume["id"], connector=CONNECTOR).status_code == 500
    assert volume_of(stack, volume["id"])["status"] == "available"
    assert attachments_api.attachments_of_volume(volume["id"]) == []


def test_concurrent_attachment_creates_one_wins(stack):
    volume = _available(stack)
    outcomes = races.race(*[(create_attachment, stack, volume["id"], CONNECTOR)
                            for _ in range(20)])
    codes = sorted(resp.status_code for _, _, resp in outcomes)
    assert codes.count(200) == 1, codes
    assert set(codes) <= {200, 400}, codes
    live = attachments_api.attachments_of_volume(volume["id"])
    assert len(live) == 1
    assert volume_of(stack, volume["id"])["status"] == "attaching"


def test_force_delete_of_reserved_volume_removes_its_attachments(stack):
    volume = _available(stack)
    create_attachment(stack, volume["id"], connector=CONNECTOR)
    assert action(stack, volume["id"], "os-force_delete").status_code == 202
    stack.wait_volume(volume["id"], ("deleted",))
    assert attachments_api.attachments_of_volume(volume["id"]) == []
    assert db.worker_get_all() == []


def test_legacy_abandoned_attach_ends_available(stack):
    """Nova giving up between os-initialize_connection and os-attach, in either order of
    its clean-up calls: the volume ends `available` with nothing exported."""
    for first, second in (("os-unreserve", "os-terminate_connection"),
                          ("os-terminate_connection", "os-unreserve")):
        volume = _available(stack)
        vid = volume["id"]
        assert action(stack, vid, "os-reserve").status_code == 202
        assert action(stack, vid, "os-initialize_connection",
                      {"connector": CONNECTOR}).status_code == 200
        for name in (first, second):
            args = {"connector": CONNECTOR} if name == "os-terminate_connection" else None
            assert action(stack, vid, name, args).status_code == 202
        assert volume_of(stack, vid)["status"] == "available", (first, second)
        assert attachments_api.attachments_of_volume(vid) == []


def test_unreserve_after_initialize_ends_the_export(stack):
    """os-unreserve without os-terminate_connection: the export made for the abandoned
    attach goes with it, so the volume attaches elsewhere and deletes cleanly."""
    volume = _available(stack)
    vid = volume["id"]
    assert action(stack, vid, "os-reserve").status_code == 202
    assert action(stack, vid, "os-initialize_connection",
                  {"connector": CONNECTOR}).status_code == 200
    assert action(stack, vid, "os-unreserve").status_code == 202
    assert volume_of(stack, vid)["status"] == "available"
    assert attachments_api.attachments_of_volume(vid) == []
    other = dict(CONNECTOR, host="compute2", initiator="iqn.2026-12.org.example:compute2")
    attachment = create_attachment(stack, vid, connector=other)
    assert attachment.status_code == 200, attachment.text
    stack.request("DELETE", "/attachments/" + attachment.json()["attachment"]["id"],
                  version=V)
    assert volume_of(stack, vid)["status"] == "available"
    assert stack.request("DELETE", "/volumes/" + vid).status_code == 202
