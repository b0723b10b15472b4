"""Volumes and types through the HTTP API, whole system in one process."""

import os

from sqlalchemy import func, select

from common.db import api as db
from common.db import models
from common.db.session import reader


def count_rows(model):
    with reader() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_volume_lifecycle(stack):
    vtype = stack.request("POST", "/types", {"volume_type": {
        "name": "gold", "extra_specs": {"volume_backend_name": "file"}}})
    assert vtype.status_code == 200, vtype.text
    volume = stack.create_volume(size=2, name="v1", description="d", volume_type="gold",
                                 metadata={"k": "v"})
    assert volume["status"] == "creating"
    assert volume["volume_type"] == "gold"
    done = stack.wait_volume(volume["id"], ("available",))
    assert done["os-vol-host-attr:host"] == "stack@file#pool0"
    path = os.path.join(stack.workdir, "file", "pool0", "volume-" + volume["id"])
    assert os.path.getsize(path) == 2 * 1024 ** 3
    assert os.stat(path).st_blocks == 0  # sparse

    listed = stack.request("GET", "/volumes").json()["volumes"]
    assert [v["id"] for v in listed] == [volume["id"]]
    assert set(listed[0]) == {"id", "name", "links"}

    updated = stack.request("PUT", "/volumes/" + volume["id"],
                            {"volume": {"name": "v2", "metadata": {"a": "b"}}})
    assert updated.status_code == 200
    assert updated.json()["volume"]["name"] == "v2"
    assert updated.json()["volume"]["metadata"] == {"a": "b"}

    assert stack.request("DELETE", "/volumes/" + volume["id"]).status_code == 202
    stack.wait_volume(volume["id"], ("deleted",))
    assert not os.path.exists(path)
    pool = db.pool_get("stack@file#pool0")
    assert pool.allocated_capacity_gb == 0 and pool.volume_count == 0
    assert db.worker_get_all() == []


def test_v2_paths_behave_as_3_0(stack):
    resp = stack.request("POST", "/volumes", {"volume": {"size": 1}}, api="v2",
                         version="3.5")
    assert resp.status_code == 202
    assert "OpenStack-API-Version" not in resp.headers
    stack.wait_volume(resp.json()["volume"]["id"], ("available",))
    assert stack.request("GET", "/messages", api="v2").status_code == 404


def test_microversion_headers(stack):
    resp = stack.request("GET", "/volumes", version="3.3")
    assert resp.headers["OpenStack-API-Version"] == "volume 3.3"
    assert "OpenStack-API-Version" in resp.headers["Vary"]
    assert stack.request("GET", "/volumes").headers["OpenStack-API-Version"] == "volume 3.0"
    latest = stack.request("GET", "/volumes", version="latest")
    assert latest.headers["OpenStack-API-Version"] == "volume 3.71"
    bad = stack.request("GET", "/volumes", version="3.abc")
    assert bad.status_code == 400 and "badRequest" in bad.json()
    high = stack.request("GET", "/volumes", version="3.999")
    assert high.status_code == 406 and "notAcceptable" in high.json()
    assert stack.request("GET", "/messages", version="3.2").status_code == 404


def test_bad_input_creates_nothing(stack):
    before = count_rows(models.Volume)
    cases = [
        ({"volume": {"size": 0}}, 400),
        ({"volume": {"size": -1}}, 400),
        ({"volume": {"size": "abc"}}, 400),
        ({"volume": {"size": 65537}}, 400),
        ({"volume": {"size": "65537"}}, 400),
        ({"volume": {"size": 1.5}}, 400),
        ({"volume": {"size": 1, "name": "x" * 256}}, 400),
        ({"volume": {"size": 1, "description": "x" * 256}}, 400),
        ({"volume": {"size": 1, "volume_type": "no-such-type"}}, 404),
        ({"volume": {"size": 1, "bogus": 1}}, 400),
        ({"volume": {"size": 1}, "bogus": 1}, 400),
        ({"volume": {"size": 1, "metadata": {"k": 1}}}, 400),
        ({"volume": {"size": 1, "metadata": {"k": "x" * 256}}}, 400),
        ({"volume": {"size": 1, "availability_zone": "nowhere"}}, 400),
        ({"volume": {"size": 1, "snapshot_id": "abc"}}, 400),
        ({"volume": {"size": 1, "source_volid": "abc"}}, 400),
        ({"volume": {"size": None}}, 400),
        ({"volume": {}}, 400),
        ({"volumes": {"size": 1}}, 400),
        ([1, 2], 400),
    ]
    for body, code in cases:
        resp = stack.request("POST", "/volumes", body)
        assert resp.status_code == code, (body, resp.status_code, resp.text)
        fault = {400: "badRequest", 404: "itemNotFound"}[code]
        assert resp.json()[fault]["code"] == code, resp.text
        assert resp.json()[fault]["message"]
    malformed = stack.request("POST", "/volumes", raw="{not json")
    assert malformed.status_code == 400 and "badRequest" in malformed.json()
    empty = stack.request("POST", "/volumes", raw="")
    assert empty.status_code == 400
    unknown_version = stack.request("POST", "/volumes", {"volume": {"size": 1}},
                                    version="3.999")
    assert unknown_version.status_code == 406
    assert count_rows(models.Volume) == before
    assert count_rows(models.Worker) == 0


def test_largest_volume_size_is_accepted(stack):
    # 64 TiB fits the file back end only with over-subscription; the API must accept it and
    # the scheduler decide.
    resp = stack.request("POST", "/volumes", {"volume": {"size": "65536"}})
    assert resp.status_code == 202, resp.text
    assert resp.json()["volume"]["size"] == 65536


def test_not_found_and_project_isolation(stack):
    volume = stack.create_volume()
    stack.wait_volume(volume["id"], ("available",))
    other = stack.request("GET", "/volumes/" + volume["id"], token="bob:p2", project="p2")
    assert other.status_code == 404 and "itemNotFound" in other.json()
    assert stack.request("GET", "/volumes", token="bob:p2", project="p2").json() == {
        "volumes": []}
    mismatch = stack.request("GET", "/volumes", token="bob:p2", project="p1")
    assert mismatch.status_code == 400
    missing = stack.request("GET", "/volumes/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert stack.request("GET", "/nothing-here").status_code == 404
    assert stack.request("DELETE", "/volumes/" + volume["id"], token="bob:p2",
                         project="p2").status_code == 404


def test_pagination_sorting_filters(stack):
    ids = []
    for i in range(5):
        v = stack.create_volume(size=1, name="n%d" % i, metadata={"even": str(i % 2 == 0)})
        ids.append(v["id"])
    for vid in ids:
        stack.wait_volume(vid, ("available",))
    page1 = stack.request("GET", "/volumes?limit=2&sort=name:asc").json()
    assert [v["name"] for v in page1["volumes"]] == ["n0", "n1"]
    next_href = page1["volumes_links"][0]["href"]
    assert "marker=" in next_href
    page2 = stack.request("GET", "/volumes?limit=2&sort=name:asc&marker="
                          + page1["volumes"][-1]["id"]).json()
    assert [v["name"] for v in page2["volumes"]] == ["n2", "n3"]
    legacy = stack.request("GET", "/volumes/detail?sort_key=size&sort_dir=desc&limit=1")
    assert legacy.status_code == 200 and len(legacy.json()["volumes"]) == 1
    by_name = stack.request("GET", "/volumes/detail?name=n3").json()["volumes"]
    assert [v["name"] for v in by_name] == ["n3"]
    by_meta = stack.request("GET", "/volumes/detail?metadata={'even': 'True'}").json()
    assert sorted(v["name"] for v in by_meta["volumes"]) == ["n0", "n2", "n4"]
    by_status = stack.request("GET", "/volumes?status=error").json()["volumes"]
    assert by_status == []
    assert stack.request("GET", "/volumes?sort=bogus:asc").status_code == 400
    assert stack.request("GET", "/volumes?sort=name:sideways").status_code == 400
    assert stack.request("GET", "/volumes?limit=x").status_code == 400
    assert stack.request("GET", "/volumes?marker=nope").status_code == 404
    assert stack.request("GET", "/volumes?frobnicate=1").status_code == 400


def test_max_page_size(make_stack):
    s = make_stack(overrides={"osapi_max_limit": 3})
    for _ in range(4):
        s.create_volume()
    page = s.request("GET", "/volumes?limit=100").json()
    assert len(page["volumes"]) == 3 and page["volumes_links"]


def test_metadata_api(stack):
    volume = stack.create_volume(metadata={"a": "1"})
    vid = volume["id"]
    assert stack.request("GET", "/volumes/%s/metadata" % vid).json() == {"metadata": {"a": "1"}}
    merged = stack.request("POST", "/volumes/%s/metadata" % vid, {"metadata": {"b": "2"}})
    assert merged.json() == {"metadata": {"a": "1", "b": "2"}}
    replaced = stack.request("PUT", "/volumes/%s/metadata" % vid, {"metadata": {"c": "3"}})
    assert replaced.json() == {"metadata": {"c": "3"}}
    item = stack.request("PUT", "/volumes/%s/metadata/c" % vid, {"meta": {"c": "4"}})
    assert item.json() == {"meta": {"c": "4"}}
    assert stack.request("GET", "/volumes/%s/metadata/c" % vid).json() == {"meta": {"c": "4"}}
    assert stack.request("PUT", "/volumes/%s/metadata/c" % vid,
                         {"meta": {"d": "4"}}).status_code == 400
    assert stack.request("DELETE", "/volumes/%s/metadata/c" % vid).status_code == 200
    assert stack.request("GET", "/volumes/%s/metadata/c" % vid).status_code == 404
    assert stack.request("DELETE", "/volumes/%s/metadata/c" % vid).status_code == 404


def test_types_and_extra_specs(stack):
    created = stack.request("POST", "/types", {"volume_type": {
        "name": "silver", "description": "d", "os-volume-type-access:is_public": True}})
    assert created.status_code == 200
    tid = created.json()["volume_type"]["id"]
    assert stack.request("POST", "/types", {"volume_type": {"name": "silver"}}).status_code == 409
    assert stack.request("POST", "/types", {"volume_type": {"name": ""}}).status_code == 400
    assert stack.request("POST", "/types", {"volume_type": {"name": "x",
                                                            "oops": 1}}).status_code == 400
    specs = stack.request("POST", "/types/%s/extra_specs" % tid,
                          {"extra_specs": {"volume_backend_name": "file", "k": "v"}})
    assert specs.json() == {"extra_specs": {"volume_backend_name": "file", "k": "v"}}
    assert stack.request("GET", "/types/%s/extra_specs/k" % tid).json() == {"k": "v"}
    assert stack.request("PUT", "/types/%s/extra_specs/k" % tid, {"k": "w"}).json() == {
        "k": "w"}
    assert stack.request("DELETE", "/types/%s/extra_specs/k" % tid).status_code == 202
    assert stack.request("GET", "/types/%s/extra_specs/k" % tid).status_code == 404
    renamed = stack.request("PUT", "/types/" + tid, {"volume_type": {"name": "bronze"}})
    assert renamed.json()["volume_type"]["name"] == "bronze"
    default = stack.request("GET", "/types/default").json()["volume_type"]
    assert default["name"] == "__DEFAULT__"
    assert stack.request("DELETE", "/types/" + default["id"]).status_code == 400
    # members cannot write types
    member = stack.request("POST", "/types", {"volume_type": {"name": "m"}}, token="bob:p1")
    assert member.status_code == 403 and "forbidden" in member.json()
    # a type in use cannot be deleted
    volume = stack.create_volume(volume_type="bronze")
    assert stack.request("DELETE", "/types/" + tid).status_code == 400
    stack.wait_volume(volume["id"], ("available",))
    stack.request("DELETE", "/volumes/" + volume["id"])
    stack.wait_volume(volume["id"], ("deleted",))
    assert stack.request("DELETE", "/types/" + tid).status_code == 202
    assert stack.request("GET", "/types/" + tid).status_code == 404


def test_private_types_hidden_from_members(stack):
    private = stack.request("POST", "/types", {"volume_type": {
        "name": "secret", "os-volume-type-access:is_public": False}}).json()["volume_type"]
    names = [t["name"] for t in stack.request("GET", "/types", token="bob:p1").json()[
        "volume_types"]]
    assert "secret" not in names
    assert stack.request("GET", "/types/" + private["id"], token="bob:p1").status_code == 404
    all_types = stack.request("GET", "/types?is_public=None").json()["volume_types"]
    assert "secret" in [t["name"] for t in all_types]


def test_services_and_pools(stack):
    services = stack.request("GET", "/os-services").json()["services"]
    binaries = {(s["binary"], s["host"]): s for s in services}
    # Cinder's binary names (the services table keeps Lamina's: common/service.py)
    assert binaries[("cinder-volume", "stack@file")]["state"] == "up"
    assert binaries[("cinder-scheduler", "stack")]["status"] == "enabled"
    assert stack.request("GET", "/os-services", token="bob:p1").status_code == 403
    pools = stack.request("GET", "/scheduler-stats/get_pools?detail=true").json()["pools"]
    assert pools[0]["name"] == "stack@file#pool0"
    assert pools[0]["capabilities"]["volume_backend_name"] == "file"


def test_version_documents(stack):
    root = stack.http.get(stack.url + "/")
    assert root.status_code == 300
    v3 = [v for v in root.json()["versions"] if v["id"] == "v3.0"][0]
    assert (v3["min_version"], v3["version"]) == ("3.0", "3.71")
    assert stack.http.get(stack.url + "/v3/").json()["versions"][0]["id"] == "v3.0"
