"""A real Nova (deploy/nova/nova-aio.sh: nova 34 with placement 16, fake virt driver) in front
of Lamina: the helpers that drive the script and tgtd, and `nova_cloud`, the Nova tests' view
of the shared cloud (tests/integration/cloud.py), which starts Nova beside the deployment
Tempest uses, registers Lamina in Keystone's catalog for Nova (region lamina-nova; Nova finds
the volume API only there), and points Lamina's `[nova]` section at it so that its
volume-extended events reach it.

Nova not installed (or Keystone / tgtd down): the tests skip, naming `make services`; with
LAMINA_REQUIRE_NOVA=1 (make test) they fail instead."""

import os
import subprocess
import time

import pytest

from tests.integration.test_tgt_targets import tgtadm

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SCRIPT = os.path.join(ROOT, "deploy", "nova", "nova-aio.sh")


def unavailable(reason):
    message = reason + " (make services installs and starts what the Nova tests need)"
    if os.environ.get("LAMINA_REQUIRE_NOVA") == "1":
        pytest.fail(message)
    pytest.skip(message)


def script(*args, timeout=300):
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True,
                          timeout=timeout)


def export_lines(text):
    """{name: value} of a script's `export NAME=value` lines."""
    facts = {}
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line[len("export "):].partition("=")
            facts[name] = value.strip().strip("'\"")
    return facts


def nova_facts():
    return export_lines(script("env", timeout=60).stdout)


def targets_under(prefix):
    """{attachment id: target} of tgtd's targets whose IQN starts with prefix."""
    from volume_worker.targets import tgt

    shown = tgt.parse_targets(tgtadm("--op", "show", "--mode", "target").stdout)
    return {iqn[len(prefix):]: found for iqn, found in shown.items() if iqn.startswith(prefix)}


def remove_targets(prefix):
    for found in targets_under(prefix).values():
        tgtadm("--op", "delete", "--mode", "target", "--tid", str(found["tid"]), "--force",
               check=False)
        for account in found["accounts"]:
            tgtadm("--op", "delete", "--mode", "account", "--user", account, check=False)


class NovaCloud:
    """What the Nova tests need to know: Keystone's facts, Nova's, Lamina's URL, its targets."""

    def __init__(self, cloud):
        self.ks, self.facts, self.lamina_url = cloud.ks, cloud.nova_facts, cloud.url
        self.targets = cloud.targets
        self.compute_log = os.path.join(self.facts["LAMINA_NOVA_LOG_DIR"], "nova-compute.log")


def catalog(facts, ks, *args):
    result = subprocess.run([facts["LAMINA_NOVA_PYTHON"], facts["LAMINA_NOVA_KEYSTONE_HELPER"],
                             ks["LAMINA_KS_AUTH_URL"], ks["LAMINA_KS_ADMIN_PASSWORD"], *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def nova_cloud(shared_cloud):
    """The shared cloud (tests/integration/cloud.py), which runs Nova when it is installed."""
    if shared_cloud.compute_missing is not None:
        unavailable(shared_cloud.compute_missing)
    return NovaCloud(shared_cloud)


def poll(what, fn, timeout=120, interval=0.1):
    """fn()'s first truthy value, asked every interval seconds; AssertionError naming what
    after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)
