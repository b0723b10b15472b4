"""Matching a volume type's extra specs against capabilities, as Cinder's scheduler does.
The scheduler's capabilities filter and the api (is a type multiattach?) read the same rules.
"""

import operator


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


def is_true(spec_value):
    """Does an extra spec such as `multiattach` say yes ('<is> True', 'True')?"""
    return spec_value is not None and spec_matches(True, spec_value)


AZ_SPEC = "RESKEY:availability_zones"


def availability_zones(specs):
    """The zones a type's RESKEY:availability_zones (a comma-separated list, reserved since
    Cinder's 3.52) allows its volumes in, or None when the type does not say."""
    if AZ_SPEC not in specs:
        return None
    return [zone.strip() for zone in str(specs[AZ_SPEC]).split(",") if zone.strip()]
