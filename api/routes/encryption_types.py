"""/types/{id}/encryption: a volume type's encryption specs (provider, cipher, key_size,
control_location), admin-only by default, as Cinder's.

Metadata only: Lamina keeps and shows the specs and marks the type's volumes `encrypted:
true`, but it has no key manager and encrypts no data; a front-end provider (LUKS on the
compute host) would do the encrypting where Cinder is deployed with one. As in Cinder the
specs cannot be created, changed or removed while volumes of the type exist."""

import flask

from api import policy, schemas, views
from api.routes.helpers import accepted, ctx, json_body, reply
from common.db import types_api

bp = flask.Blueprint("encryption_types", __name__)


def _values(body):
    values = dict(body["encryption"])
    if values.get("key_size") is not None:
        values["key_size"] = int(values["key_size"])
    return values


@bp.get("/types/<type_id>/encryption")
def index(project_id, type_id):
    policy.authorize(ctx(), "volume_extension:volume_type_encryption:get")
    return reply(views.encryption_show(types_api.encryption_get(type_id)))


@bp.get("/types/<type_id>/encryption/<key>")
def show(project_id, type_id, key):
    policy.authorize(ctx(), "volume_extension:volume_type_encryption:get")
    specs = views.encryption_show(types_api.encryption_get(type_id))
    if key not in specs:
        raise types_api.VolumeTypeEncryptionNotFound(type_id=type_id)
    return reply({key: specs[key]})


@bp.post("/types/<type_id>/encryption")
def create(project_id, type_id):
    policy.authorize(ctx(), "volume_extension:volume_type_encryption:create")
    values = _values(json_body(schemas.encryption_create))
    row = types_api.encryption_create(type_id, values)
    return reply(views.encryption_written(row, values, ids=True))


@bp.put("/types/<type_id>/encryption/<encryption_id>")
def update(project_id, type_id, encryption_id):
    # Cinder finds the specs by the type; the encryption id in the path is not checked.
    policy.authorize(ctx(), "volume_extension:volume_type_encryption:update")
    values = _values(json_body(schemas.encryption_update))
    row = types_api.encryption_update(type_id, values)
    return reply(views.encryption_written(row, values))


@bp.delete("/types/<type_id>/encryption/<encryption_id>")
def delete(project_id, type_id, encryption_id):
    policy.authorize(ctx(), "volume_extension:volume_type_encryption:delete")
    types_api.encryption_delete(type_id)
    return accepted()
