"""Unchanged Cinder clients against `lamina-aio` started as a subprocess."""

import pytest

from tests.integration import cluster, scenarios

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def aio(tmp_path_factory):
    proc = cluster.AioProcess(tmp_path_factory.mktemp("aio")).start()
    yield proc
    proc.stop()


def test_cinder_cli_v3(aio):
    scenarios.run_cli_scenario(aio.url, "file")


def test_openstacksdk_v3(aio):
    scenarios.run_sdk_scenario(aio.url, "file", api="v3")


def test_openstacksdk_v2(aio):
    scenarios.run_sdk_scenario(aio.url, "file", api="v2")


def test_cinderclient_python_api_v2(aio):
    scenarios.run_cinderclient_api_scenario(aio.url, "file", api="v2")


def test_cinderclient_python_api_v3(aio):
    scenarios.run_cinderclient_api_scenario(aio.url, "file", api="v3")


def test_snapshots_openstacksdk(aio):
    scenarios.run_snapshot_sdk_scenario(aio.url, api="v3")


def test_snapshots_openstacksdk_v2(aio):
    scenarios.run_snapshot_sdk_scenario(aio.url, api="v2")


def test_snapshots_cinder_cli(aio):
    scenarios.run_snapshot_cli_scenario(aio.url)


def test_cinder_cli_sort_by_name(aio):
    """`cinder list --sort name` and `cinder snapshot-list --sort name` send the v1 key
    display_name: both sort by name."""
    cli = scenarios.cinder_cli
    ids = {}
    for name in ("sort-b", "sort-a"):
        rc, out = cli(aio.url, "create", "--name", name, "1")
        assert rc == 0, out
        ids[name] = scenarios.table_field(out, "id")
    for vid in ids.values():
        scenarios.wait_for(lambda vid=vid: "available" in cli(aio.url, "show", vid)[1])
    rc, out = cli(aio.url, "list", "--sort", "name:asc")
    assert rc == 0, out
    assert out.index(ids["sort-a"]) < out.index(ids["sort-b"]), out
    snaps = {}
    for name in ("snap-b", "snap-a"):
        rc, out = cli(aio.url, "snapshot-create", "--name", name, ids["sort-a"])
        assert rc == 0, out
        snaps[name] = scenarios.table_field(out, "id")
    rc, out = cli(aio.url, "snapshot-list", "--sort", "name:desc")
    assert rc == 0, out
    assert out.index(snaps["snap-b"]) < out.index(snaps["snap-a"]), out
