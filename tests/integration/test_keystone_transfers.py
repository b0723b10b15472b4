"""A volume with a snapshot moves from project alpha to project beta through the real Keystone
(issue 9): alice (member of alpha) offers it with python-cinderclient on a Keystone session,
bob (member of beta) cannot see the offer, is refused with a wrong key and accepts with the
right one; the volume and its snapshot are then beta's, the quotas of both projects are exact
(os-quota-sets ?usage=true) and `lamina-manage quota check` finds nothing.

`lamina-aio` runs as a subprocess with `auth_strategy = keystone` (as tests/integration/
test_keystone.py, whose Keystone facts and users this reuses); it skips without Keystone."""

import os
import subprocess

import pytest
from cinderclient import client as cinder_client
from cinderclient import exceptions as cinder_exc

from tests.integration import cluster, scenarios
from tests.integration.test_keystone import User, ks, ks_session_for  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def aio(ks, tmp_path_factory):  # noqa: F811 (ks is the imported fixture)
    """lamina-aio with Keystone; its config file and URL."""
    workdir = tmp_path_factory.mktemp("ks-transfers")
    port = cluster.free_port()
    data = workdir / "data"
    conf = workdir / "lamina.conf"
    conf.write_text("\n".join([
        "[DEFAULT]",
        "auth_strategy = keystone",
        "quota_volumes = 4",
        "quota_gigabytes = 10",
        "[database]",
        "connection = sqlite:///%s" % (data / "lamina.sqlite"),
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
        "",
    ]))
    log = str(workdir / "aio.log")
    proc = cluster.Proc("aio", [os.path.join(cluster.BIN, "lamina-aio"), "--config-file",
                                str(conf), "--data-dir", str(data), "--port", str(port)],
                        log).start()
    url = "http://127.0.0.1:%d" % port
    try:
        cluster.wait_http(url + "/", proc=proc.popen, log=log)
        yield url, conf
    finally:
        proc.stop()


def cinder(ks, url, user, project):  # noqa: F811
    session = ks_session_for(ks, user, project)
    endpoint = "%s/v3/%s" % (url, session.get_project_id())
    return cinder_client.Client("3.0", session=session, endpoint_override=endpoint)


def usage(user, project_id):
    resp = user.request("GET", "/os-quota-sets/%s?usage=true" % project_id)
    assert resp.status_code == 200, resp.text
    qs = resp.json()["quota_set"]
    return {r: qs[r]["in_use"] for r in ("volumes", "gigabytes", "snapshots")}


def test_volume_with_snapshot_moves_to_another_project(ks, aio):  # noqa: F811
    url, conf = aio
    alpha, beta = ks["LAMINA_KS_PROJECT_A"], ks["LAMINA_KS_PROJECT_B"]
    alice = cinder(ks, url, ks["LAMINA_KS_MEMBER_A_USER"], alpha)
    bob = cinder(ks, url, ks["LAMINA_KS_MEMBER_B_USER"], beta)
    carol = cinder(ks, url, ks["LAMINA_KS_READER_A_USER"], alpha)
    alice_http = User(ks, url, ks["LAMINA_KS_MEMBER_A_USER"], alpha)
    bob_http = User(ks, url, ks["LAMINA_KS_MEMBER_B_USER"], beta)

    volume = alice.volumes.create(2, name="gift")
    scenarios.wait_for(lambda: alice.volumes.get(volume.id).status == "available")
    snapshot = alice.volume_snapshots.create(volume.id, name="gift-snap")
    scenarios.wait_for(lambda: alice.volume_snapshots.get(snapshot.id).status == "available")
    assert usage(alice_http, alice_http.project_id) == {"volumes": 1, "gigabytes": 4,
                                                        "snapshots": 1}

    # a reader may not offer it; a member may
    with pytest.raises(cinder_exc.Forbidden):
        carol.transfers.create(volume.id)
    transfer = alice.transfers.create(volume.id, name="to beta")
    assert alice.volumes.get(volume.id).status == "awaiting-transfer"
    assert [t.id for t in carol.transfers.list()] == [transfer.id]  # readers see it

    # beta knows the transfer only by its id, and needs the key
    assert bob.transfers.list() == []
    with pytest.raises(cinder_exc.NotFound):
        bob.transfers.get(transfer.id)
    with pytest.raises(cinder_exc.BadRequest):
        bob.transfers.accept(transfer.id, "0" * 16)
    assert alice.volumes.get(volume.id).status == "awaiting-transfer"
    accepted = bob.transfers.accept(transfer.id, transfer.auth_key)
    assert accepted.volume_id == volume.id

    moved = bob.volumes.get(volume.id)
    assert moved.status == "available"
    assert moved.user_id == bob_http.session.get_user_id()
    assert bob.volume_snapshots.get(snapshot.id).status == "available"
    with pytest.raises(cinder_exc.NotFound):
        alice.volumes.get(volume.id)
    with pytest.raises(cinder_exc.NotFound):
        alice.volume_snapshots.get(snapshot.id)
    with pytest.raises(cinder_exc.NotFound):
        alice.transfers.get(transfer.id)

    assert usage(alice_http, alice_http.project_id) == {"volumes": 0, "gigabytes": 0,
                                                        "snapshots": 0}
    assert usage(bob_http, bob_http.project_id) == {"volumes": 1, "gigabytes": 4,
                                                    "snapshots": 1}
    result = subprocess.run([os.path.join(cluster.BIN, "lamina-manage"), "--config-file",
                             str(conf), "quota", "check"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "no drift" in result.stdout, \
        result.stdout + result.stderr

    # beta uses it as its own
    bob.volume_snapshots.delete(snapshot.id)
    scenarios.wait_for(lambda: not [s for s in bob.volume_snapshots.list()
                                    if s.id == snapshot.id])
    bob.volumes.delete(volume.id)
    scenarios.wait_for(lambda: not [v for v in bob.volumes.list() if v.id == volume.id])
    assert usage(bob_http, bob_http.project_id) == {"volumes": 0, "gigabytes": 0,
                                                    "snapshots": 0}
