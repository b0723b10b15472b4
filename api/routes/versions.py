"""Version discovery: GET / and GET /v3/ (and /v2/)."""

import flask

from api import microversion
from api.routes.helpers import reply

bp = flask.Blueprint("versions", __name__)
UPDATED = "2026-11-23T00:00:00Z"


def _version(major):
    base = flask.request.host_url
    current = major == 3
    return {
        "id": "v%d.0" % major,
        "status": "CURRENT" if current else "DEPRECATED",
        "version": microversion.to_str(microversion.MAX_VERSION) if current else "",
        "min_version": microversion.to_str(microversion.MIN_VERSION) if current else "",
        "updated": UPDATED,
        "links": [{"rel": "describedby", "type": "text/html",
                   "href": "https://docs.openstack.org/"},
                  {"rel": "self", "href": "%sv%d/" % (base, major)}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.volume+json;version=%d" % major}],
    }


@bp.get("/")
def all_versions():
    return reply({"versions": [_version(2), _version(3)]}, 300)


@bp.get("/v3/")
@bp.get("/v3")
def v3():
    return reply({"versions": [_version(3)]})


@bp.get("/v2/")
@bp.get("/v2")
def v2():
    return reply({"versions": [_version(2)]})
