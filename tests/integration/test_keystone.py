"""Keystone tokens, policy personas and quotas against a real Keystone.

`lamina-aio` runs as a subprocess with `auth_strategy = keystone`: keystonemiddleware validates
every token against the Keystone of deploy/keystone/keystone-aio.sh (`make services` starts
it; its users: alice member of alpha, bob member of beta, carol reader of alpha, dave admin of
alpha, admin/lamina-admin, service user lamina). Tokens come from Keystone by password, through
keystoneauth1, python-cinderclient and openstacksdk, unchanged.

Without a running Keystone these tests skip, saying why; with LAMINA_REQUIRE_KEYSTONE=1 (set by
`make test`) they fail instead."""

import os
import subprocess
import uuid

import openstack
import pytest
import requests
from cinderclient import client as cinder_client
from cinderclient import exceptions as cinder_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from tests.integration import cluster, scenarios

pytestmark = pytest.mark.integration

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SCRIPT = os.path.join(ROOT, "deploy", "keystone", "keystone-aio.sh")


def keystone_facts():
    """The export lines of `keystone-aio.sh env` as a dict; None when Keystone is down."""
    status = subprocess.run(["bash", SCRIPT, "status"], capture_output=True, text=True,
                            timeout=60)
    if status.returncode != 0:
        return None
    out = subprocess.run(["bash", SCRIPT, "env"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    facts = {}
    for line in out.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line[len("export "):].partition("=")
            facts[name] = value.strip().strip("'\"")
    return facts


@pytest.fixture(scope="module")
def ks():
    facts = keystone_facts()
    if facts is None:
        message = ("Keystone is not running: start it with `bash deploy/keystone/keystone-aio.sh "
                   "install && bash deploy/keystone/keystone-aio.sh start` (make services)")
        if os.environ.get("LAMINA_REQUIRE_KEYSTONE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return facts


@pytest.fixture(scope="module")
def lamina(ks, tmp_path_factory):
    """lamina-aio with auth_strategy = keystone; quotas: 4 volumes, 10 GiB per project."""
    workdir = tmp_path_factory.mktemp("ks-aio")
    port = cluster.free_port()
    conf = workdir / "lamina.conf"
    conf.write_text("\n".join([
        "[DEFAULT]",
        "auth_strategy = keystone",
        "quota_volumes = 4",
        "quota_gigabytes = 10",
        "[keystone_authtoken]",
        "www_authenticate_uri = %s" % ks["LAMINA_KS_WWW_AUTHENTICATE_URI"],
        "auth_url = %s" % ks["LAMINA_KS_AUTH_URL"],
        "auth_type = password",
        "username = %s" % ks["LAMINA_KS_SERVICE_USER"],
        "password = %s" % ks["LAMINA_KS_SERVICE_PASSWORD"],
        "project_name = %s" % ks["LAMINA_KS_SERVICE_PROJECT"],
        "user_domain_name = %s" % ks["LAMINA_KS_DOMAIN"],
        "project_domain_name = %s" % ks["LAMINA_KS_DOMAIN"],
        "memcached_servers = %s" % ks["LAMINA_KS_MEMCACHED_SERVERS"],
        # no token cache, so a revoked token is refused at once
        "token_cache_time = -1",
        "",
    ]))
    log = str(workdir / "aio.log")
    proc = cluster.Proc("aio", [os.path.join(cluster.BIN, "lamina-aio"), "--config-file",
                                str(conf), "--data-dir", str(workdir / "data"), "--port",
                                str(port)], log).start()
    url = "http://127.0.0.1:%d" % port
    try:
        cluster.wait_http(url + "/", proc=proc.popen, log=log)
        yield url
    finally:
        proc.stop()


def ks_session_for(ks, user, project, password=None):
    auth = v3.Password(auth_url=ks["LAMINA_KS_AUTH_URL"], username=user,
                       password=password or ks["LAMINA_KS_PASSWORD"], project_name=project,
                       user_domain_name=ks["LAMINA_KS_DOMAIN"],
                       project_domain_name=ks["LAMINA_KS_DOMAIN"])
    return ks_session.Session(auth=auth)


class User:
    """A Keystone user's token on its project, and requests with it."""

    def __init__(self, ks, url, user, project):
        self.session = ks_session_for(ks, user, project)
        self.token = self.session.get_token()
        self.project_id = self.session.get_project_id()
        self.url = url

    def request(self, method, path, body=None, project_id=None, token=None):
        headers = {"X-Auth-Token": token or self.token}
        return requests.request(method, "%s/v3/%s%s" % (self.url, project_id or self.project_id,
                                                        path), json=body, headers=headers,
                                timeout=60)


@pytest.fixture(scope="module")
def users(ks, lamina):
    alpha, beta = ks["LAMINA_KS_PROJECT_A"], ks["LAMINA_KS_PROJECT_B"]
    return {
        "alice": User(ks, lamina, ks["LAMINA_KS_MEMBER_A_USER"], alpha),
        "bob": User(ks, lamina, ks["LAMINA_KS_MEMBER_B_USER"], beta),
        "carol": User(ks, lamina, ks["LAMINA_KS_READER_A_USER"], alpha),
        "dave": User(ks, lamina, ks["LAMINA_KS_ADMIN_A_USER"], alpha),
    }


def create_volume(user, size=1):
    resp = user.request("POST", "/volumes", {"volume": {"size": size, "name": "ks-test"}})
    assert resp.status_code == 202, resp.text
    volume = resp.json()["volume"]
    scenarios.wait_for(lambda: user.request("GET", "/volumes/" + volume["id"]).json()[
        "volume"]["status"] in ("available", "error"))
    return volume


def delete_volume(user, volume_id):
    assert user.request("DELETE", "/volumes/" + volume_id).status_code == 202
    scenarios.wait_for(lambda: user.request("GET", "/volumes/" + volume_id).status_code == 404)


def test_missing_and_bad_tokens_are_refused(lamina, users):
    alice = users["alice"]
    url = "%s/v3/%s/volumes" % (lamina, alice.project_id)
    resp = requests.get(url, timeout=30)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Keystone uri=")
    assert requests.get(url, headers={"X-Auth-Token": "bogus"}, timeout=30).status_code == 401
    assert requests.get(url, headers={"X-Auth-Token": alice.token + "x"},
                        timeout=30).status_code == 401
    # the version documents need no token
    assert requests.get(lamina + "/", timeout=30).status_code == 300
    assert requests.get(lamina + "/v3/", timeout=30).status_code == 200
    # nor does /metrics (scrapers carry no token: api/metrics.py), which counts the 401s
    metrics = requests.get(lamina + "/metrics", timeout=30)
    assert metrics.status_code == 200
    assert 'route="/v3/<project_id>/volumes",status="401"' in metrics.text
    # a token of another project than the URL's: 400 Malformed request url, as Cinder
    resp = alice.request("GET", "/volumes", project_id=users["bob"].project_id)
    assert resp.status_code == 400 and "Malformed request url" in resp.text


def test_revoked_token_is_refused(ks, lamina, users):
    alice = users["alice"]
    token = ks_session_for(ks, ks["LAMINA_KS_MEMBER_A_USER"],
                           ks["LAMINA_KS_PROJECT_A"]).get_token()
    assert alice.request("GET", "/volumes", token=token).status_code == 200
    admin = ks_session_for(ks, ks["LAMINA_KS_ADMIN_USER"], ks["LAMINA_KS_ADMIN_PROJECT"],
                           password=ks["LAMINA_KS_ADMIN_PASSWORD"])
    resp = requests.delete(ks["LAMINA_KS_AUTH_URL"] + "/auth/tokens",
                           headers={"X-Auth-Token": admin.get_token(), "X-Subject-Token": token},
                           timeout=30)
    assert resp.status_code == 204, resp.text
    assert alice.request("GET", "/volumes", token=token).status_code == 401


def test_access_matrix(users):
    alice, bob, carol, dave = (users[n] for n in ("alice", "bob", "carol", "dave"))
    volume = create_volume(alice)
    mine = "/volumes/" + volume["id"]
    theirs = create_volume(bob)
    try:
        # alice (member of alpha): read and write her project's volumes
        assert alice.request("GET", mine).status_code == 200
        assert alice.request("PUT", mine, {"volume": {"name": "renamed"}}).status_code == 200
        assert alice.request("POST", mine + "/metadata",
                             {"metadata": {"k": "v"}}).status_code == 200
        assert volume["id"] in [v["id"] for v in alice.request("GET", "/volumes").json()[
            "volumes"]]
        # all_tenants is ignored for members
        listed = alice.request("GET", "/volumes/detail?all_tenants=1").json()["volumes"]
        assert theirs["id"] not in [v["id"] for v in listed]

        # bob (member of beta): alpha's volume does not exist for him, whatever the verb
        for method, path, body in (
                ("GET", mine, None), ("PUT", mine, {"volume": {"name": "x"}}),
                ("DELETE", mine, None), ("GET", mine + "/metadata", None),
                ("POST", mine + "/metadata", {"metadata": {"a": "b"}}),
                ("DELETE", mine + "/metadata/k", None),
                ("POST", mine + "/action", {"os-extend": {"new_size": 2}})):
            resp = bob.request(method, path, body)
            assert resp.status_code == 404, (method, path, resp.status_code, resp.text)
            assert "itemNotFound" in resp.json()
        assert volume["id"] not in [v["id"] for v in bob.request("GET", "/volumes").json()[
            "volumes"]]

        # carol (reader of alpha): reads, never writes
        assert carol.request("GET", mine).status_code == 200
        assert carol.request("GET", mine + "/metadata").json() == {"metadata": {"k": "v"}}
        assert volume["id"] in [v["id"] for v in carol.request("GET", "/volumes").json()[
            "volumes"]]
        assert carol.request("GET", "/os-quota-sets/" + carol.project_id).status_code == 200
        for method, path, body in (
                ("POST", "/volumes", {"volume": {"size": 1}}),
                ("PUT", mine, {"volume": {"name": "x"}}),
                ("DELETE", mine, None),
                ("POST", mine + "/metadata", {"metadata": {"a": "b"}}),
                ("DELETE", mine + "/metadata/k", None),
                ("POST", mine + "/action", {"os-extend": {"new_size": 2}})):
            resp = carol.request(method, path, body)
            assert resp.status_code == 403, (method, path, resp.status_code, resp.text)
            assert "forbidden" in resp.json()

        # admin-only APIs are refused to members
        for user in (alice, carol):
            assert user.request("GET", "/os-services").status_code == 403
            assert user.request("GET", "/scheduler-stats/get_pools").status_code == 403
            assert user.request("POST", "/types",
                                {"volume_type": {"name": "t-" + uuid.uuid4().hex[:6]}}
                                ).status_code == 403
            assert user.request("PUT", "/os-quota-sets/" + user.project_id,
                                {"quota_set": {"volumes": 100}}).status_code == 403
        assert alice.request("GET", "/os-quota-sets/" + bob.project_id).status_code == 403

        # dave (admin): every project
        listed = dave.request("GET", "/volumes/detail?all_tenants=1").json()["volumes"]
        assert {volume["id"], theirs["id"]} <= {v["id"] for v in listed}
        assert dave.request("GET", "/volumes/" + theirs["id"]).status_code == 200
        assert dave.request("GET", "/os-services").status_code == 200
        resp = dave.request("GET", "/os-quota-sets/%s?usage=true" % bob.project_id)
        assert resp.status_code == 200
        assert resp.json()["quota_set"]["volumes"]["in_use"] >= 1
    finally:
        delete_volume(alice, volume["id"])
        delete_volume(bob, theirs["id"])


def test_quota_through_keystone(users):
    """The project's quota (4 volumes, 10 GiB) holds for a Keystone project too, and /limits
    shows it."""
    alice = users["alice"]
    limits = alice.request("GET", "/limits").json()["limits"]["absolute"]
    assert limits["maxTotalVolumes"] == 4 and limits["maxTotalVolumeGigabytes"] == 10
    before = len(alice.request("GET", "/volumes").json()["volumes"])
    resp = alice.request("POST", "/volumes", {"volume": {"size": 11, "name": "too-big"}})
    assert resp.status_code == 413 and "overLimit" in resp.json()
    assert len(alice.request("GET", "/volumes").json()["volumes"]) == before


def test_cinderclient_with_keystone_password(ks, lamina):
    sess = ks_session_for(ks, ks["LAMINA_KS_MEMBER_A_USER"], ks["LAMINA_KS_PROJECT_A"])
    endpoint = "%s/v3/%s" % (lamina, sess.get_project_id())
    cinder = cinder_client.Client("3.0", session=sess, endpoint_override=endpoint)
    volume = cinder.volumes.create(1, name="cinderclient-ks")
    scenarios.wait_for(lambda: cinder.volumes.get(volume.id).status in ("available", "error"))
    assert cinder.volumes.get(volume.id).status == "available"
    assert volume.id in [v.id for v in cinder.volumes.list()]
    assert cinder.limits.get().absolute  # GET /limits through the client
    cinder.volumes.delete(volume)
    scenarios.wait_for(lambda: volume.id not in [v.id for v in cinder.volumes.list()])


def test_openstacksdk_with_keystone_password(ks, lamina):
    project_id = ks_session_for(ks, ks["LAMINA_KS_MEMBER_A_USER"],
                                ks["LAMINA_KS_PROJECT_A"]).get_project_id()
    conn = openstack.connect(
        auth_type="password",
        auth={"auth_url": ks["LAMINA_KS_AUTH_URL"], "username": ks["LAMINA_KS_MEMBER_A_USER"],
              "password": ks["LAMINA_KS_PASSWORD"], "project_name": ks["LAMINA_KS_PROJECT_A"],
              "user_domain_name": ks["LAMINA_KS_DOMAIN"],
              "project_domain_name": ks["LAMINA_KS_DOMAIN"]},
        block_storage_endpoint_override="%s/v3/%s" % (lamina, project_id),
        block_storage_api_version="3", region_name=ks["LAMINA_KS_REGION"])
    bs = conn.block_storage
    volume = bs.create_volume(size=1, name="sdk-ks")
    volume = bs.wait_for_status(volume, "available", failures=["error"], wait=60)
    assert volume.id in [v.id for v in bs.volumes()]
    bs.delete_volume(volume)
    bs.wait_for_delete(volume, wait=60)


def wait_snapshot(user, snapshot_id):
    scenarios.wait_for(lambda: user.request("GET", "/snapshots/" + snapshot_id).json()[
        "snapshot"]["status"] in ("available", "error"))


def test_access_matrix_snapshots_and_actions(users):
    """The same persona rules for snapshots and volume actions."""
    alice, bob, carol, dave = (users[n] for n in ("alice", "bob", "carol", "dave"))
    volume = create_volume(alice)
    resp = alice.request("POST", "/snapshots", {"snapshot": {"volume_id": volume["id"],
                                                             "name": "ks-snap"}})
    assert resp.status_code == 202, resp.text
    snapshot = resp.json()["snapshot"]
    snap = "/snapshots/" + snapshot["id"]
    action = "/volumes/%s/action" % volume["id"]
    try:
        wait_snapshot(alice, snapshot["id"])
        # bob: neither the snapshot nor the volume exists for him
        for method, path, body in (
                ("GET", snap, None), ("PUT", snap, {"snapshot": {"name": "x"}}),
                ("DELETE", snap, None), ("GET", snap + "/metadata", None),
                ("POST", "/snapshots", {"snapshot": {"volume_id": volume["id"]}}),
                ("POST", action, {"os-set_bootable": {"bootable": True}}),
                ("POST", action, {"os-reset_status": {"status": "error"}})):
            resp = bob.request(method, path, body)
            assert resp.status_code == 404, (method, path, resp.status_code, resp.text)
        assert snapshot["id"] not in [s["id"] for s in bob.request(
            "GET", "/snapshots").json()["snapshots"]]

        # carol: reads, never writes
        assert carol.request("GET", snap).status_code == 200
        assert snapshot["id"] in [s["id"] for s in carol.request(
            "GET", "/snapshots").json()["snapshots"]]
        for method, path, body in (
                ("PUT", snap, {"snapshot": {"name": "x"}}), ("DELETE", snap, None),
                ("POST", "/snapshots", {"snapshot": {"volume_id": volume["id"]}}),
                ("POST", snap + "/metadata", {"metadata": {"a": "b"}}),
                ("POST", action, {"os-set_bootable": {"bootable": True}})):
            resp = carol.request(method, path, body)
            assert resp.status_code == 403, (method, path, resp.status_code, resp.text)

        # admin-only actions: refused to alice (a member), allowed to dave
        for path, body in ((action, {"os-reset_status": {"status": "available"}}),
                           (action, {"os-force_delete": None}),
                           (snap + "/action", {"os-reset_status": {"status": "available"}})):
            resp = alice.request("POST", path, body)
            assert resp.status_code == 403, (path, resp.status_code, resp.text)
        assert alice.request("POST", action, {"os-set_bootable": {"bootable": True}}
                             ).status_code == 200
        resp = dave.request("POST", snap + "/action", {"os-reset_status": {"status":
                                                                            "available"}})
        assert resp.status_code == 202, resp.text
        listed = dave.request("GET", "/snapshots?all_tenants=1").json()["snapshots"]
        assert snapshot["id"] in [s["id"] for s in listed]
    finally:
        assert alice.request("DELETE", snap).status_code == 202
        scenarios.wait_for(lambda: alice.request("GET", snap).status_code == 404)
        delete_volume(alice, volume["id"])


def test_cinderclient_quota_api_with_keystone(ks, lamina):
    """An admin's cinderclient manages another project's quota; a member's may only read."""
    admin = ks_session_for(ks, ks["LAMINA_KS_ADMIN_A_USER"], ks["LAMINA_KS_PROJECT_A"])
    member = ks_session_for(ks, ks["LAMINA_KS_MEMBER_B_USER"], ks["LAMINA_KS_PROJECT_B"])
    beta = member.get_project_id()
    as_admin = cinder_client.Client("3.0", session=admin, endpoint_override="%s/v3/%s" % (
        lamina, admin.get_project_id()))
    as_member = cinder_client.Client("3.0", session=member,
                                     endpoint_override="%s/v3/%s" % (lamina, beta))
    try:
        assert as_admin.quotas.update(beta, volumes=7, gigabytes=70).volumes == 7
        shown = as_member.quotas.get(beta, usage=True)
        assert shown.volumes["limit"] == 7 and shown.gigabytes["limit"] == 70
        assert as_member.quotas.defaults(beta).volumes == 4
        with pytest.raises(cinder_exc.Forbidden):
            as_member.quotas.update(beta, volumes=100)
        limits = {limit.name: limit.value for limit in as_member.limits.get().absolute}
        assert limits["maxTotalVolumes"] == 7
    finally:
        as_admin.quotas.delete(beta)
    assert as_member.quotas.get(beta).volumes == 4
