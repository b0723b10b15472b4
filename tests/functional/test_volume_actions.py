"""Volume actions through the API (file driver, whole stack in one process): os-reset_status,
os-force_delete, os-set_bootable, os-update_readonly_flag, image metadata, the extend gates.
Each happy path, each documented refusal, and the database state after (nothing changed on a
refusal)."""

import pytest

from common.db import api as db
from common.db import models
from common.db import volume_actions_api as adb
from common.db.session import writer
from tests import races

MEMBER = "bob:p1"


def act(stack, volume_id, action, args=None, **kw):
    return stack.request("POST", "/volumes/%s/action" % volume_id, {action: args}, **kw)


def row(volume_id):
    return db.volume_get_internal(volume_id)


@pytest.fixture
def volume(stack):
    v = stack.create_volume(size=1)
    return stack.wait_volume(v["id"], ("available",))


# --- os-reset_status ---------------------------------------------------------------------------

def test_reset_status_sets_each_field(stack, volume):
    vid = volume["id"]
    resp = act(stack, vid, "os-reset_status", {"status": "error"})
    assert resp.status_code == 202, resp.text
    assert row(vid).status == "error"
    resp = act(stack, vid, "os-reset_status",
               {"status": "AVAILABLE", "attach_status": "detached",
                "migration_status": "migrating"})
    assert resp.status_code == 202, resp.text
    r = row(vid)
    assert (r.status, r.attach_status, r.migration_status) == ("available", "detached",
                                                               "migrating")
    assert stack.request("GET", "/volumes/" + vid).json()["volume"][
        "os-vol-mig-status-attr:migstat"] == "migrating"
    assert act(stack, vid, "os-reset_status", {"migration_status": "none"}).status_code == 202
    assert row(vid).migration_status is None
    # no storage touched
    assert len(stack.volume_files()) == 1


@pytest.mark.parametrize("args", [
    {}, {"status": "bogus"}, {"attach_status": "half"}, {"migration_status": "flying"},
    {"status": "available", "extra": 1}, {"status": 5}, None, "available",
])
def test_reset_status_bad_body(stack, volume, args):
    resp = act(stack, volume["id"], "os-reset_status", args)
    assert resp.status_code == 400, resp.text
    assert "badRequest" in resp.json()
    assert row(volume["id"]).status == "available"


def test_reset_status_admin_only_and_scoped(stack, volume):
    resp = act(stack, volume["id"], "os-reset_status", {"status": "error"}, token=MEMBER)
    assert resp.status_code == 403 and "forbidden" in resp.json()
    assert row(volume["id"]).status == "available"
    missing = act(stack, "00000000-0000-0000-0000-000000000000", "os-reset_status",
                  {"status": "error"})
    assert missing.status_code == 404


def test_reset_status_abandons_the_operation_in_flight(make_stack):
    """A volume stuck in `extending` (its flow held up): the admin resets it to available;
    the workers row goes, and the flow that then runs does not flip the status back."""
    stack = make_stack(overrides={"debug.delay_points": ["extend_volume.check_extending:2"]})
    v = stack.create_volume(size=1)
    stack.wait_volume(v["id"], ("available",))
    assert act(stack, v["id"], "os-extend", {"new_size": 2}).status_code == 202
    stack.wait_volume(v["id"], ("extending",))
    assert act(stack, v["id"], "os-reset_status", {"status": "available"}).status_code == 202
    assert db.worker_get_all() == []
    import time

    # the held-up flow runs now, finds the volume no longer extending and ends: the volume
    # service holds the volume in flight until then
    managers = [svc.manager for svc in stack.services if hasattr(svc.manager, "_in_flight")]
    assert managers, [type(svc.manager) for svc in stack.services]
    deadline = time.monotonic() + 30
    while any(v["id"] in m._in_flight for m in managers):
        assert time.monotonic() < deadline, "the held extend flow never ended"
        time.sleep(0.05)
    r = row(v["id"])
    assert (r.status, r.size) == ("available", 1)
    assert db.worker_get_all() == []


# --- os-force_delete ---------------------------------------------------------------------------

@pytest.mark.parametrize("status", ["error_deleting", "deleting", "in-use", "maintenance",
                                    "creating"])
def test_force_delete_from_any_status(stack, volume, status):
    vid = volume["id"]
    assert act(stack, vid, "os-reset_status", {"status": status}).status_code == 202
    # a plain delete is refused from these
    if status not in ("available",):
        assert stack.request("DELETE", "/volumes/" + vid).status_code == 400
    resp = act(stack, vid, "os-force_delete", {})
    assert resp.status_code == 202, resp.text
    stack.wait_volume(vid, ("deleted",))
    assert stack.volume_files() == []
    pool = db.pool_get("stack@file#pool0")
    assert (pool.allocated_capacity_gb, pool.volume_count) == (0, 0)
    assert db.worker_get_all() == []


def test_force_delete_null_body(stack, volume):
    assert act(stack, volume["id"], "os-force_delete", None).status_code == 202
    stack.wait_volume(volume["id"], ("deleted",))


def test_force_delete_refusals(stack, volume):
    vid = volume["id"]
    # non-admin
    resp = act(stack, vid, "os-force_delete", {}, token=MEMBER)
    assert resp.status_code == 403
    # bad body
    assert act(stack, vid, "os-force_delete", {"x": 1}).status_code == 400
    # attached
    act(stack, vid, "os-reset_status", {"status": "in-use", "attach_status": "attached"})
    assert act(stack, vid, "os-force_delete", {}).status_code == 400
    # migrating
    act(stack, vid, "os-reset_status", {"attach_status": "detached",
                                        "migration_status": "migrating"})
    assert act(stack, vid, "os-force_delete", {}).status_code == 400
    act(stack, vid, "os-reset_status", {"migration_status": "none", "status": "available"})
    # with a snapshot (a row is enough to refuse)
    with writer() as s:
        s.add(models.Snapshot(id=db.new_id(), project_id="p1", volume_id=vid,
                              status="available", volume_size=1))
    resp = act(stack, vid, "os-force_delete", {})
    assert resp.status_code == 400 and "snapshots" in resp.text
    r = row(vid)
    assert (r.status, r.deleted) == ("available", False)
    assert len(stack.volume_files()) == 1
    assert db.worker_get_all() == []


def test_force_delete_of_a_never_placed_volume(stack):
    """A volume still waiting for the scheduler goes at once (no storage, no claim)."""
    vid = db.new_id()
    db.volume_create({"id": vid, "project_id": "p1", "size": 1, "status": "error",
                      "attach_status": "detached"})
    assert act(stack, vid, "os-force_delete", {}).status_code == 202
    assert row(vid).deleted
    assert db.worker_get_all() == []


# --- os-set_bootable ---------------------------------------------------------------------------

@pytest.mark.parametrize("value,expected", [(True, "true"), ("yes", "true"), ("1", "true"),
                                            ("t", "true"), (False, "false"), ("off", "false"),
                                            ("0", "false")])
def test_set_bootable(stack, volume, value, expected):
    resp = act(stack, volume["id"], "os-set_bootable", {"bootable": value}, token=MEMBER)
    assert resp.status_code == 200, resp.text
    shown = stack.request("GET", "/volumes/" + volume["id"]).json()["volume"]
    assert shown["bootable"] == expected
    assert row(volume["id"]).bootable is (expected == "true")


@pytest.mark.parametrize("args", [{"bootable": "maybe"}, {"bootable": 1}, {}, {"bootable": None},
                                  {"bootable": True, "x": 1}])
def test_set_bootable_bad_body(stack, volume, args):
    resp = act(stack, volume["id"], "os-set_bootable", args)
    assert resp.status_code == 400, resp.text
    assert row(volume["id"]).bootable is False


def test_set_bootable_refusals(stack, volume):
    act(stack, volume["id"], "os-reset_status", {"status": "maintenance"})
    assert act(stack, volume["id"], "os-set_bootable", {"bootable": True}).status_code == 400
    assert row(volume["id"]).bootable is False
    other = act(stack, volume["id"], "os-set_bootable", {"bootable": True}, token="eve:p2",
                project="p2")
    assert other.status_code == 404


# --- os-update_readonly_flag -------------------------------------------------------------------

def test_update_readonly_flag(stack, volume):
    vid = volume["id"]
    resp = act(stack, vid, "os-update_readonly_flag", {"readonly": True}, token=MEMBER)
    assert resp.status_code == 202, resp.text
    assert adb.admin_metadata_get(vid) == {"readonly": "True"}
    shown = stack.request("GET", "/volumes/" + vid).json()["volume"]
    assert shown["metadata"] == {"readonly": "True"}
    # user metadata is separate: replacing it keeps readonly
    stack.request("PUT", "/volumes/" + vid, {"volume": {"metadata": {"a": "b"}}})
    detail = stack.request("GET", "/volumes/detail").json()["volumes"][0]
    assert detail["metadata"] == {"a": "b", "readonly": "True"}
    assert act(stack, vid, "os-update_readonly_flag", {"readonly": "false"}).status_code == 202
    assert adb.admin_metadata_get(vid) == {"readonly": "False"}


def test_update_readonly_flag_refusals(stack, volume):
    vid = volume["id"]
    for args in ({"readonly": "perhaps"}, {}, {"readonly": True, "x": 1}):
        assert act(stack, vid, "os-update_readonly_flag", args).status_code == 400
    act(stack, vid, "os-reset_status", {"status": "error"})
    resp = act(stack, vid, "os-update_readonly_flag", {"readonly": True})
    assert resp.status_code == 400 and "must be available" in resp.text
    assert adb.admin_metadata_get(vid) == {}


# --- image metadata ----------------------------------------------------------------------------

def test_image_metadata_set_show_unset(stack, volume):
    vid = volume["id"]
    assert "volume_image_metadata" not in stack.request("GET", "/volumes/" + vid).json()[
        "volume"]
    resp = act(stack, vid, "os-set_image_metadata",
               {"metadata": {"image_name": "cirros", "min_ram": "64"}}, token=MEMBER)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"metadata": {"image_name": "cirros", "min_ram": "64"}}
    resp = act(stack, vid, "os-set_image_metadata", {"metadata": {"min_ram": "128"}})
    assert resp.json() == {"metadata": {"image_name": "cirros", "min_ram": "128"}}
    shown = act(stack, vid, "os-show_image_metadata", None, token=MEMBER)
    assert shown.status_code == 200
    assert shown.json() == {"metadata": {"image_name": "cirros", "min_ram": "128"}}
    vol = stack.request("GET", "/volumes/" + vid).json()["volume"]
    assert vol["volume_image_metadata"] == {"image_name": "cirros", "min_ram": "128"}
    detail = stack.request("GET", "/volumes/detail").json()["volumes"][0]
    assert detail["volume_image_metadata"]["image_name"] == "cirros"
    resp = act(stack, vid, "os-unset_image_metadata", {"key": "min_ram"})
    assert resp.status_code == 200
    assert adb.glance_metadata_get(vid) == {"image_name": "cirros"}
    missing = act(stack, vid, "os-unset_image_metadata", {"key": "min_ram"})
    assert missing.status_code == 404 and "itemNotFound" in missing.json()


def test_image_metadata_refusals(stack, volume):
    vid = volume["id"]
    for action, args in (("os-set_image_metadata", {}),
                         ("os-set_image_metadata", {"metadata": {"k": 5}}),
                         ("os-set_image_metadata", {"metadata": "k=v"}),
                         ("os-unset_image_metadata", {}),
                         ("os-unset_image_metadata", {"key": ""}),
                         ("os-show_image_metadata", {"x": 1})):
        assert act(stack, vid, action, args).status_code == 400, (action, args)
    act(stack, vid, "os-reset_status", {"status": "maintenance"})
    assert act(stack, vid, "os-set_image_metadata", {"metadata": {"k": "v"}}).status_code == 400
    assert adb.glance_metadata_get(vid) == {}
    other = act(stack, vid, "os-show_image_metadata", None, token="eve:p2", project="p2")
    assert other.status_code == 404


# --- extend gates ------------------------------------------------------------------------------

def test_extend_of_in_use_volume_needs_342(stack, volume):
    vid = volume["id"]
    act(stack, vid, "os-reset_status", {"status": "in-use"})
    resp = act(stack, vid, "os-extend", {"new_size": 2})
    assert resp.status_code == 400 and "available" in resp.text
    from api import microversion

    r = row(vid)
    assert (r.status, r.size) == ("in-use", 1)
    at_342 = act(stack, vid, "os-extend", {"new_size": 2}, version="3.42")
    if microversion.MAX_VERSION < (3, 42):
        assert at_342.status_code == 406
        return
    assert at_342.status_code == 202, at_342.text
    done = stack.wait_volume(vid, ("in-use", "error_extending"))
    assert (done["status"], done["size"]) == ("in-use", 2)


def test_extend_volume_completion_needs_371(stack, volume):
    resp = act(stack, volume["id"], "os-extend_volume_completion", {"error": False})
    assert resp.status_code == 404
    from api import microversion

    if microversion.MAX_VERSION < (3, 71):
        assert act(stack, volume["id"], "os-extend_volume_completion", {},
                   version="3.71").status_code == 406


def test_actions_gated_above_the_maximum_answer_when_allowed(stack, volume, monkeypatch):
    """With the maximum raised in-process (as it will be when the lead advertises them),
    3.42 and 3.71 behave as documented."""
    from api import microversion

    monkeypatch.setattr(microversion, "MAX_VERSION", (3, 71))
    vid = volume["id"]
    act(stack, vid, "os-reset_status", {"status": "in-use"})
    resp = act(stack, vid, "os-extend", {"new_size": 2}, version="3.42")
    assert resp.status_code == 202, resp.text
    stack.wait_volume(vid, ("in-use",))
    resp = act(stack, vid, "os-extend_volume_completion", {}, version="3.71")
    assert resp.status_code == 400 and "extending" in resp.text
    resp = act(stack, vid, "os-extend_volume_completion", {}, version="3.71", token=MEMBER)
    assert resp.status_code == 403
    act(stack, vid, "os-reset_status", {"status": "extending"})
    resp = act(stack, vid, "os-extend_volume_completion", {"error": "maybe"}, version="3.71")
    assert resp.status_code == 400
    resp = act(stack, vid, "os-extend_volume_completion", {"error": False}, version="3.71")
    assert resp.status_code == 400 and "not waiting" in resp.text
    assert row(vid).status == "extending"


def test_actions_still_to_come_answer_400(stack, volume):
    # os-volume_upload_image is built (issue 12): tests/functional/test_upload_image.py
    for name in ("os-migrate_volume_completion",):
        resp = act(stack, volume["id"], name, {})
        assert resp.status_code == 400 and "not supported yet" in resp.text


# --- os-retype and os-migrate_volume -----------------------------------------------------------

import hashlib  # noqa: E402
import os  # noqa: E402


def two_backend_stack(make_stack, **overrides):
    stack = make_stack(backends={"file": {}, "other": {}}, overrides=overrides)
    for name, specs in (("on-file", {"volume_backend_name": "file"}),
                        ("on-other", {"volume_backend_name": "other"}),
                        ("thin", {"thin_provisioning_support": "<is> True"})):
        resp = stack.request("POST", "/types", {"volume_type": {"name": name,
                                                                "extra_specs": specs}})
        assert resp.status_code == 200, resp.text
    return stack


def write_data(stack, volume, backend="file"):
    path = os.path.join(stack.workdir, backend, "pool0", "volume-" + volume["id"])
    data = os.urandom(1024 * 1024) + b"\0" * (4 * 1024 * 1024) + b"tail" * 1000
    with open(path, "r+b") as f:
        f.write(data)
        f.seek(700 * 1024 * 1024)
        f.write(b"far away")
    return path


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 * 1024 * 1024), b""):
            h.update(block)
    return h.hexdigest()


def type_id(stack, name):
    return [t for t in stack.request("GET", "/types").json()["volume_types"]
            if t["name"] == name][0]["id"]


def test_retype_in_place_when_the_pool_still_matches(make_stack):
    stack = two_backend_stack(make_stack)
    v = stack.create_volume(size=1, volume_type="on-file")
    stack.wait_volume(v["id"], ("available",))
    resp = act(stack, v["id"], "os-retype", {"new_type": "thin"}, token=MEMBER)
    assert resp.status_code == 202, resp.text
    done = stack.wait_volume(v["id"], ("available",))
    deadline_type = done["volume_type"]
    import time

    t0 = time.monotonic()
    while deadline_type != "thin" and time.monotonic() - t0 < 10:
        time.sleep(0.05)
        deadline_type = stack.request("GET", "/volumes/" + v["id"]).json()["volume"][
            "volume_type"]
    assert deadline_type == "thin"
    r = row(v["id"])
    assert (r.host, r.migration_status, r.status) == ("stack@file#pool0", None, "available")
    assert db.worker_get_all() == []


def wait_settled(stack, vid, timeout=30):
    import time

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        r = row(vid)
        if r.status not in ("retyping", "maintenance") and not db.worker_get_all():
            return r
        time.sleep(0.05)
    raise AssertionError("volume %s still %s" % (vid, row(vid).status))


def test_retype_across_backends_never_is_refused(make_stack):
    stack = two_backend_stack(make_stack)
    v = stack.create_volume(size=1, volume_type="on-file")
    stack.wait_volume(v["id"], ("available",))
    assert act(stack, v["id"], "os-retype", {"new_type": "on-other"}).status_code == 202
    r = wait_settled(stack, v["id"])
    assert (r.status, r.host, r.volume_type_id) == ("available", "stack@file#pool0",
                                                    type_id(stack, "on-file"))
    msgs = stack.request("GET", "/messages?resource_uuid=" + v["id"],
                         version="3.3").json()["messages"]
    assert "migration_policy is never" in msgs[0]["user_message"]


def test_retype_across_backends_on_demand_moves_the_data(make_stack):
    stack = two_backend_stack(make_stack)
    v = stack.create_volume(size=1, volume_type="on-file")
    stack.wait_volume(v["id"], ("available",))
    src = write_data(stack, v)
    before = digest(src)
    resp = act(stack, v["id"], "os-retype", {"new_type": "on-other",
                                             "migration_policy": "on-demand"})
    assert resp.status_code == 202, resp.text
    r = wait_settled(stack, v["id"])
    assert (r.status, r.host, r.migration_status) == ("available", "stack@other#pool0",
                                                      "success")
    assert r.volume_type_id == type_id(stack, "on-other")
    dst = os.path.join(stack.workdir, "other", "pool0", "volume-" + v["id"])
    assert not os.path.exists(src) and digest(dst) == before
    assert db.pool_get("stack@file#pool0").allocated_capacity_gb == 0
    assert db.pool_get("stack@other#pool0").allocated_capacity_gb == 1
    # it lives there now: extend and delete go to the other back end
    assert act(stack, v["id"], "os-extend", {"new_size": 2}).status_code == 202
    assert stack.wait_volume(v["id"], ("available",))["size"] == 2
    # (a plain DELETE is refused while migration_status is `success`: api/volume_requests.py
    # expects None where Cinder accepts None/deleting/error/success; reported to the lead)
    assert act(stack, v["id"], "os-force_delete", {}).status_code == 202
    stack.wait_volume(v["id"], ("deleted",))
    assert stack.volume_files() == []
    assert db.pool_get("stack@other#pool0").allocated_capacity_gb == 0


def test_migrate_volume_moves_the_data(make_stack):
    stack = two_backend_stack(make_stack)
    v = stack.create_volume(size=1)
    stack.wait_volume(v["id"], ("available",))
    before = digest(write_data(stack, v))
    resp = act(stack, v["id"], "os-migrate_volume", {"host": "stack@other#pool0",
                                                     "force_host_copy": True})
    assert resp.status_code == 202, resp.text
    r = wait_settled(stack, v["id"])
    assert (r.status, r.host, r.migration_status) == ("available", "stack@other#pool0",
                                                      "success")
    assert digest(os.path.join(stack.workdir, "other", "pool0", "volume-" + v["id"])) == \
        before
    assert len(stack.volume_files()) == 1


def test_retype_and_migrate_refusals(make_stack):
    stack = two_backend_stack(make_stack)
    v = stack.create_volume(size=1, volume_type="on-file")
    vid = stack.wait_volume(v["id"], ("available",))["id"]
    cases = [
        ("os-retype", {"new_type": "on-file"}, None, 400),           # same type
        ("os-retype", {"new_type": "nope"}, None, 404),
        ("os-retype", {"new_type": "on-other", "migration_policy": "always"}, None, 400),
        ("os-retype", {}, None, 400),
        ("os-migrate_volume", {"host": "stack@file#pool0"}, None, 400),  # same host
        ("os-migrate_volume", {"host": "stack@nowhere#p"}, None, 404),
        ("os-migrate_volume", {"host": "stack@other#pool0"}, MEMBER, 403),
        ("os-migrate_volume", {}, None, 400),
    ]
    for action, args, token, code in cases:
        resp = act(stack, vid, action, args, token=token)
        assert resp.status_code == code, (action, args, resp.text)
    act(stack, vid, "os-reset_status", {"status": "error"})
    assert act(stack, vid, "os-retype", {"new_type": "thin"}).status_code == 400
    assert act(stack, vid, "os-migrate_volume",
               {"host": "stack@other#pool0"}).status_code == 400
    act(stack, vid, "os-reset_status", {"status": "available"})
    with writer() as s:
        s.add(models.Snapshot(id=db.new_id(), project_id="p1", volume_id=vid,
                              status="available", volume_size=1))
    resp = act(stack, vid, "os-migrate_volume", {"host": "stack@other#pool0"})
    assert resp.status_code == 400 and "snapshots" in resp.text
    # with snapshots, a retype that needs a move is refused asynchronously
    assert act(stack, vid, "os-retype", {"new_type": "on-other",
                                         "migration_policy": "on-demand"}).status_code == 202
    r = wait_settled(stack, vid)
    assert (r.status, r.host, r.migration_status) == ("available", "stack@file#pool0", None)
    r = row(vid)
    assert r.volume_type_id == type_id(stack, "on-file")
    assert len(stack.volume_files()) == 1


MIGRATE_STEPS = ["migrate_volume.check_migrating", "migrate_volume.create_target",
                 "migrate_volume.copy_data", "migrate_volume.switch_host"]


@pytest.mark.parametrize("step", MIGRATE_STEPS)
def test_migration_failure_at_each_step(make_stack, step):
    stack = two_backend_stack(make_stack, **{"debug.fail_points": [step]})
    v = stack.create_volume(size=1, volume_type="on-file")
    stack.wait_volume(v["id"], ("available",))
    before = digest(write_data(stack, v))
    act(stack, v["id"], "os-retype", {"new_type": "on-other", "migration_policy": "on-demand"})
    r = wait_settled(stack, v["id"])
    assert (r.status, r.host, r.migration_status) == ("available", "stack@file#pool0",
                                                      "error")
    assert r.volume_type_id == type_id(stack, "on-file")
    msgs = stack.request("GET", "/messages?resource_uuid=" + v["id"],
                         version="3.3").json()["messages"]
    assert step in msgs[0]["user_message"]
    # the data is where it was, nothing on the destination, the destination claim released
    files = stack.volume_files()
    assert len(files) == 1 and digest(files[0]) == before
    assert db.pool_get("stack@other#pool0").allocated_capacity_gb == 0
    assert db.pool_get("stack@file#pool0").allocated_capacity_gb == 1


def test_migration_whose_source_delete_fails_still_moves(make_stack):
    stack = two_backend_stack(make_stack,
                              **{"debug.fail_points": ["migrate_volume.delete_source"]})
    v = stack.create_volume(size=1)
    stack.wait_volume(v["id"], ("available",))
    act(stack, v["id"], "os-migrate_volume", {"host": "stack@other#pool0"})
    r = wait_settled(stack, v["id"])
    assert (r.host, r.migration_status) == ("stack@other#pool0", "success")
    msgs = stack.request("GET", "/messages?resource_uuid=" + v["id"],
                         version="3.3").json()["messages"]
    assert "old copy" in msgs[0]["user_message"]


def test_retype_and_extend_race_one_wins(make_stack):
    stack = two_backend_stack(make_stack)
    races.hold_flows(stack)
    for _ in range(5):
        v = stack.create_volume(size=1, volume_type="on-file")
        stack.wait_volume(v["id"], ("available",))
        retype, extend = races.race(
            (act, stack, v["id"], "os-retype",
             {"new_type": "on-other", "migration_policy": "on-demand"}),
            (act, stack, v["id"], "os-extend", {"new_size": 2}))
        races.assert_one_wins([retype, extend], hold=races.HOLD)
        wait_settled(stack, v["id"])
        stack.wait_volume(v["id"], ("available",))
        r = row(v["id"])
        # it moved at 1 GiB, or grew where it was, or (one after the other) both
        won = (retype[2].status_code == 202, extend[2].status_code == 202)
        assert (r.host, r.size) == {
            (True, False): ("stack@other#pool0", 1),
            (False, True): ("stack@file#pool0", 2),
            (True, True): ("stack@other#pool0", 2)}[won]
        assert db.worker_get_all() == []


def test_migrate_and_delete_race_one_wins(make_stack):
    stack = two_backend_stack(make_stack)
    races.hold_flows(stack)
    for _ in range(5):
        v = stack.create_volume(size=1)
        stack.wait_volume(v["id"], ("available",))
        races.assert_one_wins(races.race(
            (act, stack, v["id"], "os-migrate_volume", {"host": "stack@other#pool0"}),
            (stack.request, "DELETE", "/volumes/" + v["id"])), hold=races.HOLD)
        final = stack.wait_volume(v["id"], ("available", "deleted"))
        if final["status"] == "available":
            wait_settled(stack, v["id"])
            act(stack, v["id"], "os-force_delete", {})
            stack.wait_volume(v["id"], ("deleted",))
    assert stack.volume_files() == []
    assert db.pool_get("stack@file#pool0").allocated_capacity_gb == 0
    assert db.pool_get("stack@other#pool0").allocated_capacity_gb == 0
