"""Retype and migration between a file back end and the real single-node Ceph, through
python-cinderclient: the data moves with equal checksums, and a failure at each migration
step leaves nothing on Ceph. Its own module, so that its stack never runs beside another
in-process stack (test_actions_rbd.py's): two stacks at once share the in-process message
transport, and a create could reach the other stack's scheduler, which knows none of this
stack's pools."""

import pytest
from cinderclient import client as cinder_client
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

from common.db import api as db
from tests.integration import ceph, scenarios
from tests.integration.test_actions_rbd import wait_status
from tests.stack import Stack

pytestmark = pytest.mark.integration
GiB = 1024 ** 3


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
