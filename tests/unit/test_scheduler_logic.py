"""Filters, weighers and the capacity formula, on plain objects."""

import pytest

from common.db.api import usable_capacity_gb
from scheduler import filters, weighers


@pytest.mark.parametrize("actual,requirement,expected", [
    (True, "<is> True", True),
    (False, "<is> True", False),
    ("True", "<is> true", True),
    (100, ">= 50", True),
    (10, ">= 50", False),
    (10, "<= 50", True),
    (10, "== 10", True),
    (10, "!= 10", False),
    (20, "= 10", True),  # Cinder: "= N" means at least N
    ("ssd,nvme", "<in> nvme", True),
    ("hdd", "<in> nvme", False),
    ("rbd", "<or> lvm <or> rbd", True),
    ("file", "<or> lvm <or> rbd", False),
    ("abc", "s== abc", True),
    ("abc", "s!= abc", False),
    ("file", "file", True),
    ("file", "rbd", False),
    (True, "true", True),
    ("x", ">= 3", False),  # not a number: no match rather than a crash
])
def test_spec_matches(actual, requirement, expected):
    assert filters.spec_matches(actual, requirement) is expected


class FakePool:
    def __init__(self, name, usable=100, allocated=0, count=0, caps=None, zone="nova"):
        self.name = name
        self.usable_capacity_gb = usable
        self.allocated_capacity_gb = allocated
        self.volume_count = count
        self.capabilities = caps or {}
        self.availability_zone = zone

    @property
    def free_virtual_gb(self):
        return self.usable_capacity_gb - self.allocated_capacity_gb


def test_capabilities_filter_scopes():
    pool = FakePool("p", caps={"volume_backend_name": "file", "thin_provisioning_support": True})
    assert filters.capabilities_filter(pool, {"extra_specs": {"volume_backend_name": "file"}})
    assert not filters.capabilities_filter(pool, {"extra_specs": {"volume_backend_name": "rbd"}})
    assert filters.capabilities_filter(pool, {"extra_specs": {
        "capabilities:thin_provisioning_support": "<is> True"}})
    # other scopes are for drivers, not the scheduler
    assert filters.capabilities_filter(pool, {"extra_specs": {"qos:read_iops": "100"}})
    assert not filters.capabilities_filter(pool, {"extra_specs": {"missing_cap": "x"}})


def test_capacity_and_zone_filters():
    pool = FakePool("p", usable=10, allocated=8)
    assert filters.capacity_filter(pool, {"size": 2})
    assert not filters.capacity_filter(pool, {"size": 3})
    assert filters.availability_zone_filter(pool, {"availability_zone": "nova"})
    assert not filters.availability_zone_filter(pool, {"availability_zone": "az2"})
    assert filters.availability_zone_filter(pool, {})


def test_weighers():
    a = FakePool("a", usable=100, allocated=10, count=5)
    b = FakePool("b", usable=100, allocated=50, count=1)
    assert [p.name for p in weighers.weigh([a, b], ["CapacityWeigher"])] == ["a", "b"]
    assert [p.name for p in weighers.weigh([a, b], ["VolumeNumberWeigher"])] == ["b", "a"]
    assert [p.name for p in weighers.weigh([a, b], ["AllocatedCapacityWeigher"])] == ["a", "b"]
    tie = FakePool("c", usable=100, allocated=10, count=5)
    assert [p.name for p in weighers.weigh([tie, a], ["CapacityWeigher"])] == ["a", "c"]


@pytest.mark.parametrize("args,expected", [
    # thin: ratio x total minus reserved
    ((100, 100, 0, True, 2.0, 0), 200),
    ((100, 100, 0, True, 2.0, 10), 190),
    # thin but physically full beyond the reserve: nothing more than what is allocated
    ((100, 5, 150, True, 2.0, 10), 150),
    # thick: what is allocated plus what is free, never more than total minus reserved
    ((100, 60, 40, False, 20.0, 0), 100),
    ((100, 30, 40, False, 1.0, 10), 60),
    ((100, 0, 0, False, 1.0, 0), 0),
])
def test_usable_capacity_formula(args, expected):
    assert usable_capacity_gb(*args) == expected
