"""Filters: which pools can take a request.

Each filter is a function (pool, request) -> reason: None when the pool passes, else why it
is rejected, in words an operator reads (`lamina-manage scheduler explain`, the scheduler's
decision history). ``passes`` and the boolean forms (``capabilities_filter``, ...) are for
callers that only need a yes or no."""

from common.extra_specs import spec_matches


def availability_zone(pool, request):
    zone = request.get("availability_zone")
    if not zone or pool.availability_zone == zone:
        return None
    return "pool is in availability zone %s, %s asked" % (pool.availability_zone, zone)


def capacity(pool, request):
    free = pool.free_virtual_gb
    if free >= request["size"]:
        return None
    return "%g GiB free to claim (usable %g, allocated %g), %d GiB asked" % (
        free, pool.usable_capacity_gb, pool.allocated_capacity_gb, request["size"])


def capabilities(pool, request):
    """Every extra spec without a scope (or with the `capabilities:` scope) must be matched
    by the pool's capabilities; other scopes (qos:, ...) are for the drivers."""
    for key, wanted in request.get("extra_specs", {}).items():
        scope, _, name = key.rpartition(":")
        if scope and scope != "capabilities":
            continue
        if name not in pool.capabilities:
            return "extra spec %s=%s: the pool reports no %s" % (key, wanted, name)
        if not spec_matches(pool.capabilities[name], wanted):
            return "extra spec %s=%s: the pool reports %s=%s" % (
                key, wanted, name, pool.capabilities[name])
    return None


def backend_up(pool, request):
    if pool.backend_state != "up":
        return "back end state is %s" % pool.backend_state
    if pool.service_disabled:
        return "volume service %s is disabled" % pool.host
    if pool.service_frozen:
        return "volume service %s is frozen" % pool.host
    if not pool.is_up(request.get("reported_after")):
        return "no capacity report since %s (last: %s)" % (
            request.get("reported_after") or "service_down_time ago", pool.reported_at)
    return None


FILTERS = {
    "AvailabilityZoneFilter": availability_zone,
    "CapacityFilter": capacity,
    "CapabilitiesFilter": capabilities,
    "BackendUpFilter": backend_up,
}


def first_rejection(pool, request, names):
    """(filter name, reason) of the first of `names` that rejects the pool, or None."""
    for name in names:
        reason = FILTERS[name](pool, request)
        if reason is not None:
            return name, reason
    return None


def passes(pool, request, names):
    return first_rejection(pool, request, names) is None


def availability_zone_filter(pool, request):
    return availability_zone(pool, request) is None


def capacity_filter(pool, request):
    return capacity(pool, request) is None


def capabilities_filter(pool, request):
    return capabilities(pool, request) is None


def backend_up_filter(pool, request):
    return backend_up(pool, request) is None
