"""common/image_service.py against the real Glance (deploy/glance) and Keystone, with the
tokens of members of projects alpha and beta, as the API and the volume services will use it.

The Glance fixture is test_glance.py's: it starts Glance when it is down and leaves it as it
found it; Glance not installed or Keystone down: skipped naming `make services`, failed with
LAMINA_REQUIRE_GLANCE=1."""

import hashlib
import socket
import time
import uuid

import pytest
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3 as ks_v3
from oslo_config import cfg

from common import context as lamina_context
from common import exception, image_service, rpc
from tests.integration import test_glance
from tests.integration.test_glance import TINY, MiB, pattern

pytestmark = pytest.mark.integration
CONF = cfg.CONF
GROUP = image_service.GROUP
# the module fixture: starts Glance when it is down, stops it at the end only then
glance = test_glance.glance


def test_context_carries_the_users_token_over_rpc():
    """What the volume service gets: keystonemiddleware's X-Auth-Token through the context
    the API builds (oslo.context's from_environ) and common/rpc's serializer."""
    ctx = lamina_context.RequestContext.from_environ(
        {"HTTP_X_AUTH_TOKEN": "tok-123", "HTTP_X_USER_ID": "u", "HTTP_X_PROJECT_ID": "p"})
    assert ctx.auth_token == "tok-123"
    serializer = rpc.ContextSerializer()
    got = serializer.deserialize_context(serializer.serialize_context(ctx))
    assert (got.auth_token, got.project_id, got.user_id) == ("tok-123", "p", "u")


def override(**values):
    for name, value in values.items():
        CONF.set_override(name, value, group=GROUP)


@pytest.fixture(scope="module")
def conf(glance):
    ks, _ = glance
    CONF.register_opts(ks_loading.get_auth_plugin_conf_options("password"), group=GROUP)
    values = dict(auth_type="password", auth_url=ks["LAMINA_KS_AUTH_URL"],
                  username=ks["LAMINA_KS_SERVICE_USER"],
                  password=ks["LAMINA_KS_SERVICE_PASSWORD"],
                  project_name=ks["LAMINA_KS_SERVICE_PROJECT"],
                  user_domain_name=ks["LAMINA_KS_DOMAIN"],
                  project_domain_name=ks["LAMINA_KS_DOMAIN"],
                  region_name=ks["LAMINA_KS_REGION"], timeout=20)
    override(**values)
    yield
    for name in list(values) + ["endpoint_override", "num_retries"]:
        CONF.clear_override(name, group=GROUP)


@pytest.fixture(autouse=True)
def _catalog_endpoint(request):
    yield
    if "conf" in request.fixturenames:
        CONF.clear_override("endpoint_override", group=GROUP)
        CONF.clear_override("num_retries", group=GROUP)


def user_context(ks, user, project):
    """The request context the API would build for user's token in project."""
    auth = ks_v3.Password(auth_url=ks["LAMINA_KS_AUTH_URL"], username=user,
                          password=ks["LAMINA_KS_PASSWORD"], project_name=project,
                          user_domain_name=ks["LAMINA_KS_DOMAIN"],
                          project_domain_name=ks["LAMINA_KS_DOMAIN"])
    sess = ks_session.Session(auth=auth)
    return lamina_context.RequestContext(user_id=sess.get_user_id(),
                                         project_id=sess.get_project_id(),
                                         roles=["member", "reader"],
                                         auth_token=sess.get_token())


@pytest.fixture(scope="module")
def alice(glance, conf):
    ks, _ = glance
    return user_context(ks, ks["LAMINA_KS_MEMBER_A_USER"], ks["LAMINA_KS_PROJECT_A"])


@pytest.fixture(scope="module")
def bob(glance, conf):
    ks, _ = glance
    return user_context(ks, ks["LAMINA_KS_MEMBER_B_USER"], ks["LAMINA_KS_PROJECT_B"])


@pytest.fixture(scope="module")
def tiny_id(glance):
    return glance[1]["LAMINA_GLANCE_IMAGE_ID"]


def test_show_public_image_as_a_member_of_another_project(bob, tiny_id):
    image = image_service.show(bob, tiny_id)
    # one exchange of the token for the catalog, then the same adapter
    assert image_service.user_adapter(bob) is image_service.user_adapter(bob)
    assert image["id"] == tiny_id and image["name"] == "lamina-tempest-tiny"
    assert (image["status"], image["visibility"], image["protected"]) == (
        "active", "public", False)
    assert (image["disk_format"], image["container_format"]) == ("raw", "bare")
    assert image["size"] == MiB
    assert (image["min_disk"], image["min_ram"]) == (0, 0)
    assert image["checksum"] == hashlib.md5(TINY).hexdigest()
    assert (image["os_hash_algo"], image["os_hash_value"]) == (
        "sha512", hashlib.sha512(TINY).hexdigest())
    assert "virtual_size" in image and isinstance(image["properties"], dict)
    assert "id" not in image["properties"]


def test_show_with_endpoint_override_and_with_service_credentials(glance, alice, tiny_id):
    override(endpoint_override=glance[1]["LAMINA_GLANCE_URL"])
    assert image_service.show(alice, tiny_id)["size"] == MiB
    CONF.clear_override("endpoint_override", group=GROUP)
    assert image_service.show(None, tiny_id)["size"] == MiB
    admin_ctx = lamina_context.get_admin_context()
    assert image_service.show(admin_ctx, tiny_id)["status"] == "active"


def test_no_token_or_a_bad_token_is_not_authorized(glance, alice, tiny_id):
    no_token = lamina_context.RequestContext(user_id="u", project_id=alice.project_id)
    with pytest.raises(exception.ImageNotAuthorized, match="no token"):
        image_service.show(no_token, tiny_id)
    bad = lamina_context.RequestContext(user_id="u", project_id=alice.project_id,
                                        auth_token="gAAAAA-not-a-token")
    with pytest.raises(exception.ImageNotAuthorized) as err:
        image_service.show(bad, tiny_id)
    assert err.value.code == 403 and "Keystone" in str(err.value)
    # sent straight to Glance (endpoint_override): Glance's own 401
    override(endpoint_override=glance[1]["LAMINA_GLANCE_URL"])
    with pytest.raises(exception.ImageNotAuthorized, match="Glance answered 401"):
        image_service.show(bad, tiny_id)


def test_download_checks_the_hash(bob, tiny_id, tmp_path):
    chunks = []
    written = image_service.download(bob, tiny_id, chunks.append, chunk_size=64 * 1024)
    data = b"".join(chunks)
    assert written == len(data) == MiB
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(TINY).hexdigest()
    # streamed: never more than a chunk at a time
    assert max(len(c) for c in chunks) <= 64 * 1024 and len(chunks) >= 16
    path = tmp_path / "tiny.raw"
    assert image_service.download(bob, tiny_id, path) == MiB
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(TINY).hexdigest()


def test_download_detects_a_mismatch(bob, tiny_id):
    image = image_service.show(bob, tiny_id)
    wrong = dict(image, os_hash_value="0" * 128)
    with pytest.raises(exception.ImageDownloadFailed) as err:
        image_service.download(bob, tiny_id, lambda chunk: None, image=wrong)
    assert tiny_id in str(err.value) and "sha512" in str(err.value)
    # no os_hash: the md5 checksum is checked
    md5_only = dict(image, os_hash_algo=None, os_hash_value=None, checksum="f" * 32)
    with pytest.raises(exception.ImageDownloadFailed, match="md5"):
        image_service.download(bob, tiny_id, lambda chunk: None, image=md5_only)
    longer = dict(image, size=MiB + 1)
    with pytest.raises(exception.ImageDownloadFailed, match="short read: 1048576 of 1048577"):
        image_service.download(bob, tiny_id, lambda chunk: None, image=longer)
    shorter = dict(image, size=MiB - 1)
    with pytest.raises(exception.ImageDownloadFailed, match="more data"):
        image_service.download(bob, tiny_id, lambda chunk: None, image=shorter)


def test_private_image_create_upload_download_delete(alice, bob, tmp_path):
    data = pattern(4 * MiB)
    source = tmp_path / "volume"
    source.write_bytes(data)
    name = "lamina-image-service-%s" % uuid.uuid4().hex[:8]
    image = image_service.create(alice, name=name, disk_format="raw", container_format="bare",
                                 visibility="private", lamina_test="yes")
    try:
        assert image["status"] == "queued" and image["visibility"] == "private"
        assert image["properties"]["lamina_test"] == "yes"
        started = time.monotonic()
        uploaded = image_service.upload(alice, image["id"],
                                        image_service.file_chunks(source, 256 * 1024),
                                        size=len(data))
        upload_seconds = time.monotonic() - started
        assert (uploaded["status"], uploaded["size"]) == ("active", len(data))
        assert uploaded["os_hash_value"] == hashlib.sha512(data).hexdigest()

        # another project's member: the image does not exist for it
        with pytest.raises(exception.ImageNotFound) as err:
            image_service.show(bob, image["id"])
        assert err.value.code == 404 and image["id"] in str(err.value)
        with pytest.raises(exception.ImageNotFound):
            image_service.download(bob, image["id"], lambda chunk: None, image=uploaded)
        with pytest.raises(exception.ImageNotFound):
            image_service.delete(bob, image["id"])

        got = hashlib.sha256()
        started = time.monotonic()
        assert image_service.download(alice, image["id"], got.update) == len(data)
        download_seconds = time.monotonic() - started
        assert got.hexdigest() == hashlib.sha256(data).hexdigest()
        print("\nimage_service 4 MiB: upload %.2f s, download %.2f s"
              % (upload_seconds, download_seconds))
    finally:
        image_service.delete(alice, image["id"])
    with pytest.raises(exception.ImageNotFound):
        image_service.show(alice, image["id"])
    with pytest.raises(exception.ImageNotFound):
        image_service.delete(alice, image["id"])


def test_upload_shorter_than_announced_fails(alice):
    image = image_service.create(alice, name="lamina-short-%s" % uuid.uuid4().hex[:8],
                                 disk_format="raw", container_format="bare")
    try:
        with pytest.raises(exception.ImageUploadFailed, match="ended after 65536 of 131072"):
            image_service.upload(alice, image["id"], iter([b"x" * 65536]), size=131072)
        assert image_service.show(alice, image["id"])["status"] != "active"
    finally:
        image_service.delete(alice, image["id"])


def test_nonexistent_image(alice):
    missing = str(uuid.uuid4())
    for call in (lambda: image_service.show(alice, missing),
                 lambda: image_service.delete(alice, missing)):
        with pytest.raises(exception.ImageNotFound, match=missing):
            call()
    with pytest.raises(exception.ImageNotFound):
        image_service.show(alice, "../../v2/images")
    with pytest.raises(exception.ImageUnacceptable, match="Glance sets status"):
        image_service.create(alice, name="x", status="active")


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_glance_down_is_a_clear_error_without_a_hang(bob, tiny_id):
    image = image_service.show(bob, tiny_id)
    override(endpoint_override="http://127.0.0.1:%d" % closed_port(), num_retries=1)
    started = time.monotonic()
    with pytest.raises(exception.ImageServiceUnavailable) as err:
        image_service.show(bob, tiny_id)
    assert time.monotonic() - started < 10
    assert "show of image %s" % tiny_id in str(err.value) and "ConnectFailure" in str(err.value)
    assert err.value.code == 503
    with pytest.raises(exception.ImageDownloadFailed) as err:
        image_service.download(bob, tiny_id, lambda chunk: None, image=image)
    assert "download of image %s" % tiny_id in str(err.value)
    assert time.monotonic() - started < 20


class _Stub:
    """A local HTTP server standing in for Glance's image data: it announces `size` bytes,
    sends `send` of them, then closes, or stalls (`stall`) until the test ends."""

    def __init__(self, size, send, stall=False):
        import http.server
        import threading

        stub = self
        self.size, self.send, self.stall = size, send, stall
        self.release = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(stub.size))
                self.end_headers()
                self.wfile.write(b"\x5a" * stub.send)
                self.wfile.flush()
                if stub.stall:
                    stub.release.wait(30)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub_conf():
    CONF.set_override("timeout", 2, group=GROUP)
    CONF.set_override("num_retries", 0, group=GROUP)
    stubs = []
    yield stubs
    for stub in stubs:
        stub.stop()
    for name in ("timeout", "num_retries", "endpoint_override"):
        CONF.clear_override(name, group=GROUP)


def stub_image(size):
    data = b"\x5a" * size
    return {"id": "stub-image", "status": "active", "size": size, "os_hash_algo": "sha512",
            "os_hash_value": hashlib.sha512(data).hexdigest()}


def stub_context():
    return lamina_context.RequestContext(user_id="u", project_id="p", auth_token="t")


def test_connection_cut_mid_download(stub_conf):
    stub = _Stub(size=MiB, send=100 * 1024)
    stub_conf.append(stub)
    override(endpoint_override=stub.url)
    got = []
    with pytest.raises(exception.ImageDownloadFailed) as err:
        image_service.download(stub_context(), "stub-image", got.append,
                               image=stub_image(MiB), chunk_size=16 * 1024)
    assert "stub-image" in str(err.value)
    assert "connection failed after" in str(err.value) or "short read" in str(err.value)
    assert sum(map(len, got)) <= 100 * 1024


def test_stalled_download_times_out(stub_conf):
    stub = _Stub(size=MiB, send=64 * 1024, stall=True)
    stub_conf.append(stub)
    override(endpoint_override=stub.url)
    started = time.monotonic()
    with pytest.raises(exception.ImageDownloadFailed, match="connection failed after 65536"):
        image_service.download(stub_context(), "stub-image", lambda chunk: None,
                               image=stub_image(MiB), chunk_size=16 * 1024)
    assert time.monotonic() - started < 10


def test_64_mib_through_the_client_and_plain_requests(glance, alice):
    """The client's download rate next to plain streamed GETs of the same image in the same
    run, with and without the sha512 the client checks (what the check and the chunking
    cost); printed, not asserted."""
    import requests

    data = pattern(64 * MiB)
    image = image_service.create(alice, name="lamina-64-%s" % uuid.uuid4().hex[:8],
                                 disk_format="raw", container_format="bare")
    try:
        started = time.monotonic()
        image_service.upload(alice, image["id"],
                             (data[i:i + MiB] for i in range(0, len(data), MiB)),
                             size=len(data))
        upload = time.monotonic() - started
        got = hashlib.sha256()
        assert image_service.download(alice, image["id"], got.update) == len(data)
        assert got.hexdigest() == hashlib.sha256(data).hexdigest()

        def plain_get(hasher):
            with requests.get("%s/v2/images/%s/file" % (glance[1]["LAMINA_GLANCE_URL"],
                                                        image["id"]),
                              headers={"X-Auth-Token": alice.auth_token}, stream=True,
                              timeout=60) as resp:
                assert resp.status_code == 200
                for chunk in resp.iter_content(MiB):
                    if hasher is not None:
                        hasher.update(chunk)

        rates = {"client": [], "GET+sha512": [], "GET": []}
        for _ in range(2):
            for name, run in (
                    ("client", lambda: image_service.download(alice, image["id"],
                                                              lambda chunk: None)),
                    ("GET+sha512", lambda: plain_get(hashlib.sha512())),
                    ("GET", lambda: plain_get(None))):
                started = time.monotonic()
                run()
                rates[name].append(64 * MiB / (time.monotonic() - started) / 1e6)
        print("\n64 MiB: upload %.0f MB/s; download MB/s (two runs each, interleaved): %s"
              % (64 * MiB / upload / 1e6,
                 "; ".join("%s %s" % (name, "/".join("%.0f" % r for r in values))
                           for name, values in rates.items())))
    finally:
        image_service.delete(alice, image["id"])
