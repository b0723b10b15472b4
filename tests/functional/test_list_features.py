"""List features and volume/snapshot fields of microversions above the advertised maximum
(3.42), each gated by its version: with_count (3.45), glance_metadata filter (3.4), time
comparison filters (3.60), consumes_quota (3.65) field and filter, shared_targets and
service_uuid (3.48), cluster_name (3.61, admin), volume_type_id (3.63), encryption_key_id
(3.64, never sent: no keys), shared_targets at 3.69. The contract hook checks every body
against Tempest's schema of the version asked for."""

import datetime
import time
import uuid

import pytest

from api import microversion


@pytest.fixture
def stack(stack, monkeypatch):
    monkeypatch.setattr(microversion, "MAX_VERSION", (3, 70))
    return stack


def available(stack, **fields):
    v = stack.create_volume(size=1, **fields)
    return stack.wait_volume(v["id"], ("available",))


def listing(stack, query, version, path="/volumes/detail", key="volumes", **kw):
    resp = stack.request("GET", path + query, version=version, **kw)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_with_count_3_45(stack):
    for _ in range(3):
        available(stack)
    body = listing(stack, "?with_count=true&limit=1", "3.45", path="/volumes")
    assert body["count"] == 3 and len(body["volumes"]) == 1
    assert "count" not in listing(stack, "?limit=1", "3.45")
    assert listing(stack, "?with_count=true&status=error", "3.45")["count"] == 0
    # below 3.45 it is not a filter either: just ignored, as Cinder's NON_FILTER list
    assert "count" not in listing(stack, "?with_count=true", "3.44")
    assert stack.request("GET", "/volumes?with_count=maybe", version="3.45").status_code == 400
    v = available(stack)
    stack.wait_snapshot(stack.create_snapshot(v["id"])["id"], ("available",))
    body = listing(stack, "?with_count=true", "3.45", path="/snapshots/detail")
    assert body["count"] == 1
    assert listing(stack, "?with_count=1&limit=0", "3.45", path="/snapshots")["count"] == 1


def test_time_comparison_filters_3_60(stack):
    first = available(stack)
    time.sleep(1.1)
    cut = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    time.sleep(1.1)
    second = available(stack)
    stamp = cut.strftime("%Y-%m-%dT%H:%M:%S")
    ids = lambda q: {v["id"] for v in listing(stack, q, "3.60")["volumes"]}  # noqa: E731
    assert ids("?created_at=gt:" + stamp) == {second["id"]}
    assert ids("?created_at=lte:" + stamp) == {first["id"]}
    assert ids("?created_at=gt:%s,lt:%s" % (stamp, "2999-01-01T00:00:00")) == {second["id"]}
    assert ids("?updated_at=gte:" + stamp) == {second["id"]}
    assert ids("?created_at=neq:" + second["created_at"]) == {first["id"]}
    assert ids("?created_at=eq:" + second["created_at"]) == {second["id"]}
    for bad in ("?created_at=" + stamp, "?created_at=gt:yesterday", "?created_at=zz:" + stamp):
        assert stack.request("GET", "/volumes" + bad, version="3.60").status_code == 400
    # before 3.60 the key is no filter
    assert stack.request("GET", "/volumes?created_at=gt:" + stamp,
                         version="3.59").status_code == 400


def test_glance_metadata_filter_3_4(stack):
    tagged, plain = available(stack), available(stack)
    resp = stack.request("POST", "/volumes/%s/action" % tagged["id"],
                         {"os-set_image_metadata": {"metadata": {"image_name": "cirros"}}})
    assert resp.status_code == 200, resp.text
    q = '?glance_metadata={"image_name": "cirros"}'
    assert [v["id"] for v in listing(stack, q, "3.4")["volumes"]] == [tagged["id"]]
    assert listing(stack, '?glance_metadata={"image_name": "other"}', "3.4")["volumes"] == []
    assert stack.request("GET", "/volumes" + q, version="3.3").status_code == 400
    assert stack.request("GET", "/volumes?glance_metadata=notadict",
                         version="3.4").status_code == 400
    assert plain["id"] not in {v["id"] for v in listing(stack, q, "3.4")["volumes"]}


def test_consumes_quota_field_and_filter_3_65(stack):
    v = available(stack)
    shown = stack.request("GET", "/volumes/" + v["id"], version="3.65").json()["volume"]
    assert shown["consumes_quota"] is True
    assert "consumes_quota" not in stack.request("GET", "/volumes/" + v["id"],
                                                 version="3.64").json()["volume"]
    assert len(listing(stack, "?consumes_quota=true", "3.65")["volumes"]) == 1
    assert listing(stack, "?consumes_quota=false", "3.65")["volumes"] == []
    assert stack.request("GET", "/volumes?consumes_quota=true",
                         version="3.64").status_code == 400
    snap = stack.create_snapshot(v["id"])
    stack.wait_snapshot(snap["id"], ("available",))
    shown = stack.request("GET", "/snapshots/" + snap["id"], version="3.65").json()
    assert shown["snapshot"]["consumes_quota"] is True
    assert "consumes_quota" not in stack.request("GET", "/snapshots/" + snap["id"],
                                                 version="3.64").json()["snapshot"]
    path = "/snapshots/detail"
    assert listing(stack, "?consumes_quota=false", "3.65", path=path)["snapshots"] == []
    assert len(listing(stack, "?consumes_quota=1", "3.65", path=path)["snapshots"]) == 1
    assert stack.request("GET", "/snapshots?consumes_quota=true",
                         version="3.64").status_code == 400


def test_volume_fields_by_version(stack):
    v = available(stack)

    def show(version, token=None):
        resp = stack.request("GET", "/volumes/" + v["id"], version=version, token=token)
        assert resp.status_code == 200, resp.text
        return resp.json()["volume"]

    old = show("3.47")
    for key in ("shared_targets", "service_uuid", "cluster_name", "volume_type_id",
                "encryption_key_id", "consumes_quota"):
        assert key not in old
    at48 = show("3.48")
    assert at48["shared_targets"] is False
    assert uuid.UUID(at48["service_uuid"])
    assert show("3.69")["service_uuid"] == at48["service_uuid"]  # stable per service
    assert "cluster_name" not in at48
    assert show("3.61")["cluster_name"] is None
    assert "cluster_name" not in show("3.61", token="bob:p1")  # admin only
    assert "volume_type_id" not in show("3.62")
    type_id = show("3.63")["volume_type_id"]
    assert type_id and uuid.UUID(type_id)
    assert "encryption_key_id" not in show("3.64")  # Cinder sends it only when set
    assert show("3.69")["shared_targets"] is False
    created = stack.request("POST", "/volumes", {"volume": {"size": 1}}, version="3.65")
    assert created.status_code == 202, created.text
    assert created.json()["volume"]["volume_type_id"] == type_id
    assert created.json()["volume"]["consumes_quota"] is True
    stack.wait_volume(created.json()["volume"]["id"], ("available",))
    listed = listing(stack, "", "3.69")["volumes"]
    assert {x["service_uuid"] for x in listed} == {at48["service_uuid"]}


def test_3_66_snapshot_of_in_use_volume_without_force(stack):
    v = available(stack)
    stack.request("POST", "/volumes/%s/action" % v["id"],
                  {"os-reset_status": {"status": "in-use"}})
    assert stack.request("POST", "/snapshots", {"snapshot": {"volume_id": v["id"]}},
                         version="3.65").status_code == 400
    resp = stack.request("POST", "/snapshots", {"snapshot": {"volume_id": v["id"]}},
                         version="3.66")
    assert resp.status_code == 202, resp.text
