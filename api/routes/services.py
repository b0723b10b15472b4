"""/os-services, /scheduler-stats/get_pools and /messages."""

import json
import logging

import flask
from oslo_config import cfg

from api import microversion, policy, schemas, views
from api.routes import resource_filters
from api.routes.helpers import accepted, as_bool, ctx, json_body, no_body, paging, reply
from common import control, exception, service
from common.db import api as db
from common.db import models
from scheduler import rpcapi as scheduler_rpcapi

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

bp = flask.Blueprint("services", __name__)


def service_state(row):
    return "up" if service.is_up(row.heartbeat_at) else "down"


@bp.get("/os-services")
def services_index(project_id):
    policy.authorize(ctx(), "volume_extension:services:index")
    args = flask.request.args
    binary = args.get("binary")
    rows = db.service_get_all(host=args.get("host"),
                              binary=service.lamina_binary(binary) if binary else None)
    states = backend_states() if microversion.at_least((3, 49)) else None
    return reply({"services": [views.service(r, service_state(r), states) for r in rows]})


def backend_states():
    """3.49: {host@backend: "up" or "down"}, the state of each back end's storage as its
    volume service last reported it in its pools' capabilities (`backend_state`; "up" when
    the driver does not say). "up" when a fresh report of one of its pools says up, the pools
    the scheduler can place on; otherwise "down", also for a back end with no fresh report
    (its service down or not started): Cinder sends null there, from its scheduler's memory,
    but Tempest's schema wants a string and "down" is what a client can act on."""
    states = {}
    for pool in db.pool_get_all():
        try:
            reported = json.loads(pool.capabilities or "{}").get("backend_state", "up")
        except ValueError:
            reported = "up"
        up = service.is_up(pool.reported_at) and reported == "up"
        if up or pool.host not in states:
            states[pool.host] = "up" if up else "down"
    return states


def _find_service(host, binary):
    """The service a client names by host and binary (Cinder's or Lamina's name): the one on
    exactly that host, else the first Cinder's host matching finds (a plain host also names
    its `host@backend` services, as in Cinder)."""
    rows = db.service_get_all(host=host, binary=service.lamina_binary(binary))
    if not rows:
        raise exception.ServiceNotFound(
            message="Service %s could not be found on host %s." % (binary, host))
    return next((r for r in rows if r.host == host), rows[0])


def _valid_reason(reason):
    return isinstance(reason, str) and bool(reason.strip()) and len(reason) <= 255


def _set_enabled(action):
    body = json_body(schemas.service_enable)
    host = body.get("host")
    if not host:
        raise exception.InvalidInput(reason="Host field is missing.")
    disabled = action != "enable"
    reply_body = {"disabled": disabled}
    if action == "enable":
        reply_body["disabled_reason"] = None
    elif action == "disable-log-reason":
        reason = body.get("disabled_reason")
        if not _valid_reason(reason):
            raise exception.BadRequest("Disabled reason contains invalid characters or is too "
                                       "long")
        reply_body["disabled_reason"] = reason
    # `service` is Cinder's deprecated spelling; `binary` wins when both are given.
    binary = body.get("binary") or body.get("service")
    if not binary:
        raise exception.BadRequest("Missing required element 'binary' in request body.")
    row = _find_service(host, binary)
    values = {"disabled": disabled}
    if "disabled_reason" in reply_body:
        values["disabled_reason"] = reply_body["disabled_reason"]
    db.service_update(row.host, row.binary, values)
    if row.binary == service.VOLUME_BINARY:
        _tell_schedulers(row.host)
    # Cinder echoes the host and the two binary keys as the request gave them.
    reply_body.update(host=host, service=body.get("service") or "",
                      binary=body.get("binary") or "",
                      status="disabled" if disabled else "enabled")
    return reply(reply_body)


def _tell_schedulers(host):
    """The schedulers skip a disabled or frozen back end from the next request on (without
    this, from their next periodic reload); the change is in the database either way."""
    try:
        scheduler_rpcapi.SchedulerAPI().service_changed(ctx(), host)
    except Exception as exc:
        LOG.warning("Could not tell the schedulers that %s changed (%s): they see it at "
                    "their next pool reload", host, exc)


def _cluster_or_host(body, cluster_version):
    """(cluster, host) of a replication request, as Cinder reads them: from cluster_version
    on exactly one of the two, below it the host alone."""
    if cluster_version is not None and microversion.at_least(cluster_version):
        cluster, message = body.get("cluster"), "One and only one of cluster and host must be set."
    else:
        cluster, message = None, "Host field is missing."
    host = body.get("host")
    if bool(cluster) == bool(host):
        raise exception.InvalidInput(reason=message)
    return cluster, host


def _backend_services(cluster, host, not_found):
    """The volume services a freeze, thaw or failover names: one back end's."""
    if cluster:
        # No Lamina service is clustered, so no cluster name finds any.
        raise not_found("No service found with cluster=%s" % cluster)
    rows = db.service_get_all(host=host, binary=service.VOLUME_BINARY)
    if not rows:
        raise not_found("No service found with host=%s" % host)
    if any(r.host != rows[0].host for r in rows):
        raise exception.InvalidInput(reason="Services from different clusters found.")
    return rows


def _as_bad_request(message):
    return exception.InvalidInput(reason=message)


def _not_found(message):
    return exception.ServiceNotFound(message=message)


def _set_frozen(body, frozen):
    """Freeze (frozen True) or thaw the back end the body names: a conditional update of each
    of its volume service rows from the other state, so that of two concurrent freezes one
    wins and the other is refused, as Cinder's. The volume service needs no message: the API
    refuses management operations on a frozen back end's volumes (api/backends.py) and the
    scheduler places nothing on it (scheduler/host_state.py), both reading this column."""
    cluster, host = _cluster_or_host(body, (3, 26))
    rows = _backend_services(cluster, host, _as_bad_request)
    changed = [r for r in rows
               if db.conditional_update(models.Service, r.id, {"frozen": frozen},
                                        {"frozen": not frozen})]
    if not changed:
        # Cinder's words for a back end already in the state asked for.
        raise exception.InvalidInput(
            reason="No service could be changed: frozen in %s must be %s to failover."
                   % ([r.host for r in rows], not frozen))
    LOG.info("Back end %s %s", rows[0].host, "frozen" if frozen else "thawed")
    _tell_schedulers(rows[0].host)
    return no_body(200)


def _freeze(body):
    policy.authorize(ctx(), "volume:freeze_host")
    return _set_frozen(body, True)


def _thaw(body):
    policy.authorize(ctx(), "volume:thaw_host")
    return _set_frozen(body, False)


def _failover(body, clustered):
    policy.authorize(ctx(), "volume:failover_host")
    cluster, host = _cluster_or_host(body, (3, 26) if clustered else None)
    rows = _backend_services(cluster, host, _not_found)
    # No Lamina back end replicates: Cinder's answer for a service whose replication is off.
    raise exception.InvalidInput(
        reason="No service could be changed: replication_status in %s must be enabled or "
               "failed-over and must be up to failover." % [r.host for r in rows])


@bp.put("/os-services/<action>")
def services_update(project_id, action):
    policy.authorize(ctx(), "volume_extension:services:update")
    if action in ("enable", "disable", "disable-log-reason"):
        return _set_enabled(action)
    if action == "freeze":
        return _freeze(json_body(schemas.service_replication))
    if action == "thaw":
        return _thaw(json_body(schemas.service_replication))
    # failover ends in a refusal today: no back end replicates (see _failover).
    if action == "failover_host" or (action == "failover" and microversion.at_least((3, 26))):
        _failover(json_body(schemas.service_replication), action == "failover")
    if action in ("set-log", "get-log") and microversion.at_least((3, 32)):
        return _log_levels(action, json_body())
    raise exception.InvalidInput(reason="Unknown action")


# Binaries set-log and get-log name, as Cinder's: "*" is every one, the API included.
_LOG_BINARIES = ("*", "cinder-api", "cinder-scheduler", "cinder-volume", "cinder-backup")
API_BINARY = "cinder-api"


def _log_levels(action, body):
    """3.32 set-log and get-log, as Cinder's: the API's own loggers (it is `cinder-api` on
    [DEFAULT] host) and those of the up services the body names, through each one's control
    endpoint (common/control.py). set-log answers 202 without waiting for the services;
    get-log lists the services that answered within control_rpc_timeout."""
    allowed = {"binary", "server", "prefix"} | ({"level"} if action == "set-log" else set())
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise exception.InvalidInput(reason="Additional properties are not allowed (%s "
                                            "unexpected)." % ", ".join(unknown))
    binary = body.get("binary") or "*"
    if binary not in _LOG_BINARIES:
        raise exception.InvalidInput(reason="%s is not a valid binary: one of %s."
                                     % (binary, ", ".join(_LOG_BINARIES)))
    server, prefix = body.get("server"), body.get("prefix")
    for name, value in (("server", server), ("prefix", prefix)):
        if value is not None and not isinstance(value, str):
            raise exception.InvalidInput(reason="%s must be a string." % name)
    level = control.validate_level(body.get("level")) if action == "set-log" else None
    api_too = binary in ("*", API_BINARY) and (not server or server == CONF.host)
    rows = [r for r in db.service_get_all(host=server)
            if service.is_up(r.heartbeat_at) and binary in ("*", service.cinder_binary(r.binary))]
    client = control.ControlClient()
    if action == "set-log":
        if api_too:
            control.set_log_levels(level, prefix)
        for row in rows:
            try:
                client.cast(row, "set_log_levels", level=level, prefix=prefix)
            except Exception as exc:
                LOG.warning("Could not send the log level to %s on %s: %s", row.binary,
                            row.host, exc)
        return accepted()
    levels = []
    if api_too:
        levels.append({"binary": API_BINARY, "host": CONF.host,
                       "levels": control.get_log_levels(prefix)})
    for row, answer, error in client.each(rows, "get_log_levels", prefix=prefix):
        if error is not None:
            LOG.warning("get-log: %s", error)
            continue
        levels.append({"binary": service.cinder_binary(row.binary), "host": row.host,
                       "levels": answer["levels"]})
    return reply({"log_levels": levels})


@bp.get("/scheduler-stats/get_pools")
def get_pools(project_id):
    policy.authorize(ctx(), "scheduler_extension:scheduler_stats:get_pools")
    detail = as_bool(flask.request.args.get("detail", "false"), "detail")
    pools = resource_filters.filter_pools(db.pool_get_all())
    return reply({"pools": [views.pool(p, detail) for p in pools]})


@bp.get("/messages")
def messages_index(project_id):
    microversion.require((3, 3))
    policy.authorize(ctx(), "message:get_all")
    if microversion.at_least((3, 5)):
        limit, marker, _, _ = paging(("created_at",))
    else:
        limit, marker = None, None
    msgs = db.message_get_all(ctx(), resource_uuid=flask.request.args.get("resource_uuid"),
                              marker=marker, limit=limit)
    return reply({"messages": [views.message(m) for m in msgs]})


@bp.get("/messages/<message_id>")
def messages_show(project_id, message_id):
    microversion.require((3, 3))
    message = db.message_get(ctx(), message_id)
    policy.authorize(ctx(), "message:get", message)
    return reply({"message": views.message(message)})


@bp.delete("/messages/<message_id>")
def messages_delete(project_id, message_id):
    microversion.require((3, 3))
    policy.authorize(ctx(), "message:delete", db.message_get(ctx(), message_id))
    db.message_delete(ctx(), message_id)
    return no_body(204)
