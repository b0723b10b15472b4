"""The rbd driver against the real single-node Ceph cluster (deploy/ceph/ceph-aio.sh)."""

import subprocess

import pytest
from cinderclient import client as cinder_client
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

from common.db import api as db
from tests.integration import ceph, scenarios
from tests.stack import Stack

pytestmark = pytest.mark.integration
GiB = 1024 ** 3


@pytest.fixture(scope="module")
def rbd_stack(tmp_path_factory):
    ceph.require()
    stack = Stack(tmp_path_factory.mktemp("rbd"),
                  backends={"ceph": ceph.backend_options(), "local": {}}).start()
    for name in ("ceph", "local"):
        resp = stack.request("POST", "/types", {"volume_type": {
            "name": name, "extra_specs": {"volume_backend_name": name}}})
        assert resp.status_code == 200, resp.text
    yield stack
    stack.stop()


def cinder(stack):
    auth = token_endpoint.Token("%s/v3/p1" % stack.url, "admin:p1")
    return cinder_client.Client("3.0", session=ks_session.Session(auth=auth))


def wait_status(c, volume_id, statuses, timeout=60):
    return scenarios.wait_for(
        lambda: (lambda v: v if v.status in statuses else None)(c.volumes.get(volume_id)),
        timeout=timeout)


def messages(stack, volume_id):
    return stack.request("GET", "/messages?resource_uuid=" + volume_id,
                         version="3.3").json()["messages"]


def test_create_shows_as_rbd_image_and_delete_removes_it(rbd_stack):
    c = cinder(rbd_stack)
    volume = c.volumes.create(3, name="on-ceph", volume_type="ceph")
    volume = wait_status(c, volume.id, ("available", "error"))
    assert volume.status == "available"
    info = ceph.rbd_info("volume-" + volume.id)
    assert info["size"] == 3 * GiB
    assert "layering" in info["features"]
    assert getattr(volume, "os-vol-host-attr:host") == "stack@ceph#volumes"
    c.volumes.delete(volume)
    scenarios.wait_for(lambda: ceph.rbd_info("volume-" + volume.id) is None)
    scenarios.wait_for(lambda: volume.id not in [v.id for v in c.volumes.list()])


def test_mixed_backends_follow_the_type(rbd_stack):
    c = cinder(rbd_stack)
    on_ceph = c.volumes.create(1, volume_type="ceph")
    on_file = c.volumes.create(1, volume_type="local")
    on_ceph = wait_status(c, on_ceph.id, ("available", "error"))
    on_file = wait_status(c, on_file.id, ("available", "error"))
    assert getattr(on_ceph, "os-vol-host-attr:host") == "stack@ceph#volumes"
    assert getattr(on_file, "os-vol-host-attr:host") == "stack@local#pool0"
    assert ceph.rbd_info("volume-" + on_ceph.id) is not None
    assert ceph.rbd_info("volume-" + on_file.id) is None
    assert len(rbd_stack.volume_files()) == 1
    for v in (on_ceph, on_file):
        c.volumes.delete(v)
    scenarios.wait_for(lambda: not rbd_stack.volume_files()
                       and ceph.rbd_info("volume-" + on_ceph.id) is None)


def _driver(stack):
    for svc in stack.services:
        if svc.host == "stack@ceph":
            return svc.manager.driver
    raise AssertionError("no ceph service")


def test_capacity_matches_ceph_df(rbd_stack):
    report = _driver(rbd_stack).get_pools()[0]
    stats = ceph.ceph_df_pool()
    assert report["free_capacity_gb"] == round(stats["max_avail"] / GiB, 2)
    assert report["total_capacity_gb"] == round((stats["stored"] + stats["max_avail"]) / GiB, 2)
    assert report["thin_provisioning_support"] is True
    pool = db.pool_get("stack@ceph#volumes")
    assert abs(pool.total_capacity_gb - report["total_capacity_gb"]) < 1.0


def qemu_rbd_url(connection):
    data = connection["data"]
    hosts = "\\;".join("%s\\:%s" % (h, p) for h, p in zip(data["hosts"], data["ports"]))
    return "rbd:%s:id=%s:mon_host=%s:keyring=%s" % (data["name"], data["auth_username"],
                                                    hosts, ceph.KEYRING)


def qemu_io(url, command):
    result = subprocess.run(["qemu-io", "-f", "raw", "-c", command, url], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "error" not in result.stdout.lower(), (
        result.stdout + result.stderr)
    return result.stdout


def test_data_through_connection_info_survives_extend(rbd_stack):
    c = cinder(rbd_stack)
    volume = wait_status(c, c.volumes.create(1, volume_type="ceph").id, ("available",))
    row = db.volume_get_internal(volume.id)
    connection = _driver(rbd_stack).initialize_connection(row, {"host": "compute1"})
    assert connection["driver_volume_type"] == "rbd"
    data = connection["data"]
    assert data["name"] == "volumes/volume-" + volume.id
    assert data["hosts"] == ["127.0.0.1"] and data["auth_username"] == ceph.USER
    url = qemu_rbd_url(connection)
    qemu_io(url, "write -P 0xab 0 1M")
    qemu_io(url, "write -P 0xcd 1020M 4M")
    c.volumes.extend(volume, 2)
    volume = wait_status(c, volume.id, ("available", "error_extending"))
    assert volume.size == 2 and ceph.rbd_info("volume-" + volume.id)["size"] == 2 * GiB
    assert "Pattern verification failed" not in qemu_io(url, "read -P 0xab 0 1M")
    assert "Pattern verification failed" not in qemu_io(url, "read -P 0xcd 1020M 4M")
    qemu_io(url, "write -P 0xef 2044M 4M")  # the new end is writable
    assert "Pattern verification failed" not in qemu_io(url, "read -P 0xef 2044M 4M")
    c.volumes.delete(volume)
    scenarios.wait_for(lambda: ceph.rbd_info("volume-" + volume.id) is None)


@pytest.mark.parametrize("step", ["create_volume.check_still_creating",
                                  "create_volume.create_storage",
                                  "create_volume.mark_available"])
def test_failure_injection_leaves_no_image(rbd_stack, step):
    rbd_stack.override("fail_points", [step], group="debug")
    try:
        volume = rbd_stack.create_volume(size=1, volume_type="ceph")
        assert rbd_stack.wait_volume(volume["id"], ("error", "available"))["status"] == "error"
    finally:
        from oslo_config import cfg

        cfg.CONF.clear_override("fail_points", group="debug")
    assert ceph.rbd_info("volume-" + volume["id"]) is None
    assert step in messages(rbd_stack, volume["id"])[0]["user_message"]
    assert db.pool_get("stack@ceph#volumes").allocated_capacity_gb == sum(
        v.size for v in [db.volume_get_internal(i) for i in _live_ids("stack@ceph#volumes")])


def _live_ids(host):
    """Volumes holding a claim on the pool (see common.db.api.pools_recount)."""
    from sqlalchemy import false, select

    from common.db import models
    from common.db.session import reader

    with reader() as s:
        return list(s.scalars(select(models.Volume.id).where(
            models.Volume.host == host, models.Volume.deleted == false(),
            models.Volume.status != "error")))


def test_image_already_exists_is_not_adopted(rbd_stack):
    """The image name is taken (say, by a leftover): the create fails with a message and the
    other image is left alone, not adopted and not deleted."""
    rbd_stack.override("delay_points", ["create_volume.check_still_creating:2"], group="debug")
    try:
        volume = rbd_stack.create_volume(size=1, volume_type="ceph")
        ceph.run("rbd", "create", "volumes/volume-" + volume["id"], "--size", "16M")
        assert rbd_stack.wait_volume(volume["id"], ("error", "available"))["status"] == "error"
    finally:
        from oslo_config import cfg

        cfg.CONF.clear_override("delay_points", group="debug")
    assert "already exists" in messages(rbd_stack, volume["id"])[0]["user_message"]
    info = ceph.rbd_info("volume-" + volume["id"])
    assert info is not None and info["size"] == 16 * 1024 * 1024  # the other owner's image
    ceph.run("rbd", "rm", "volumes/volume-" + volume["id"])


def test_pool_full_fails_cleanly(rbd_stack):
    """A pool at its object quota refuses new images (the client's operation times out):
    `error`, a message, no image left behind."""
    before = set(ceph.rbd_ls())
    ceph.run("ceph", "osd", "pool", "set-quota", ceph.POOL, "max_objects", "1")
    try:
        scenarios.wait_for(lambda: "full_quota" in ceph.run(
            "ceph", "osd", "pool", "ls", "detail").stdout, timeout=60)
        volume = rbd_stack.create_volume(size=1, volume_type="ceph")
        done = rbd_stack.wait_volume(volume["id"], ("error", "available"), timeout=90)
    finally:
        ceph.run("ceph", "osd", "pool", "set-quota", ceph.POOL, "max_objects", "0")
    assert done["status"] == "error"
    assert "timed out" in messages(rbd_stack, volume["id"])[0]["user_message"]
    scenarios.wait_for(lambda: "full_quota" not in ceph.run(
        "ceph", "osd", "pool", "ls", "detail").stdout, timeout=60)
    scenarios.wait_for(lambda: set(ceph.rbd_ls()) == before, timeout=30)


def test_cluster_stopped_fails_cleanly_and_pool_goes_down(rbd_stack):
    c = cinder(rbd_stack)
    ceph.stop_cluster()
    try:
        volume = rbd_stack.create_volume(size=1, volume_type="ceph")
        done = rbd_stack.wait_volume(volume["id"], ("error", "available"), timeout=120)
        assert done["status"] == "error"
        msg = messages(rbd_stack, volume["id"])[0]["user_message"]
        assert "Ceph" in msg or "ceph" in msg
        # the volume service keeps running and reports the pool down
        scenarios.wait_for(lambda: "backend_state" in (db.pool_get(
            "stack@ceph#volumes").capabilities or ""), timeout=120)
        assert db.pool_get("stack@ceph#volumes").usable_capacity_gb == 0
        other = rbd_stack.create_volume(size=1, volume_type="ceph")
        done = rbd_stack.wait_volume(other["id"], ("error", "available"), timeout=60)
        assert done["status"] == "error"
        assert "No pool" in messages(rbd_stack, other["id"])[0]["user_message"] or \
            "capacity" in messages(rbd_stack, other["id"])[0]["user_message"]
    finally:
        ceph.start_cluster()
    # back up: the pool is reported up again and volumes land there
    scenarios.wait_for(lambda: "backend_state" not in (db.pool_get(
        "stack@ceph#volumes").capabilities or ""), timeout=120)
    volume = wait_status(c, c.volumes.create(1, volume_type="ceph").id,
                         ("available", "error"), timeout=120)
    assert volume.status == "available"
    c.volumes.delete(volume)
