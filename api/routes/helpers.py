"""Small helpers the route modules share: request bodies, paging arguments, admin checks."""

import ast
import json

import flask
from oslo_config import cfg

from api import schemas
from common import exception

api_opts = [
    cfg.IntOpt("osapi_max_limit", default=1000, min=1,
               help="Largest page a list request returns, whatever `limit` it asks for."),
    cfg.IntOpt("osapi_max_request_body_size", default=114688, min=1024,
               help="Largest request body, in bytes, the API reads (Cinder's default); a "
                    "larger one is refused with 400 before it is parsed."),
]

JSON_TYPES = ("application/json", "application/vnd.openstack.volume+json")
CONF = cfg.CONF
CONF.register_opts(api_opts)


def ctx():
    return flask.g.ctx


def _refuse_duplicate_keys(pairs):
    body = {}
    for key, value in pairs:
        if key in body:
            raise exception.BadRequest("Malformed request body: key %r appears twice."
                                       % key[:255])
        body[key] = value
    return body


MAX_BODY_DEPTH = 32  # deeper than any Cinder request; keeps validation from recursing far


def _depth(body):
    deepest, level = 0, [(body, 1)]
    while level:
        value, depth = level.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_BODY_DEPTH:
            break
        children = value.values() if isinstance(value, dict) else (
            value if isinstance(value, list) else ())
        level.extend((child, depth + 1) for child in children)
    return deepest


def json_body(schema=None):
    limit = CONF.osapi_max_request_body_size
    request = flask.request
    if request.mimetype and request.mimetype not in JSON_TYPES:
        raise exception.BadRequest("Unsupported Content-Type %s: send application/json."
                                   % request.mimetype[:255])
    if (request.content_length or 0) > limit:
        raise exception.BadRequest("Request body is larger than %d bytes." % limit)
    raw = request.get_data(cache=True)
    if not raw:
        raise exception.BadRequest("Missing request body.")
    if len(raw) > limit:  # sent chunked, without a length
        raise exception.BadRequest("Request body is larger than %d bytes." % limit)
    try:
        body = json.loads(raw, object_pairs_hook=_refuse_duplicate_keys)
    except RecursionError:
        raise exception.BadRequest("Malformed request body: nested too deeply.")
    except ValueError:  # not JSON, or not UTF-8
        raise exception.BadRequest("Malformed request body.")
    if not isinstance(body, dict):
        raise exception.BadRequest("Malformed request body: expected a JSON object.")
    if _depth(body) > MAX_BODY_DEPTH:
        raise exception.BadRequest("Malformed request body: nested too deeply.")
    if schema is not None:
        schemas.validate(body, schema)
    return body


def reply(body, status=200):
    return flask.Response(json.dumps(body), status=status, mimetype="application/json")


def accepted():
    return flask.Response(status=202)


def no_body(status=200):
    """Cinder answers some calls (metadata item and quota set deletes) with a code alone."""
    return flask.Response(status=status)


def require_admin():
    if not ctx().is_admin:
        raise exception.Forbidden()


def as_bool(value, name):
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on", "t", "y"):
        return True
    if text in ("false", "0", "no", "off", "f", "n"):
        return False
    raise exception.InvalidInput(reason="%s must be a boolean, got %r" % (name, value))


# python-cinderclient sends the v1 names (`cinder list --sort name` asks for display_name).
SORT_KEY_ALIASES = {"display_name": "name", "display_description": "description"}


def offset_arg():
    """`offset`: how many of the matching rows a list skips (Cinder's, beside marker)."""
    value = flask.request.args.get("offset", "0")
    try:
        offset = int(value)
    except ValueError:
        raise exception.InvalidInput(reason="offset must be an integer")
    if offset < 0:
        raise exception.InvalidInput(reason="offset must be >= 0")
    return offset


def requested_sort_keys():
    """The sort keys as the request names them, before SORT_KEY_ALIASES."""
    args = flask.request.args
    if "sort" in args:
        return [item.partition(":")[0].strip() for item in args["sort"].split(",")]
    return [args.get("sort_key", "")]


def paging(allowed_sort_keys, default_key="created_at", default_dir="desc"):
    """limit, marker and sort (either `sort=k1:d1,k2` or sort_key/sort_dir) of a list."""
    args = flask.request.args
    limit = args.get("limit")
    if limit is not None:
        try:
            limit = int(limit)
        except ValueError:
            raise exception.InvalidInput(reason="limit must be an integer")
        if limit < 0:
            raise exception.InvalidInput(reason="limit must be >= 0")
        limit = min(limit, CONF.osapi_max_limit)
    else:
        limit = CONF.osapi_max_limit
    marker = args.get("marker")
    keys, dirs = [], []
    if "sort" in args:
        if "sort_key" in args or "sort_dir" in args:
            raise exception.InvalidInput(
                reason="The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be "
                       "used with the 'sort' parameter.")
        for item in args["sort"].split(","):
            key, _, direction = item.strip().partition(":")
            keys.append(SORT_KEY_ALIASES.get(key.strip(), key.strip()))
            dirs.append((direction or default_dir).strip().lower())
    else:
        key = args.get("sort_key", default_key)
        keys.append(SORT_KEY_ALIASES.get(key, key))
        dirs.append(args.get("sort_dir", default_dir).lower())
    for key, direction in zip(keys, dirs):
        if key not in allowed_sort_keys:
            raise exception.InvalidInput(reason="Invalid sort key %s" % key)
        if direction not in ("asc", "desc"):
            raise exception.InvalidInput(reason="Invalid sort direction %s" % direction)
    return limit, marker, keys, dirs


def parse_dict_arg(value, name):
    """A dict query argument as clients send it: JSON, or a Python literal (cinderclient)."""
    for parse in (json.loads, ast.literal_eval):
        try:
            parsed = parse(value)
        except (ValueError, SyntaxError):
            continue
        if isinstance(parsed, dict):
            return {str(k): str(v) for k, v in parsed.items()}
    raise exception.InvalidInput(reason="%s must be a dictionary" % name)
