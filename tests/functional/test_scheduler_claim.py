"""The scheduler's reads and writes per placement (issue 14): the light read of a volume for
scheduling (a few columns and its type's extra specs, read now, so a spec the types API just
changed is the one used), and the claim in one transaction with what the caller writes beside
it (the volume's host, the workers row): when the caller's write loses, the whole transaction
rolls back, the claim with it, and the scheduler's cache does not count it either."""

import time

import pytest

from common import context
from common.db import api as db
from common.db import models
from scheduler import manager as scheduler_manager


@pytest.fixture
def one_backend(make_stack):
    return make_stack(backends={"a": {}})


def make_volume(**values):
    values = dict({"size": 1, "status": "creating", "host": None, "project_id": "p",
                   "availability_zone": "nova"}, **values)
    return db.volume_create(values).id


def fresh_scheduler():
    sched = scheduler_manager.SchedulerManager("test-scheduler")
    sched.pools.reload()
    return sched


def test_the_volume_is_read_for_scheduling_with_its_types_specs_as_they_are_now(one_backend):
    stack = one_backend
    resp = stack.request("POST", "/types", {"volume_type": {
        "name": "gold", "extra_specs": {"volume_backend_name": "a", "tier": "ssd"}}})
    assert resp.status_code == 200, resp.text
    type_id = resp.json()["volume_type"]["id"]
    volume_id = make_volume(size=3, volume_type_id=type_id)

    volume = db.volume_get_for_scheduling(volume_id)
    assert (volume.id, volume.size, volume.status, volume.host, volume.deleted) == (
        volume_id, 3, "creating", None, False)
    assert volume.availability_zone == "nova" and volume.volume_type_id == type_id
    assert volume.volume_type_name == "gold"
    assert volume.extra_specs == {"volume_backend_name": "a", "tier": "ssd"}
    request = scheduler_manager.SchedulerManager._request_spec(volume)
    assert request == {"volume_id": volume_id, "size": 3, "volume_type": "gold",
                       "availability_zone": "nova", "backend": None,
                       "extra_specs": {"volume_backend_name": "a", "tier": "ssd"}}

    # the types API changes a spec: the next read sees it (no cache to go stale)
    resp = stack.request("POST", "/types/%s/extra_specs" % type_id,
                         {"extra_specs": {"tier": "hdd"}})
    assert resp.status_code == 200, resp.text
    resp = stack.request("DELETE", "/types/%s/extra_specs/volume_backend_name" % type_id)
    assert resp.status_code == 202, resp.text
    assert db.volume_get_for_scheduling(volume_id).extra_specs == {"tier": "hdd"}

    untyped = db.volume_get_for_scheduling(make_volume())
    assert untyped.volume_type_name is None and untyped.extra_specs == {}
    assert db.volume_get_for_scheduling("no-such-volume") is None


def _pool(name):
    row = db.pool_get(name)
    return row.allocated_capacity_gb, row.volume_count


def test_a_withdrawn_claim_rolls_back_in_the_database_and_the_cache(one_backend):
    sched = fresh_scheduler()
    pool = db.pool_get_all(host="stack@a")[0].name
    before = _pool(pool)
    cached = sched.pools.get(pool)
    cached_before = (cached.db_allocated_gb, cached.db_volume_count)
    request = {"volume_id": None, "size": 2, "availability_zone": None, "extra_specs": {}}
    seen = []

    def refuse(session, chosen):
        # runs in the claim's transaction: the claim is visible to it
        seen.append((chosen, session.get(models.Pool, chosen).allocated_capacity_gb))
        return False

    assert sched.place(request, on_claim=refuse) is None
    assert seen == [(pool, before[0] + 2)]
    assert _pool(pool) == before
    assert (cached.db_allocated_gb, cached.db_volume_count) == cached_before
    assert (cached.pending_gb, cached.pending_count) == (0, 0)

    def fail(session, chosen):
        raise RuntimeError("the database went away, say")

    with pytest.raises(RuntimeError):
        sched.place(request, on_claim=fail)
    assert _pool(pool) == before
    assert (cached.pending_gb, cached.pending_count) == (0, 0)
    assert cached.db_allocated_gb == cached_before[0]

    assert sched.place(request, on_claim=lambda session, chosen: True) == pool
    assert _pool(pool) == (before[0] + 2, before[1] + 1)
    assert (cached.db_allocated_gb, cached.db_volume_count) == (cached_before[0] + 2,
                                                                cached_before[1] + 1)


class DeletedWhileScheduled(scheduler_manager.SchedulerManager):
    """A scheduler whose volume is deleted between its read and its claim."""

    def place(self, request, on_claim=None):
        assert db.conditional_update(models.Volume, request["volume_id"],
                                     {"deleted": True, "status": "deleted"}, {})
        return super().place(request, on_claim=on_claim)


def test_a_create_whose_volume_went_meanwhile_leaves_no_claim(one_backend):
    pool = db.pool_get_all(host="stack@a")[0].name
    before = _pool(pool)
    sched = DeletedWhileScheduled("test-scheduler")
    sched.pools.reload()
    volume_id = make_volume(size=4)
    sched._schedule_create(None, volume_id)
    assert _pool(pool) == before
    assert db.volume_get_internal(volume_id).host is None
    assert [w.host for w in db.worker_get_all() if w.resource_id == volume_id] == [None]


def test_a_scheduled_create_sets_host_worker_and_claim_together(one_backend):
    pool = db.pool_get_all(host="stack@a")[0].name
    before = _pool(pool)
    sched = fresh_scheduler()
    volume_id = make_volume(size=4)
    sched._schedule_create(context.get_admin_context(), volume_id)
    assert _pool(pool) == (before[0] + 4, before[1] + 1)
    assert db.volume_get_internal(volume_id).host == pool
    # the volume service owns it now (or has already finished and released the row)
    assert [w.host for w in db.worker_get_all() if w.resource_id == volume_id] in (
        ["stack@a"], [])
    deadline = time.monotonic() + 30
    while db.volume_get_internal(volume_id).status == "creating":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert db.volume_get_internal(volume_id).status == "available"
    sched._schedule_create(context.get_admin_context(), volume_id)  # the cast again: no-op
    assert _pool(pool) == (before[0] + 4, before[1] + 1)
