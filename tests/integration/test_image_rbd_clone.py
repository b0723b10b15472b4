"""The rbd driver's clone_image against the real Ceph (deploy/ceph), in process: an image laid
out as Glance's rbd store keeps it (an RBD image in the pool `images` with the protected
snapshot `snap`, made here as client.admin, no Glance needed) becomes a volume by a
copy-on-write clone; every location it cannot use is declined (None), leaving nothing, so
the create flow falls back to the download. tests/integration/test_image_volumes.py has the
whole path through the real Glance."""

import hashlib
import os
import types
import uuid

import pytest

from tests.integration import ceph

pytestmark = pytest.mark.integration
MiB = 1024 * 1024
GiB = 1024 ** 3
IMAGES_POOL = "images"  # what deploy/glance/glance-aio.sh makes for Glance's rbd store
ADMIN_KEYRING = os.path.join(os.path.dirname(ceph.CONF), "ceph.client.admin.keyring")
DATA = b"".join(hashlib.sha256(b"rbd-clone-%d" % i).digest() * 1024 for i in range(192))


def _admin():
    import rados

    client = rados.Rados(conffile=ceph.CONF, rados_id="admin",
                         conf={"keyring": ADMIN_KEYRING})
    client.connect(timeout=10)
    return client


@pytest.fixture(scope="module")
def glance_image():
    """(location, image record): a 6 MiB raw image in `images` as Glance's rbd store lays it
    out (8 MiB objects, snapshot `snap`, protected)."""
    ceph.require()
    import rbd

    admin = _admin()
    try:
        if not admin.pool_exists(IMAGES_POOL):
            pytest.skip("no pool %s: bash deploy/glance/glance-aio.sh start makes it"
                        % IMAGES_POOL)
        name = "lamina-test-%s" % uuid.uuid4().hex[:8]
        with admin.open_ioctx(IMAGES_POOL) as ioctx:
            rbd.RBD().create(ioctx, name, len(DATA), order=23, old_format=False,
                             features=61)
            try:
                with rbd.Image(ioctx, name) as image:
                    image.write(DATA, 0)
                    image.create_snap("snap")
                    image.protect_snap("snap")
                location = "rbd://%s/%s/%s/snap" % (admin.get_fsid(), IMAGES_POOL, name)
                yield location, {"id": str(uuid.uuid4()), "disk_format": "raw",
                                 "container_format": "bare", "size": len(DATA)}
            finally:
                with rbd.Image(ioctx, name) as image:
                    if image.is_protected_snap("snap"):
                        image.unprotect_snap("snap")
                    image.remove_snap("snap")
                rbd.RBD().remove(ioctx, name)
    finally:
        admin.shutdown()


def make_driver(**overrides):
    from volume_worker.drivers.rbd import RBDDriver

    options = {"rbd_pool": ceph.POOL, "rbd_user": ceph.USER, "rbd_keyring": ceph.KEYRING,
               "rbd_ceph_conf": ceph.CONF, "rbd_cluster_name": "ceph",
               "rados_connect_timeout": 5, "rados_op_timeout": 10, "rbd_max_clone_depth": 5,
               "rbd_store_chunk_size": 4, "volume_backend_name": "clone-test"}
    options.update(overrides)
    return RBDDriver("clone-test", types.SimpleNamespace(**options))


def new_volume(size=1):
    return types.SimpleNamespace(id=str(uuid.uuid4()), host="test@clone-test#volumes",
                                 size=size, name_id=None)


def read_volume(volume, length):
    import rados
    import rbd

    client = rados.Rados(conffile=ceph.CONF, rados_id=ceph.USER,
                         conf={"keyring": ceph.KEYRING})
    client.connect(timeout=10)
    try:
        with client.open_ioctx(ceph.POOL) as ioctx, \
                rbd.Image(ioctx, "volume-%s" % volume.id, read_only=True) as image:
            return image.read(0, length), image.size()
    finally:
        client.shutdown()


def test_clone_of_the_image_snapshot(glance_image):
    location, meta = glance_image
    driver = make_driver()
    volume = new_volume(size=1)
    update = driver.clone_image(volume, location, meta)
    try:
        assert update == {"provider_location": "rbd:%s/volume-%s" % (ceph.POOL, volume.id)}
        info = ceph.rbd_info("volume-%s" % volume.id)
        _fsid, pool, name, snap = location[len("rbd://"):].split("/")
        assert (info["parent"]["pool"], info["parent"]["image"],
                info["parent"]["snapshot"]) == (pool, name, snap), info
        data, size = read_volume(volume, len(DATA) + MiB)
        assert size == GiB
        assert data[:len(DATA)] == DATA and data[len(DATA):] == bytes(MiB)
    finally:
        driver.delete_volume(volume)
    assert ceph.rbd_info("volume-%s" % volume.id) is None


def test_clone_deeper_than_rbd_max_clone_depth_is_flattened(glance_image):
    location, meta = glance_image
    driver = make_driver(rbd_max_clone_depth=0)
    volume = new_volume()
    assert driver.clone_image(volume, location, meta) is not None
    try:
        assert "parent" not in ceph.rbd_info("volume-%s" % volume.id)
        data, _size = read_volume(volume, len(DATA))
        assert data == DATA
    finally:
        driver.delete_volume(volume)


def test_locations_it_cannot_use_are_declined_leaving_nothing(glance_image):
    location, meta = glance_image
    fsid, pool, name, snap = location[len("rbd://"):].split("/")
    driver = make_driver()
    declined = [
        ("file:///var/lib/lamina-glance/images/%s" % meta["id"], meta),
        ("rbd://%s/%s/%s/%s" % (uuid.uuid4(), pool, name, snap), meta),  # another cluster
        ("rbd://%s/%s/%s" % (fsid, pool, name), meta),  # no snapshot part
        (location, dict(meta, disk_format="qcow2")),
        ("rbd://%s/no-such-pool/%s/%s" % (fsid, name, snap), meta),
        ("rbd://%s/%s/no-such-image/%s" % (fsid, pool, snap), meta),
    ]
    before = set(ceph.rbd_ls())
    for where, image_meta in declined:
        assert driver.clone_image(new_volume(), where, image_meta) is None, where
    assert set(ceph.rbd_ls()) == before


def test_a_cephx_user_who_may_not_read_the_images_pool_is_declined(glance_image, tmp_path):
    """The parent must be readable: a user with caps on `volumes` only falls back."""
    location, meta = glance_image
    user = "lamina-test-%s" % uuid.uuid4().hex[:8]
    keyring = tmp_path / ("ceph.client.%s.keyring" % user)
    admin = _admin()
    try:
        import json

        ret, out, err = admin.mon_command(json.dumps({
            "prefix": "auth get-or-create", "entity": "client." + user,
            "caps": ["mon", "profile rbd", "osd", "profile rbd pool=%s" % ceph.POOL]}), b"")
        assert ret == 0, err
        keyring.write_bytes(out)
        try:
            driver = make_driver(rbd_user=user, rbd_keyring=str(keyring))
            before = set(ceph.rbd_ls())
            assert driver.clone_image(new_volume(), location, meta) is None
            assert set(ceph.rbd_ls()) == before
        finally:
            admin.mon_command(json.dumps({"prefix": "auth rm", "entity": "client." + user}),
                              b"")
    finally:
        admin.shutdown()
