"""Microversion parsing and request schemas."""

import pytest

from api import microversion, schemas
from common import exception


@pytest.mark.parametrize("header,expected", [
    (None, (3, 0)),
    ("volume 3.0", (3, 0)),
    ("volume 3.7", (3, 7)),
    ("volume 3.42", (3, 42)),
    ("volume latest", microversion.MAX_VERSION),
    ("compute 2.1, volume 3.5", (3, 5)),
    ("compute 2.1", (3, 0)),
])
def test_negotiate(header, expected):
    headers = {} if header is None else {microversion.HEADER: header}
    assert microversion.negotiate(headers, 3) == expected


def test_v2_is_always_3_0():
    assert microversion.negotiate({microversion.HEADER: "volume 3.42"}, 2) == (3, 0)


def test_maximum_is_3_71():
    assert microversion.MAX_VERSION == (3, 71)
    assert microversion.negotiate({microversion.HEADER: "volume latest"}, 3) == (3, 71)


@pytest.mark.parametrize("header", ["volume 3", "volume 3.x", "volume 03.1", "volume3.1",
                                    "volume 3.1 extra"])
def test_malformed_is_400(header):
    with pytest.raises(exception.BadRequest):
        microversion.negotiate({microversion.HEADER: header}, 3)


@pytest.mark.parametrize("header", ["volume 3.72", "volume 4.0", "volume 2.0"])
def test_out_of_range_is_406(header):
    with pytest.raises(exception.NotAcceptable):
        microversion.negotiate({microversion.HEADER: header}, 3)


# (A null size passes the schema: a volume from a snapshot or volume may leave it out; the
# route refuses it otherwise, see tests/functional/test_volumes_api.py.)
@pytest.mark.parametrize("size", [0, -1, "abc", 65537, "65537", 1.5, "", " 1"])
def test_bad_sizes(size):
    with pytest.raises(exception.InvalidInput):
        schemas.validate({"volume": {"size": size}}, schemas.volume_create)
        schemas.size_of(size)


@pytest.mark.parametrize("size,expected", [(1, 1), ("10", 10), (65536, 65536)])
def test_good_sizes(size, expected):
    schemas.validate({"volume": {"size": size}}, schemas.volume_create)
    assert schemas.size_of(size) == expected
