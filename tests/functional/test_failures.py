"""Failure injection at every step of the create and delete flows, and the end states."""

import os

import pytest

from common.db import api as db

CREATE_STEPS = ["create_volume.check_still_creating", "create_volume.create_storage",
                "create_volume.mark_available"]
DELETE_STEPS = ["delete_volume.check_deleting", "delete_volume.delete_storage",
                "delete_volume.mark_deleted"]


def messages_for(stack, volume_id):
    resp = stack.request("GET", "/messages?resource_uuid=" + volume_id, version="3.3")
    assert resp.status_code == 200
    return resp.json()["messages"]


@pytest.mark.parametrize("step", CREATE_STEPS)
def test_create_failure_at_each_step(make_stack, step):
    stack = make_stack(overrides={"debug.fail_points": [step]})
    volume = stack.create_volume(size=3)
    done = stack.wait_volume(volume["id"], ("error", "available"))
    assert done["status"] == "error"
    assert stack.volume_files() == []  # no file left behind
    pool = db.pool_get("stack@file#pool0")
    assert pool.allocated_capacity_gb == 0 and pool.volume_count == 0  # claim released
    assert db.worker_get_all() == []
    msgs = messages_for(stack, volume["id"])
    assert len(msgs) == 1 and step in msgs[0]["user_message"]
    assert msgs[0]["event_id"] == "VOLUME_VOLUME_001_003"
    # an errored volume can be deleted, and then nothing is left
    assert stack.request("DELETE", "/volumes/" + volume["id"]).status_code == 202
    stack.wait_volume(volume["id"], ("deleted",))


@pytest.mark.parametrize("step", DELETE_STEPS)
def test_delete_failure_at_each_step(make_stack, step):
    stack = make_stack()
    volume = stack.create_volume(size=2)
    stack.wait_volume(volume["id"], ("available",))
    from oslo_config import cfg

    stack.override("fail_points", [step], group="debug")
    assert stack.request("DELETE", "/volumes/" + volume["id"]).status_code == 202
    done = stack.wait_volume(volume["id"], ("error_deleting", "deleted"))
    assert done["status"] == "error_deleting"
    assert db.worker_get_all() == []
    msgs = messages_for(stack, volume["id"])
    assert msgs and step in msgs[0]["user_message"]
    # the claim stays while the volume exists
    assert db.pool_get("stack@file#pool0").allocated_capacity_gb == 2
    # error_deleting is not a state one can delete from without reset (Cinder semantics)
    assert stack.request("DELETE", "/volumes/" + volume["id"]).status_code == 400
    cfg.CONF.clear_override("fail_points", group="debug")


def test_create_whose_rollback_fails_still_ends_in_error(make_stack):
    """The step fails and so does the revert that would set `error`: the volume service
    still ends the operation (storage removed, claim and workers row released)."""
    stack = make_stack(overrides={"debug.fail_points": [
        "create_volume.mark_available", "create_volume.check_still_creating.revert"]})
    volume = stack.create_volume(size=3)
    done = stack.wait_volume(volume["id"], ("error", "available"))
    assert done["status"] == "error"
    assert stack.volume_files() == []
    pool = db.pool_get("stack@file#pool0")
    assert pool.allocated_capacity_gb == 0 and pool.volume_count == 0
    assert db.worker_get_all() == []
    msgs = messages_for(stack, volume["id"])
    assert len(msgs) == 1 and "rollback did not complete" in msgs[0]["user_message"]


def test_delete_whose_rollback_fails_still_ends_in_error_deleting(make_stack):
    stack = make_stack()
    volume = stack.create_volume(size=2)
    stack.wait_volume(volume["id"], ("available",))
    stack.override("fail_points", ["delete_volume.delete_storage",
                                   "delete_volume.check_deleting.revert"], group="debug")
    assert stack.request("DELETE", "/volumes/" + volume["id"]).status_code == 202
    done = stack.wait_volume(volume["id"], ("error_deleting", "deleted"))
    assert done["status"] == "error_deleting"
    assert db.worker_get_all() == []
    assert db.pool_get("stack@file#pool0").allocated_capacity_gb == 2
    msgs = messages_for(stack, volume["id"])
    assert msgs and "rollback did not complete" in msgs[0]["user_message"]


def test_no_valid_host_reason(make_stack):
    stack = make_stack(backends={"file": {"file_max_capacity_gb": 10,
                                          "max_over_subscription_ratio": 1.0}})
    volume = stack.create_volume(size=11)
    assert stack.wait_volume(volume["id"], ("error", "available"))["status"] == "error"
    msgs = messages_for(stack, volume["id"])
    assert "Not enough free capacity for a 11 GiB volume" in msgs[0]["user_message"]
    assert msgs[0]["event_id"] == "VOLUME_VOLUME_001_002"
    # an unscheduled error volume is deleted by the API directly
    assert stack.request("DELETE", "/volumes/" + volume["id"]).status_code == 202
    assert stack.request("GET", "/volumes/" + volume["id"]).status_code == 404


def test_type_matching_no_backend(stack):
    stack.request("POST", "/types", {"volume_type": {
        "name": "fast", "extra_specs": {"volume_backend_name": "nope"}}})
    volume = stack.create_volume(volume_type="fast")
    assert stack.wait_volume(volume["id"], ("error", "available"))["status"] == "error"
    assert "extra specs" in messages_for(stack, volume["id"])[0]["user_message"]


def test_existing_file_is_not_adopted_or_removed(stack):
    """A storage clash fails the create without deleting the other owner's file."""
    from common.db.models import Volume
    from common.db.session import writer

    volume = stack.create_volume()
    stack.wait_volume(volume["id"], ("available",))
    path = os.path.join(stack.workdir, "file", "pool0", "volume-" + volume["id"])
    # Put the volume back to creating and send the create again: the file exists.
    with writer() as s:
        s.get(Volume, volume["id"]).status = "creating"
        db.worker_claim("volume", volume["id"], "create", host="stack@file", session=s)
    from common import context
    from volume_worker import rpcapi

    rpcapi.VolumeAPI().create_volume(context.get_admin_context(), "stack@file#pool0",
                                     volume["id"])
    assert stack.wait_volume(volume["id"], ("error",))["status"] == "error"
    assert os.path.exists(path)


def test_full_work_pool_refuses_with_a_message(make_stack):
    """A volume service whose bounded pool is full refuses more work: those volumes go to
    `error` with a readable message and their claims are released, none stays `creating`."""
    stack = make_stack(overrides={"volume_flow_workers": 1, "volume_flow_backlog": 1,
                                  "debug.delay_points": ["create_volume.create_storage:1"]})
    volumes = [stack.create_volume(size=1) for _ in range(6)]
    final = [stack.wait_volume(v["id"], ("available", "error"), timeout=30) for v in volumes]
    refused = [v for v in final if v["status"] == "error"]
    assert refused and len(refused) < len(final)
    for v in refused:
        assert "at capacity" in messages_for(stack, v["id"])[0]["user_message"]
    available = [v for v in final if v["status"] == "available"]
    assert db.pool_get("stack@file#pool0").allocated_capacity_gb == len(available)
    assert len(stack.volume_files()) == len(available)
    assert db.worker_get_all() == []


def test_recount_agrees_with_released_claims(make_stack):
    """The claims a service recounts at start equal those the reverts left: an errored create
    holds none, an available volume holds its size."""
    stack = make_stack()
    ok = stack.create_volume(size=2)
    stack.wait_volume(ok["id"], ("available",))
    stack.override("fail_points", ["create_volume.create_storage"], group="debug")
    bad = stack.create_volume(size=3)
    stack.wait_volume(bad["id"], ("error",))
    before = db.pool_get("stack@file#pool0").allocated_capacity_gb
    db.pools_recount("stack@file")
    assert db.pool_get("stack@file#pool0").allocated_capacity_gb == before == 2


def test_lost_request_is_reaped(make_stack):
    """A create whose message never reaches the volume service (here: the service is told to
    the workers table it owns the volume, but no flow runs) ends in `error`, not `creating`."""
    from common.db import models
    from common.db.session import writer

    stack = make_stack(overrides={"volume_operation_timeout": 1})
    volume = stack.create_volume(size=1)
    stack.wait_volume(volume["id"], ("available",))
    # Forge the state a lost create leaves: scheduled to this host, claim held, no message.
    with writer() as s:
        s.get(models.Volume, volume["id"]).status = "creating"
        db.worker_claim("volume", volume["id"], "create", host="stack@file", session=s)
    final = stack.wait_volume(volume["id"], ("error",), timeout=30)
    assert final["status"] == "error"
    assert "interrupted" in messages_for(stack, volume["id"])[0]["user_message"]
    assert stack.volume_files() == []
    assert db.pool_get("stack@file#pool0").allocated_capacity_gb == 0
    assert db.worker_get_all() == []
