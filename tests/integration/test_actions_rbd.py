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
