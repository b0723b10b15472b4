"""/qos-specs: named QoS specs (keys such as total_iops_sec, read_bytes_sec) for a consumer
(`front-end`: the compute host applies them, `back-end`: the storage, `both`), associated
with volume types. Every call is admin-only by default, as Cinder's. Lamina stores and shows
the specs; no Lamina driver enforces them yet (docs/api.md)."""

import flask

from api import policy, schemas, views
from api.routes.helpers import accepted, as_bool, ctx, json_body, paging, reply
from common import exception
from common.db import types_api

bp = flask.Blueprint("qos_specs", __name__)

FILTERS = ("id", "name", "consumer")
# Query arguments of the list that are not filters.
PAGING_ARGS = ("limit", "marker", "offset", "sort", "sort_key", "sort_dir")


class InvalidQoSSpecs(exception.BadRequest):
    message = "Invalid qos specs: %(reason)s"


def _check_consumer(consumer):
    if consumer is not None and consumer not in types_api.QOS_CONSUMERS:
        raise InvalidQoSSpecs(reason="Valid consumer of QoS specs are: %s"
                                     % list(types_api.QOS_CONSUMERS))


def _split(specs):
    """(consumer, {key: value as a string}) of a request's qos_specs object."""
    consumer = specs.pop("consumer", None)
    _check_consumer(consumer)
    return consumer, {k: _text(v) for k, v in specs.items()}


def _text(value):
    if isinstance(value, bool):
        return "True" if value else "False"  # as Python's str(), which Cinder stores
    return str(value)


def _vol_type_arg():
    type_id = flask.request.args.get("vol_type_id")
    if not type_id:
        raise exception.BadRequest("Volume Type id must not be None.")
    return type_id


@bp.get("/qos-specs")
def index(project_id):
    policy.authorize(ctx(), "volume_extension:qos_specs_manage:get_all")
    limit, marker, keys, dirs = paging(types_api.QOS_SORT_KEYS)
    args = flask.request.args
    unknown = sorted(k for k in args if k not in FILTERS + PAGING_ARGS)
    if unknown:
        raise exception.InvalidInput(reason="Invalid filters %s are found in query options."
                                            % ",".join(unknown))
    filters = {k: args[k] for k in FILTERS if k in args}
    try:
        offset = int(args.get("offset", 0))
    except ValueError:
        offset = -1
    if offset < 0:
        raise exception.InvalidInput(reason="offset must be an integer >= 0")
    rows = types_api.qos_specs_get_all(filters=filters, marker=marker, limit=limit,
                                       offset=offset, sort_keys=keys, sort_dirs=dirs)
    # No qos_specs_links next link on a full page: Tempest's list schema (the contract the
    # suite holds Lamina to) has no such key; clients page with limit and marker.
    return reply({"qos_specs": [views.qos_specs(r) for r in rows]})


@bp.post("/qos-specs")
def create(project_id):
    policy.authorize(ctx(), "volume_extension:qos_specs_manage:create")
    specs = dict(json_body(schemas.qos_specs_create)["qos_specs"])
    name = specs.pop("name").strip()
    consumer, keys = _split(specs)
    row = types_api.qos_specs_create(name, consumer or "back-end", keys)
    return reply(views.qos_specs_detail(row))


@bp.get("/qos-specs/<specs_id>")
def show(project_id, specs_id):
    policy.authorize(ctx(), "volume_extension:qos_specs_manage:get")
    return reply(views.qos_specs_detail(types_api.qos_specs_get(specs_id)))


@bp.put("/qos-specs/<specs_id>")
def update(project_id, specs_id):
    """Set keys (and the consumer); answers the keys it was given, as Cinder."""
    policy.authorize(ctx(), "volume_extension:qos_specs_manage:update")
    specs = dict(json_body(schemas.qos_specs_set)["qos_specs"])
    consumer, keys = _split(dict(specs))
    types_api.qos_specs_update(specs_id, consumer=consumer, specs=keys)
    return reply({"qos_specs": {k: _text(v) for k, v in specs.items()}})


@bp.put("/qos-specs/<specs_id>/delete_keys")
def delete_keys(project_id, specs_id):
    policy.authorize(ctx(), "volume_extension:qos_specs_manage:delete")
    keys = json_body(schemas.qos_specs_unset)["keys"]
    types_api.qos_specs_delete_keys(specs_id, keys)
    return accepted()


@bp.delete("/qos-specs/<specs_id>")
def delete(project_id, specs_id):
    policy.authorize(ctx(), "volume_extension:qos_specs_manage:delete")
    force = as_bool(flask.request.args.get("force", "false"), "force")
    types_api.qos_specs_delete(specs_id, force=force)
    return accepted()


@bp.get("/qos-specs/<specs_id>/associations")
def associations(project_id, specs_id):
    policy.authorize(ctx(), "volume_extension:qos_specs_manage:get_all")
    return reply({"qos_associations": [views.qos_association(t) for t in
                                       types_api.qos_specs_associations(specs_id)]})


@bp.get("/qos-specs/<specs_id>/associate")
def associate(project_id, specs_id):
    policy.authorize(ctx(), "volume_extension:qos_specs_manage:update")
    types_api.qos_specs_associate(specs_id, _vol_type_arg())
    return accepted()


@bp.get("/qos-specs/<specs_id>/disassociate")
def disassociate(project_id, specs_id):
    policy.authorize(ctx(), "volume_extension:qos_specs_manage:update")
    types_api.qos_specs_disassociate(specs_id, _vol_type_arg())
    return accepted()


@bp.get("/qos-specs/<specs_id>/disassociate_all")
def disassociate_all(project_id, specs_id):
    policy.authorize(ctx(), "volume_extension:qos_specs_manage:update")
    types_api.qos_specs_disassociate_all(specs_id)
    return accepted()
