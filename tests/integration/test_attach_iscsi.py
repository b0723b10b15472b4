"""Attachments of file volumes over iSCSI, end to end: the in-process stack (tests/stack.py)
with its file back end exporting through the real tgtd (`target_protocol = iscsi`), driven
through the HTTP API only, and a compute host played by tests/compute_client.py (qemu's
iSCSI initiator, libiscsi, with the CHAP secret of the connection_info the API handed out).

What issue 10 asks to see without Ceph and Nova: data written through one attachment and
read back through the next, the legacy attach actions, who may log in, multiattach, restarts
of the volume service (and a target lost behind Lamina's back), delete and force-detach,
failures part way through the attach flow, and 20 concurrent attachment creates.

Each test has its own target prefix (`target_prefix`), so what it finds in tgtd under that
prefix is its own, whatever else shares the tgtd; a fixture removes every such target and
its CHAP accounts afterwards. Needs tgtd on control port 0 with a portal on 127.0.0.1:3260
(deploy/tgt/tgt-aio.sh start); without it the tests skip, unless LAMINA_REQUIRE_TGT=1, when
they fail. LIO cannot run on this kernel (no configfs), so tgt is the only target."""

import hashlib
import os
import secrets

import pytest

from api import microversion
from common.db import attachments_api
from tests import compute_client, races
from tests.integration.test_tgt_targets import tgtadm, tgtd_unavailable
from tests.stack import Stack

pytestmark = pytest.mark.integration
MiB = 1024 * 1024
V = "3.27"
COMPUTE1 = "iqn.1994-05.com.example:lamina-attach-compute1"
COMPUTE2 = "iqn.1994-05.com.example:lamina-attach-compute2"
ATTACH_STEPS = ["attach_volume.check_attachment", "attach_volume.create_export",
                "attach_volume.describe_connection", "attach_volume.save_export"]
NO_DAEMON_CONTROL_PORT = 78  # no tgtd listens on this control port


def connector(host="compute1", initiator=COMPUTE1):
    return {"host": host, "initiator": initiator, "ip": "127.0.0.1", "multipath": False,
            "platform": "x86_64", "os_type": "linux"}


@pytest.fixture(scope="module", autouse=True)
def tgtd():
    reason = tgtd_unavailable()
    if reason is None:
        return
    if os.environ.get("LAMINA_REQUIRE_TGT") == "1":
        pytest.fail("tgtd is required here (make test starts it): " + reason)
    pytest.skip(reason)


@pytest.fixture
def late(monkeypatch):
    """os-complete is 3.44, above the advertised maximum: raised as test_attachments does."""
    monkeypatch.setattr(microversion, "MAX_VERSION", (3, 54))


# --- tgtd as an operator sees it ------------------------------------------------------------

@pytest.fixture
def prefix():
    """This test's target prefix; every target under it (and its accounts) goes afterwards,
    by tgtadm, whatever the test or the code under test did."""
    value = "iqn.2026-12.org.lamina-test:%s-" % secrets.token_hex(4)
    yield value
    for found in targets_under(value).values():
        tgtadm("--op", "delete", "--mode", "target", "--tid", str(found["tid"]), "--force",
               check=False)
        for account in found["accounts"]:
            tgtadm("--op", "delete", "--mode", "account", "--user", account, check=False)


def targets_under(prefix):
    """{attachment id: target as tgtadm shows it} for the targets under prefix."""
    from volume_worker.targets import tgt

    shown = tgt.parse_targets(tgtadm("--op", "show", "--mode", "target").stdout)
    return {iqn[len(prefix):]: found for iqn, found in shown.items() if iqn.startswith(prefix)}


def shown_accounts():
    out = tgtadm("--op", "show", "--mode", "account").stdout
    return {line.strip() for line in out.splitlines()[1:] if line.strip()}


# --- the stack --------------------------------------------------------------------------------

def iscsi_backend(tmp_path, prefix, **options):
    values = {"target_protocol": "iscsi", "tgt_state_dir": str(tmp_path / "tgt"),
              "target_prefix": prefix}
    values.update(options)
    return values


@pytest.fixture
def stack(make_stack, tmp_path, prefix):
    return make_stack(backends={"file": iscsi_backend(tmp_path, prefix)})


def available_volume(stack, **fields):
    volume = stack.create_volume(**fields)
    return stack.wait_volume(volume["id"], ("available",))


def volume_of(stack, volume_id):
    resp = stack.request("GET", "/volumes/" + volume_id)
    assert resp.status_code == 200, resp.text
    return resp.json()["volume"]


def create_attachment(stack, volume_id, conn=None, instance=None):
    body = {"volume_uuid": volume_id}
    if conn is not None:
        body["connector"] = conn
    if instance is not None:
        body["instance_uuid"] = instance
    return stack.request("POST", "/attachments", {"attachment": body}, version=V)


def attach(stack, volume_id, conn=None):
    """Create an attachment with a connector and complete it (what Nova does); returns
    (attachment id, connection_info)."""
    resp = create_attachment(stack, volume_id, conn or connector())
    assert resp.status_code == 200, resp.text
    attachment = resp.json()["attachment"]
    assert attachment["status"] == "attaching"
    complete = stack.request("POST", "/attachments/%s/action" % attachment["id"],
                             {"os-complete": None}, version="3.44")
    assert complete.status_code == 204, complete.text
    return attachment["id"], attachment["connection_info"]


def delete_attachment(stack, attachment_id):
    resp = stack.request("DELETE", "/attachments/" + attachment_id, version=V)
    assert resp.status_code == 200, resp.text
    return resp.json()["attachments"]


def action(stack, volume_id, name, args=None, **kw):
    return stack.request("POST", "/volumes/%s/action" % volume_id, {name: args}, **kw)


def volume_file(stack, volume_id):
    [path] = [p for p in stack.volume_files() if p.endswith(volume_id)]
    return path


def sha_of_range(path, offset, length):
    with open(path, "rb") as f:
        f.seek(offset)
        return hashlib.sha256(f.read(length)).hexdigest()


def with_data(connection_info, **changes):
    return {"driver_volume_type": connection_info["driver_volume_type"],
            "data": dict(connection_info["data"], **changes)}


def messages_for(stack, volume_id):
    resp = stack.request("GET", "/messages", version="3.3")
    assert resp.status_code == 200, resp.text
    return [m for m in resp.json()["messages"] if m["resource_uuid"] == volume_id]


def restart_volume_service(stack):
    """Stop the volume service of the stack and start a new one in its place (a new driver,
    manager and RPC server on the same database and state directory), as a restart of the
    lamina-volume process does; its start runs restore_exports."""
    from volume_worker import service as volume_service

    for svc in [s for s in stack.services if s.binary == "lamina-volume"]:
        svc.stop()
        stack.services.remove(svc)
    fresh = volume_service.build_services()
    for svc in fresh:
        svc.start()
    stack.services.extend(fresh)


def assert_target(prefix, attachment_id, connection_info, initiator, backing_path):
    found = targets_under(prefix)[attachment_id]
    data = connection_info["data"]
    assert data["target_iqn"] == prefix + attachment_id
    assert found["luns"][1] == backing_path
    assert found["acls"] == [initiator]
    assert found["accounts"] == [data["auth_username"]]
    return found


# --- data through what the API hands out ------------------------------------------------------

def test_attach_write_detach_reattach_read(stack, prefix, late):
    volume = available_volume(stack)
    first_id, info = attach(stack, volume["id"])
    assert info["driver_volume_type"] == "iscsi"
    data = info["data"]
    assert (data["target_portal"], data["target_lun"], data["auth_method"]) == (
        "127.0.0.1:3260", 1, "CHAP")
    assert (data["volume_id"], data["attachment_id"], data["access_mode"]) == (
        volume["id"], first_id, "rw")
    path = volume_file(stack, volume["id"])
    assert_target(prefix, first_id, info, COMPUTE1, path)
    assert volume_of(stack, volume["id"])["status"] == "in-use"

    disk = compute_client.connect(info, initiator=COMPUTE1)
    disk.write_pattern(0x5A, 0, 4 * MiB)
    assert disk.read_pattern(0x5A, 0, 4 * MiB)
    assert not disk.read_pattern(0x5B, 0, 4 * MiB)  # the check can fail
    # the bytes are in the volume's file
    assert sha_of_range(path, 0, 4 * MiB) == hashlib.sha256(b"\x5a" * 4 * MiB).hexdigest()

    assert delete_attachment(stack, first_id) == []
    assert targets_under(prefix) == {}
    assert data["auth_username"] not in shown_accounts()
    assert volume_of(stack, volume["id"])["status"] == "available"
    with pytest.raises(compute_client.ConnectError):
        compute_client.connect(info, initiator=COMPUTE1).read_pattern(0x5A, 0, MiB)

    second_id, again = attach(stack, volume["id"])
    assert second_id != first_id
    assert again["data"]["target_iqn"] == prefix + second_id != data["target_iqn"]
    assert again["data"]["auth_username"] != data["auth_username"]
    assert again["data"]["auth_password"] != data["auth_password"]
    assert list(targets_under(prefix)) == [second_id]
    reader = compute_client.connect(again, initiator=COMPUTE1)
    assert reader.read_pattern(0x5A, 0, 4 * MiB)
    assert reader.checksum(8 * MiB) == sha_of_range(path, 0, 8 * MiB)
    delete_attachment(stack, second_id)
    assert targets_under(prefix) == {}


def test_reserve_then_update_with_connector(stack, prefix, late):
    """Nova's order: an attachment without a connector (nothing exported), then PUT with
    the connector (the export is made and connection_info answered)."""
    volume = available_volume(stack)
    resp = create_attachment(stack, volume["id"],
                             instance="6f4a3e2c-0d7b-4d7e-9a55-1b2c3d4e5f70")
    assert resp.status_code == 200, resp.text
    attachment = resp.json()["attachment"]
    assert attachment["connection_info"] is None
    assert targets_under(prefix) == {}
    resp = stack.request("PUT", "/attachments/" + attachment["id"],
                         {"attachment": {"connector": connector()}}, version=V)
    assert resp.status_code == 200, resp.text
    info = resp.json()["attachment"]["connection_info"]
    assert_target(prefix, attachment["id"], info, COMPUTE1, volume_file(stack, volume["id"]))
    compute_client.connect(info, COMPUTE1).write_pattern(0x21, 0, MiB)
    delete_attachment(stack, attachment["id"])
    assert targets_under(prefix) == {}


def test_legacy_actions_attach_detach_reattach(stack, prefix):
    volume = available_volume(stack)
    vid = volume["id"]
    conn = connector()
    assert action(stack, vid, "os-reserve").status_code == 202
    resp = action(stack, vid, "os-initialize_connection", {"connector": conn})
    assert resp.status_code == 200, resp.text
    info = resp.json()["connection_info"]
    assert info["driver_volume_type"] == "iscsi"
    [attachment_id] = targets_under(prefix)
    assert_target(prefix, attachment_id, info, COMPUTE1, volume_file(stack, vid))
    compute_client.connect(info, COMPUTE1).write_pattern(0xA7, 0, 4 * MiB)
    assert action(stack, vid, "os-attach", {
        "instance_uuid": "6f4a3e2c-0d7b-4d7e-9a55-1b2c3d4e5f71", "mountpoint": "/dev/vdb",
        "host_name": "compute1", "mode": "rw"}).status_code == 202
    shown = volume_of(stack, vid)
    assert shown["status"] == "in-use"
    assert shown["attachments"][0]["attachment_id"] == attachment_id

    assert action(stack, vid, "os-begin_detaching").status_code == 202
    assert action(stack, vid, "os-terminate_connection", {"connector": conn}).status_code == 202
    assert targets_under(prefix) == {}
    assert info["data"]["auth_username"] not in shown_accounts()
    assert action(stack, vid, "os-detach", {"attachment_id": attachment_id}).status_code == 202
    shown = volume_of(stack, vid)
    assert (shown["status"], shown["attachments"]) == ("available", [])

    # again through the legacy path: a new target and new CHAP, the same bytes
    assert action(stack, vid, "os-reserve").status_code == 202
    again = action(stack, vid, "os-initialize_connection", {"connector": conn}).json()[
        "connection_info"]
    assert again["data"]["target_iqn"] != info["data"]["target_iqn"]
    assert again["data"]["auth_password"] != info["data"]["auth_password"]
    assert compute_client.connect(again, COMPUTE1).read_pattern(0xA7, 0, 4 * MiB)
    assert action(stack, vid, "os-terminate_connection", {"connector": conn}).status_code == 202
    assert action(stack, vid, "os-unreserve").status_code == 202
    assert targets_under(prefix) == {}
    assert volume_of(stack, vid)["status"] == "available"


def test_front_end_qos_specs_are_in_the_connection_info(stack, prefix, late):
    """QoS specs the compute host applies (consumer front-end or both) come with the
    connection_info, as Cinder hands them out; back-end specs stay with the storage."""
    expected = {"front-end": {"total_iops_sec": "500", "read_bytes_sec": "1048576"},
                "both": {"total_iops_sec": "500", "read_bytes_sec": "1048576"},
                "back-end": None}
    for consumer, wanted in expected.items():
        resp = stack.request("POST", "/qos-specs", {"qos_specs": {
            "name": "qos-" + consumer, "consumer": consumer, "total_iops_sec": "500",
            "read_bytes_sec": "1048576"}})
        assert resp.status_code == 200, resp.text
        specs_id = resp.json()["qos_specs"]["id"]
        vtype = stack.request("POST", "/types", {"volume_type": {
            "name": "with-" + consumer}}).json()["volume_type"]
        associate = stack.request("GET", "/qos-specs/%s/associate?vol_type_id=%s"
                                  % (specs_id, vtype["id"]))
        assert associate.status_code == 202, associate.text
        volume = available_volume(stack, volume_type=vtype["id"])
        attachment_id, info = attach(stack, volume["id"])
        assert info["data"]["qos_specs"] == wanted, consumer
        assert compute_client.connect(info, COMPUTE1).read_pattern(0, 0, MiB)
        delete_attachment(stack, attachment_id)
    assert targets_under(prefix) == {}


# --- who may log in ---------------------------------------------------------------------------

def test_wrong_or_no_chap_and_another_initiator_are_refused(stack, prefix, late):
    volume = available_volume(stack)
    attachment_id, info = attach(stack, volume["id"])
    compute_client.connect(info, COMPUTE1).write_pattern(0x11, 0, MiB)  # the right one

    wrong = with_data(info, auth_password="WrongSecret12345")
    with pytest.raises(compute_client.ConnectError, match=r"Authentication failure\(513\)"):
        compute_client.connect(wrong, COMPUTE1).read_pattern(0x11, 0, MiB)
    no_chap = with_data(info, auth_method=None, auth_username=None, auth_password=None)
    with pytest.raises(compute_client.ConnectError, match=r"Authentication failure\(513\)"):
        compute_client.connect(no_chap, COMPUTE1).read_pattern(0x11, 0, MiB)
    # the right credentials from an initiator the target's ACL does not name
    with pytest.raises(compute_client.ConnectError, match=r"Target not found\(515\)"):
        compute_client.connect(info, COMPUTE2).read_pattern(0x11, 0, MiB)
    # and none of it changed the target
    assert compute_client.connect(info, COMPUTE1).read_pattern(0x11, 0, MiB)
    delete_attachment(stack, attachment_id)


# --- one attachment, or many --------------------------------------------------------------------

def test_second_attach_of_a_non_multiattach_volume_is_refused(stack, prefix, late):
    volume = available_volume(stack)
    attachment_id, info = attach(stack, volume["id"])
    second = create_attachment(stack, volume["id"], connector("compute2", COMPUTE2))
    assert second.status_code == 400, second.text
    assert list(targets_under(prefix)) == [attachment_id]  # nothing exported for it
    assert [a.id for a in attachments_api.attachments_of_volume(volume["id"])] == [
        attachment_id]
    assert volume_of(stack, volume["id"])["status"] == "in-use"
    delete_attachment(stack, attachment_id)


def test_multiattach_volume_two_initiators_see_the_same_data(stack, prefix, late):
    vtype = stack.request("POST", "/types", {"volume_type": {
        "name": "multi", "extra_specs": {"multiattach": "<is> True"}}}).json()["volume_type"]
    volume = available_volume(stack, volume_type=vtype["id"])
    assert volume["multiattach"] is True
    path = volume_file(stack, volume["id"])
    first_id, first = attach(stack, volume["id"], connector("compute1", COMPUTE1))
    second_id, second = attach(stack, volume["id"], connector("compute2", COMPUTE2))
    assert_target(prefix, first_id, first, COMPUTE1, path)
    assert_target(prefix, second_id, second, COMPUTE2, path)
    assert first["data"]["auth_password"] != second["data"]["auth_password"]
    shown = volume_of(stack, volume["id"])
    assert (shown["status"], len(shown["attachments"])) == ("in-use", 2)

    compute_client.connect(first, COMPUTE1).write_pattern(0xC3, 0, 4 * MiB)
    assert compute_client.connect(second, COMPUTE2).read_pattern(0xC3, 0, 4 * MiB)
    compute_client.connect(second, COMPUTE2).write_pattern(0x3C, 4 * MiB, MiB)
    assert compute_client.connect(first, COMPUTE1).read_pattern(0x3C, 4 * MiB, MiB)
    # each host opens its own target only
    with pytest.raises(compute_client.ConnectError, match=r"Target not found\(515\)"):
        compute_client.connect(second, COMPUTE1).read_pattern(0xC3, 0, MiB)

    assert [a["id"] for a in delete_attachment(stack, first_id)] == [second_id]
    assert list(targets_under(prefix)) == [second_id]
    assert compute_client.connect(second, COMPUTE2).read_pattern(0xC3, 0, 4 * MiB)
    assert volume_of(stack, volume["id"])["status"] == "in-use"
    delete_attachment(stack, second_id)
    assert targets_under(prefix) == {}
    assert volume_of(stack, volume["id"])["status"] == "available"


# --- restarts -----------------------------------------------------------------------------------

def test_volume_service_restart_keeps_the_export(stack, prefix, late):
    volume = available_volume(stack)
    attachment_id, info = attach(stack, volume["id"])
    compute_client.connect(info, COMPUTE1).write_pattern(0x6B, 0, 4 * MiB)
    tid = targets_under(prefix)[attachment_id]["tid"]

    restart_volume_service(stack)
    # the same target (not made anew), the same credentials, the data
    found = assert_target(prefix, attachment_id, info, COMPUTE1,
                          volume_file(stack, volume["id"]))
    assert found["tid"] == tid
    assert compute_client.connect(info, COMPUTE1).read_pattern(0x6B, 0, 4 * MiB)
    # and the restarted service detaches it
    delete_attachment(stack, attachment_id)
    assert targets_under(prefix) == {}


def test_restart_restores_a_target_deleted_behind_lamina(stack, prefix, late):
    volume = available_volume(stack)
    attachment_id, info = attach(stack, volume["id"])
    compute_client.connect(info, COMPUTE1).write_pattern(0x4D, 0, 4 * MiB)
    found = targets_under(prefix)[attachment_id]
    tgtadm("--op", "delete", "--mode", "target", "--tid", str(found["tid"]), "--force")
    tgtadm("--op", "delete", "--mode", "account", "--user", info["data"]["auth_username"])
    assert targets_under(prefix) == {}
    with pytest.raises(compute_client.ConnectError):
        compute_client.connect(info, COMPUTE1).read_pattern(0x4D, 0, MiB)

    restart_volume_service(stack)  # restore_exports
    assert_target(prefix, attachment_id, info, COMPUTE1, volume_file(stack, volume["id"]))
    assert compute_client.connect(info, COMPUTE1).read_pattern(0x4D, 0, 4 * MiB)
    delete_attachment(stack, attachment_id)
    assert targets_under(prefix) == {}


def test_whole_stack_restart_on_the_same_database_restores_exports(tmp_path, prefix, late):
    """Every service stopped (tgtd loses the target meanwhile, as when the host rebooted)
    and started again on the same database and state directory."""
    backends = {"file": iscsi_backend(tmp_path, prefix)}
    first = Stack(tmp_path / "stack", backends=backends).start()
    try:
        volume = available_volume(first)
        attachment_id, info = attach(first, volume["id"])
        compute_client.connect(info, COMPUTE1).write_pattern(0x77, 0, 4 * MiB)
    finally:
        first.stop()
    found = targets_under(prefix)[attachment_id]
    tgtadm("--op", "delete", "--mode", "target", "--tid", str(found["tid"]), "--force")
    tgtadm("--op", "delete", "--mode", "account", "--user", info["data"]["auth_username"])
    again = Stack(tmp_path / "stack", backends=backends).start()
    try:
        assert_target(prefix, attachment_id, info, COMPUTE1, volume_file(again, volume["id"]))
        assert compute_client.connect(info, COMPUTE1).read_pattern(0x77, 0, 4 * MiB)
        assert volume_of(again, volume["id"])["status"] == "in-use"
        delete_attachment(again, attachment_id)
        assert targets_under(prefix) == {}
    finally:
        again.stop()


# --- delete and force-detach --------------------------------------------------------------------

def test_delete_of_attached_volume_refused_force_detach_removes_export(stack, prefix, late):
    volume = available_volume(stack)
    attachment_id, info = attach(stack, volume["id"])
    assert stack.request("DELETE", "/volumes/" + volume["id"]).status_code == 400
    assert action(stack, volume["id"], "os-force_delete").status_code == 400
    assert list(targets_under(prefix)) == [attachment_id]
    assert compute_client.connect(info, COMPUTE1).read_pattern(0, 0, MiB)

    # a member of the project may not force-detach
    refused = action(stack, volume["id"], "os-force_detach", {"attachment_id": attachment_id},
                     token="bob:%s" % stack.project)
    assert refused.status_code in (403, 404), refused.text
    assert list(targets_under(prefix)) == [attachment_id]

    resp = action(stack, volume["id"], "os-force_detach",
                  {"attachment_id": attachment_id, "connector": connector()})
    assert resp.status_code == 202, resp.text
    assert targets_under(prefix) == {}
    assert info["data"]["auth_username"] not in shown_accounts()
    with pytest.raises(compute_client.ConnectError):
        compute_client.connect(info, COMPUTE1).read_pattern(0, 0, MiB)
    shown = volume_of(stack, volume["id"])
    assert (shown["status"], shown["attachments"]) == ("available", [])
    assert stack.request("DELETE", "/volumes/" + volume["id"]).status_code == 202
    stack.wait_volume(volume["id"], ("deleted",))


# --- failures part way ------------------------------------------------------------------------

def assert_attach_failed_cleanly(stack, prefix, volume_id, resp):
    assert resp.status_code == 500, resp.text
    assert "Unable to create attachment" in resp.text
    assert volume_of(stack, volume_id)["status"] == "available"
    assert targets_under(prefix) == {}
    assert attachments_api.attachments_of_volume(volume_id) == []
    listed = stack.request("GET", "/attachments?volume_id=" + volume_id, version=V)
    assert listed.json()["attachments"] == []
    messages = messages_for(stack, volume_id)
    assert messages and "attach volume" in messages[0]["user_message"], messages
    return messages


@pytest.mark.parametrize("step", ATTACH_STEPS)
def test_failure_at_each_attach_step_leaves_nothing(make_stack, tmp_path, prefix, step):
    stack = make_stack(backends={"file": iscsi_backend(tmp_path, prefix)},
                       overrides={"debug.fail_points": [step]})
    volume = available_volume(stack)
    resp = create_attachment(stack, volume["id"], connector())
    assert_attach_failed_cleanly(stack, prefix, volume["id"], resp)
    state_dir = tmp_path / "tgt"  # no CHAP secret kept for an export that is not there
    assert not state_dir.exists() or os.listdir(state_dir) == []
    # once the fault is gone the volume attaches
    stack.override("fail_points", [], group="debug")
    ok = create_attachment(stack, volume["id"], connector())
    assert ok.status_code == 200, ok.text
    attachment = ok.json()["attachment"]
    assert list(targets_under(prefix)) == [attachment["id"]]
    delete_attachment(stack, attachment["id"])


def test_connector_without_initiator_is_refused(stack, prefix):
    volume = available_volume(stack)
    conn = connector()
    del conn["initiator"]
    resp = create_attachment(stack, volume["id"], conn)
    messages = assert_attach_failed_cleanly(stack, prefix, volume["id"], resp)
    assert "initiator" in resp.text and "initiator" in messages[0]["user_message"]
    # the legacy path refuses it too, leaving the reservation as it was
    assert action(stack, volume["id"], "os-reserve").status_code == 202
    legacy = action(stack, volume["id"], "os-initialize_connection", {"connector": conn})
    assert legacy.status_code == 500, legacy.text
    assert targets_under(prefix) == {}
    assert attachments_api.attachments_of_volume(volume["id"]) == []
    assert action(stack, volume["id"], "os-unreserve").status_code == 202
    assert volume_of(stack, volume["id"])["status"] == "available"


def test_tgt_not_reachable(make_stack, tmp_path, prefix):
    stack = make_stack(backends={"file": iscsi_backend(
        tmp_path, prefix, tgt_control_port=NO_DAEMON_CONTROL_PORT)})
    assert tgtadm("--op", "show", "--mode", "system", control_port=NO_DAEMON_CONTROL_PORT,
                  check=False).returncode != 0  # nothing listens there
    volume = available_volume(stack)  # volumes are still made
    resp = create_attachment(stack, volume["id"], connector())
    messages = assert_attach_failed_cleanly(stack, prefix, volume["id"], resp)
    assert "tgtd is not running" in messages[0]["user_message"]


def test_detach_while_tgtd_does_not_answer_keeps_the_attachment(stack, prefix, late):
    """The target cannot be removed: the attachment stays (the compute host may still use
    it), the volume in-use, a user message; the detach succeeds once tgtd answers again.
    (tgtd "goes away" by pointing the back end at a control port nobody listens on.)"""
    volume = available_volume(stack)
    attachment_id, info = attach(stack, volume["id"])
    stack.override("tgt_control_port", NO_DAEMON_CONTROL_PORT, group="file")
    resp = stack.request("DELETE", "/attachments/" + attachment_id, version=V)
    assert resp.status_code == 500 and "Unable to detach" in resp.text, resp.text
    assert volume_of(stack, volume["id"])["status"] == "in-use"
    assert list(targets_under(prefix)) == [attachment_id]
    assert compute_client.connect(info, COMPUTE1).read_pattern(0, 0, MiB)
    assert "tgtd is not running" in messages_for(stack, volume["id"])[0]["user_message"]
    stack.override("tgt_control_port", 0, group="file")
    assert delete_attachment(stack, attachment_id) == []
    assert targets_under(prefix) == {}
    assert volume_of(stack, volume["id"])["status"] == "available"


# --- races ------------------------------------------------------------------------------------

def test_twenty_concurrent_attachment_creates_one_wins(stack, prefix):
    volume = available_volume(stack)
    calls = [(create_attachment, stack, volume["id"],
              connector("compute%d" % n, "%s-%d" % (COMPUTE1, n))) for n in range(20)]
    outcomes = races.race(*calls)
    codes = sorted(resp.status_code for _, _, resp in outcomes)
    assert codes == [200] + [400] * 19, codes
    [winner] = [resp.json()["attachment"] for _, _, resp in outcomes
                if resp.status_code == 200]
    assert list(targets_under(prefix)) == [winner["id"]]
    assert [a.id for a in attachments_api.attachments_of_volume(volume["id"])] == [
        winner["id"]]
    # the winner's export works (from the winner's initiator only)
    initiator = targets_under(prefix)[winner["id"]]["acls"][0]
    disk = compute_client.connect(winner["connection_info"], initiator)
    disk.write_pattern(0x99, 0, MiB)
    assert disk.read_pattern(0x99, 0, MiB)
    delete_attachment(stack, winner["id"])
    assert targets_under(prefix) == {}


# --- an lvm volume, as far as this kernel allows ------------------------------------------------

@pytest.fixture
def lvm_host(tmp_path):
    """A VG on a loop device with activation off (tests/integration/test_lvm.py), and the
    played activation of its LVs (a loop device over an LV's extents at /dev/<vg>/<lv>)."""
    from tests.integration import test_lvm

    test_lvm._require()
    host = test_lvm.LVMHost(tmp_path / "lvm")
    os.makedirs(host.dir)
    activation = test_lvm.Activation(host)
    try:
        host.setup()
        yield host, activation
    finally:
        activation.teardown()
        host.teardown()


def test_lvm_volume_attach_write_detach_reattach_read(make_stack, tmp_path, prefix, lvm_host,
                                                      late):
    """An lvm volume made through the API by real LVM commands. This kernel has no
    device-mapper, so LVM cannot activate the LV: the first attach fails (the LV's node does
    not exist) and leaves nothing. Then the test plays the activation LVM would do (a loop
    device over the LV's extents of the PV at /dev/<vg>/<lv>) and from there on everything is
    real: the API's attachment, the tgt target over the LV, qemu writing 4 MiB, the bytes in
    the LV's extents, detach, a new attachment reading them back, delete by lvremove."""
    host, activation = lvm_host
    stack = make_stack(backends={"lvm": {
        "volume_driver": "lvm", "volume_group": host.vg,
        "lvm_conf_dir": os.path.join(host.dir, "etc"),
        "tgt_state_dir": str(tmp_path / "tgt"), "target_prefix": prefix}})
    volume = available_volume(stack)
    name = "volume-" + volume["id"]
    assert name in host.lvs()

    refused = create_attachment(stack, volume["id"], connector())
    assert refused.status_code == 500, refused.text
    assert "the LV is not active" in refused.text
    assert volume_of(stack, volume["id"])["status"] == "available"
    assert targets_under(prefix) == {}
    assert "not active" in messages_for(stack, volume["id"])[0]["user_message"]

    offset = activation.activate(name)
    first_id, info = attach(stack, volume["id"])
    assert info["driver_volume_type"] == "iscsi"
    assert_target(prefix, first_id, info, COMPUTE1, "/dev/%s/%s" % (host.vg, name))
    disk = compute_client.connect(info, initiator=COMPUTE1)
    disk.write_pattern(0xE1, 0, 4 * MiB)
    assert disk.read_pattern(0xE1, 0, 4 * MiB)
    assert not disk.read_pattern(0xE2, 0, 4 * MiB)
    with open(host.image, "rb") as pv:  # the bytes are in the LV's extents of the PV
        pv.seek(offset)
        assert pv.read(4 * MiB) == b"\xe1" * 4 * MiB
    assert delete_attachment(stack, first_id) == []
    assert targets_under(prefix) == {}

    second_id, again = attach(stack, volume["id"])
    assert again["data"]["auth_password"] != info["data"]["auth_password"]
    assert compute_client.connect(again, initiator=COMPUTE1).read_pattern(0xE1, 0, 4 * MiB)
    assert create_attachment(stack, volume["id"], connector("compute2", COMPUTE2)
                             ).status_code == 400  # lvm volumes are not multiattach
    delete_attachment(stack, second_id)
    assert targets_under(prefix) == {}
    assert stack.request("DELETE", "/volumes/" + volume["id"]).status_code == 202
    stack.wait_volume(volume["id"], ("deleted",))
    assert name not in host.lvs()
