"""GET /metrics on the deployed databases (a fresh MariaDB and PostgreSQL database each): the
scrape's GROUP BY counts, pool gauges and operation ages equal the database's there too.
tests/functional/test_metrics.py runs the same checks on SQLite. And a deployed volume
service's own metrics port."""

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.functional import test_metrics as t
from tests.integration import cluster

pytestmark = pytest.mark.integration


def test_scrape_matches_the_database(make_stack, deployed_database):
    t.test_scrape_matches_the_database(make_stack(database_url=deployed_database))


def test_operations_in_flight(make_stack, deployed_database):
    t.test_operations_in_flight(
        lambda **kwargs: make_stack(database_url=deployed_database, **kwargs))


def test_a_volume_services_metrics_port(tmp_path):
    """A deployed lamina-volume (MariaDB, RabbitMQ) serves its own counters on
    [metrics] service_metrics_port: the failure of its create flow by task, its runs, and the
    latency of the RPC casts it sends (its pool reports to the schedulers)."""
    port = cluster.free_port()
    c = cluster.Cluster(tmp_path / "cluster", volume_hosts={"node1": {"conf_sections": {
        "metrics": {"service_metrics_port": str(port)},
        "debug": {"fail_points": "create_volume.create_storage"}}}})
    try:
        c.start()
        resp = c.request("POST", "/volumes", {"volume": {"size": 1}})
        assert resp.status_code == 202, resp.text
        volume_id = resp.json()["volume"]["id"]
        deadline = time.monotonic() + 30
        while c.request("GET", "/volumes/" + volume_id).json()["volume"]["status"] != "error":
            assert time.monotonic() < deadline, c.logs()
            time.sleep(0.1)

        scraped = requests.get("http://127.0.0.1:%d/metrics" % port, timeout=10)
    finally:
        c.stop()
    assert scraped.status_code == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(scraped.text)
               for s in family.samples}
    assert samples[("lamina_flow_failures_total",
                    (("flow", "create_volume"), ("task", "create_storage")))] == 1
    assert samples[("lamina_flow_runs_total",
                    (("flow", "create_volume"), ("result", "failed")))] == 1
    reports = (("kind", "cast"), ("method", "update_pool_capabilities"),
               ("topic", "lamina-scheduler"))
    assert samples[("lamina_rpc_client_duration_seconds_count", reports)] >= 1
    assert samples[("lamina_rpc_client_duration_seconds_bucket",
                    tuple(sorted(reports + (("le", "+Inf"),))))] == \
        samples[("lamina_rpc_client_duration_seconds_count", reports)]
    # the database's gauges are the API's alone
    assert not [name for name, _labels in samples if name.startswith("lamina_volumes")]
