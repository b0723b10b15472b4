"""Races: conditional updates and placement claims under concurrent requests."""

import concurrent.futures

from common.db import api as db
from tests import races


def test_concurrent_deletes_one_wins(stack):
    volume = stack.create_volume()
    stack.wait_volume(volume["id"], ("available",))
    delete = (stack.request, "DELETE", "/volumes/" + volume["id"])
    # the file driver deletes fast: a late DELETE may find the volume gone (404)
    races.assert_one_wins(races.race(*[delete] * 20))
    stack.wait_volume(volume["id"], ("deleted",))


def test_burst_of_creates_never_overfills(make_stack):
    stack = make_stack(
        backends={"file": {"file_pools": ["a", "b"], "file_max_capacity_gb": 50,
                           "max_over_subscription_ratio": 1.0}},
        overrides={"volume_flow_workers": 8})
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        volumes = list(pool.map(lambda _: stack.create_volume(size=1), range(200)))
    final = [stack.wait_volume(v["id"], ("available", "error"), timeout=120)
             for v in volumes]
    statuses = [v["status"] for v in final]
    assert statuses.count("available") == 100, statuses.count("available")
    assert statuses.count("error") == 100
    pools = {p.pool_name: p for p in db.pool_get_all()}
    assert pools["a"].allocated_capacity_gb == 50 and pools["b"].allocated_capacity_gb == 50
    assert len(stack.volume_files()) == 100
    assert db.worker_get_all() == []
