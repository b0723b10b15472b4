"""Microversions 3.8..3.70 at their boundaries, through the HTTP API of the in-process stack:
the version before answers the old way, the version itself the new way (docs/api.md has the
table of what each version means here)."""

import hashlib
import json
import os
import time
import urllib.parse

import pytest
from tempest.lib.api_schema.response.volume import volume_types as type_schema
from tempest.lib.api_schema.response.volume.v3_7 import services as services_schema
from tempest.lib.common import rest_client

from api import microversion
from common.db import api as db
from tests.functional import test_groups, test_transfers

MEMBER = "bob:p1"


def volume_available(stack, **fields):
    volume = stack.create_volume(**fields)
    return stack.wait_volume(volume["id"], ("available",))


def snapshot_available(stack, volume_id, **fields):
    snap = stack.create_snapshot(volume_id, **fields)
    return stack.wait_snapshot(snap["id"], ("available",))


def action(stack, volume_id, name, args, **kwargs):
    return stack.request("POST", "/volumes/%s/action" % volume_id, {name: args}, **kwargs)


# --- the maximum and the version documents -------------------------------------------------------

def test_maximum_is_3_71(stack):
    """Cinder's last microversion (docs/api.md's table says what each means here)."""
    assert microversion.MAX_VERSION == (3, 71)
    latest = stack.request("GET", "/volumes", version="latest")
    assert latest.headers["OpenStack-API-Version"] == "volume 3.71"
    assert stack.request("GET", "/volumes", version="3.71").status_code == 200
    above = stack.request("GET", "/volumes", version="3.72")
    assert above.status_code == 406 and "notAcceptable" in above.json()
    for path in ("/", "/v3/"):
        docs = stack.http.get(stack.url + path).json()["versions"]
        v3 = [v for v in docs if v["id"] == "v3.0"][0]
        assert (v3["min_version"], v3["version"]) == ("3.0", "3.71")


def test_workers_cleanup_is_not_there_below_3_24(stack):
    resp = stack.request("POST", "/workers/cleanup", {}, version="3.23")
    assert resp.status_code == 404 and "itemNotFound" in resp.json()


# --- 3.10 group_id filter ------------------------------------------------------------------------

def test_3_10_group_id_filter(stack):
    volume_available(stack)
    old = stack.request("GET", "/volumes?group_id=g1", version="3.9")
    assert old.status_code == 400 and "group_id" in old.text
    new = stack.request("GET", "/volumes/detail?group_id=g1", version="3.10")
    assert new.status_code == 200 and new.json()["volumes"] == []  # no volume is in group g1


# --- 3.12 / 3.36 volume summary ------------------------------------------------------------------

def test_3_12_volume_summary_and_3_36_metadata(stack):
    volume_available(stack, size=2, metadata={"tier": "gold", "app": "db"})
    volume_available(stack, size=3, metadata={"tier": "silver"})
    other = stack.request("POST", "/volumes", {"volume": {"size": 4}}, project="p2")
    stack.wait_volume(other.json()["volume"]["id"], ("available",))
    assert stack.request("GET", "/volumes/summary", version="3.11").status_code == 404
    resp = stack.request("GET", "/volumes/summary", version="3.12")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"volume-summary": {"total_count": 2, "total_size": 5}}
    assert "metadata" not in stack.request("GET", "/volumes/summary",
                                           version="3.35").json()["volume-summary"]
    summary = stack.request("GET", "/volumes/summary", version="3.36").json()["volume-summary"]
    assert summary == {"total_count": 2, "total_size": 5,
                       "metadata": {"app": ["db"], "tier": ["gold", "silver"]}}
    everyone = stack.request("GET", "/volumes/summary?all_tenants=1",
                             version="3.36").json()["volume-summary"]
    assert (everyone["total_count"], everyone["total_size"]) == (3, 9)
    # all_tenants is an admin's: a member sees their project only
    member = stack.request("GET", "/volumes/summary?all_tenants=1", version="3.12",
                           token=MEMBER).json()["volume-summary"]
    assert member == {"total_count": 2, "total_size": 5}


def test_summary_of_no_volumes(stack):
    resp = stack.request("GET", "/volumes/summary", version="3.36")
    assert resp.json() == {"volume-summary": {"total_count": 0, "total_size": 0,
                                              "metadata": {}}}


# --- 3.15 ETag / If-Match on volume metadata -----------------------------------------------------

def test_3_15_metadata_etag(stack):
    vid = volume_available(stack, metadata={"a": "1"})["id"]
    path = "/volumes/%s/metadata" % vid
    old = stack.request("GET", path, version="3.14")
    assert old.status_code == 200 and "ETag" not in old.headers
    # before 3.15 If-Match is not looked at
    resp = stack.request("PUT", path, {"metadata": {"a": "2"}}, version="3.14")
    assert resp.status_code == 200

    got = stack.request("GET", path, version="3.15")
    etag = got.headers["ETag"]
    assert etag == hashlib.md5(json.dumps({"metadata": {"a": "2"}}).encode()).hexdigest()
    # someone else changes the metadata: the stale tag is refused and nothing changes
    stack.request("POST", path, {"metadata": {"b": "x"}}, version="3.15")

    def put(url, body, tag):
        return stack.http.put(stack.url + "/v3/p1" + url, json=body, headers={
            "X-Auth-Token": "admin:p1", "OpenStack-API-Version": "volume 3.15",
            "If-Match": tag})

    stale = put(path, {"metadata": {"a": "3"}}, etag)
    assert stale.status_code == 412
    stale_one = put(path + "/a", {"meta": {"a": "3"}}, '"%s"' % etag)
    assert stale_one.status_code == 412
    current = stack.request("GET", path, version="3.15")
    assert current.json()["metadata"] == {"a": "2", "b": "x"}
    fresh = current.headers["ETag"]
    assert fresh != etag
    assert put(path + "/a", {"meta": {"a": "3"}}, '"%s"' % fresh).status_code == 200
    newer = stack.request("GET", path, version="3.15").headers["ETag"]
    done = put(path, {"metadata": {"only": "this"}}, "%s, %s" % (etag, newer))
    assert done.status_code == 200 and done.json()["metadata"] == {"only": "this"}
    assert put(path, {"metadata": {"any": "tag"}}, "*").status_code == 200
    # at 3.14 the same stale tag is ignored
    resp = stack.http.put(stack.url + "/v3/p1" + path, json={"metadata": {"z": "1"}}, headers={
        "X-Auth-Token": "admin:p1", "OpenStack-API-Version": "volume 3.14", "If-Match": etag})
    assert resp.status_code == 200


# --- 3.21 provider_id ----------------------------------------------------------------------------

def test_3_21_provider_id_for_admins(stack):
    vid = volume_available(stack)["id"]
    assert "provider_id" not in stack.request("GET", "/volumes/" + vid,
                                              version="3.20").json()["volume"]
    shown = stack.request("GET", "/volumes/" + vid, version="3.21").json()["volume"]
    assert "provider_id" in shown and shown["provider_id"] is None
    listed = stack.request("GET", "/volumes/detail", version="3.21").json()["volumes"]
    assert "provider_id" in listed[0]
    member = stack.request("GET", "/volumes/" + vid, version="3.21", token=MEMBER)
    assert "provider_id" not in member.json()["volume"]


# --- 3.22 snapshot list metadata filter ----------------------------------------------------------

def test_3_22_snapshot_metadata_filter(stack):
    vid = volume_available(stack)["id"]
    tagged = snapshot_available(stack, vid, metadata={"k": "v"})
    snapshot_available(stack, vid)
    query = "/snapshots?metadata=%7B%22k%22%3A%22v%22%7D"  # {"k":"v"}
    old = stack.request("GET", query, version="3.21")
    assert old.status_code == 400 and "metadata" in old.text
    new = stack.request("GET", query, version="3.22")
    assert [s["id"] for s in new.json()["snapshots"]] == [tagged["id"]]


# --- 3.23 DELETE /volumes/{id}?force=true --------------------------------------------------------

def test_3_23_force_delete(stack):
    vid = volume_available(stack)["id"]
    assert action(stack, vid, "os-reset_status", {"status": "maintenance"}).status_code == 202
    # before 3.23 force is not looked at: a plain delete, refused in maintenance
    old = stack.request("DELETE", "/volumes/%s?force=true" % vid, version="3.22")
    assert old.status_code == 400
    # a member may not force
    member = stack.request("DELETE", "/volumes/%s?force=true" % vid, version="3.23",
                           token=MEMBER)
    assert member.status_code == 403
    assert stack.wait_volume(vid, ("maintenance",))["status"] == "maintenance"
    new = stack.request("DELETE", "/volumes/%s?force=true" % vid, version="3.23")
    assert new.status_code == 202, new.text
    stack.wait_volume(vid, ("deleted",))
    assert stack.volume_files() == []


def test_force_delete_refused_with_snapshots(stack):
    vid = volume_available(stack)["id"]
    snapshot_available(stack, vid)
    resp = stack.request("DELETE", "/volumes/%s?force=true" % vid, version="3.23")
    assert resp.status_code == 400
    assert stack.wait_volume(vid, ("available",))["status"] == "available"


# --- 3.30 snapshot sort by name ------------------------------------------------------------------

def test_3_30_snapshot_sort_by_name(stack):
    vid = volume_available(stack)["id"]
    for name in ("b", "c", "a"):
        snapshot_available(stack, vid, name=name)
    old = stack.request("GET", "/snapshots?sort=name:asc", version="3.29")
    assert old.status_code == 400 and "sort key" in old.text
    new = stack.request("GET", "/snapshots?sort=name:asc", version="3.30")
    assert [s["name"] for s in new.json()["snapshots"]] == ["a", "b", "c"]


# --- 3.28 / 3.35 get_pools filters ---------------------------------------------------------------

def test_3_28_and_3_35_pool_filters(stack):
    stack.request("POST", "/types", {"volume_type": {
        "name": "here", "extra_specs": {"volume_backend_name": "file"}}})
    stack.request("POST", "/types", {"volume_type": {
        "name": "elsewhere", "extra_specs": {"volume_backend_name": "rbd"}}})

    def names(query, version):
        resp = stack.request("GET", "/scheduler-stats/get_pools" + query, version=version)
        assert resp.status_code == 200, resp.text
        return [p["name"] for p in resp.json()["pools"]]

    pool = "stack@file#pool0"
    assert names("?name=nosuch", "3.27") == [pool]  # ignored before 3.28
    assert names("?name=nosuch", "3.28") == []
    assert names("?name=" + pool.replace("#", "%23"), "3.28") == [pool]
    assert names("?volume_backend_name=file", "3.28") == [pool]
    assert names("?volume_backend_name=rbd", "3.30") == []
    # from 3.31 only the filters /resource_filters lists
    bad = stack.request("GET", "/scheduler-stats/get_pools?volume_backend_name=file",
                        version="3.31")
    assert bad.status_code == 400 and "volume_backend_name" in bad.text
    assert names("?volume_type=elsewhere", "3.34") == [pool]  # ignored before 3.35
    assert names("?volume_type=elsewhere", "3.35") == []
    assert names("?volume_type=here&detail=true", "3.35") == [pool]
    missing = stack.request("GET", "/scheduler-stats/get_pools?volume_type=nosuch",
                            version="3.35")
    assert missing.status_code == 404


# --- 3.33 resource filters, 3.34 like filters ----------------------------------------------------

def test_3_33_resource_filters(stack):
    assert stack.request("GET", "/resource_filters", version="3.32").status_code == 404
    resp = stack.request("GET", "/resource_filters", version="3.33")
    assert resp.status_code == 200
    filters = {f["resource"]: f["filters"] for f in resp.json()["resource_filters"]}
    assert filters["volume"] == ["name", "status", "metadata", "availability_zone",
                                 "volume_type", "bootable", "glance_metadata", "group_id"]
    assert filters["snapshot"] == ["name", "status", "volume_id", "metadata"]
    assert filters["pool"] == ["name"]  # volume_type counts from 3.35
    pool = stack.request("GET", "/resource_filters?resource=pool", version="3.35")
    assert pool.json()["resource_filters"] == [{"resource": "pool",
                                                "filters": ["name", "volume_type"]}]
    one = stack.request("GET", "/resource_filters?resource=volume", version="3.34",
                        token=MEMBER).json()["resource_filters"]
    assert one == [{"resource": "volume", "filters": [
        "name~", "status~", "metadata", "availability_zone~", "volume_type", "bootable",
        "glance_metadata", "group_id"]}]
    none = stack.request("GET", "/resource_filters?resource=backup", version="3.34")
    assert none.json() == {"resource_filters": []}


def test_3_34_like_filters(stack):
    web = volume_available(stack, name="web-data")["id"]
    volume_available(stack, name="db-data")
    old = stack.request("GET", "/volumes?name~=web", version="3.33")
    assert old.status_code == 400 and "name~" in old.text
    new = stack.request("GET", "/volumes?name~=web", version="3.34")
    assert [v["id"] for v in new.json()["volumes"]] == [web]
    both = stack.request("GET", "/volumes?name~=data&status~=avail", version="3.34")
    assert len(both.json()["volumes"]) == 2
    # exact name filter unchanged
    assert stack.request("GET", "/volumes?name=web", version="3.34").json()["volumes"] == []


# --- 3.39 limits of another project (admin) ------------------------------------------------------

def test_3_39_admin_limits_of_another_project(stack):
    resp = stack.request("PUT", "/os-quota-sets/p2", {"quota_set": {"volumes": 7}})
    assert resp.status_code == 200, resp.text
    own = stack.request("GET", "/limits?project_id=p2", version="3.38").json()["limits"]
    assert own["absolute"]["maxTotalVolumes"] != 7  # ignored before 3.39
    other = stack.request("GET", "/limits?project_id=p2", version="3.39").json()["limits"]
    assert other["absolute"]["maxTotalVolumes"] == 7
    # a member may not look at another project's limits
    resp = stack.request("GET", "/limits?project_id=p2", version="3.39", token="u1:p1")
    assert resp.status_code == 403


# --- 3.40 revert, 3.41 snapshot user_id, 3.42 in-use extend --------------------------------------

def test_3_40_revert_is_reachable(stack):
    vid = volume_available(stack)["id"]
    snap = snapshot_available(stack, vid)
    body = {"snapshot_id": snap["id"]}
    assert action(stack, vid, "revert", body, version="3.39").status_code == 404
    resp = action(stack, vid, "revert", body, version="3.40")
    assert resp.status_code == 202, resp.text
    assert stack.wait_volume(vid, ("available",))["status"] == "available"


def test_3_41_snapshot_user_id(stack):
    vid = volume_available(stack)["id"]
    snap = stack.create_snapshot(vid)
    stack.wait_snapshot(snap["id"], ("available",))
    path = "/snapshots/" + snap["id"]
    assert "user_id" not in stack.request("GET", path, version="3.40").json()["snapshot"]
    shown = stack.request("GET", path, version="3.41").json()["snapshot"]
    assert shown["user_id"] == "admin"
    detail = stack.request("GET", "/snapshots/detail", version="3.41").json()["snapshots"]
    assert detail[0]["user_id"] == "admin"
    old_detail = stack.request("GET", "/snapshots/detail", version="3.40").json()["snapshots"]
    assert "user_id" not in old_detail[0]


def test_3_42_extend_in_use(stack):
    vid = volume_available(stack)["id"]
    assert action(stack, vid, "os-reset_status", {"status": "in-use"}).status_code == 202
    old = action(stack, vid, "os-extend", {"new_size": 2}, version="3.41")
    assert old.status_code == 400 and "available" in old.text
    new = action(stack, vid, "os-extend", {"new_size": 2}, version="3.42")
    assert new.status_code == 202, new.text
    done = stack.wait_volume(vid, ("in-use", "error_extending"))
    assert (done["status"], done["size"]) == ("in-use", 2)


# --- 3.46..3.71: built, and gated, above the advertised maximum until it is raised -----------
# Each test raises microversion.MAX_VERSION to 3.71 for itself (harmless once the maximum is
# there) and validates the bodies with the Tempest schema its client uses.

def above_the_maximum(monkeypatch):
    monkeypatch.setattr(microversion, "MAX_VERSION", (3, 71))


def valid(resp, schema, status=200):
    class _Resp(dict):
        def __init__(self, status):
            super().__init__()
            self.status = status

    assert resp.status_code == status, resp.text
    body = resp.json() if resp.text else resp.text
    rest_client.RestClient.validate_response(schema, _Resp(resp.status_code), body)
    return body


def wait_for(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


# --- 3.49 backend_state in os-services -----------------------------------------------------------

def test_3_49_backend_state(stack, monkeypatch):
    above_the_maximum(monkeypatch)

    def listed(version):
        resp = stack.request("GET", "/os-services", version=version)
        return valid(resp, services_schema.list_services)["services"]

    def volume_state():
        return [s.get("backend_state") for s in listed("3.49") if s["binary"] == "cinder-volume"]

    assert all("backend_state" not in s for s in listed("3.48"))
    assert volume_state() == ["up"]
    # only volume services have a back end
    assert all("backend_state" not in s for s in listed("3.49") if s["binary"] != "cinder-volume")
    # the file back end loses its pool directory: its report says down, and so does the list
    pool_dir = os.path.join(stack.workdir, "file", "pool0")
    assert os.path.isdir(pool_dir)
    os.rename(pool_dir, pool_dir + ".away")
    try:
        wait_for(lambda: volume_state() == ["down"])
    finally:
        os.rename(pool_dir + ".away", pool_dir)
    wait_for(lambda: volume_state() == ["up"])


# --- 3.50 multiattach: retype into and out of a multiattach type -------------------------------

def test_3_50_retype_changes_multiattach_only_when_available(stack, monkeypatch):
    above_the_maximum(monkeypatch)
    for name, specs in (("single", {}), ("multi", {"multiattach": "<is> True"})):
        resp = stack.request("POST", "/types", {"volume_type": {"name": name,
                                                                "extra_specs": specs}})
        assert resp.status_code == 200, resp.text
    vid = volume_available(stack, volume_type="single")["id"]

    def retype(to, version):
        return action(stack, vid, "os-retype", {"new_type": to, "migration_policy": "never"},
                      version=version)

    for to, multiattach, version in (("multi", True, "3.50"), ("single", False, "3.49")):
        assert retype(to, version).status_code == 202
        shown = stack.wait_volume(vid, ("available",))
        assert (shown["volume_type"], shown["multiattach"]) == (to, multiattach)
    # an in-use volume keeps what it was attached as: refused, nothing changes
    assert action(stack, vid, "os-reset_status", {"status": "in-use"}).status_code == 202
    refused = retype("multi", "3.50")
    assert refused.status_code == 400 and "only allowed on available" in refused.text
    shown = stack.request("GET", "/volumes/" + vid, version="3.50").json()["volume"]
    assert (shown["status"], shown["volume_type"], shown["multiattach"]) == (
        "in-use", "single", False)
    # multiattach and encryption do not go together
    assert action(stack, vid, "os-reset_status", {"status": "available"}).status_code == 202
    crypt = stack.request("POST", "/types", {"volume_type": {
        "name": "multi-luks", "extra_specs": {"multiattach": "<is> True"}}}).json()
    resp = stack.request("POST", "/types/%s/encryption" % crypt["volume_type"]["id"], {
        "encryption": {"provider": "luks", "control_location": "front-end"}})
    assert resp.status_code == 200, resp.text
    refused = retype("multi-luks", "3.50")
    assert refused.status_code == 400 and "encryption and multi-attach" in refused.text


# --- 3.52 volume type list filter extra_specs ----------------------------------------------------

def test_3_52_type_list_extra_specs_filter(stack, monkeypatch):
    above_the_maximum(monkeypatch)
    for name, specs in (("a", {"key1": "value1", "RESKEY:availability_zones": "az1,az2"}),
                        ("b", {"key2": "value2", "RESKEY:availability_zones": "az1, az3"}),
                        ("c", {"key3": "value3"})):
        resp = stack.request("POST", "/types", {"volume_type": {"name": name,
                                                                "extra_specs": specs}})
        assert resp.status_code == 200, resp.text

    def names(specs, version="3.52", token=None):
        query = urllib.parse.quote(json.dumps(specs))
        resp = stack.request("GET", "/types?extra_specs=" + query, version=version, token=token)
        return {t["name"] for t in valid(resp, type_schema.list_volume_types)["volume_types"]}

    everyone = names({}, "3.51")
    assert {"a", "b", "c"} <= everyone
    assert names({"key1": "value1"}, "3.51") == everyone  # ignored below 3.52
    assert names({"key1": "value1"}) == {"a"}
    assert names({"key1": "other"}) == set()
    # a zone matches the types whose zone list names it
    assert names({"RESKEY:availability_zones": "az1"}) == {"a", "b"}
    assert names({"RESKEY:availability_zones": "az3"}) == {"b"}
    assert names({"RESKEY:availability_zones": "az"}) == set()
    assert names({"key1": "value1", "RESKEY:availability_zones": "az1"}) == {"a"}
    # members find by the specs they see, and by no other (not even a matching one)
    assert names({"RESKEY:availability_zones": "az2"}, token=MEMBER) == {"a"}
    assert names({"key1": "value1"}, token=MEMBER) == set()
    bad = stack.request("GET", "/types?extra_specs=notadict", version="3.52")
    assert bad.status_code == 400 and "extra_specs" in bad.text
    # /resource_filters shows the filter from 3.52
    filters = {v: stack.request("GET", "/resource_filters?resource=volume_type",
                                version=v).json()["resource_filters"][0]["filters"]
               for v in ("3.51", "3.52")}
    assert filters == {"3.51": ["is_public"], "3.52": ["is_public", "extra_specs"]}


def test_3_52_type_availability_zones_on_create(make_stack):
    # RESKEY:availability_zones is reserved at every version, as in Cinder. The pools are in
    # zone nova; the default zone az2 is known too (a zone the default names exists).
    stack = make_stack(overrides={"default_availability_zone": "az2"})
    for name, zones in (("nova-only", "nova"), ("nowhere", "elsewhere, nowhere")):
        resp = stack.request("POST", "/types", {"volume_type": {
            "name": name, "extra_specs": {"RESKEY:availability_zones": zones}}})
        assert resp.status_code == 200, resp.text
    # no zone asked: not the default (the type does not allow it) but the type's zone
    made = volume_available(stack, volume_type="nova-only")
    assert made["availability_zone"] == "nova"
    refused = stack.request("POST", "/volumes", {"volume": {
        "size": 1, "volume_type": "nova-only", "availability_zone": "az2"}})
    assert refused.status_code == 400 and "az2" in refused.text
    refused = stack.request("POST", "/volumes", {"volume": {"size": 1,
                                                            "volume_type": "nowhere"}})
    assert refused.status_code == 400 and "elsewhere,nowhere" in refused.text
    assert [v["id"] for v in stack.request("GET", "/volumes").json()["volumes"]] == [made["id"]]


# --- 3.53 request bodies validated by schema: at every version here -------------------------

@pytest.mark.parametrize("version", ["3.0", "3.52", "3.53"])
def test_3_53_body_validation_at_every_version(stack, monkeypatch, version):
    above_the_maximum(monkeypatch)
    unknown = stack.request("POST", "/volumes", {"volume": {"size": 1, "user_id": "u"}},
                            version=version)
    assert unknown.status_code == 400 and "user_id" in unknown.text
    vid = volume_available(stack, name="kept")["id"]
    empty = stack.request("PUT", "/volumes/" + vid, {"volume": {}}, version=version)
    assert empty.status_code == 400
    assert stack.request("GET", "/volumes/" + vid).json()["volume"]["name"] == "kept"


# --- 3.58 project_id in group and group snapshot bodies ------------------------------------------

def test_3_58_group_project_id(stack, monkeypatch):
    above_the_maximum(monkeypatch)
    group = test_groups.new_group(stack)
    assert group["status"] == "available"
    assert test_groups.volume_in(stack, group["id"])["status"] == "available"
    resp = stack.request("POST", "/group_snapshots", {"group_snapshot": {
        "group_id": group["id"], "name": "gs"}}, version="3.20")
    assert resp.status_code == 202, resp.text
    gs = test_groups.wait_group_snapshot(stack, resp.json()["group_snapshot"]["id"],
                                         ("available",))

    def bodies(version):
        return [stack.request("GET", "/groups/" + group["id"], version=version).json()["group"],
                stack.request("GET", "/groups/detail", version=version).json()["groups"][0],
                stack.request("GET", "/group_snapshots/" + gs["id"],
                              version=version).json()["group_snapshot"],
                stack.request("GET", "/group_snapshots/detail",
                              version=version).json()["group_snapshots"][0]]

    assert all("project_id" not in body for body in bodies("3.57"))
    assert [body["project_id"] for body in bodies("3.58")] == ["p1"] * 4
    # not in the summary lists
    summary = stack.request("GET", "/groups", version="3.58").json()["groups"][0]
    assert set(summary) == {"id", "name"}


# --- 3.70 transfer of an encrypted volume ----------------------------------------------------

def test_3_70_transfer_of_an_encrypted_volume(stack, monkeypatch):
    above_the_maximum(monkeypatch)
    vtype = stack.request("POST", "/types", {"volume_type": {"name": "luks"}}).json()
    resp = stack.request("POST", "/types/%s/encryption" % vtype["volume_type"]["id"], {
        "encryption": {"provider": "luks", "control_location": "front-end"}})
    assert resp.status_code == 200, resp.text
    vid = volume_available(stack, volume_type="luks")["id"]
    assert stack.request("GET", "/volumes/" + vid).json()["volume"]["encrypted"] is True
    for root, version in (("/os-volume-transfer", "3.0"), ("/volume-transfers", "3.69")):
        refused = stack.request("POST", root, {"transfer": {"volume_id": vid}}, version=version)
        assert refused.status_code == 400 and "encrypted" in refused.text
        assert stack.wait_volume(vid, ("available",))["status"] == "available"
    transfer = test_transfers.offer(stack, vid, version="3.70", token="admin:p1")
    accepted = test_transfers.accept(stack, transfer, version="3.70")
    assert accepted.status_code == 202, accepted.text
    assert db.volume_get_internal(vid).project_id == "p2"
    # a volume of a plain type is transferred at every version, as before
    plain = volume_available(stack)["id"]
    old = stack.request("POST", "/os-volume-transfer", {"transfer": {"volume_id": plain}})
    assert old.status_code == 202, old.text
