"""Bad input of every kind answers a Cinder-shaped 4xx and creates nothing: bodies nested
deep, too large, not UTF-8, with duplicate keys or the wrong content type, and absurd query
strings, on the calls that write (create, update, actions) and the lists."""

import pytest
import requests
from sqlalchemy import func, select

from common.db import models
from common.db.session import reader

WRITES = [("POST", "/volumes"), ("POST", "/snapshots"), ("POST", "/types"),
          ("PUT", "/volumes/{vid}"), ("POST", "/volumes/{vid}/action"),
          ("POST", "/volumes/{vid}/metadata"), ("PUT", "/os-quota-sets/p1")]


def rows():
    with reader() as s:
        return tuple(s.scalar(select(func.count()).select_from(model))
                     for model in (models.Volume, models.Snapshot, models.VolumeType,
                                   models.VolumeMetadata, models.Quota, models.Worker))


def send(stack, method, path, data, content_type="application/json", headers=None):
    url = "%s/v3/%s%s" % (stack.url, stack.project, path)
    all_headers = {"X-Auth-Token": "admin:%s" % stack.project}
    if content_type:
        all_headers["Content-Type"] = content_type
    all_headers.update(headers or {})
    return requests.request(method, url, data=data, headers=all_headers)


def assert_refused(resp, code=400):
    assert resp.status_code == code, (resp.status_code, resp.text[:300])
    fault = {400: "badRequest", 404: "itemNotFound"}[code]
    assert resp.json()[fault]["code"] == code and resp.json()[fault]["message"], resp.text


@pytest.fixture
def volume_id(stack):
    volume = stack.create_volume(size=1, name="keep")
    stack.wait_volume(volume["id"], ("available",))
    return volume["id"]


BAD_BODIES = {
    "array nested 10,000 deep": b"[" * 10000 + b"]" * 10000,
    "object nested 10,000 deep": b'{"a":' * 10000 + b"1" + b"}" * 10000,
    "volume field nested 40 deep": (b'{"volume": {"size": 1, "metadata": '
                                    + b'{"a":' * 40 + b'"x"' + b"}" * 40 + b"}}"),
    "a 1 MiB string field": b'{"volume": {"size": 1, "name": "' + b"x" * (1 << 20) + b'"}}',
    "not UTF-8": b'{"volume": {"size": 1, "name": "\xff\xfe"}}',
    "duplicate keys": b'{"volume": {"size": 1, "size": 2}}',
    "a JSON string": b'"volume"',
    "truncated": b'{"volume": {"size": 1',
    "NaN": b'{"volume": {"size": NaN}}',
}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_bad_bodies_answer_400_and_create_nothing(stack, volume_id, name):
    before = rows()
    for method, path in WRITES:
        resp = send(stack, method, path.format(vid=volume_id), BAD_BODIES[name])
        assert_refused(resp)
    assert rows() == before
    assert stack.request("GET", "/volumes/" + volume_id).json()["volume"]["name"] == "keep"


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml",
                                          "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_wrong_content_types_answer_400(stack, volume_id, content_type):
    before = rows()
    resp = send(stack, "POST", "/volumes", b'{"volume": {"size": 1}}', content_type)
    assert_refused(resp)
    assert "Content-Type" in resp.json()["badRequest"]["message"]
    assert rows() == before
    # the JSON types Cinder accepts, and none at all (clients that send no header)
    for accepted in ("application/json; charset=utf-8", "application/vnd.openstack.volume+json",
                     None):
        resp = send(stack, "PUT", "/volumes/" + volume_id,
                    b'{"volume": {"description": "ok"}}', accepted)
        assert resp.status_code == 200, (accepted, resp.text)


ABSURD_QUERIES = [
    ("/volumes?limit=-1", 400), ("/volumes?limit=1e9", 400), ("/volumes?limit=%00", 400),
    ("/volumes?sort=name:sideways", 400), ("/volumes?sort=" + ",".join(["nope"] * 500), 400),
    ("/volumes?sort_key=id&sort=name", 400), ("/volumes?marker=" + "x" * 5000, 404),
    ("/volumes/detail?metadata=notadict", 400), ("/volumes?all_tenants=maybe", 400),
    ("/volumes?" + "&".join("k%d=v" % i for i in range(2000)), 400),
    ("/volumes?name=" + "x" * 60000, 200),
    ("/snapshots?limit=abc", 400), ("/snapshots?marker=nope", 404),
    ("/types?is_public=perhaps", 400), ("/types?limit=-5", 400),
    ("/volumes?limit=99999999999999999999999", 200),
]


@pytest.mark.parametrize("path,code", ABSURD_QUERIES, ids=lambda p: str(p)[:40])
def test_absurd_query_strings_answer_4xx(stack, volume_id, path, code):
    resp = stack.request("GET", path)
    if code == 200:
        assert resp.status_code == 200, resp.text[:300]
    else:
        assert_refused(resp, code)
