"""The WSGI application: routes, microversions, auth, Cinder-shaped errors."""

import logging

import flask
import werkzeug.exceptions
from oslo_config import cfg
from sqlalchemy import exc as sa_exc

from api import access_log, auth, metrics, microversion
from api.attachment_requests import Attachments
from api.backup_requests import BackupRequests
from api.routes import (
    attachments,
    availability_zones,
    backups,
    clusters,
    default_types,
    encryption_types,
    extensions,
    group_snapshots,
    group_types,
    groups,
    helpers,
    hosts,
    manageable,
    qos_specs,
    quotas,
    resource_filters,
    services,
    snapshots,
    transfers,
    type_access,
    types,
    versions,
    volume_actions,
    volume_encryption,
    volumes,
    workers,
)
from api.snapshot_requests import SnapshotRequests
from api.volume_requests import VolumeRequests
from common import exception
from common.db import session as db_session

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
# What a client is told to wait when the database is away (a restart takes seconds).
DB_UNAVAILABLE_RETRY_AFTER = 5
RESOURCE_BLUEPRINTS = (volumes.bp, volume_actions.bp, snapshots.bp, types.bp, services.bp,
                       qos_specs.bp, encryption_types.bp, volume_encryption.bp, default_types.bp,
                       quotas.bp, manageable.bp, resource_filters.bp, type_access.bp,
                       transfers.bp, hosts.bp, availability_zones.bp, extensions.bp,
                       clusters.bp, group_types.bp, groups.bp, group_snapshots.bp,
                       attachments.bp, backups.bp, workers.bp)


def _fault(code, fault, message):
    return helpers.reply({fault: {"code": code, "message": message}}, code)


def _before_request():
    db_session.set_thread_connect_retry_timeout(CONF.database.api_connect_retry_timeout)
    path = flask.request.path
    api_major = 2 if path.startswith("/v2") else 3
    flask.g.api_major = api_major
    view_args = flask.request.view_args or {}
    if "project_id" not in view_args:
        return  # version documents and unknown paths
    flask.g.api_version = microversion.negotiate(flask.request.headers, api_major)
    url_project = view_args["project_id"]
    ctx = auth.build_context(url_project)
    if url_project is not None and ctx.project_id != url_project:
        raise exception.BadRequest("Malformed request url")
    ctx.update_store()
    flask.g.ctx = ctx


def _after_request(response):
    if getattr(flask.g, "api_major", None) == 3 and hasattr(flask.g, "api_version"):
        response.headers[microversion.HEADER] = "volume " + microversion.to_str(
            flask.g.api_version)
        response.headers.add("Vary", microversion.HEADER)
    ctx = getattr(flask.g, "ctx", None)
    if ctx is not None:
        response.headers["X-OpenStack-Request-ID"] = ctx.request_id
    return response


def _log_refusal(code, fault, message):
    """Every error answer once in the log: a 4xx at INFO with the reason the client got (the
    request id, user and project come from the request context oslo.log formats in), a 5xx at
    ERROR with its traceback."""
    rule = flask.request.url_rule.rule if flask.request.url_rule is not None else "-"
    if code >= 500:
        LOG.error("%s %s (%s) answered %d %s: %s", flask.request.method, flask.request.path,
                  rule, code, fault, message, exc_info=True)
    else:
        LOG.info("%s %s (%s) refused %d %s: %s", flask.request.method, flask.request.path,
                 rule, code, fault, message)


def _handle_lamina_error(exc):
    _log_refusal(exc.code, exc.fault, exc.msg)
    return _fault(exc.code, exc.fault, exc.msg)


def _handle_http_error(exc):
    faults = {404: "itemNotFound", 405: "badMethod", 400: "badRequest", 413: "overLimit"}
    message = {404: "The resource could not be found."}.get(exc.code, exc.description)
    _log_refusal(exc.code, faults.get(exc.code, "computeFault"), message)
    return _fault(exc.code, faults.get(exc.code, "computeFault"), message)


def _handle_database_error(exc):
    """The database refused, lost or could not give a connection: 503 with Retry-After
    (nothing was committed by the failed transaction); any other database error is a 500."""
    if not db_session.is_unavailable_error(exc):
        return _handle_unexpected(exc)
    message = "The database is unavailable; retry later."
    LOG.warning("%s %s answered 503: database unavailable (%s)", flask.request.method,
                flask.request.path, str(exc).splitlines()[0])
    response = _fault(503, "serviceUnavailable", message)
    response.headers["Retry-After"] = str(DB_UNAVAILABLE_RETRY_AFTER)
    return response


def _teardown_request(_exc):
    db_session.set_thread_connect_retry_timeout(None)


def _handle_unexpected(exc):
    LOG.exception("Unexpected error in %s %s", flask.request.method, flask.request.path)
    return _fault(500, "computeFault", "The server has either erred or is incapable of "
                                       "performing the requested operation.")


def create_app():
    app = flask.Flask("lamina")
    app.config["volume_requests"] = VolumeRequests()
    app.config["backup_requests"] = BackupRequests(app.config["volume_requests"])
    app.config["snapshot_requests"] = SnapshotRequests()
    app.config["attachment_requests"] = Attachments()
    app.register_blueprint(versions.bp)
    for bp in RESOURCE_BLUEPRINTS:
        app.register_blueprint(bp, url_prefix="/v3/<project_id>", name="v3_" + bp.name)
        app.register_blueprint(bp, url_prefix="/v2/<project_id>", name="v2_" + bp.name)
        # Cinder serves every resource without the project in the URL too (announced as
        # 3.67, accepted at every version): the project then comes from the token.
        app.register_blueprint(bp, url_prefix="/v3", name="v3_noproject_" + bp.name,
                               url_defaults={"project_id": None})
    app.before_request(_before_request)
    app.after_request(_after_request)
    app.teardown_request(_teardown_request)
    app.register_error_handler(exception.LaminaException, _handle_lamina_error)
    app.register_error_handler(werkzeug.exceptions.HTTPException, _handle_http_error)
    app.register_error_handler(sa_exc.DBAPIError, _handle_database_error)
    app.register_error_handler(sa_exc.TimeoutError, _handle_database_error)
    app.register_error_handler(Exception, _handle_unexpected)
    app.url_map.strict_slashes = False
    # keystonemiddleware in front when auth_strategy = keystone (the app object stays Flask's)
    app.wsgi_app = auth.wrap(app.wsgi_app)
    # outside keystonemiddleware, so its 401s are counted too; serves /metrics
    app.wsgi_app = metrics.wrap(app, app.wsgi_app)
    app.wsgi_app = access_log.wrap(app.wsgi_app)
    return app
