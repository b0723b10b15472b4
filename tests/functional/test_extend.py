"""os-extend on the file driver: happy path, preconditions, failure at each step."""

import os
import time

import pytest

from common.db import api as db
from tests import races

STEPS = ["extend_volume.check_extending", "extend_volume.extend_storage",
         "extend_volume.mark_extended"]


def extend(stack, volume_id, new_size, **kw):
    return stack.request("POST", "/volumes/%s/action" % volume_id,
                         {"os-extend": {"new_size": new_size}}, **kw)


def test_extend_grows_file_and_claim(stack):
    volume = stack.create_volume(size=1)
    stack.wait_volume(volume["id"], ("available",))
    path = os.path.join(stack.workdir, "file", "pool0", "volume-" + volume["id"])
    with open(path, "r+b") as f:
        f.write(b"lamina" * 100)
    assert extend(stack, volume["id"], 3).status_code == 202
    done = stack.wait_volume(volume["id"], ("available", "error_extending"))
    assert done["size"] == 3 and done["status"] == "available"
    assert os.path.getsize(path) == 3 * 1024 ** 3
    with open(path, "rb") as f:
        assert f.read(600) == b"lamina" * 100
    pool = db.pool_get("stack@file#pool0")
    assert (pool.allocated_capacity_gb, pool.volume_count) == (3, 1)
    assert db.worker_get_all() == []


def test_extend_preconditions(stack):
    volume = stack.create_volume(size=2)
    stack.wait_volume(volume["id"], ("available",))
    for new_size, code in ((2, 400), (1, 400), (0, 400), ("x", 400), (65537, 400)):
        resp = extend(stack, volume["id"], new_size)
        assert resp.status_code == code, (new_size, resp.text)
        assert "badRequest" in resp.json()
    assert stack.request("POST", "/volumes/%s/action" % volume["id"],
                         {"os-extend": {"new_size": 3, "x": 1}}).status_code == 400
    assert stack.request("POST", "/volumes/%s/action" % volume["id"],
                         {"os-frobnicate": {}}).status_code == 400
    not_yet = stack.request("POST", "/volumes/%s/action" % volume["id"],
                            {"os-migrate_volume_completion": {"new_volume": "x"}})
    assert not_yet.status_code == 400 and "not supported yet" in not_yet.text
    assert extend(stack, "00000000-0000-0000-0000-000000000000", 5).status_code == 404
    assert extend(stack, volume["id"], 5, token="bob:p2", project="p2").status_code == 404
    assert stack.request("GET", "/volumes/" + volume["id"]).json()["volume"]["size"] == 2


def test_extend_without_room_returns_to_available(make_stack):
    stack = make_stack(backends={"file": {"file_max_capacity_gb": 10,
                                          "max_over_subscription_ratio": 1.0}})
    volume = stack.create_volume(size=5)
    stack.wait_volume(volume["id"], ("available",))
    assert extend(stack, volume["id"], 11).status_code == 202
    # the scheduler refuses: the volume is as it was, and the user is told why
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        msgs = stack.request("GET", "/messages?resource_uuid=" + volume["id"],
                             version="3.3").json()["messages"]
        if msgs:
            break
        time.sleep(0.05)
    done = stack.wait_volume(volume["id"], ("available",))
    assert done["size"] == 5
    assert "insufficient free space" in msgs[0]["user_message"]
    assert db.pool_get("stack@file#pool0").allocated_capacity_gb == 5


@pytest.mark.parametrize("step", STEPS)
def test_extend_failure_at_each_step(make_stack, step):
    stack = make_stack(overrides={"debug.fail_points": [step]})
    volume = stack.create_volume(size=1)
    stack.wait_volume(volume["id"], ("available",))
    assert extend(stack, volume["id"], 2).status_code == 202
    done = stack.wait_volume(volume["id"], ("error_extending",))
    assert done["size"] == 1
    pool = db.pool_get("stack@file#pool0")
    assert pool.allocated_capacity_gb == 1  # extra claim released
    assert db.worker_get_all() == []
    msgs = stack.request("GET", "/messages?resource_uuid=" + volume["id"],
                         version="3.3").json()["messages"]
    assert step in msgs[0]["user_message"]
    # error_extending may be deleted, leaving nothing
    assert stack.request("DELETE", "/volumes/" + volume["id"]).status_code == 202
    stack.wait_volume(volume["id"], ("deleted",))
    assert stack.volume_files() == []


def test_extend_and_delete_race_one_wins(stack):
    races.hold_flows(stack)
    for _ in range(5):
        volume = stack.create_volume(size=1)
        stack.wait_volume(volume["id"], ("available",))
        races.assert_one_wins(races.race(
            (extend, stack, volume["id"], 2),
            (stack.request, "DELETE", "/volumes/" + volume["id"])), hold=races.HOLD)
        final = stack.wait_volume(volume["id"], ("available", "deleted"))
        if final["status"] == "available":
            stack.request("DELETE", "/volumes/" + volume["id"])
            stack.wait_volume(volume["id"], ("deleted",))
