"""/clusters (3.7): Lamina runs no clustered services (each volume service is its own
host@backend, and `cluster` is null in every services view), so the lists are empty and a
named cluster is not found, as Cinder answers when no service is clustered."""

import flask

from api import microversion, policy, schemas
from api.routes.helpers import as_bool, ctx, json_body, reply
from common import exception

bp = flask.Blueprint("clusters", __name__)

LIST_FILTERS = {"name", "binary", "is_up", "disabled", "num_hosts", "num_down_hosts"}
# Filters on replication fields, from 3.26 (Cinder's replication on clusters).
REPLICATION_FILTERS = {"replication_status", "frozen", "active_backend_id"}


def _list(detail):
    microversion.require((3, 7))
    policy.authorize(ctx(), "clusters:get_all")
    allowed = LIST_FILTERS | (REPLICATION_FILTERS if microversion.at_least((3, 26)) else set())
    args = flask.request.args
    invalid = sorted(set(args) - allowed)
    if invalid:
        raise exception.InvalidInput(reason="Invalid filter keys: %s" % ", ".join(invalid))
    for key in ("disabled", "is_up"):
        if key in args:
            as_bool(args[key], key)
    return reply({"clusters": []})


@bp.get("/clusters")
def clusters_index(project_id):
    return _list(detail=False)


@bp.get("/clusters/detail")
def clusters_detail(project_id):
    return _list(detail=True)


def _not_found(name, binary):
    return exception.NotFound("Cluster {'name': %r, 'binary': %r} could not be found."
                              % (name, binary))


@bp.get("/clusters/<name>")
def clusters_show(project_id, name):
    microversion.require((3, 7))
    policy.authorize(ctx(), "clusters:get")
    raise _not_found(name, flask.request.args.get("binary", "cinder-volume"))


@bp.put("/clusters/<action>")
def clusters_update(project_id, action):
    microversion.require((3, 7))
    policy.authorize(ctx(), "clusters:update")
    if action not in ("enable", "disable"):
        raise exception.NotFound("Unknown action")
    body = json_body(schemas.cluster_update)
    reason = body.get("disabled_reason")
    if action == "disable" and reason is not None and (
            not reason.strip() or len(reason) > 255):
        raise exception.InvalidInput(reason="Disabled reason contains invalid characters or "
                                            "is too long")
    if not body.get("name"):
        raise exception.BadRequest("Missing required element 'name' in request body.")
    raise _not_found(body["name"], body.get("binary") or "cinder-volume")
