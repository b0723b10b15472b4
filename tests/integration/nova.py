"""A real Nova (deploy/nova/nova-aio.sh: nova 34 with placement 16, fake virt driver) in front
of a Lamina that authenticates with the real Keystone and exports file volumes through tgtd.

`nova_cloud` (module scope) starts lamina-aio with auth_strategy = keystone and one `file`
back end with target_protocol = iscsi, registers it in Keystone's catalog as the
block-storage service (Nova finds the volume API only there), points Lamina's `[nova]`
section at Nova (the lamina service user; the compute endpoint from the catalog) so that its
volume-extended events reach it, then starts placement and the Nova services. Everything is
stopped at the end, the catalog entry removed, and tgtd's targets under this run's prefix
deleted.

Nova not installed (or Keystone / tgtd down): the tests skip, naming `make services`; with
LAMINA_REQUIRE_NOVA=1 (make test) they fail instead."""

import os
import secrets
import subprocess

import pytest

from tests.integration import cluster
from tests.integration.test_keystone import keystone_facts
from tests.integration.test_tgt_targets import tgtadm, tgtd_unavailable

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


def nova_facts():
    out = script("env", timeout=60)
    facts = {}
    for line in out.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line[len("export "):].partition("=")
            facts[name] = value.strip()
    return facts


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


def lamina_conf(ks, workdir, prefix):
    auth = [
        "auth_url = %s" % ks["LAMINA_KS_AUTH_URL"],
        "auth_type = password",
        "username = %s" % ks["LAMINA_KS_SERVICE_USER"],
        "password = %s" % ks["LAMINA_KS_SERVICE_PASSWORD"],
        "project_name = %s" % ks["LAMINA_KS_SERVICE_PROJECT"],
        "user_domain_name = %s" % ks["LAMINA_KS_DOMAIN"],
        "project_domain_name = %s" % ks["LAMINA_KS_DOMAIN"],
    ]
    return "\n".join([
        "[DEFAULT]",
        "auth_strategy = keystone",
        "enabled_backends = file",
        "[file]",
        "volume_driver = file",
        "volume_backend_name = file",
        "file_volume_dir = %s" % (workdir / "volumes"),
        "target_protocol = iscsi",
        "tgt_state_dir = %s" % (workdir / "tgt"),
        "target_prefix = %s" % prefix,
        "[keystone_authtoken]",
        "www_authenticate_uri = %s" % ks["LAMINA_KS_WWW_AUTHENTICATE_URI"],
        "memcached_servers = %s" % ks["LAMINA_KS_MEMCACHED_SERVERS"],
        *auth,
        # volume-extended events go to the compute endpoint of Keystone's catalog
        "[nova]",
        *auth,
        "region_name = %s" % ks["LAMINA_KS_REGION"],
        "",
    ])


class NovaCloud:
    """What the tests need to know: Keystone's facts, Lamina's URL, the tgt prefix, logs."""

    def __init__(self, ks, facts, lamina_url, prefix, lamina_log):
        self.ks, self.facts = ks, facts
        self.lamina_url, self.prefix, self.lamina_log = lamina_url, prefix, lamina_log
        self.compute_log = os.path.join(facts["LAMINA_NOVA_LOG_DIR"], "nova-compute.log")

    def targets(self):
        return targets_under(self.prefix)


def catalog(facts, ks, *args):
    result = subprocess.run([facts["LAMINA_NOVA_PYTHON"], facts["LAMINA_NOVA_KEYSTONE_HELPER"],
                             ks["LAMINA_KS_AUTH_URL"], ks["LAMINA_KS_ADMIN_PASSWORD"], *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def nova_cloud(tmp_path_factory):
    facts = nova_facts()
    if facts.get("LAMINA_NOVA_INSTALLED") != "1":
        unavailable("Nova is not installed: bash deploy/nova/nova-aio.sh install")
    ks = keystone_facts()
    if ks is None:
        unavailable("Keystone is not running: bash deploy/keystone/keystone-aio.sh start")
    reason = tgtd_unavailable()
    if reason is not None:
        unavailable(reason)

    workdir = tmp_path_factory.mktemp("nova")
    prefix = "iqn.2026-12.org.lamina-test:nova-%s-" % secrets.token_hex(4)
    conf = workdir / "lamina.conf"
    conf.write_text(lamina_conf(ks, workdir, prefix))
    port = cluster.free_port()
    log = str(workdir / "aio.log")
    lamina = cluster.Proc("aio", [os.path.join(cluster.BIN, "lamina-aio"), "--config-file",
                                  str(conf), "--data-dir", str(workdir / "data"), "--port",
                                  str(port)], log).start()
    url = "http://127.0.0.1:%d" % port
    started = False
    try:
        cluster.wait_http(url + "/", proc=lamina.popen, log=log)
        # Keystone fills in $(project_id)s from the token's project
        catalog(facts, ks, "volume", url + "/v3/$(project_id)s")
        started = True
        result = script("start")
        assert result.returncode == 0, "nova-aio.sh start failed:\n" + result.stderr[-3000:]
        yield NovaCloud(ks, facts, url, prefix, log)
    finally:
        if started:
            script("stop")
            catalog(facts, ks, "no-volume")
        lamina.stop()
        remove_targets(prefix)
