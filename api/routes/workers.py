"""POST /workers/cleanup (3.24): end the operations volume services own in the workers table.

Cinder's API reference, "Workers": the body filters the services (all optional), the
answer is 202 with the services sent a cleanup (`cleaning`) and those no service could
clean for (`unavailable`). Here a volume service that is up cleans up its own operations
that no flow runs (lost requests); the operations of one that is down are taken over by an
up volume service of the same back end (volume_backend_name), as `lamina-manage volume
cleanup` does; with none, the service is unavailable. The cleanup is a cast through the
volume rpcapi (clean_up_operations): it runs after the answer. `until` is checked but
narrows nothing: every operation no flow runs qualifies."""

import datetime
import logging

import flask

from api import microversion, policy
from api.routes.helpers import as_bool, ctx, json_body, reply
from common import exception, service
from common.db import api as db
from volume_worker import rpcapi as volume_rpcapi

LOG = logging.getLogger(__name__)

bp = flask.Blueprint("workers", __name__)

FILTERS = {"cluster_name", "service_id", "host", "binary", "is_up", "disabled",
           "resource_id", "resource_type", "until"}


def _view(row):
    return {"id": row.id, "host": row.host, "binary": service.cinder_binary(row.binary),
            "cluster_name": None}


def _backend_names(host):
    return {p.volume_backend_name for p in db.pool_get_all(host=host)}


def cleaner_for(row, services):
    """The host of the volume service that ends row's operations: its own when it is up,
    else an up and enabled one of the same back end; None when there is none."""
    if service.is_up(row.heartbeat_at):
        return row.host
    names = _backend_names(row.host)
    for peer in services:
        if peer.host != row.host and service.is_up(peer.heartbeat_at) and \
                not peer.disabled and _backend_names(peer.host) & names:
            return peer.host
    return None


def _filters():
    raw = flask.request.get_data(cache=True)
    body = json_body() if raw.strip() else {}
    unknown = sorted(set(body) - FILTERS)
    if unknown:
        raise exception.InvalidInput(reason="Invalid filters %s: one of %s."
                                     % (", ".join(unknown), ", ".join(sorted(FILTERS))))
    binary = body.get("binary")
    if binary and service.lamina_binary(binary) != service.VOLUME_BINARY:
        raise exception.InvalidInput(reason="Only cinder-volume services have operations "
                                            "to clean up, not %s." % binary)
    for name in ("is_up", "disabled"):
        if name in body:
            body[name] = as_bool(body[name], name)
    if body.get("service_id") is not None:
        try:
            body["service_id"] = int(body["service_id"])
        except (TypeError, ValueError):
            raise exception.InvalidInput(reason="service_id must be an integer.")
    if body.get("until"):
        try:
            body["until"] = datetime.datetime.fromisoformat(str(body["until"]))
        except ValueError:
            raise exception.InvalidInput(reason="until must be a date and time.")
    return body


@bp.post("/workers/cleanup")
def workers_cleanup(project_id):
    microversion.require((3, 24))
    policy.authorize(ctx(), "workers:cleanup")
    body = _filters()
    volume_services = db.service_get_all(binary=service.VOLUME_BINARY)
    rows = db.service_get_all(host=body.get("host"), binary=service.VOLUME_BINARY)
    if body.get("cluster_name"):
        rows = []  # no Lamina service is clustered
    if body.get("service_id") is not None:
        rows = [r for r in rows if r.id == body["service_id"]]
    if "is_up" in body:
        rows = [r for r in rows if service.is_up(r.heartbeat_at) == body["is_up"]]
    if "disabled" in body:
        rows = [r for r in rows if bool(r.disabled) == body["disabled"]]
    if body.get("resource_id") or body.get("resource_type"):
        owners = {w.host for w in db.worker_get_all()
                  if (not body.get("resource_id") or w.resource_id == body["resource_id"])
                  and (not body.get("resource_type") or
                       w.resource_type == body["resource_type"])}
        rows = [r for r in rows if r.host in owners]
    cleaning, unavailable = [], []
    rpcapi = volume_rpcapi.VolumeAPI()
    for row in rows:
        cleaner = cleaner_for(row, volume_services)
        if cleaner is None:
            unavailable.append(_view(row))
            continue
        try:
            rpcapi.clean_up_operations(ctx(), cleaner, row.host, wait=False)
        except Exception as exc:
            LOG.warning("Could not ask %s to clean up %s's operations: %s", cleaner, row.host,
                        exc)
            unavailable.append(_view(row))
            continue
        LOG.info("%s cleans up the operations of %s", cleaner, row.host)
        cleaning.append(_view(row))
    return reply({"cleaning": cleaning, "unavailable": unavailable}, status=202)
