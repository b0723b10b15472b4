"""Volume actions, manage and unmanage on the rbd driver against the real single-node Ceph
(deploy/ceph/ceph-aio.sh), driven through python-cinderclient."""

import uuid

import pytest
from cinderclient import client as cinder_client
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

from common.db import api as db
from common.db import volume_actions_api as adb
from tests.integration import ceph, scenarios
from tests.stack import Stack

pytestmark = pytest.mark.integration
GiB = 1024 ** 3
HOST = "stack@ceph#volumes"


@pytest.fixture(scope="module")
def rbd_stack(tmp_path_factory):
    ceph.require()
    stack = Stack(tmp_path_factory.mktemp("rbd-actions"),
                  backends={"ceph": ceph.backend_options()}).start()
    yield stack
    stack.stop()


@pytest.fixture
def c(rbd_stack):
    auth = token_endpoint.Token("%s/v3/p1" % rbd_stack.url, "admin:p1")
    return cinder_client.Client("3.0", session=ks_session.Session(auth=auth))


def wait_status(c, volume_id, statuses, timeout=60):
    return scenarios.wait_for(
        lambda: (lambda v: v if v.status in statuses else None)(c.volumes.get(volume_id)),
        timeout=timeout)


def legacy_image(size_mb=1536):
    name = "legacy-" + uuid.uuid4().hex[:8]
    ceph.run("rbd", "create", "%s/%s" % (ceph.POOL, name), "--size", str(size_mb),
             "--image-feature", "layering")
    return name


def messages(stack, volume_id):
    return stack.request("GET", "/messages?resource_uuid=" + volume_id,
                         version="3.3").json()["messages"]


def test_admin_and_member_actions_through_cinderclient(rbd_stack, c):
    volume = c.volumes.create(1, name="acted-on")
    volume = wait_status(c, volume.id, ("available", "error"))
    assert volume.status == "available"
    c.volumes.set_bootable(volume, True)
    c.volumes.update_readonly_flag(volume, True)
    c.volumes.set_image_metadata(volume, {"image_name": "cirros"})
    shown = c.volumes.get(volume.id)
    assert shown.bootable == "true"
    assert shown.metadata == {"readonly": "True"}
    assert shown.volume_image_metadata == {"image_name": "cirros"}
    c.volumes.delete_image_metadata(volume, ["image_name"])
    assert adb.glance_metadata_get(volume.id) == {}
    c.volumes.reset_state(volume, "error_deleting")
    assert c.volumes.get(volume.id).status == "error_deleting"
    c.volumes.force_delete(volume)
    scenarios.wait_for(lambda: ceph.rbd_info("volume-" + volume.id) is None)
    scenarios.wait_for(lambda: db.volume_get_internal(volume.id).deleted)


def test_manage_and_unmanage_an_rbd_image(rbd_stack, c):
    name = legacy_image()
    listed = rbd_stack.request("GET", "/os-volume-manage/detail?host=stack@ceph").json()
    entry = [e for e in listed["manageable-volumes"]
             if e["reference"] == {"source-name": name}][0]
    assert entry["safe_to_manage"] is True and entry["size"] == 2
    volume = c.volumes.manage(HOST, {"source-name": name}, name="adopted")
    volume = wait_status(c, volume.id, ("available", "error_managing"))
    assert volume.status == "available" and volume.size == 2
    assert ceph.rbd_info(name) is None
    assert ceph.rbd_info("volume-" + volume.id)["size"] == 1536 * 1024 * 1024
    pool = db.pool_get(HOST)
    assert pool.allocated_capacity_gb >= 2
    before = pool.allocated_capacity_gb
    listed = rbd_stack.request("GET", "/os-volume-manage/detail?host=stack@ceph").json()
    owned = [e for e in listed["manageable-volumes"]
             if e["reference"] == {"source-name": "volume-" + volume.id}][0]
    assert owned["safe_to_manage"] is False and owned["cinder_id"] == volume.id
    # unmanage: the row goes, the image stays
    c.volumes.unmanage(volume)
    scenarios.wait_for(lambda: db.volume_get_internal(volume.id).deleted)
    assert ceph.rbd_info("volume-" + volume.id) is not None
    assert db.pool_get(HOST).allocated_capacity_gb == before - 2
    ceph.run("rbd", "rm", "%s/volume-%s" % (ceph.POOL, volume.id))


@pytest.mark.parametrize("step", ["manage_existing.get_size", "manage_existing.claim_capacity",
                                  "manage_existing.manage_storage",
                                  "manage_existing.mark_managed"])
def test_manage_failure_leaves_the_image_as_it_was(rbd_stack, c, step):
    name = legacy_image(1024)
    before = db.pool_get(HOST).allocated_capacity_gb
    rbd_stack.override("fail_points", [step], group="debug")
    try:
        volume = c.volumes.manage(HOST, {"source-name": name})
        volume = wait_status(c, volume.id, ("available", "error_managing"))
    finally:
        rbd_stack.override("fail_points", [], group="debug")
    assert volume.status == "error_managing"
    assert step in messages(rbd_stack, volume.id)[0]["user_message"]
    assert ceph.rbd_info(name) is not None  # the storage is where and what it was
    assert ceph.rbd_info("volume-" + volume.id) is None
    assert db.pool_get(HOST).allocated_capacity_gb == before
    assert db.worker_get_all() == []
    c.volumes.delete(volume)
    scenarios.wait_for(lambda: db.volume_get_internal(volume.id).deleted)
    ceph.run("rbd", "rm", "%s/%s" % (ceph.POOL, name))


def test_manage_of_a_missing_image_ends_error_managing(rbd_stack, c):
    volume = c.volumes.manage(HOST, {"source-name": "no-such-image-" + uuid.uuid4().hex[:6]})
    volume = wait_status(c, volume.id, ("available", "error_managing"))
    assert volume.status == "error_managing"
    assert "no RBD image" in messages(rbd_stack, volume.id)[0]["user_message"]


# --- retype / migrate between a file back end and Ceph ------------------------------------------

@pytest.fixture(scope="module")
def mixed_stack(tmp_path_factory):
    ceph.require()
    stack = Stack(tmp_path_factory.mktemp("rbd-migrate"),
                  backends={"ceph": ceph.backend_options(), "local": {}}).start()
    for name in ("ceph", "local"):
        resp = stack.request("POST", "/types", {"volume_type": {
            "name": name, "extra_specs": {"volume_backend_name": name}}})
        assert resp.status_code == 200, resp.text
    yield stack
    stack.stop()


def _sha(read, size):
    import hashlib

    h = hashlib.sha256()
    for offset in range(0, size, 8 * 1024 * 1024):
        h.update(read(offset, min(8 * 1024 * 1024, size - offset)))
    return h.hexdigest()


def _file_sha(path, size):
    import os

    fd = os.open(path, os.O_RDONLY)
    try:
        return _sha(lambda off, n: os.pread(fd, n, off), size)
    finally:
        os.close(fd)


def _rbd_sha(image, size):
    import rados
    import rbd

    cluster = rados.Rados(conffile=ceph.CONF, rados_id=ceph.USER,
                          conf={"keyring": ceph.KEYRING})
    cluster.connect(timeout=10)
    try:
        with cluster.open_ioctx(ceph.POOL) as ioctx, rbd.Image(ioctx, image,
                                                               read_only=True) as img:
            return _sha(lambda off, n: img.read(off, n), size)
    finally:
        cluster.shutdown()


def _write_pattern(path):
    import os

    with open(path, "r+b") as f:
        f.write(os.urandom(3 * 1024 * 1024))
        f.seek(600 * 1024 * 1024)
        f.write(b"lamina end" * 100)


def _settled(vid, timeout=120):
    return scenarios.wait_for(
        lambda: (lambda r: r if r.status not in ("retyping", "maintenance") else None)(
            db.volume_get_internal(vid)), timeout=timeout)


def test_retype_file_to_ceph_on_demand_moves_the_data(mixed_stack):
    import os

    c = cinder_client.Client("3.0", session=ks_session.Session(auth=token_endpoint.Token(
        "%s/v3/p1" % mixed_stack.url, "admin:p1")))
    volume = c.volumes.create(1, volume_type="local")
    volume = wait_status(c, volume.id, ("available", "error"))
    path = os.path.join(mixed_stack.workdir, "local", "pool0", "volume-" + volume.id)
    _write_pattern(path)
    before = _file_sha(path, GiB)
    # never: refused, nothing moves
    c.volumes.retype(volume, "ceph", "never")
    r = _settled(volume.id)
    assert (r.status, r.host) == ("available", "stack@local#pool0")
    c.volumes.retype(volume, "ceph", "on-demand")
    r = _settled(volume.id)
    assert (r.status, r.host, r.migration_status) == ("available", "stack@ceph#volumes",
                                                      "success")
    assert c.volumes.get(volume.id).volume_type == "ceph"
    assert not os.path.exists(path)
    assert _rbd_sha("volume-" + volume.id, GiB) == before
    # and back to the file back end with os-migrate_volume
    c.volumes.migrate_volume(volume, "stack@local#pool0", False, False)
    r = _settled(volume.id)
    assert (r.host, r.migration_status) == ("stack@local#pool0", "success")
    assert _file_sha(path, GiB) == before
    assert ceph.rbd_info("volume-" + volume.id) is None
    c.volumes.force_delete(volume)
    scenarios.wait_for(lambda: db.volume_get_internal(volume.id).deleted)


@pytest.mark.parametrize("step", ["migrate_volume.create_target", "migrate_volume.copy_data",
                                  "migrate_volume.switch_host"])
def test_migration_to_ceph_failure_leaves_nothing_there(mixed_stack, step):
    import os

    c = cinder_client.Client("3.0", session=ks_session.Session(auth=token_endpoint.Token(
        "%s/v3/p1" % mixed_stack.url, "admin:p1")))
    volume = wait_status(c, c.volumes.create(1, volume_type="local").id, ("available",))
    ceph_claim = db.pool_get("stack@ceph#volumes").allocated_capacity_gb
    mixed_stack.override("fail_points", [step], group="debug")
    try:
        c.volumes.retype(volume, "ceph", "on-demand")
        r = _settled(volume.id)
    finally:
        mixed_stack.override("fail_points", [], group="debug")
    assert (r.status, r.host, r.migration_status) == ("available", "stack@local#pool0",
                                                      "error")
    assert ceph.rbd_info("volume-" + volume.id) is None
    assert db.pool_get("stack@ceph#volumes").allocated_capacity_gb == ceph_claim
    assert os.path.exists(os.path.join(mixed_stack.workdir, "local", "pool0",
                                       "volume-" + volume.id))
    c.volumes.force_delete(volume)
    scenarios.wait_for(lambda: db.volume_get_internal(volume.id).deleted)
