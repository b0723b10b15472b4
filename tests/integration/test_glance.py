"""A real Glance (deploy/glance/glance-aio.sh: glance 33, file store, Keystone auth) as the
image service of the test Nova and of volume-from-image, driven through openstacksdk.

The module fixture runs `glance-aio.sh start` (which uploads the public image
lamina-tempest-tiny when it is absent) and `stop` at the end, unless Glance was up before.
Glance not installed, or Keystone down: the tests skip, naming `make services`; with
LAMINA_REQUIRE_GLANCE=1 they fail instead."""

import hashlib
import os
import subprocess
import time
import uuid

import openstack
import pytest

from tests.integration.test_keystone import keystone_facts

pytestmark = pytest.mark.integration

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SCRIPT = os.path.join(ROOT, "deploy", "glance", "glance-aio.sh")
# what glance-aio.sh uploads as lamina-tempest-tiny
TINY = bytes(range(256)) * 4096
MiB = 1024 * 1024


def unavailable(reason):
    message = reason + " (make services installs what the Glance tests need)"
    if os.environ.get("LAMINA_REQUIRE_GLANCE") == "1":
        pytest.fail(message)
    pytest.skip(message)


def script(*args, timeout=300):
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True,
                          timeout=timeout)


def glance_facts():
    facts = {}
    for line in script("env", timeout=60).stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line[len("export "):].partition("=")
            facts[name] = value.strip()
    return facts


@pytest.fixture(scope="module")
def glance():
    if glance_facts().get("LAMINA_GLANCE_INSTALLED") != "1":
        unavailable("Glance is not installed: bash deploy/glance/glance-aio.sh install")
    ks = keystone_facts()
    if ks is None:
        unavailable("Keystone is not running: bash deploy/keystone/keystone-aio.sh start")
    # a Glance already up belongs to someone else (the session's shared cloud): left running
    was_up = script("status", timeout=60).returncode == 0
    started = time.monotonic()
    result = script("start")
    seconds = time.monotonic() - started
    try:
        assert result.returncode == 0, "glance-aio.sh start failed:\n" + result.stderr[-3000:]
        print("\nglance-aio.sh start: %.2f s%s" % (seconds, " (was up)" if was_up else ""))
        facts = glance_facts()
        assert facts["LAMINA_GLANCE_IMAGE_ID"], facts
        yield ks, facts
    finally:
        if not was_up:
            script("stop")


def connect(ks, user, password, project):
    return openstack.connect(
        auth_type="password",
        auth={"auth_url": ks["LAMINA_KS_AUTH_URL"], "username": user, "password": password,
              "project_name": project, "user_domain_name": ks["LAMINA_KS_DOMAIN"],
              "project_domain_name": ks["LAMINA_KS_DOMAIN"]},
        region_name=ks["LAMINA_KS_REGION"])


@pytest.fixture(scope="module")
def admin(glance):
    ks, _ = glance
    return connect(ks, ks["LAMINA_KS_ADMIN_USER"], ks["LAMINA_KS_ADMIN_PASSWORD"],
                   ks["LAMINA_KS_ADMIN_PROJECT"])


def test_tiny_image_is_public_and_active(glance, admin):
    ks, facts = glance
    image = admin.image.get_image(facts["LAMINA_GLANCE_IMAGE_ID"])
    assert image.name == facts["LAMINA_GLANCE_IMAGE_NAME"] == "lamina-tempest-tiny"
    assert (image.status, image.visibility) == ("active", "public")
    assert (image.disk_format, image.container_format) == ("raw", "bare")
    assert image.size == MiB
    assert image.checksum == hashlib.md5(TINY).hexdigest()
    assert image.hash_algo == "sha512"
    assert image.hash_value == hashlib.sha512(TINY).hexdigest()
    # found through the catalog's image endpoint by a member of another project, as Nova
    # does with a Tempest user's token
    member = connect(ks, ks["LAMINA_KS_MEMBER_A_USER"], ks["LAMINA_KS_PASSWORD"],
                     ks["LAMINA_KS_PROJECT_A"])
    assert image.id in [i.id for i in member.image.images(name=image.name)]
    assert member.image.get_endpoint().rstrip("/").startswith(facts["LAMINA_GLANCE_URL"])


def pattern(size):
    """size bytes no two MiB of which are alike (a swapped or repeated chunk would show)."""
    block = 32 * 1024
    return b"".join(hashlib.sha256(b"lamina-glance-%d" % i).digest() * (block // 32)
                    for i in range(size // block))


def test_upload_download_delete(admin):
    data = pattern(4 * MiB)
    name = "lamina-test-%s" % uuid.uuid4().hex[:8]
    started = time.monotonic()
    image = admin.image.create_image(name, data=data, disk_format="raw",
                                     container_format="bare", wait=True, timeout=120)
    upload_seconds = time.monotonic() - started
    try:
        image = admin.image.get_image(image.id)
        assert (image.status, image.size) == ("active", len(data))
        started = time.monotonic()
        got = admin.image.download_image(image)
        download_seconds = time.monotonic() - started
        got = getattr(got, "content", got)
        assert len(got) == len(data)
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
        print("\nglance 4 MiB raw image: upload %.2f s, download %.2f s"
              % (upload_seconds, download_seconds))
    finally:
        admin.image.delete_image(image, ignore_missing=True)
    with pytest.raises(openstack.exceptions.NotFoundException):
        admin.image.get_image(image.id)
