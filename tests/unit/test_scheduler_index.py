"""The scheduler's pool index (scheduler/host_state.py): placement's fast path picks the pool
the full evaluation would rank first, for random fleets, requests and weigher settings, and
stays right while pools change under it (reports, claims, flags, stale reports)."""

import datetime
import json
import random
import types

import pytest
from oslo_config import cfg

from common.db.models import utcnow
from scheduler import host_state
from scheduler import manager as scheduler_manager

CONF = cfg.CONF

WEIGHER_SETTINGS = [
    (["CapacityWeigher"], {}),
    (["CapacityWeigher"], {"capacity_weight_multiplier": -1.0}),  # stacking
    (["VolumeNumberWeigher"], {}),
    (["AllocatedCapacityWeigher"], {"allocated_capacity_weight_multiplier": 2.0}),
    (["CapacityWeigher"], {"capacity_weight_multiplier": 0.0}),
    ([], {}),
    (["CapacityWeigher", "VolumeNumberWeigher"], {}),
]


def pool_row(rng, i, now):
    caps = {"volume_backend_name": rng.choice(["a", "b", "c"]),
            "thin_provisioning_support": rng.choice([True, False]),
            "tier": rng.choice(["ssd", "hdd", "ssd,nvme"]),
            "iops": rng.choice([100, 500, 1000])}
    if rng.random() < 0.05:
        caps["backend_state"] = "down"
    usable = rng.choice([10, 50, 100, 100, 400])
    return types.SimpleNamespace(
        name="h%d@be#p%d" % (i % 7, i), host="h%d@be" % (i % 7), pool_name="p%d" % i,
        availability_zone=rng.choice(["nova", "nova", "az2"]), total_capacity_gb=usable,
        free_capacity_gb=usable, allocated_capacity_gb=rng.choice([0, 5, 10, 50, 90, 100]),
        usable_capacity_gb=usable, volume_count=rng.randrange(5),
        capabilities=json.dumps(caps),
        reported_at=now - datetime.timedelta(seconds=rng.choice([1, 5, 3600]
                                                                if rng.random() < 0.1
                                                                else [1, 5])))


def random_request(rng, hosts):
    specs = {}
    if rng.random() < 0.5:
        specs["volume_backend_name"] = rng.choice(["a", "b", "c"])
    if rng.random() < 0.3:
        specs["capabilities:tier"] = rng.choice(["<in> ssd", "hdd", "<or> hdd <or> ssd"])
    if rng.random() < 0.3:
        specs["iops"] = rng.choice([">= 500", "<= 100", "== 1000"])
    if rng.random() < 0.2:
        specs["qos:read_iops"] = "100"  # not the scheduler's
    return {"volume_id": None, "size": rng.choice([1, 5, 20, 60]),
            "availability_zone": rng.choice([None, "nova", "az2"]), "extra_specs": specs,
            "backend": rng.choice(hosts) if rng.random() < 0.15 else None}


def fill(cache, rows):
    with cache._lock:
        for row in rows:
            state = host_state.PoolState(row)
            state.service_disabled = row.host == "h3@be"
            cache._pools[row.name] = state
            cache._reindex(state)


def full_answer(sched, request):
    ranked, _rejected = sched.evaluate(request)
    return ranked[0][0].name if ranked else None


@pytest.mark.parametrize("weigher_names,multipliers", WEIGHER_SETTINGS)
def test_best_is_what_the_full_evaluation_ranks_first(weigher_names, multipliers):
    rng = random.Random(hash(tuple(weigher_names)) ^ hash(tuple(multipliers.items())))
    CONF.set_override("scheduler_default_weighers", weigher_names)
    for name, value in multipliers.items():
        CONF.set_override(name, value)
    try:
        now = utcnow()
        sched = scheduler_manager.SchedulerManager("unit")
        rows = [pool_row(rng, i, now) for i in range(300)]
        fill(sched.pools, rows)
        hosts = sorted({r.host for r in rows})
        compared = placed = 0
        for step in range(150):
            request = sched._with_cutoff(random_request(rng, hosts))
            fast, looked = sched.best(request)
            assert (fast.name if fast else None) == full_answer(sched, request), request
            # every pool the fast path says it rejected, the full evaluation rejects alike
            _ranked, rejected = sched.evaluate(request)
            assert set(looked) <= set(rejected)
            compared += 1
            if fast is not None:
                placed += 1
                # the pool changes under the index: a choice, a claim, a report, a flag
                sched.pools.note_choice(fast.name, request["size"])
                sched.pools.settle_choice(fast.name, request["size"], rng.random() < 0.8)
                other = rng.choice(rows)
                other.allocated_capacity_gb = rng.choice([0, 10, 50])
                other.volume_count = rng.randrange(5)
                other.reported_at = utcnow()
                with sched.pools._lock:
                    state = sched.pools._pools[other.name]
                    state.update_from_row(other)
                    state.service_frozen = rng.random() < 0.1
                    sched.pools._reindex(state)
                if step % 10 == 0:
                    sched.pools.record_claim(rng.choice(rows).name, 3)
        assert compared == 150 and placed > 20  # the comparison covered real choices
    finally:
        CONF.clear_override("scheduler_default_weighers")
        for name in multipliers:
            CONF.clear_override(name)


def test_a_stale_pool_leaves_the_index_until_its_next_report():
    now = utcnow()
    sched = scheduler_manager.SchedulerManager("unit")
    rng = random.Random(7)
    rows = [pool_row(rng, i, now) for i in range(2)]
    for row in rows:
        row.capabilities = json.dumps({"volume_backend_name": "a"})
        row.availability_zone = "nova"
        row.allocated_capacity_gb = 0
        row.host = row.name.split("#")[0] + "x"  # neither is disabled
    rows[0].usable_capacity_gb = 1000  # the best by free capacity...
    rows[0].reported_at = now - datetime.timedelta(hours=1)  # ...but silent for an hour
    rows[1].usable_capacity_gb = 10
    rows[1].reported_at = now
    fill(sched.pools, rows)
    request = {"size": 1, "availability_zone": None, "extra_specs": {}}

    chosen, looked = sched.best(request)
    assert chosen.name == rows[1].name
    assert [(name, by) for name, by, _reason in looked] == [(rows[0].name, "BackendUpFilter")]
    # dropped: the next decision does not look at it again
    assert sched.best(request) == (chosen, [])
    # its next report puts it back, first again
    rows[0].reported_at = utcnow()
    with sched.pools._lock:
        sched.pools._pools[rows[0].name].update_from_row(rows[0])
        sched.pools._reindex(sched.pools._pools[rows[0].name])
    assert sched.best(request)[0].name == rows[0].name
