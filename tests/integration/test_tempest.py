"""OpenStack Tempest's volume API suite (tempest 47.0.0, `tempest.api.volume`) against Lamina
deployed for real: lamina-api, lamina-scheduler and two lamina-volume back ends on RabbitMQ,
MariaDB and the Keystone of deploy/keystone (tests/tempest/harness.py says how), with the real
Nova and Glance beside it for the tests that attach volumes to servers: the deployment the
Nova tests share (tests/integration/cloud.py).

A test that fails and is not on tests/tempest/exclude.txt fails this test; the totals
(passed, failed, skipped, excluded) and the failures grouped by message are printed.

It takes 5-10 minutes, so it runs under `make test` (LAMINA_REQUIRE_KEYSTONE=1), where a
Keystone that is not running fails it, and is skipped otherwise. By hand:
`LAMINA_REQUIRE_KEYSTONE=1 .venv/bin/python -m pytest -q -s tests/integration/test_tempest.py`
or `.venv/bin/python -m tests.tempest` (deploy/tempest/README.md)."""

import os

import pytest

from tests.tempest import harness

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cloud(request):
    if os.environ.get("LAMINA_REQUIRE_KEYSTONE") != "1":
        pytest.skip("Tempest's volume suite takes 5-10 min: it runs under make test "
                    "(LAMINA_REQUIRE_KEYSTONE=1); by hand: python -m tests.tempest")
    shared = request.getfixturevalue("shared_cloud")
    if shared.compute is None and os.environ.get("LAMINA_REQUIRE_NOVA") == "1":
        pytest.fail("Tempest would run without its compute tests: %s" % (
            shared.compute_missing or shared.image_missing))
    return shared


@pytest.mark.timeout(1800)
def test_tempest_volume_api(cloud, tmp_path, capsys):
    workspace = harness.init_workspace(str(tmp_path / "workspace"), cloud.ks, cloud.region,
                                       cloud.compute)
    listed = harness.list_tests(workspace)
    rc, wall = harness.run(workspace, concurrency=2, timeout=1500)
    summary = harness.summarize(harness.results(workspace), listed, harness.read_exclusions())
    text = harness.report(summary, wall)
    (tmp_path / "tempest-summary.txt").write_text(text + "\n")
    with capsys.disabled():
        print("\n" + text + "\n(console output: %s/tempest-run.log)" % workspace)
    assert summary["ran"] > 0, "Tempest ran nothing: see %s/tempest-run.log" % workspace
    assert summary["failed"] == 0, text
    assert rc == 0, "tempest run exited %s with no failed test: see %s/tempest-run.log" % (
        rc, workspace)
