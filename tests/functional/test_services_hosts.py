"""The service-side resources as Cinder answers them: os-services (Cinder's binary names,
Cinder's host matching, enable/disable bodies, freeze/thaw/failover refusals), os-hosts,
capabilities, os-availability-zone, extensions and clusters (3.7), on the in-process stack
(host `stack`: scheduler `stack`, volume service `stack@file`). Every body is validated
against Tempest's schema for the call, and python-cinderclient's commands run against it."""

from cinderclient import client as cinder_client
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from tempest.lib.api_schema.response.volume import capabilities as capabilities_schema
from tempest.lib.api_schema.response.volume import extensions as extensions_schema
from tempest.lib.api_schema.response.volume import hosts as hosts_schema
from tempest.lib.api_schema.response.volume import services as services_schema
from tempest.lib.api_schema.response.volume.v3_7 import services as services_schema_37
from tempest.lib.common import rest_client

from common.db import api as db
from tests.integration import scenarios

MEMBER = "bob:p1"


class _Resp:
    def __init__(self, status):
        self.status = status


def valid(resp, schema, status=200):
    """The response has `status` and a body Tempest's schema accepts (additionalProperties
    false: a key Cinder does not send fails as surely as a missing one)."""
    assert resp.status_code == status, resp.text
    body = resp.json() if resp.content else None
    rest_client.RestClient.validate_response(schema, _Resp(resp.status_code), body)
    return body


def fault(resp, status, name):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {name} and body[name]["code"] == status, body
    return body[name]["message"]


def services(stack, query="", version=None):
    schema = services_schema_37 if version else services_schema
    return valid(stack.request("GET", "/os-services" + query, version=version),
                 schema.list_services)["services"]


def service_row(host, binary="lamina-volume"):
    return next(r for r in db.service_get_all() if r.host == host and r.binary == binary)


# --- os-services -----------------------------------------------------------------------------

def test_services_list_under_cinder_names(stack):
    listed = services(stack)
    by_key = {(s["binary"], s["host"]): s for s in listed}
    assert set(by_key) == {("cinder-scheduler", "stack"), ("cinder-volume", "stack@file"),
                           ("cinder-backup", "stack")}
    volume = by_key[("cinder-volume", "stack@file")]
    assert (volume["state"], volume["status"], volume["zone"]) == ("up", "enabled", "nova")
    # Cinder's replication fields are a volume service's only; `cluster` from 3.7
    assert (volume["replication_status"], volume["active_backend_id"], volume["frozen"]) == (
        "disabled", None, False)
    assert "frozen" not in by_key[("cinder-scheduler", "stack")]
    assert all("cluster" not in s for s in listed)
    at_37 = services(stack, version="3.7")
    assert [s["cluster"] for s in at_37] == [None, None, None]
    # operators keep Lamina's names in the table (lamina-manage service list shows them)
    assert {r.binary for r in db.service_get_all()} == {"lamina-scheduler", "lamina-volume",
                                                        "lamina-backup"}


def test_services_filters_match_as_cinder(stack):
    # A plain host names the host and its back ends (Tempest's test_get_service_by_host_name)
    assert {s["binary"] for s in services(stack, "?host=stack")} == {
        "cinder-scheduler", "cinder-volume", "cinder-backup"}
    only = services(stack, "?host=stack&binary=cinder-volume")
    assert [(s["host"], s["binary"]) for s in only] == [("stack@file", "cinder-volume")]
    # host@backend names itself only; a prefix or an unknown name nothing
    assert [s["host"] for s in services(stack, "?host=stack@file")] == ["stack@file"]
    assert services(stack, "?host=sta") == []
    assert services(stack, "?host=stack@fil") == []
    assert services(stack, "?host=STACK") == []
    assert services(stack, "?host=nowhere") == []
    # binary by Cinder's name (Lamina's own is accepted too)
    assert [s["host"] for s in services(stack, "?binary=cinder-scheduler")] == ["stack"]
    assert [s["binary"] for s in services(stack, "?binary=lamina-volume")] == ["cinder-volume"]
    assert [(s["host"], s["binary"]) for s in services(stack, "?binary=cinder-backup")] == [
        ("stack", "cinder-backup")]
    assert services(stack, "?binary=invalid") == []
    assert stack.request("GET", "/os-services", token=MEMBER).status_code == 403


def test_disable_enable_bodies_as_the_schemas_say(stack):
    body = valid(stack.request("PUT", "/os-services/disable",
                               {"host": "stack@file", "binary": "cinder-volume"}),
                 services_schema.disable_service)
    assert body == {"disabled": True, "status": "disabled", "host": "stack@file",
                    "service": "", "binary": "cinder-volume"}
    assert service_row("stack@file").disabled
    body = valid(stack.request("PUT", "/os-services/disable-log-reason",
                               {"host": "stack@file", "binary": "cinder-volume",
                                "disabled_reason": "disk swap"}),
                 services_schema.disable_log_reason)
    assert body["disabled_reason"] == "disk swap" and body["service"] == ""
    listed = services(stack, "?binary=cinder-volume")
    assert (listed[0]["status"], listed[0]["disabled_reason"]) == ("disabled", "disk swap")
    # the hosts list leaves out a disabled service, as Cinder's
    hosts = valid(stack.request("GET", "/os-hosts"), hosts_schema.list_hosts)["hosts"]
    assert [h["host_name"] for h in hosts] == ["stack", "stack"]  # scheduler, backup
    # `service`, Cinder's deprecated key, names the binary too; enable clears the reason
    body = valid(stack.request("PUT", "/os-services/enable",
                               {"host": "stack@file", "service": "cinder-volume"}),
                 services_schema.enable_service)
    assert body == {"disabled": False, "status": "enabled", "host": "stack@file",
                    "service": "cinder-volume", "binary": "", "disabled_reason": None}
    row = service_row("stack@file")
    assert (row.disabled, row.disabled_reason) == (False, None)
    # the scheduler's service by its Cinder name, the v3_7 schemas at 3.7
    resp = stack.request("PUT", "/os-services/disable",
                         {"host": "stack", "binary": "cinder-scheduler"}, version="3.7")
    valid(resp, services_schema_37.disable_service)
    assert service_row("stack", "lamina-scheduler").disabled
    valid(stack.request("PUT", "/os-services/enable",
                        {"host": "stack", "binary": "cinder-scheduler"}, version="3.7"),
          services_schema_37.enable_service)


def test_service_update_bad_input(stack):
    before = [(r.host, r.binary, r.disabled, r.disabled_reason) for r in db.service_get_all()]
    good = {"host": "stack@file", "binary": "cinder-volume"}
    cases = [
        ("enable", {"host": "invalid_host", "binary": "cinder-volume"}, 404, "itemNotFound"),
        ("disable", {"host": "stack@file", "binary": "invalid_binary"}, 404, "itemNotFound"),
        ("disable", {"host": "stack@file", "binary": "cinder-scheduler"}, 404, "itemNotFound"),
        ("disable", {"binary": "cinder-volume"}, 400, "badRequest"),
        ("disable", {"host": "", "binary": "cinder-volume"}, 400, "badRequest"),
        ("disable", {"host": "stack@file"}, 400, "badRequest"),
        ("disable", dict(good, nonsense=1), 400, "badRequest"),
        ("disable", dict(good, host=5), 400, "badRequest"),
        ("disable-log-reason", dict(good, disabled_reason=None), 400, "badRequest"),
        ("disable-log-reason", good, 400, "badRequest"),
        ("disable-log-reason", dict(good, disabled_reason="   "), 400, "badRequest"),
        ("disable-log-reason", dict(good, disabled_reason="x" * 256), 400, "badRequest"),
        ("disable-log-reason", dict(good, disabled_reason=7), 400, "badRequest"),
        ("reboot", good, 400, "badRequest"),
        ("failover", good, 400, "badRequest"),  # an unknown action below 3.26
    ]
    for action, body, status, name in cases:
        resp = stack.request("PUT", "/os-services/" + action, body)
        fault(resp, status, name)
    for raw in (b"", b"{", b"[]"):
        fault(stack.request("PUT", "/os-services/disable", raw=raw), 400, "badRequest")
    assert "Unknown action" in fault(stack.request("PUT", "/os-services/reboot", good), 400,
                                     "badRequest")
    assert "Host field is missing" in fault(
        stack.request("PUT", "/os-services/enable", {"binary": "cinder-volume"}), 400,
        "badRequest")
    for action in ("enable", "disable", "disable-log-reason", "freeze", "thaw",
                   "failover_host"):
        resp = stack.request("PUT", "/os-services/" + action,
                             dict(good, disabled_reason="r"), token=MEMBER)
        fault(resp, 403, "forbidden")
    after = [(r.host, r.binary, r.disabled, r.disabled_reason) for r in db.service_get_all()]
    assert after == before


def test_freeze_thaw_failover(make_stack):
    stack = make_stack(backends={"file": {}, "other": {}})
    # unknown or missing host: 400 as Cinder (Tempest's negative freeze/thaw tests)
    for action in ("freeze", "thaw"):
        assert "No service found with host=invalid_host" in fault(
            stack.request("PUT", "/os-services/" + action, {"host": "invalid_host"}), 400,
            "badRequest")
        assert "Host field is missing" in fault(
            stack.request("PUT", "/os-services/" + action, {}), 400, "badRequest")
        fault(stack.request("PUT", "/os-services/" + action, {"host": "stack", "x": 1}), 400,
              "badRequest")
        # a plain host with two back ends names more than one
        assert "Services from different clusters found" in fault(
            stack.request("PUT", "/os-services/" + action, {"host": "stack"}), 400,
            "badRequest")
        # from 3.26 one and only one of cluster and host; no cluster exists
        assert "One and only one" in fault(stack.request(
            "PUT", "/os-services/" + action, {"host": "stack@file", "cluster": "c"},
            version="3.26"), 400, "badRequest")
        assert "No service found with cluster=c" in fault(stack.request(
            "PUT", "/os-services/" + action, {"cluster": "c"}, version="3.26"), 400,
            "badRequest")
    # nothing is frozen, so thaw answers as Cinder does for a back end that is not
    assert "frozen in ['stack@other'] must be True" in fault(
        stack.request("PUT", "/os-services/thaw", {"host": "stack@other"}), 400, "badRequest")
    assert all(s["frozen"] is False for s in services(stack, "?binary=cinder-volume"))
    # failover: no back end replicates (400); an unknown host is 404, as Cinder's
    assert "replication_status in ['stack@file'] must be enabled" in fault(
        stack.request("PUT", "/os-services/failover_host", {"host": "stack@file"}), 400,
        "badRequest")
    fault(stack.request("PUT", "/os-services/failover_host", {"host": "nowhere"}), 404,
          "itemNotFound")
    fault(stack.request("PUT", "/os-services/failover", {"host": "stack@file"},
                        version="3.26"), 400, "badRequest")
    # set-log / get-log exist from 3.32 (tests/functional/test_manage_cli.py sets levels)
    assert "Invalid log level" in fault(
        stack.request("PUT", "/os-services/set-log", {"level": "LOUD"}, version="3.32"), 400,
        "badRequest")
    assert "Unknown action" in fault(
        stack.request("PUT", "/os-services/get-log", {}, version="3.31"), 400, "badRequest")


# --- os-hosts --------------------------------------------------------------------------------

def test_hosts_list_and_show(stack):
    hosts = valid(stack.request("GET", "/os-hosts"), hosts_schema.list_hosts)["hosts"]
    assert {(h["host_name"], h["service"]) for h in hosts} == {
        ("stack", "cinder-scheduler"), ("stack@file", "cinder-volume"),
        ("stack", "cinder-backup")}
    assert all(h["service-status"] == "available" and h["service-state"] == "enabled"
               and h["zone"] == "nova" for h in hosts)
    assert len(valid(stack.request("GET", "/os-hosts?zone=nova"),
                     hosts_schema.list_hosts)["hosts"]) == 3
    assert len(valid(stack.request("GET", "/os-hosts?zone="),
                     hosts_schema.list_hosts)["hosts"]) == 3
    assert valid(stack.request("GET", "/os-hosts?zone=xxx"),
                 hosts_schema.list_hosts)["hosts"] == []

    empty = valid(stack.request("GET", "/os-hosts/stack@file"), hosts_schema.show_host)
    assert empty["host"] == [{"resource": {
        "host": "stack@file", "project": "(total)", "volume_count": "0",
        "total_volume_gb": "0", "snapshot_count": "0", "total_snapshot_gb": "0"}}]
    v1 = stack.create_volume(size=2)
    v2 = stack.create_volume(size=3)
    resp = stack.request("POST", "/volumes", {"volume": {"size": 1}}, project="p2")
    assert resp.status_code == 202, resp.text
    v3 = resp.json()["volume"]
    for v in (v1, v2):
        stack.wait_volume(v["id"], ("available",))
    stack.wait_volume(v3["id"], ("available",))  # admin of p1 sees every project
    snap = stack.create_snapshot(v1["id"])
    stack.wait_snapshot(snap["id"], ("available",))
    shown = valid(stack.request("GET", "/os-hosts/stack@file"), hosts_schema.show_host)
    resources = {r["resource"]["project"]: r["resource"] for r in shown["host"]}
    assert shown["host"][0]["resource"]["project"] == "(total)"
    figures = {p: (r["volume_count"], r["total_volume_gb"], r["snapshot_count"],
                   r["total_snapshot_gb"]) for p, r in resources.items()}
    assert figures == {"(total)": ("3", "6", "1", "2"), "p1": ("2", "5", "1", "2"),
                       "p2": ("1", "1", "0", "0")}
    # a plain host names its back end, as Cinder's lookup by host and topic finds it
    by_host = valid(stack.request("GET", "/os-hosts/stack"), hosts_schema.show_host)
    assert by_host["host"][0]["resource"]["volume_count"] == "3"
    assert by_host["host"][0]["resource"]["host"] == "stack"
    # a deleted volume no longer counts
    assert stack.request("DELETE", "/volumes/" + v2["id"]).status_code == 202
    stack.wait_volume(v2["id"], ("deleted",))
    total = valid(stack.request("GET", "/os-hosts/stack@file"), hosts_schema.show_host)
    assert total["host"][0]["resource"]["total_volume_gb"] == "3"

    fault(stack.request("GET", "/os-hosts/nowhere"), 404, "itemNotFound")
    fault(stack.request("GET", "/os-hosts/stack@fil"), 404, "itemNotFound")
    fault(stack.request("GET", "/os-hosts", token=MEMBER), 403, "forbidden")
    fault(stack.request("GET", "/os-hosts/stack@file", token=MEMBER), 403, "forbidden")
    fault(stack.request("PUT", "/os-hosts/stack@file", {"status": "disable"}), 405,
          "badMethod")


# --- capabilities ----------------------------------------------------------------------------

def test_capabilities(stack):
    caps = valid(stack.request("GET", "/capabilities/stack@file"),
                 capabilities_schema.show_backend_capabilities)
    assert caps["namespace"] == "OS::Storage::Capabilities::stack@file"
    assert (caps["volume_backend_name"], caps["vendor_name"], caps["storage_protocol"],
            caps["driver_version"], caps["pool_name"]) == ("file", "Lamina", "local", "1.0.0",
                                                           None)
    assert caps["replication_targets"] == [] and "thin_provisioning" in caps["properties"]
    # the same figures get_pools shows (Tempest's test_compare_volume_stats_values)
    pool = stack.request("GET", "/scheduler-stats/get_pools?detail=true").json()["pools"][0]
    for key in ("vendor_name", "volume_backend_name", "storage_protocol"):
        assert caps[key] == pool["capabilities"][key]
    # a pool's name (its `#` percent-encoded) names its back end
    assert valid(stack.request("GET", "/capabilities/stack@file%23pool0"),
                 capabilities_schema.show_backend_capabilities) == caps
    for missing in ("nowhere", "stack", "stack@other", "stack@file@x"):
        assert "Can't find service" in fault(
            stack.request("GET", "/capabilities/" + missing), 404, "itemNotFound")
    fault(stack.request("GET", "/capabilities/stack@file", token=MEMBER), 403, "forbidden")


# --- availability zones ----------------------------------------------------------------------

def test_availability_zones(make_stack):
    stack = make_stack(backends={"file": {}, "other": {}},
                       overrides={"storage_availability_zone": "az1"})
    resp = stack.request("GET", "/os-availability-zone")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"availabilityZoneInfo": [
        {"zoneName": "az1", "zoneState": {"available": True}}]}
    # any user may list them (Cinder asks no rule)
    assert stack.request("GET", "/os-availability-zone", token=MEMBER).json() == resp.json()
    # a zone stays available while one of its volume services is enabled
    for n, host in enumerate(("stack@file", "stack@other")):
        valid(stack.request("PUT", "/os-services/disable",
                            {"host": host, "binary": "cinder-volume"}),
              services_schema.disable_service)
        zones = stack.request("GET", "/os-availability-zone").json()["availabilityZoneInfo"]
        assert zones == [{"zoneName": "az1", "zoneState": {"available": n == 0}}]
    # the scheduler's zone does not count: only volume services hold volumes
    assert len(stack.request("GET", "/os-availability-zone").json()[
        "availabilityZoneInfo"]) == 1


# --- extensions ------------------------------------------------------------------------------

def test_extensions(stack):
    listed = valid(stack.request("GET", "/extensions"),
                   extensions_schema.list_extensions)["extensions"]
    aliases = [e["alias"] for e in listed]
    assert len(aliases) == len(set(aliases))
    # what Tempest's test_list_extensions looks for with api_extensions = all
    assert "Hosts" in [e["name"] for e in listed]
    for alias in ("os-services", "os-hosts", "capabilities", "os-availability-zone",
                  "os-quota-sets", "os-volume-type-access", "os-admin-actions",
                  "scheduler-stats", "os-volume-manage", "os-extended-services",
                  "os-volume-encryption-metadata", "backups"):
        assert alias in aliases, alias
    # what Lamina does not serve is not listed
    for alias in ("consistencygroups", "cgsnapshots", "OS-SCH-HNT",
                  "os-image-create"):
        assert alias not in aliases, alias
    # members list them too (Cinder asks no rule)
    assert stack.request("GET", "/extensions", token=MEMBER).json()["extensions"] == listed
    # show one (Cinder serves it; Tempest has no schema for it)
    shown = stack.request("GET", "/extensions/os-hosts")
    assert shown.status_code == 200, shown.text
    assert shown.json() == {"extension": next(e for e in listed if e["alias"] == "os-hosts")}
    fault(stack.request("GET", "/extensions/consistencygroups"), 404, "itemNotFound")


# --- clusters (3.7) --------------------------------------------------------------------------

def test_clusters(stack):
    for path in ("/clusters", "/clusters/detail"):
        resp = stack.request("GET", path, version="3.7")
        assert resp.status_code == 200 and resp.json() == {"clusters": []}, resp.text
        fault(stack.request("GET", path, version="3.6"), 404, "itemNotFound")
        fault(stack.request("GET", path, version="3.7", token=MEMBER), 403, "forbidden")
        ok = stack.request("GET", path + "?is_up=true&disabled=false&binary=cinder-volume",
                           version="3.7")
        assert ok.status_code == 200 and ok.json() == {"clusters": []}
        fault(stack.request("GET", path + "?host=stack", version="3.7"), 400, "badRequest")
        fault(stack.request("GET", path + "?is_up=maybe", version="3.7"), 400, "badRequest")
        # replication filters from 3.26
        fault(stack.request("GET", path + "?frozen=false", version="3.25"), 400, "badRequest")
        assert stack.request("GET", path + "?frozen=false", version="3.26").status_code == 200
    fault(stack.request("GET", "/clusters/mycluster", version="3.7"), 404, "itemNotFound")
    fault(stack.request("GET", "/clusters/mycluster?binary=cinder-volume", version="3.7"),
          404, "itemNotFound")
    fault(stack.request("GET", "/clusters/mycluster", version="3.7", token=MEMBER), 403,
          "forbidden")
    for action in ("enable", "disable"):
        fault(stack.request("PUT", "/clusters/" + action, {"name": "mycluster"},
                            version="3.7"), 404, "itemNotFound")
        fault(stack.request("PUT", "/clusters/" + action, {}, version="3.7"), 400,
              "badRequest")
        fault(stack.request("PUT", "/clusters/" + action, {"name": "c"}, version="3.6"), 404,
              "itemNotFound")
        fault(stack.request("PUT", "/clusters/" + action, {"name": "c"}, version="3.7",
                            token=MEMBER), 403, "forbidden")
    fault(stack.request("PUT", "/clusters/reboot", {"name": "c"}, version="3.7"), 404,
          "itemNotFound")
    fault(stack.request("PUT", "/clusters/disable", {"name": "c", "disabled_reason": " "},
                        version="3.7"), 400, "badRequest")


# --- python-cinderclient ---------------------------------------------------------------------

def cinder(stack, version="3.0"):
    auth = token_endpoint.Token("%s/v3/p1" % stack.url, "admin:p1")
    return cinder_client.Client(version, session=ks_session.Session(auth=auth))


def test_cinderclient_python_api(stack):
    c = cinder(stack, "3.7")
    listed = c.services.list(binary="cinder-volume")
    assert [(s.host, s.binary, s.cluster) for s in listed] == [
        ("stack@file", "cinder-volume", None)]
    assert sorted(s.binary for s in c.services.list(host="stack")) == [
        "cinder-backup", "cinder-scheduler", "cinder-volume"]
    c.services.disable_log_reason("stack@file", "cinder-volume", "maintenance")
    assert service_row("stack@file").disabled_reason == "maintenance"
    c.services.enable("stack@file", "cinder-volume")
    assert not service_row("stack@file").disabled
    zones = c.availability_zones.list()
    assert [(z.zoneName, z.zoneState) for z in zones] == [("nova", {"available": True})]
    caps = c.capabilities.get("stack@file")
    assert caps.volume_backend_name == "file"
    from cinderclient.v3.contrib import list_extensions

    aliases = [e.alias for e in list_extensions.ListExtManager(c).show_all()]
    assert "os-hosts" in aliases
    assert c.clusters.list() == []


def test_cinder_cli(stack):
    rc, out = scenarios.cinder_cli(stack.url, "service-list")
    assert rc == 0, out
    assert "cinder-volume" in out and "stack@file" in out and "cinder-scheduler" in out
    rc, out = scenarios.cinder_cli(stack.url, "service-list", "--binary", "cinder-volume")
    assert rc == 0 and "cinder-scheduler" not in out and "stack@file" in out, out
    rc, out = scenarios.cinder_cli(stack.url, "availability-zone-list")
    assert rc == 0, out
    assert scenarios.table_field(out, "nova") == "available"
    rc, out = scenarios.cinder_cli(stack.url, "list-extensions")
    assert rc == 0 and "os-hosts" in out and "Hosts" in out, out
    rc, out = scenarios.cinder_cli(stack.url, "get-capabilities", "stack@file")
    assert rc == 0, out
    assert scenarios.table_field(out, "volume_backend_name") == "file"
    assert scenarios.table_field(out, "vendor_name") == "Lamina"
    rc, out = scenarios.cinder_cli(stack.url, "service-disable", "--reason", "swap",
                                   "stack@file", "cinder-volume")
    assert rc == 0 and "swap" in out, out
    rc, out = scenarios.cinder_cli(stack.url, "service-enable", "stack@file", "cinder-volume")
    assert rc == 0 and "enabled" in out, out
    rc, out = scenarios.cinder_cli(stack.url, "--os-volume-api-version", "3.7",
                                   "cluster-list")
    assert rc == 0, out
    # a member is refused by the API, and the CLI says so
    rc, out = scenarios.cinder_cli(stack.url, "service-list", user="bob")
    assert rc != 0 and "403" in out, out


def test_openstacksdk(stack):
    bs = scenarios.sdk_connection(stack.url).block_storage
    listed = {(s.binary, s.host) for s in bs.services()}
    assert listed == {("cinder-scheduler", "stack"), ("cinder-volume", "stack@file"),
                      ("cinder-backup", "stack")}
    assert [z.name for z in bs.availability_zones()] == ["nova"]
    assert "os-hosts" in [e.alias for e in bs.extensions()]
    caps = bs.get_capabilities("stack@file")
    assert (caps.volume_backend_name, caps.vendor_name) == ("file", "Lamina")


# --- freeze and thaw -------------------------------------------------------------------------

FROZEN = "Modification operations are not allowed on frozen storage backends."


def frozen_stack(make_stack):
    """Two back ends (volumes placed by type) and a 1 GiB volume with a snapshot on each."""
    stack = make_stack(backends={"file": {}, "other": {}})
    for backend in ("file", "other"):
        resp = stack.request("POST", "/types", {"volume_type": {
            "name": "on-" + backend, "extra_specs": {"volume_backend_name": backend}}})
        assert resp.status_code == 200, resp.text
    volumes = {}
    for backend in ("file", "other"):
        v = stack.create_volume(size=1, volume_type="on-" + backend)
        volumes[backend] = stack.wait_volume(v["id"], ("available",))
        snap = stack.create_snapshot(v["id"])
        stack.wait_snapshot(snap["id"], ("available",))
        volumes[backend]["snapshot_id"] = snap["id"]
    return stack, volumes


def scheduler_manager(stack):
    return [svc for svc in stack.services if svc.host == "stack"][0].manager


def action(stack, volume_id, name, args=None):
    return stack.request("POST", "/volumes/%s/action" % volume_id, {name: args})


def test_freeze_refuses_management_operations_and_thaw_restores_them(make_stack):
    stack, volumes = frozen_stack(make_stack)
    frozen, other = volumes["file"], volumes["other"]
    resp = stack.request("PUT", "/os-services/freeze", {"host": "stack@file"})
    assert resp.status_code == 200 and resp.content == b"", resp.text
    assert service_row("stack@file").frozen and not service_row("stack@other").frozen
    by_host = {s["host"]: s for s in services(stack, "?binary=cinder-volume")}
    assert (by_host["stack@file"]["frozen"], by_host["stack@other"]["frozen"]) == (True, False)
    assert services(stack, "?binary=cinder-volume", version="3.7")[0]["frozen"] is True
    # already frozen: Cinder's conditional update changes nothing and says so
    assert "frozen in ['stack@file'] must be False" in fault(
        stack.request("PUT", "/os-services/freeze", {"host": "stack@file"}), 400, "badRequest")

    vid = frozen["id"]
    refused = [
        stack.request("DELETE", "/volumes/" + vid),
        action(stack, vid, "os-force_delete", {}),
        action(stack, vid, "os-extend", {"new_size": 2}),
        action(stack, vid, "os-retype", {"new_type": "on-other"}),
        action(stack, vid, "os-migrate_volume", {"host": "stack@other#pool0"}),
        stack.request("POST", "/snapshots", {"snapshot": {"volume_id": vid}}),
        stack.request("DELETE", "/snapshots/" + frozen["snapshot_id"]),
        stack.request("POST", "/os-volume-manage", {"volume": {
            "host": "stack@file#pool0", "ref": {"source-name": "legacy"}}}),
    ]
    for resp in refused:
        assert fault(resp, 400, "badRequest") == "Invalid input received: " + FROZEN
    # 404 first: an unknown volume is not found, whatever is frozen
    fault(stack.request("DELETE", "/volumes/" + "0" * 36), 404, "itemNotFound")
    # nothing changed: same status, size, type, one snapshot, no managed volume
    row = db.volume_get_internal(vid)
    assert (row.status, row.size, row.host) == ("available", 1, "stack@file#pool0")
    snaps = stack.request("GET", "/snapshots?volume_id=" + vid).json()["snapshots"]
    assert [(s["id"], s["status"]) for s in snaps] == [(frozen["snapshot_id"], "available")]
    assert len(stack.request("GET", "/volumes").json()["volumes"]) == 2
    # the other back end is not frozen: its volumes are managed as usual
    assert action(stack, other["id"], "os-extend", {"new_size": 2}).status_code == 202
    assert stack.wait_volume(other["id"], ("available",))["size"] == 2

    # the scheduler skips the frozen back end (it learns on its next pool reload; here now)
    scheduler_manager(stack).pools.reload()
    placed = stack.create_volume(size=1, volume_type="on-file")
    assert stack.wait_volume(placed["id"], ("error",))["status"] == "error"
    assert db.volume_get_internal(placed["id"]).host is None
    anywhere = stack.wait_volume(stack.create_volume(size=1)["id"], ("available", "error"))
    assert (anywhere["status"], db.volume_get_internal(anywhere["id"]).host) == (
        "available", "stack@other#pool0")

    resp = stack.request("PUT", "/os-services/thaw", {"host": "stack@file"})
    assert resp.status_code == 200 and resp.content == b"", resp.text
    assert not service_row("stack@file").frozen
    assert "frozen in ['stack@file'] must be True" in fault(
        stack.request("PUT", "/os-services/thaw", {"host": "stack@file"}), 400, "badRequest")
    assert action(stack, vid, "os-extend", {"new_size": 2}).status_code == 202
    assert stack.wait_volume(vid, ("available",))["size"] == 2
    scheduler_manager(stack).pools.reload()
    again = stack.create_volume(size=1, volume_type="on-file")
    assert stack.wait_volume(again["id"], ("available", "error"))["status"] == "available"


def test_cinder_freeze_host_and_thaw_host(make_stack):
    stack = make_stack(backends={"file": {}, "other": {}})
    rc, out = scenarios.cinder_cli(stack.url, "freeze-host", "stack@file")
    assert rc == 0, out
    assert service_row("stack@file").frozen
    rc, out = scenarios.cinder_cli(stack.url, "service-list", "--binary", "cinder-volume")
    assert rc == 0 and "stack@file" in out, out
    rc, out = scenarios.cinder_cli(stack.url, "freeze-host", "stack@file")
    assert rc != 0 and "must be False" in out, out
    rc, out = scenarios.cinder_cli(stack.url, "thaw-host", "stack@file")
    assert rc == 0, out
    assert not service_row("stack@file").frozen
    # python-cinderclient's API: the same two calls
    c = cinder(stack)
    c.services.freeze_host("stack@other")
    assert service_row("stack@other").frozen
    c.services.thaw_host("stack@other")
    assert not service_row("stack@other").frozen
