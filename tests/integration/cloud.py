"""The one deployment the slow suites share: Tempest's volume API suite
(tests/integration/test_tempest.py) and the Nova tests (test_nova.py) run against the same
Lamina, started once per pytest session (`shared_cloud`, made a fixture of this directory by
tests/integration/conftest.py).

What runs: Lamina deployed for real as tests/tempest/harness.py's Deployment says (api,
scheduler, two volume services with a `file` back end each exported over tgt iSCSI under an
IQN prefix of this run, backups; RabbitMQ, MariaDB, Keystone auth), registered in Keystone's
catalog in the run's own region for Tempest and in region lamina-nova for Nova; beside it,
when they are installed (`make services`), the real Glance (deploy/glance/glance-aio.sh: the
image Tempest's servers boot from) and the real Nova (deploy/nova/nova-aio.sh, fake virt
driver), to which Lamina sends its volume-extended events.

Without Nova the cloud runs without a compute service, and without Glance Tempest's servers
have nothing to boot: Tempest then runs with `[service_available] nova = False` and the Nova
tests skip without Nova (under LAMINA_REQUIRE_NOVA=1, as in make test, both fail instead),
naming what is missing. Nova and Glance listen on
fixed ports, so one run at a time per machine uses them."""

import os
import secrets
import subprocess

import pytest

from tests.integration import nova
from tests.integration.test_tgt_targets import tgtd_unavailable
from tests.tempest import harness

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
GLANCE_SCRIPT = os.path.join(ROOT, "deploy", "glance", "glance-aio.sh")
# Tempest's servers: a disk of 1 GiB (Nova refuses image-backed servers on a zero-disk
# flavor to anyone but an admin)
FLAVORS = {"lamina-tempest": 64, "lamina-tempest-alt": 128}


def glance(*args, timeout=300):
    return subprocess.run(["bash", GLANCE_SCRIPT, *args], capture_output=True, text=True,
                          timeout=timeout)


def glance_facts():
    if not os.path.exists(GLANCE_SCRIPT):
        return {}
    return nova.export_lines(glance("env", timeout=60).stdout)


def compute_missing():
    """Why the cloud cannot run Nova here (None when it can)."""
    if nova.nova_facts().get("LAMINA_NOVA_INSTALLED") != "1":
        return "Nova is not installed: bash deploy/nova/nova-aio.sh install"
    return tgtd_unavailable()


def image_missing():
    """Why the cloud cannot run Glance here (None when it can)."""
    if glance_facts().get("LAMINA_GLANCE_INSTALLED") != "1":
        return "Glance is not installed: bash deploy/glance/glance-aio.sh install"
    return None


def ensure_flavors(ks):
    """{name: id} of Tempest's flavors, made when missing (admin)."""
    import openstack

    admin = openstack.connect(
        auth_type="password", region_name=ks["LAMINA_KS_REGION"],
        auth={"auth_url": ks["LAMINA_KS_AUTH_URL"], "username": ks["LAMINA_KS_ADMIN_USER"],
              "password": ks["LAMINA_KS_ADMIN_PASSWORD"],
              "project_name": ks["LAMINA_KS_ADMIN_PROJECT"],
              "user_domain_name": ks["LAMINA_KS_DOMAIN"],
              "project_domain_name": ks["LAMINA_KS_DOMAIN"]})
    ids = {}
    for name, ram in FLAVORS.items():
        found = admin.compute.find_flavor(name)
        if found is None:
            found = admin.compute.create_flavor(name=name, ram=ram, vcpus=1, disk=1)
        ids[name] = found.id
    return ids


class SharedCloud:
    def __init__(self, workdir, ks):
        self.ks = ks
        self.prefix = "iqn.2026-12.org.lamina-test:cloud-%s-" % secrets.token_hex(4)
        self.compute_missing = compute_missing()
        self.image_missing = image_missing()
        self.deployment = harness.Deployment(
            os.path.join(str(workdir), "deploy"), ks, target_prefix=self.prefix,
            compute=self.compute_missing is None)
        self.nova_facts = self.glance_facts = None
        # the tempest.conf facts of the compute service (harness.tempest_conf): None without
        # Nova, or without Glance (Tempest's servers boot from an image)
        self.compute = None
        self._registered = self._glance_started = self._nova_started = False

    @property
    def url(self):
        return self.deployment.cluster.url

    @property
    def region(self):
        return self.deployment.region

    def targets(self):
        """{attachment id: target} of this run's tgt targets."""
        return nova.targets_under(self.prefix)

    def start(self):
        self.deployment.start()
        if self.compute_missing is not None:
            return self
        self.nova_facts = nova.nova_facts()
        # Keystone fills in $(project_id)s from the token's project
        nova.catalog(self.nova_facts, self.ks, "volume", self.url + "/v3/$(project_id)s")
        self._registered = True
        if self.image_missing is None:
            self._glance_started = True
            result = glance("start")
            assert result.returncode == 0, ("glance-aio.sh start failed:\n"
                                            + result.stderr[-3000:])
            self.glance_facts = glance_facts()
        self._nova_started = True
        result = nova.script("start")
        assert result.returncode == 0, "nova-aio.sh start failed:\n" + result.stderr[-3000:]
        if self.image_missing is not None:
            return self
        flavors = ensure_flavors(self.ks)
        self.compute = {"region": self.ks["LAMINA_KS_REGION"],
                        "image_ref": self.glance_facts["LAMINA_GLANCE_IMAGE_ID"],
                        "flavor_ref": flavors["lamina-tempest"],
                        "flavor_ref_alt": flavors["lamina-tempest-alt"]}
        return self

    def stop(self):
        try:
            if self._nova_started:
                nova.script("stop")
            if self._registered:
                nova.catalog(self.nova_facts, self.ks, "no-volume")
            if self._glance_started:
                glance("stop")
        finally:
            self.deployment.stop()
            nova.remove_targets(self.prefix)


@pytest.fixture(scope="session")
def shared_cloud(tmp_path_factory):
    ks = harness.keystone_facts()
    if ks is None:
        message = ("Keystone is not running: bash deploy/keystone/keystone-aio.sh start "
                   "(make services)")
        if os.environ.get("LAMINA_REQUIRE_KEYSTONE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    cloud = SharedCloud(tmp_path_factory.mktemp("cloud"), ks)
    try:
        yield cloud.start()
    finally:
        cloud.stop()
