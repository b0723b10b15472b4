"""Volumes made from images of the real Glance (deploy/glance), on a file back end and on the
real Ceph (rbd), by Lamina deployed with Keystone auth: the API checks the image with the
user's token, the volume service downloads it with that token, writes it (raw streamed,
qcow2 converted with qemu-img), keeps a copy in the back end's image-volume cache, and the
next volume from the image is a clone of that copy.

Images are private to project alpha (alice's); bob, of project beta, may not see them."""

import hashlib
import os
import subprocess
import time
import uuid

import pytest
import requests
import sqlalchemy

from common import connector
from tests.integration import ceph, cluster, test_glance
from tests.integration.test_glance import MiB, connect
from tests.integration.test_keystone import ks_session_for
from tests.tempest import harness

pytestmark = pytest.mark.integration
glance = test_glance.glance  # the module fixture: Glance started when down
GiB = 1024 ** 3
BACKENDS = ("imgfile", "imgceph")
CACHE = {"image_volume_cache_enabled": "true", "image_volume_cache_max_count": "2"}
# file back ends whose volume service fails at these flow steps (common/fault.py): a create
# from an image fails at the first, a reimage at the second; blank creates succeed there
FAILING = {
    "imgfail-fetch": ("create_volume.fetch_image", "reimage_volume.fetch_image"),
    "imgfail-write": ("create_volume.write_image_data", "reimage_volume.write_image_data"),
    "imgfail-written": ("create_volume.write_image_data.written",
                        "reimage_volume.mark_reimaged"),
}


def pattern(size, seed):
    """size bytes no two 32 KiB blocks of which are alike, with a zero MiB in the middle
    (written as a hole)."""
    block = 32 * 1024
    data = bytearray(b"".join(hashlib.sha256(b"%s-%d" % (seed, i)).digest() * (block // 32)
                              for i in range(size // block)))
    data[size // 2:size // 2 + MiB] = bytes(MiB)
    return bytes(data)


def start_deployment(ks, workdir, extra_hosts=None):
    """Lamina (api, scheduler, a file and an rbd volume service with the image cache on, and
    extra_hosts) with Keystone auth and [glance]; the types imgfile and imgceph."""
    authtoken = {
        "www_authenticate_uri": ks["LAMINA_KS_WWW_AUTHENTICATE_URI"],
        "auth_url": ks["LAMINA_KS_AUTH_URL"], "auth_type": "password",
        "username": ks["LAMINA_KS_SERVICE_USER"],
        "password": ks["LAMINA_KS_SERVICE_PASSWORD"],
        "project_name": ks["LAMINA_KS_SERVICE_PROJECT"],
        "user_domain_name": ks["LAMINA_KS_DOMAIN"],
        "project_domain_name": ks["LAMINA_KS_DOMAIN"],
    }
    admin = harness.admin_session(ks)
    deployment = cluster.Cluster(
        workdir, db_kind="mysql",
        volume_hosts={"files": {"volume_backend_name": "imgfile", **CACHE},
                      "rbd": {**ceph.backend_options(), "volume_backend_name": "imgceph",
                              **CACHE},
                      **(extra_hosts or {})},
        conf_defaults={"auth_strategy": "keystone"},
        conf_sections={"keystone_authtoken": {
            **authtoken, "memcached_servers": ks["LAMINA_KS_MEMCACHED_SERVERS"]},
            "glance": {**{k: v for k, v in authtoken.items() if k != "www_authenticate_uri"},
                       "region_name": ks["LAMINA_KS_REGION"]}},
        auth=lambda: (admin.get_token(), admin.get_project_id()))
    deployment.start()
    try:
        for name in BACKENDS + tuple(extra_hosts or ()):
            resp = deployment.request("POST", "/types", {"volume_type": {
                "name": name, "extra_specs": {"volume_backend_name": name}}})
            assert resp.status_code == 200, resp.text
    except BaseException:
        deployment.stop()
        raise
    return Cloud(ks, deployment)


@pytest.fixture(scope="module")
def cloud(glance, tmp_path_factory):
    ceph.require()
    ks, _facts = glance
    made = start_deployment(ks, tmp_path_factory.mktemp("image-volumes"), {
        name: {"volume_backend_name": name, **CACHE, "conf_sections": {
            "debug": {"fail_points": ",".join(points)}}}
        for name, points in FAILING.items()})
    try:
        yield made
    finally:
        made.stop()


class User:
    def __init__(self, ks, url, user, project):
        self.session = ks_session_for(ks, user, project)
        self.project_id = self.session.get_project_id()
        self.url = url

    def request(self, method, path, body=None, version="3.45"):
        headers = {"X-Auth-Token": self.session.get_token(),
                   "OpenStack-API-Version": "volume " + version}
        return requests.request(method, "%s/v3/%s%s" % (self.url, self.project_id, path),
                                json=body, headers=headers, timeout=60)


class Cloud:
    def __init__(self, ks, deployment):
        self.ks = ks
        self.deployment = deployment
        self.alice = User(ks, deployment.url, ks["LAMINA_KS_MEMBER_A_USER"],
                          ks["LAMINA_KS_PROJECT_A"])
        self.bob = User(ks, deployment.url, ks["LAMINA_KS_MEMBER_B_USER"],
                        ks["LAMINA_KS_PROJECT_B"])
        self.glance = connect(ks, ks["LAMINA_KS_MEMBER_A_USER"], ks["LAMINA_KS_PASSWORD"],
                              ks["LAMINA_KS_PROJECT_A"])
        self.images = []

    def stop(self):
        try:
            for image_id in self.images:
                self.glance.image.delete_image(image_id, ignore_missing=True)
        finally:
            self.deployment.stop()

    def upload(self, data, disk_format="raw", **extra):
        image = self.glance.image.create_image(
            "lamina-imgvol-%s" % uuid.uuid4().hex[:8], data=data, disk_format=disk_format,
            container_format="bare", visibility="private", wait=True, timeout=120, **extra)
        self.images.append(image.id)
        return self.glance.image.get_image(image.id)

    def create(self, image_id, backend, size=1, user=None, expect=202):
        resp = (user or self.alice).request("POST", "/volumes", {"volume": {
            "size": size, "imageRef": image_id, "volume_type": backend}})
        assert resp.status_code == expect, resp.text
        return resp.json()["volume"] if expect == 202 else resp.json()

    def wait(self, volume_id, statuses=("available", "error"), timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            resp = self.alice.request("GET", "/volumes/%s" % volume_id)
            assert resp.status_code == 200, resp.text
            volume = resp.json()["volume"]
            if volume["status"] in statuses:
                return volume
            assert time.monotonic() < deadline, volume
            time.sleep(0.2)

    def volume_ids(self, user=None):
        resp = (user or self.alice).request("GET", "/volumes")
        return {v["id"] for v in resp.json()["volumes"]}

    def delete(self, volume_id):
        assert self.alice.request("DELETE", "/volumes/%s" % volume_id).status_code == 202
        deadline = time.monotonic() + 60
        while self.alice.request("GET", "/volumes/%s" % volume_id).status_code != 404:
            assert time.monotonic() < deadline
            time.sleep(0.2)

    def messages(self, volume_id):
        resp = self.alice.request("GET", "/messages")
        return [m["user_message"] for m in resp.json()["messages"]
                if m["resource_uuid"] == volume_id]

    def cache_entries(self, image_id):
        engine = sqlalchemy.create_engine(self.deployment.db_url)
        try:
            with engine.connect() as conn:
                return conn.execute(sqlalchemy.text(
                    "SELECT host, status, id FROM image_volume_cache_entries WHERE "
                    "image_id = :i"), {"i": image_id}).all()
        finally:
            engine.dispose()

    def connection(self, volume_id, backend):
        if backend == "imgceph":
            opts = ceph.backend_options()
            return {"driver_volume_type": "rbd", "data": {
                "pool": opts["rbd_pool"], "image": "volume-%s" % volume_id,
                "user": opts["rbd_user"], "conf": opts["rbd_ceph_conf"],
                "keyring": opts["rbd_keyring"]}}
        return connector.local_connection(self.file_path(volume_id, backend))

    def _file_paths(self, volume_id, backend):
        root = os.path.join(self.deployment.workdir,
                            "files" if backend == "imgfile" else backend, "volumes")
        return [os.path.join(root, pool, "volume-%s" % volume_id) for pool in os.listdir(root)]

    def file_path(self, volume_id, backend="imgfile"):
        for path in self._file_paths(volume_id, backend):
            if os.path.exists(path):
                return path
        raise AssertionError("no file for volume %s on %s" % (volume_id, backend))

    def storage_exists(self, volume_id, backend):
        if backend == "imgceph":
            return ceph.rbd_info("volume-%s" % volume_id) is not None
        return any(os.path.exists(path) for path in self._file_paths(volume_id, backend))

    def read(self, volume_id, backend, length):
        with connector.open_connection(self.connection(volume_id, backend), False) as vol:
            return vol.read(0, length), vol.size()


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def assert_holds(cloud, volume, backend, data):
    got, size = cloud.read(volume["id"], backend, len(data) + MiB)
    assert size == volume["size"] * GiB
    assert _sha(got[:len(data)]) == _sha(data), "volume %s does not hold the image" % (
        volume["id"])
    assert got[len(data):].count(0) == MiB, "past the image the volume must read zeros"


@pytest.mark.parametrize("backend", BACKENDS)
def test_raw_image_then_the_cached_copy(cloud, backend):
    data = pattern(64 * MiB, b"raw-" + backend.encode())
    image = cloud.upload(data, properties={"lamina_purpose": "raw-test"})
    started = time.monotonic()
    first = cloud.wait(cloud.create(image.id, backend)["id"])
    first_seconds = time.monotonic() - started
    assert first["status"] == "available", cloud.messages(first["id"])
    assert first["bootable"] == "true"
    meta = first["volume_image_metadata"]
    assert (meta["image_id"], meta["checksum"], meta["disk_format"]) == (
        image.id, image.checksum, "raw")
    assert meta["lamina_purpose"] == "raw-test" and meta["size"] == str(len(data))
    assert_holds(cloud, first, backend, data)
    entries = cloud.cache_entries(image.id)
    assert [e.status for e in entries] == ["available"], entries
    # the cached copy is storage no one may manage into a volume
    host = cloud.deployment.host("files" if backend == "imgfile" else "rbd") + "@file"
    resp = cloud.deployment.request("GET", "/manageable_volumes?host=" + host, version="3.8")
    assert resp.status_code == 200, resp.text
    listed = {v["reference"]["source-name"]: v for v in resp.json()["manageable-volumes"]}
    assert listed["volume-%s" % entries[0].id]["safe_to_manage"] is False

    started = time.monotonic()
    second = cloud.wait(cloud.create(image.id, backend, size=2)["id"])
    cached_seconds = time.monotonic() - started
    assert second["status"] == "available", cloud.messages(second["id"])
    assert second["size"] == 2 and second["bootable"] == "true"
    assert_holds(cloud, second, backend, data)
    log = open(cloud.deployment.procs["files" if backend == "imgfile" else "rbd"].log).read()
    assert "Volume %s made from image %s cached" % (second["id"], image.id) in log
    print("\n%s: 64 MiB raw image -> volume %.2f s, from the cache %.2f s"
          % (backend, first_seconds, cached_seconds))
    # the first volume's data is its own: deleting it leaves the clone and the cache whole
    cloud.delete(first["id"])
    assert_holds(cloud, second, backend, data)
    cloud.delete(second["id"])
    assert len(cloud.cache_entries(image.id)) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_qcow2_image_is_converted(cloud, backend, tmp_path):
    data = pattern(16 * MiB, b"qcow2-" + backend.encode())
    raw = tmp_path / "disk.raw"
    raw.write_bytes(data)
    qcow2 = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)],
                   check=True, capture_output=True)
    image = cloud.upload(qcow2.read_bytes(), disk_format="qcow2")
    volume = cloud.wait(cloud.create(image.id, backend)["id"])
    assert volume["status"] == "available", cloud.messages(volume["id"])
    assert volume["volume_image_metadata"]["disk_format"] == "qcow2"
    assert_holds(cloud, volume, backend, data)
    cloud.delete(volume["id"])


def test_refused_images_create_nothing(cloud):
    data = pattern(2 * MiB, b"refused")
    before = cloud.volume_ids()
    # another project's private image: to bob it does not exist
    private = cloud.upload(data)
    refused = cloud.create(private.id, "imgfile", user=cloud.bob, expect=400)
    assert "Invalid image identifier" in refused["badRequest"]["message"]
    # an image that needs more room than asked for
    big = cloud.upload(data, min_disk=3)
    refused = cloud.create(big.id, "imgfile", size=2, expect=400)
    assert "minDisk size 3GB" in refused["badRequest"]["message"]
    # a deactivated image
    deactivated = cloud.upload(data)
    cloud.glance.image.deactivate_image(deactivated)
    refused = cloud.create(deactivated.id, "imgfile", expect=400)
    assert "is not active" in refused["badRequest"]["message"]
    # no such image
    refused = cloud.create(str(uuid.uuid4()), "imgfile", expect=400)
    assert "Invalid image identifier" in refused["badRequest"]["message"]
    assert cloud.volume_ids() == before


def test_qcow2_data_sent_as_raw_is_refused_with_nothing_left(cloud, tmp_path):
    raw = tmp_path / "disk.raw"
    raw.write_bytes(pattern(4 * MiB, b"disguised"))
    qcow2 = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)],
                   check=True, capture_output=True)
    image = cloud.upload(qcow2.read_bytes(), disk_format="raw")
    volume = cloud.wait(cloud.create(image.id, "imgfile")["id"])
    assert volume["status"] == "error"
    assert not cloud.storage_exists(volume["id"], "imgfile")
    assert cloud.messages(volume["id"]), "a failed create from an image tells the user why"
    cloud.delete(volume["id"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_download_failing_midway_leaves_error_and_no_storage(cloud, backend):
    """Glance's stored data cut short after the upload: the download breaks off part way."""
    data = pattern(32 * MiB, b"cut-" + backend.encode())
    image = cloud.upload(data)
    stored = os.path.join(test_glance.glance_facts().get("LAMINA_GLANCE_DIR",
                                                         "/var/lib/lamina-glance"),
                          "images", image.id)
    assert os.path.getsize(stored) == len(data)
    with open(stored, "r+b") as f:
        f.truncate(len(data) // 2)
    volume = cloud.wait(cloud.create(image.id, backend)["id"])
    assert volume["status"] == "error"
    assert not cloud.storage_exists(volume["id"], backend)
    assert not cloud.cache_entries(image.id)
    messages = cloud.messages(volume["id"])
    assert messages and "create" in messages[0].lower(), messages
    cloud.delete(volume["id"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_reimage_replaces_the_data_and_the_image_metadata(cloud, backend):
    old = pattern(24 * MiB, b"old-" + backend.encode())
    new = pattern(8 * MiB, b"new-" + backend.encode())
    volume = cloud.wait(cloud.create(cloud.upload(old).id, backend)["id"])
    assert volume["status"] == "available", cloud.messages(volume["id"])
    image = cloud.upload(new)
    resp = cloud.alice.request("POST", "/volumes/%s/action" % volume["id"],
                               {"os-reimage": {"image_id": image.id}}, version="3.68")
    assert resp.status_code == 202, resp.text
    volume = cloud.wait(volume["id"])
    assert volume["status"] == "available", cloud.messages(volume["id"])
    assert volume["volume_image_metadata"]["image_id"] == image.id
    # the new image, and zeros where the old, longer one was
    got, _size = cloud.read(volume["id"], backend, len(old) + MiB)
    assert _sha(got[:len(new)]) == _sha(new)
    assert got[len(new):].count(0) == len(old) + MiB - len(new)
    cloud.delete(volume["id"])


def test_reimage_refusals_change_nothing(cloud):
    data = pattern(2 * MiB, b"reimage-refused")
    image = cloud.upload(data)
    volume = cloud.wait(cloud.create(image.id, "imgfile")["id"])

    def reimage(body, version="3.68"):
        return cloud.alice.request("POST", "/volumes/%s/action" % volume["id"],
                                   {"os-reimage": body}, version=version)

    resp = reimage({"image_id": image.id}, version="3.67")
    assert resp.status_code == 400 and "no such action" in resp.text
    big = cloud.upload(data, min_disk=5)
    resp = reimage({"image_id": big.id})
    assert resp.status_code == 400 and "minDisk size 5GB" in resp.text, resp.text
    resp = reimage({"image_id": str(uuid.uuid4())})
    assert resp.status_code == 400 and "Invalid image identifier" in resp.text
    resp = reimage({"image_id": image.id, "reimage_reserved": "maybe"})
    assert resp.status_code == 400
    # reserved (an attachment without a connector: Nova's rebuild holds it so), but
    # reimage_reserved not given
    resp = cloud.alice.request("POST", "/attachments", {"attachment": {
        "volume_uuid": volume["id"], "instance_uuid": str(uuid.uuid4())}}, version="3.68")
    assert resp.status_code == 200, resp.text
    attachment_id = resp.json()["attachment"]["id"]
    assert cloud.wait(volume["id"], ("reserved",))["status"] == "reserved"
    resp = reimage({"image_id": image.id})
    assert resp.status_code == 400 and "currently reserved" in resp.text, resp.text
    resp = reimage({"image_id": image.id, "reimage_reserved": True})
    assert resp.status_code == 202, resp.text
    assert cloud.wait(volume["id"], ("reserved", "error"))["status"] == "reserved"
    resp = cloud.alice.request("DELETE", "/attachments/%s" % attachment_id, version="3.68")
    assert resp.status_code == 200, resp.text
    cloud.wait(volume["id"], ("available",))
    cloud.delete(volume["id"])


def test_nova_snapshot_image_makes_a_volume_from_its_snapshot_at_3_46(cloud):
    """What Nova's snapshot of a server booted from a volume leaves in Glance: an image with
    no data whose block_device_mapping names the volume's snapshot."""
    source = cloud.alice.request("POST", "/volumes", {"volume": {
        "size": 1, "volume_type": "imgfile"}}).json()["volume"]
    cloud.wait(source["id"], ("available",))
    resp = cloud.alice.request("POST", "/snapshots", {"snapshot": {"volume_id": source["id"]}})
    assert resp.status_code == 202, resp.text
    snapshot_id = resp.json()["snapshot"]["id"]
    deadline = time.monotonic() + 60
    while cloud.alice.request("GET", "/snapshots/%s" % snapshot_id).json()[
            "snapshot"]["status"] != "available":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    mapping = ('[{"source_type": "snapshot", "destination_type": "volume", "boot_index": 0, '
               '"snapshot_id": "%s", "volume_size": 1}]' % snapshot_id)
    resp = cloud.alice.session.post(
        "/v2/images", endpoint_filter={"service_type": "image", "interface": "public",
                                       "region_name": cloud.ks["LAMINA_KS_REGION"]},
        json={"name": "lamina-nova-snap-%s" % uuid.uuid4().hex[:8], "disk_format": "raw",
              "container_format": "bare", "visibility": "private", "bdm_v2": "True",
              "root_device_name": "/dev/vda", "block_device_mapping": mapping})
    assert resp.status_code == 201, resp.text
    image_id = resp.json()["id"]
    cloud.images.append(image_id)
    # below 3.46 it is an image without data, which Glance has not even made active
    resp = cloud.alice.request("POST", "/volumes", {"volume": {"imageRef": image_id}},
                               version="3.45")
    assert resp.status_code == 400 and "is not active" in resp.text, resp.text
    resp = cloud.alice.request("POST", "/volumes", {"volume": {"imageRef": image_id}},
                               version="3.46")
    assert resp.status_code == 202, resp.text
    volume = cloud.wait(resp.json()["volume"]["id"])
    assert volume["status"] == "available", cloud.messages(volume["id"])
    assert (volume["snapshot_id"], volume["size"]) == (snapshot_id, 1)
    cloud.delete(volume["id"])
    assert cloud.alice.request("DELETE", "/snapshots/%s" % snapshot_id).status_code == 202


@pytest.mark.parametrize("backend", sorted(FAILING))
def test_a_failing_step_ends_in_error_with_nothing_left(cloud, backend):
    """A create from an image that fails at a step, then a reimage that fails at one: the
    volume `error` with a user message; after the failed create no storage, no cache entry
    and the quota given back."""
    image = cloud.upload(pattern(4 * MiB, b"fail-" + backend.encode()))
    usage = _usage(cloud)
    volume = cloud.wait(cloud.create(image.id, backend)["id"])
    assert volume["status"] == "error"
    assert cloud.messages(volume["id"])
    assert not cloud.storage_exists(volume["id"], backend)
    assert not cloud.cache_entries(image.id)
    cloud.delete(volume["id"])
    assert _usage(cloud) == usage

    blank = cloud.alice.request("POST", "/volumes", {"volume": {
        "size": 1, "volume_type": backend}}).json()["volume"]
    assert cloud.wait(blank["id"])["status"] == "available"
    resp = cloud.alice.request("POST", "/volumes/%s/action" % blank["id"],
                               {"os-reimage": {"image_id": image.id}}, version="3.68")
    assert resp.status_code == 202, resp.text
    failed = cloud.wait(blank["id"])
    assert failed["status"] == "error" and cloud.messages(blank["id"])
    assert "volume_image_metadata" not in failed
    cloud.delete(blank["id"])
    assert _usage(cloud) == usage


def _usage(cloud):
    """alice's project's volumes and gigabytes in use, as /limits says."""
    absolute = cloud.alice.request("GET", "/limits").json()["limits"]["absolute"]
    return absolute["totalVolumesUsed"], absolute["totalGigabytesUsed"]


# (tests/integration/test_upload_image.py has raw from a file volume; a raw upload moves the
# whole GiB, a minute here, so rbd's raw upload is measured by bench/images.py instead)
@pytest.mark.parametrize("backend, disk_format", [("imgceph", "qcow2"), ("imgfile", "qcow2")])
def test_upload_to_image_round_trip(cloud, backend, disk_format, tmp_path):
    """A volume from an image uploaded back as a new image: the same data."""
    data = pattern(12 * MiB, b"upload-%s-%s" % (backend.encode(), disk_format.encode()))
    volume = cloud.wait(cloud.create(cloud.upload(data).id, backend)["id"])
    assert volume["status"] == "available", cloud.messages(volume["id"])
    resp = cloud.alice.request("POST", "/volumes/%s/action" % volume["id"], {
        "os-volume_upload_image": {"image_name": "lamina-roundtrip", "disk_format": disk_format,
                                   "container_format": "bare"}})
    assert resp.status_code == 202, resp.text
    image_id = resp.json()["os-volume_upload_image"]["image_id"]
    cloud.images.append(image_id)
    assert cloud.wait(volume["id"])["status"] == "available", cloud.messages(volume["id"])
    image = cloud.glance.image.get_image(image_id)
    assert (image.status, image.disk_format) == ("active", disk_format)
    got = cloud.glance.image.download_image(image)
    got = getattr(got, "content", got)
    if disk_format == "qcow2":
        (tmp_path / "up.qcow2").write_bytes(got)
        subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw",
                        str(tmp_path / "up.qcow2"), str(tmp_path / "up.raw")],
                       check=True, capture_output=True)
        got = (tmp_path / "up.raw").read_bytes()
    assert len(got) == volume["size"] * GiB
    assert _sha(got[:len(data)]) == _sha(data)
    assert got[len(data):].count(0) == len(got) - len(data)
    cloud.delete(volume["id"])


def _glance_request(cloud, method, path, **kwargs):
    return cloud.alice.session.request(
        path, method, endpoint_filter={"service_type": "image", "interface": "public",
                                       "region_name": cloud.ks["LAMINA_KS_REGION"]},
        raise_exc=False, **kwargs)


def test_rbd_volume_from_an_image_of_glances_rbd_store_is_its_clone(cloud):
    """An image kept in Glance's `ceph` store (the pool `images` of the same cluster): the
    rbd volume is a copy-on-write clone of the image's snapshot, nothing downloaded or
    cached; the file back end downloads the same image. Children rule (no flatten): Glance
    refuses to delete the image while the clone lives, and deletes it once it is gone."""
    facts = test_glance.glance_facts()
    store, fsid = facts.get("LAMINA_GLANCE_RBD_STORE"), facts.get("LAMINA_GLANCE_RBD_FSID")
    if not store:
        test_glance.unavailable("Glance runs without its ceph store (glance-aio.sh start: "
                                "see its warning)")
    pool = facts["LAMINA_GLANCE_RBD_POOL"]
    data = pattern(24 * MiB, b"glance-rbd-store")
    resp = _glance_request(cloud, "POST", "/v2/images", json={
        "name": "lamina-imgvol-rbd-%s" % uuid.uuid4().hex[:8], "disk_format": "raw",
        "container_format": "bare", "visibility": "private", "lamina_purpose": "clone"})
    assert resp.status_code == 201, resp.text
    image_id = resp.json()["id"]
    cloud.images.append(image_id)
    resp = _glance_request(cloud, "PUT", "/v2/images/%s/file" % image_id, data=data, headers={
        "Content-Type": "application/octet-stream", "X-Image-Meta-Store": store})
    assert resp.status_code == 204, resp.text
    image = _glance_request(cloud, "GET", "/v2/images/" + image_id).json()
    assert (image["status"], image["stores"]) == ("active", store), image
    assert image["direct_url"] == "rbd://%s/%s/%s/snap" % (fsid, pool, image_id)

    started = time.monotonic()
    volume = cloud.wait(cloud.create(image_id, "imgceph", size=2)["id"])
    clone_seconds = time.monotonic() - started
    assert volume["status"] == "available", cloud.messages(volume["id"])
    assert volume["bootable"] == "true" and volume["size"] == 2
    meta = volume["volume_image_metadata"]
    assert (meta["image_id"], meta["checksum"], meta["disk_format"]) == (
        image_id, image["checksum"], "raw")
    assert meta["lamina_purpose"] == "clone"
    info = ceph.rbd_info("volume-%s" % volume["id"])
    assert info["size"] == 2 * GiB
    assert (info["parent"]["pool"], info["parent"]["image"], info["parent"]["snapshot"]) == (
        pool, image_id, "snap"), info
    assert_holds(cloud, volume, "imgceph", data)
    assert not cloud.cache_entries(image_id), "a clone of Glance's image is not cached"
    log = open(cloud.deployment.procs["rbd"].log).read()
    assert "Volume %s made from image %s by a clone of %s" % (
        volume["id"], image_id, image["direct_url"]) in log

    # the file back end cannot clone it: the download path, through the cache
    on_file = cloud.wait(cloud.create(image_id, "imgfile")["id"])
    assert on_file["status"] == "available", cloud.messages(on_file["id"])
    assert on_file["volume_image_metadata"]["image_id"] == image_id
    assert_holds(cloud, on_file, "imgfile", data)
    assert [e.status for e in cloud.cache_entries(image_id)] == ["available"]
    cloud.delete(on_file["id"])

    # the clone keeps Glance's snapshot busy: the image stays, whole, until the volume goes
    resp = _glance_request(cloud, "DELETE", "/v2/images/" + image_id)
    assert resp.status_code == 409, resp.text
    assert _glance_request(cloud, "GET", "/v2/images/" + image_id).json()["status"] == "active"
    assert_holds(cloud, volume, "imgceph", data)
    cloud.delete(volume["id"])
    assert "volume-%s" % volume["id"] not in ceph.rbd_ls()
    resp = _glance_request(cloud, "DELETE", "/v2/images/" + image_id)
    assert resp.status_code == 204, resp.text
    assert image_id not in ceph.rbd_ls(pool)
    print("\nimgceph: 24 MiB raw image of Glance's rbd store -> volume (clone) %.2f s"
          % clone_seconds)
