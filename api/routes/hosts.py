"""/os-hosts (Cinder's hosts extension: list and show; Cinder never implemented its update,
so PUT is 405 here) and /capabilities/{host@backend}."""

import json

import flask

from api import policy, views
from api.routes.helpers import ctx, reply
from common import exception, service
from common.db import api as db
from common.db import hosts_api

bp = flask.Blueprint("hosts", __name__)


def _state(row):
    return "up" if service.is_up(row.heartbeat_at) else "down"


@bp.get("/os-hosts")
def hosts_index(project_id):
    policy.authorize(ctx(), "volume_extension:hosts")
    # As Cinder: the enabled services, of one zone when `zone` is given and not empty.
    zone = flask.request.args.get("zone")
    rows = [r for r in db.service_get_all() if not r.disabled
            and (not zone or r.availability_zone == zone)]
    return reply({"hosts": [views.host(r, _state(r)) for r in rows]})


@bp.get("/os-hosts/<host_name>")
def hosts_show(project_id, host_name):
    """What the volume back end holds, in all and per project. A plain host names its
    first back end, as Cinder's lookup by host and topic finds it."""
    policy.authorize(ctx(), "volume_extension:hosts")
    rows = db.service_get_all(host=host_name, binary=service.VOLUME_BINARY)
    if not rows:
        raise exception.ServiceNotFound(
            message="Service cinder-volume could not be found on host %s." % host_name)
    backend = next((r for r in rows if r.host == host_name), rows[0]).host
    usage = hosts_api.backend_usage(backend)
    totals = [sum(figures[i] for figures in usage.values()) for i in range(4)]
    resources = [views.host_resource(host_name, "(total)", totals)]
    resources += [views.host_resource(host_name, project, usage[project])
                  for project in sorted(usage, key=str)]
    return reply({"host": resources})


@bp.get("/capabilities/<host_name>")
def capabilities_show(project_id, host_name):
    """The capabilities the back end's volume service last reported with its pools (a pool
    name after `#`, if any, is dropped: capabilities are the back end's)."""
    policy.authorize(ctx(), "volume_extension:capabilities")
    backend = host_name.partition("#")[0]
    rows = [r for r in db.service_get_all(host=backend, binary=service.VOLUME_BINARY)
            if r.host == backend]
    if not rows:
        raise exception.NotFound("Can't find service: %s" % host_name)
    pools = db.pool_get_all(host=backend)
    report = json.loads(pools[0].capabilities or "{}") if pools else {}
    return reply(views.capabilities(backend, report))
