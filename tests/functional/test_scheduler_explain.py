"""Scheduler explain (scheduler rpcapi 1.4, what `lamina-manage scheduler explain` calls): each
pool's verdict names the filter that rejected it and why, or gives its weight; a volume's own
decision comes from the scheduler's history, anything else is a dry run that claims nothing.
Two file back ends, `a` and `b`, called through the scheduler's RPC client as the CLI does."""

import json
import time

import pytest

from common import context
from common.db import api as db
from scheduler import rpcapi as scheduler_rpcapi

POOL_A = "stack@a#pool0"
POOL_B = "stack@b#pool0"
KEYS = {"request", "pools", "chosen", "recorded"}
POOL_KEYS = {"pool", "passed", "rejected_by", "reason", "weight"}


@pytest.fixture
def two_backends(make_stack):
    # history of 2: the test of an evicted decision pushes one out with two more creates
    return make_stack(backends={"a": {"volume_backend_name": "a"},
                                "b": {"volume_backend_name": "b"}},
                      overrides={"scheduler_decision_history": 2})


def explain(**kwargs):
    answer = scheduler_rpcapi.SchedulerAPI().explain(context.get_admin_context(), **kwargs)
    assert set(answer) == KEYS
    for verdict in answer["pools"]:
        assert set(verdict) == POOL_KEYS
        # a passing pool has a weight and no rejection; a rejected one the opposite
        assert (verdict["rejected_by"] is None) == verdict["passed"] == \
            (verdict["weight"] is not None)
    json.dumps(answer)  # what the CLI prints
    return answer


def verdicts(answer):
    return {v["pool"]: v for v in answer["pools"]}


def make_type(stack, name, **specs):
    resp = stack.request("POST", "/types", {"volume_type": {"name": name,
                                                            "extra_specs": specs}})
    assert resp.status_code == 200, resp.text


def test_a_placement_is_recorded_with_each_pools_verdict_then_dry_run(two_backends):
    stack = two_backends
    make_type(stack, "only-b", volume_backend_name="b")
    volume = stack.create_volume(size=2, volume_type="only-b")
    assert stack.wait_volume(volume["id"], ("available",))["os-vol-host-attr:host"] == POOL_B

    answer = explain(volume_id=volume["id"])

    assert answer["recorded"] is True
    assert answer["chosen"] == POOL_B
    assert answer["request"]["volume_id"] == volume["id"]
    assert answer["request"]["size"] == 2
    assert answer["request"]["volume_type"] == "only-b"
    assert answer["request"]["availability_zone"] == "nova"
    pools = verdicts(answer)
    assert set(pools) == {POOL_A, POOL_B}
    assert pools[POOL_A]["rejected_by"] == "CapabilitiesFilter"
    assert "volume_backend_name=b" in pools[POOL_A]["reason"]
    assert "reports volume_backend_name=a" in pools[POOL_A]["reason"]
    assert pools[POOL_B]["passed"] and isinstance(pools[POOL_B]["weight"], float)

    # out of the history (it keeps 2): a dry run of the volume's request as its row says
    for _ in range(2):
        stack.wait_volume(stack.create_volume(size=1)["id"], ("available",))
    answer = explain(volume_id=volume["id"])
    assert answer["recorded"] is False
    assert answer["request"]["volume_id"] == volume["id"]
    assert answer["request"]["size"] == 2
    assert {v["pool"]: v["passed"] for v in answer["pools"]} == {POOL_A: False, POOL_B: True}
    assert answer["chosen"] == POOL_B

    with pytest.raises(Exception, match="could not be found"):
        explain(volume_id="00000000-0000-0000-0000-000000000000")


def test_a_type_no_pool_matches_or_a_size_none_holds_names_the_filter(two_backends):
    stack = two_backends
    make_type(stack, "nowhere", volume_backend_name="nowhere")

    dry = explain(volume_type="nowhere", size=1)

    assert dry["recorded"] is False and dry["chosen"] is None
    assert dry["request"]["volume_id"] is None
    assert dry["request"]["extra_specs"] == {"volume_backend_name": "nowhere"}
    assert {v["pool"]: v["rejected_by"] for v in dry["pools"]} == {
        POOL_A: "CapabilitiesFilter", POOL_B: "CapabilitiesFilter"}

    # the real placement refuses for the same reason, and keeps it
    volume = stack.create_volume(volume_type="nowhere")
    assert stack.wait_volume(volume["id"], ("error", "available"))["status"] == "error"
    kept = explain(volume_id=volume["id"])
    assert kept["recorded"] is True and kept["chosen"] is None
    assert {v["rejected_by"] for v in kept["pools"]} == {"CapabilitiesFilter"}

    # a size bigger than any pool
    before = {p.name: p.allocated_capacity_gb for p in db.pool_get_all()}

    dry = explain(size=10 ** 7)

    assert dry["chosen"] is None and dry["recorded"] is False
    pools = verdicts(dry)
    assert {v["rejected_by"] for v in pools.values()} == {"CapacityFilter"}
    assert "10000000 GiB asked" in pools[POOL_A]["reason"]
    # a dry run claims nothing
    assert {p.name: p.allocated_capacity_gb for p in db.pool_get_all()} == before
    # a size that fits: both pass, the best one first and chosen
    fits = explain(size=1)
    assert [v["passed"] for v in fits["pools"]] == [True, True]
    assert fits["chosen"] == fits["pools"][0]["pool"]
    assert fits["pools"][0]["weight"] >= fits["pools"][1]["weight"]


def test_a_disabled_service_names_the_backend_up_filter(two_backends):
    stack = two_backends
    resp = stack.request("PUT", "/os-services/disable",
                         {"host": "stack@a", "binary": "cinder-volume"})
    assert resp.status_code == 200, resp.text
    # the scheduler hears of it by a fanout cast, which may still be on its way
    deadline = time.monotonic() + 10
    while True:
        answer = explain(size=1)
        if verdicts(answer)[POOL_A]["rejected_by"] == "BackendUpFilter":
            break
        assert time.monotonic() < deadline, answer
        time.sleep(0.05)
    assert "stack@a is disabled" in verdicts(answer)[POOL_A]["reason"]
    assert answer["chosen"] == POOL_B and verdicts(answer)[POOL_B]["passed"]


