"""Checks the request layer makes on the back end that holds a volume."""

from common import exception, service
from common.db import api as db


def backend_frozen(host):
    """Whether the back end of `host` (a volume's or snapshot's `host@backend#pool`, or
    `host@backend`) is frozen by PUT /os-services/freeze."""
    if not host:
        return False
    backend = host.split("#")[0]
    return db.service_frozen(backend, service.VOLUME_BINARY)


def refuse_if_frozen(host):
    """400 in Cinder's words for a management operation (delete, extend, snapshot, retype,
    migrate, manage) on a frozen back end. Called after the resource was found (its 404
    first) and before any state changes, so a refused request leaves nothing behind."""
    if backend_frozen(host):
        raise exception.InvalidInput(
            reason="Modification operations are not allowed on frozen storage backends.")
