"""Microversion negotiation for the /v3 API.

A request says `OpenStack-API-Version: volume 3.N` (or `latest`); none means 3.0. A malformed
header is 400, a version outside MIN..MAX is 406. The response echoes the version used and
sets `Vary`. MAX is the highest version whose behaviour Lamina implements (see
docs/api.md); /v2 paths always behave as 3.0.
"""

import re

import flask

from common import exception

MIN_VERSION = (3, 0)
# Every version up to MAX means here what docs/api.md's microversion table says: the
# changes to resources Lamina serves are implemented, up to Cinder's last, 3.71 (3.46 volumes
# from Nova's zero-size images, 3.68 reimage, 3.71 extend completion, ...), the workers
# cleanup API of 3.24 and the log levels of 3.32 too. Raise it only with that table.
MAX_VERSION = (3, 71)
HEADER = "OpenStack-API-Version"
LEGACY_HEADER = "X-OpenStack-Volume-API-Version"
_VERSION_RE = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


def to_str(version):
    return "%d.%d" % version


def parse_header(raw):
    """'volume 3.5' -> (3, 5). Returns None when the header does not name the volume service."""
    if raw is None:
        return None
    for item in raw.split(","):
        parts = item.strip().split()
        if len(parts) == 2 and parts[0].lower() == "volume":
            return _parse_number(parts[1])
        if len(parts) != 2:
            raise exception.BadRequest("Invalid %s header: %r" % (HEADER, raw))
    return None


def _parse_number(text):
    if text.lower() == "latest":
        return MAX_VERSION
    match = _VERSION_RE.match(text)
    if not match:
        raise exception.BadRequest("API Version String %s is of invalid format. Must be of "
                                   "format MajorNum.MinorNum." % text)
    return int(match.group(1)), int(match.group(2))


def negotiate(headers, api_major):
    if api_major == 2:
        return MIN_VERSION
    version = parse_header(headers.get(HEADER))
    if version is None and headers.get(LEGACY_HEADER):
        version = _parse_number(headers[LEGACY_HEADER].strip())
    if version is None:
        return MIN_VERSION
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise exception.NotAcceptable(
            "Version %s is not supported by the API. Minimum is %s and maximum is %s."
            % (to_str(version), to_str(MIN_VERSION), to_str(MAX_VERSION)))
    return version


def current():
    return getattr(flask.g, "api_version", MIN_VERSION)


def at_least(major_minor):
    return current() >= major_minor


def require(major_minor):
    """Refuse a request whose microversion is older than the operation needs (404, as Cinder
    answers a method that does not exist at that version)."""
    if not at_least(major_minor):
        raise exception.VersionNotFoundForAPIMethod(version=to_str(current()))
