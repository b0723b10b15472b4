"""Filters: which pools can take a request. Each is a function (pool, request) -> bool."""

import operator


def availability_zone_filter(pool, request):
    zone = request.get("availability_zone")
    return not zone or pool.availability_zone == zone


def capacity_filter(pool, request):
    return pool.free_virtual_gb >= request["size"]


def _as_number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _compare_numbers(op):
    def compare(actual, wanted):
        a, w = _as_number(actual), _as_number(wanted)
        return a is not None and w is not None and op(a, w)
    return compare


def _as_bool(value):
    return str(value).strip().lower() in ("true", "1", "yes", "on")


_OPERATORS = {
    "<is>": lambda actual, wanted: _as_bool(actual) == _as_bool(wanted),
    "=": _compare_numbers(operator.ge),  # Cinder: "= N" means at least N
    "==": _compare_numbers(operator.eq),
    "!=": _compare_numbers(operator.ne),
    ">=": _compare_numbers(operator.ge),
    "<=": _compare_numbers(operator.le),
    ">": _compare_numbers(operator.gt),
    "<": _compare_numbers(operator.lt),
    "s==": lambda a, w: str(a) == w,
    "s!=": lambda a, w: str(a) != w,
    "s>=": lambda a, w: str(a) >= w,
    "s<=": lambda a, w: str(a) <= w,
    "s>": lambda a, w: str(a) > w,
    "s<": lambda a, w: str(a) < w,
    "<in>": lambda a, w: w in str(a),
}


def spec_matches(actual, requirement):
    """Does a capability value satisfy an extra spec value such as '<is> True', '>= 10',
    '<in> ssd', '<or> a <or> b' or a plain 'value'?"""
    requirement = str(requirement).strip()
    words = requirement.split()
    if words and words[0] == "<or>":
        choices = [c.strip() for c in requirement.split("<or>") if c.strip()]
        return str(actual) in choices
    if len(words) >= 2 and words[0] in _OPERATORS:
        return _OPERATORS[words[0]](actual, requirement[len(words[0]):].strip())
    if isinstance(actual, bool):
        return actual == _as_bool(requirement)
    return str(actual) == requirement


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
