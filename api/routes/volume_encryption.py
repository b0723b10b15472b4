"""/volumes/{id}/encryption: a volume's encryption metadata, as Cinder's volume encryption
metadata extension answers it (what a compute host asks before attaching).

`encryption_key_id` is the volume's key in the key manager, then, when the volume's type has
encryption specs (/types/{id}/encryption), their `control_location`, `cipher`, `key_size`
and `provider`; an unencrypted volume has the key id alone. Lamina keeps encryption types as
metadata only: it has no key manager, creates no key and encrypts no data, so
`encryption_key_id` is always null here (a front-end provider on the compute host would
need a key Lamina cannot give it)."""

import flask

from api import policy
from api.routes.helpers import ctx, reply
from common import exception
from common.db import api as db

bp = flask.Blueprint("volume_encryption", __name__)

RULE = "volume_extension:volume_encryption_metadata"


def _authorize(volume):
    policy.authorize(ctx(), RULE, volume)


def encryption_metadata(volume):
    body = {"encryption_key_id": None}  # no key manager: no key (see the module's doc)
    encryption = volume.volume_type.encryption if volume.volume_type is not None else None
    if encryption is not None:
        body.update(control_location=encryption.control_location, cipher=encryption.cipher,
                    key_size=encryption.key_size, provider=encryption.provider)
    return body


def _metadata(volume_id):
    volume = db.volume_get(ctx(), volume_id)  # 404 (another project's too) before 403
    _authorize(volume)
    return encryption_metadata(volume)


@bp.get("/volumes/<volume_id>/encryption")
def index(project_id, volume_id):
    return reply(_metadata(volume_id))


@bp.get("/volumes/<volume_id>/encryption/<key>")
def show(project_id, volume_id, key):
    """One item, as Cinder: the bare JSON value (`"luks"`, `null`). A key the volume's
    metadata does not have is 404 (Cinder answers 500 there)."""
    metadata = _metadata(volume_id)
    if key not in metadata:
        raise exception.NotFound("Volume %s has no encryption metadata item %s."
                                 % (volume_id, key))
    return reply(metadata[key])
