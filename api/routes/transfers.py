"""Volume transfers: `os-volume-transfer` (every version) and `volume-transfers` (3.55).

A project offers one of its `available` volumes (create: the volume goes `awaiting-transfer`
and the answer carries an auth key, shown this once); another project accepts it with the
transfer id and the key, and the volume, with its snapshots unless the transfer was made
with `no_snapshots` (3.55, volume-transfers only), and their quota usage move to it. Delete
withdraws the offer (the volume is `available` again). Only the offering project (and
admins) list and show a transfer; the receiver knows it only by the id it was given, as in
Cinder. The bodies grow with 3.55 (no_snapshots) and 3.57 (source and destination project,
accepted); 3.59 adds marker and sort to the lists (limit and offset at every version); a
volume of an encrypted type is transferred only from 3.70."""

import hashlib
import hmac
import secrets

import flask
from oslo_config import cfg

from api import microversion, policy, schemas, views
from api.routes.helpers import accepted, as_bool, ctx, json_body, paging, reply
from common import exception
from common.db import api as db
from common.db import transfers_api as tdb

CONF = cfg.CONF
bp = flask.Blueprint("transfers", __name__)

OLD, NEW = "/os-volume-transfer", "/volume-transfers"
# Cinder's defaults (volume_transfer_key_length 16, volume_transfer_salt_length 8): hex
# digits, which the receiver can type.
KEY_BYTES, SALT_BYTES = 8, 4
# Cinder's column is display_name, which python-cinderclient sends for `name`: both mean it.
SORT_KEYS = {"id": "id", "name": "name", "display_name": "name", "volume_id": "volume_id",
             "created_at": "created_at", "updated_at": "updated_at"}
FILTERS = {"name": "name", "display_name": "name", "volume_id": "volume_id"}
NON_FILTER_ARGS = {"limit", "marker", "offset", "sort", "sort_key", "sort_dir", "all_tenants"}


def _crypt_hash(salt, auth_key):
    return hmac.new(salt.encode(), auth_key.encode(), hashlib.sha256).hexdigest()


def _gate(path_root):
    if path_root == NEW:
        microversion.require((3, 55))


def _routes(rule, **options):
    """Register a view under both path roots; it gets `root` to know which one was asked."""
    def register(view):
        for root in (OLD, NEW):
            def bound(root=root, **kwargs):
                _gate(root)
                return view(root, **kwargs)
            bp.add_url_rule(root + rule, view_func=bound, endpoint="%s_%s" % (
                view.__name__, "new" if root == NEW else "old"), **options)
        return view
    return register


@_routes("", methods=["POST"])
def create(root, project_id):
    new_api = root == NEW
    body = json_body(schemas.transfer_create_v355 if new_api else schemas.transfer_create)
    args = body["transfer"]
    volume = db.volume_get(ctx(), args["volume_id"])  # 404 outside the caller's scope
    policy.authorize(ctx(), "volume:create_transfer", volume)
    if views.volume_encrypted(volume) and not microversion.at_least((3, 70)):
        # Cinder transfers an encrypted volume (and its key) only from 3.70. Lamina's
        # encryption is the type's metadata alone (no key to hand over), so the version is
        # the whole rule.
        raise exception.InvalidVolume(reason="transferring encrypted volume is not supported")
    name = args.get("name")
    if name is not None:
        name = name.strip()
    no_snapshots = new_api and as_bool(args.get("no_snapshots", False), "no_snapshots")
    auth_key = secrets.token_hex(KEY_BYTES)
    salt = secrets.token_hex(SALT_BYTES)
    transfer = tdb.transfer_create(volume.id, {"name": name, "salt": salt,
                                               "crypt_hash": _crypt_hash(salt, auth_key)},
                                   no_snapshots)
    return reply({"transfer": views.transfer_created(transfer, auth_key)}, 202)


def _list_args():
    args = flask.request.args
    filters = {}
    for key, value in args.items():
        if key in NON_FILTER_ARGS:
            continue
        if key not in FILTERS:
            raise exception.InvalidInput(reason="Invalid filters %s are found in query "
                                                "options." % key)
        filters[FILTERS[key]] = value
    offset = args.get("offset")
    if offset is not None:
        try:
            offset = int(offset)
        except ValueError:
            offset = -1
        if offset < 0:
            raise exception.InvalidInput(reason="offset must be an integer >= 0")
    if microversion.at_least((3, 59)):
        limit, marker, keys, dirs = paging(SORT_KEYS)
        keys = [SORT_KEYS[k] for k in keys]
    else:
        # Before 3.59 Cinder pages transfer lists by limit and offset only.
        limit, marker, keys, dirs = _limit(args.get("limit")), None, ["created_at"], ["desc"]
    return filters, marker, limit, offset, keys, dirs


def _limit(raw):
    if raw is None:
        return CONF.osapi_max_limit
    try:
        limit = int(raw)
    except ValueError:
        limit = -1
    if limit < 0:
        raise exception.InvalidInput(reason="limit must be an integer >= 0")
    return min(limit, CONF.osapi_max_limit)


def _list(root, detail):
    policy.authorize(ctx(), "volume:get_all_transfers")
    filters, marker, limit, offset, keys, dirs = _list_args()
    all_projects = ctx().is_admin and as_bool(flask.request.args.get("all_tenants", "0"),
                                              "all_tenants")
    transfers = tdb.transfer_get_all(ctx(), all_projects=all_projects, filters=filters,
                                     marker=marker, limit=limit, offset=offset,
                                     sort_keys=keys, sort_dirs=dirs)
    render = views.transfer_detail if detail else views.transfer_summary
    items = [render(t) for t in transfers]
    body = {"transfers": items}
    links = views.collection_links("os-volume-transfer", items, limit)
    if links:
        body["transfers_links"] = links
    return reply(body)


@_routes("", methods=["GET"])
def index(root, project_id):
    return _list(root, detail=False)


@_routes("/detail", methods=["GET"])
def detail(root, project_id):
    return _list(root, detail=True)


def _transfer_and_volume(transfer_id, rule):
    transfer = tdb.transfer_get(ctx(), transfer_id)  # 404 for another project's
    policy.authorize(ctx(), rule, {"project_id": transfer.source_project_id})
    return transfer


@_routes("/<transfer_id>", methods=["GET"])
def show(root, project_id, transfer_id):
    transfer = _transfer_and_volume(transfer_id, "volume:get_transfer")
    return reply({"transfer": views.transfer_detail(transfer)})


@_routes("/<transfer_id>", methods=["DELETE"])
def delete(root, project_id, transfer_id):
    _transfer_and_volume(transfer_id, "volume:delete_transfer")
    tdb.transfer_delete(ctx(), transfer_id)
    return accepted()


@_routes("/<transfer_id>/accept", methods=["POST"])
def accept(root, project_id, transfer_id):
    auth_key = json_body(schemas.transfer_accept)["accept"]["auth_key"]
    policy.authorize(ctx(), "volume:accept_transfer")  # on the receiving (caller's) project
    transfer = tdb.transfer_get(ctx(), transfer_id, any_project=True)
    if not hmac.compare_digest(_crypt_hash(transfer.salt, auth_key), transfer.crypt_hash):
        raise tdb.InvalidAuthKey(reason="Attempt to transfer %s with invalid auth key."
                                        % transfer_id)
    tdb.transfer_accept(transfer, ctx().user_id, ctx().project_id)
    return reply({"transfer": views.transfer_summary(transfer)}, 202)
