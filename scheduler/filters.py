"""Filters: which pools can take a request. Each is a function (pool, request) -> bool."""

from common.extra_specs import spec_matches


def availability_zone_filter(pool, request):
    zone = request.get("availability_zone")
    return not zone or pool.availability_zone == zone


def capacity_filter(pool, request):
    return pool.free_virtual_gb >= request["size"]


def capabilities_filter(pool, request):
    """Every extra spec without a scope (or with the `capabilities:` scope) must be matched
    by the pool's capabilities; other scopes (qos:, ...) are for the drivers."""
    for key, wanted in request.get("extra_specs", {}).items():
        scope, _, name = key.rpartition(":")
        if scope and scope != "capabilities":
            continue
        if name not in pool.capabilities:
            return False
        if not spec_matches(pool.capabilities[name], wanted):
            return False
    return True


def backend_up_filter(pool, request):
    return pool.is_up(request.get("reported_after"))


FILTERS = {
    "AvailabilityZoneFilter": availability_zone_filter,
    "CapacityFilter": capacity_filter,
    "CapabilitiesFilter": capabilities_filter,
    "BackendUpFilter": backend_up_filter,
}
