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
