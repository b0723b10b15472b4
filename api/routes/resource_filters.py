"""GET /resource_filters (3.33): the query filters each list accepts.

Cinder reads these from an operator's resource_filters.json (3.31); Lamina's are fixed by its
code, so this table says what the list routes accept from any caller (administrators may add
the admin-only filters: `project_id` and `host` on volumes, `project_id` on snapshots). As in
Cinder's file, a filter written `key~` (3.34) accepts both `key` (exact) and `key~` (contains).
"""

import json
import types

import flask

from api import microversion
from api.routes.helpers import as_bool, reply
from api.routes.volumes import LIKE_FILTERS as VOLUME_LIKE_FILTERS
from common import exception
from common.db import api as db

bp = flask.Blueprint("resource_filters", __name__)

# resource -> [(filter, first microversion the list accepts it at)]
FILTERS = {
    "volume": [("name", (3, 0)), ("status", (3, 0)), ("metadata", (3, 0)),
               ("availability_zone", (3, 0)), ("volume_type", (3, 0)),
               ("bootable", (3, 0)), ("glance_metadata", (3, 4)), ("group_id", (3, 10)),
               ("created_at", (3, 60)), ("updated_at", (3, 60)), ("consumes_quota", (3, 65))],
    "snapshot": [("name", (3, 0)), ("status", (3, 0)), ("volume_id", (3, 0)),
                 ("metadata", (3, 22)), ("consumes_quota", (3, 65))],
    "message": [("resource_uuid", (3, 3))],
    "pool": [("name", (3, 28)), ("volume_type", (3, 35))],
    "volume_type": [("is_public", (3, 0)), ("extra_specs", (3, 52))],
}
LIKE_FILTERS = {"volume": VOLUME_LIKE_FILTERS}


def enabled_filters(resource=None):
    """{resource: [filter, ...]} at the request's microversion."""
    result = {}
    for name, filters in FILTERS.items():
        if resource is not None and name != resource:
            continue
        like = set(LIKE_FILTERS.get(name, ())) if microversion.at_least((3, 34)) else set()
        shown = []
        for key, since in filters:
            if microversion.at_least(since):
                shown.append(key + "~" if key + "~" in like else key)
        result[name] = shown
    return result


@bp.get("/resource_filters")
def index(project_id):
    microversion.require((3, 33))
    filters = enabled_filters(flask.request.args.get("resource"))
    return reply({"resource_filters": [{"resource": name, "filters": keys}
                                       for name, keys in filters.items()]})


# --- scheduler-stats/get_pools filters (3.28, 3.35) ----------------------------------------

def _equal_after_convert(capability, value):
    """A query value (text) against a reported capability, as Cinder's scheduler compares."""
    if capability is None or isinstance(capability, str):
        return value == capability
    if isinstance(capability, bool):
        try:
            return capability == as_bool(value, "filter")
        except exception.InvalidInput:
            return False
    return str(value) == str(capability)


def _fits_type(capabilities, vtype):
    """3.35: would the scheduler's capabilities filter let a volume of this type onto the
    pool? (The same function placement runs.)"""
    from scheduler.filters import capabilities_filter

    specs = {e.key: e.value for e in vtype.extra_specs}
    return capabilities_filter(types.SimpleNamespace(capabilities=capabilities),
                               {"extra_specs": specs})


def filter_pools(pools):
    """The pools a get_pools request asks for. Below 3.28 every filter is ignored; from 3.28
    `name` is the pool's full name and any other key must equal that capability; from 3.31
    only the filters /resource_filters lists are accepted (others 400); `volume_type` (name
    or id) counts from 3.35 and keeps the pools whose capabilities satisfy its extra specs."""
    if not microversion.at_least((3, 28)):
        return pools
    filters = {k: v for k, v in flask.request.args.items() if k != "detail"}
    if microversion.at_least((3, 31)):
        invalid = [k for k in filters if k not in ("name", "volume_type")]
        if invalid:
            raise exception.InvalidInput(reason="Invalid filters %s are found in query "
                                                "options." % ",".join(invalid))
    name = filters.pop("name", None)
    type_ref = filters.pop("volume_type", None)
    vtype = None
    if type_ref is not None and microversion.at_least((3, 35)):
        vtype = db.volume_type_get_by_name_or_id(type_ref)
    kept = []
    for pool in pools:
        capabilities = json.loads(pool.capabilities or "{}")
        if name is not None and pool.name != name:
            continue
        if not all(_equal_after_convert(capabilities.get(k), v) for k, v in filters.items()):
            continue
        if vtype is not None and not _fits_type(capabilities, vtype):
            continue
        kept.append(pool)
    return kept
