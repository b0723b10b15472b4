"""GET /metrics (api/metrics.py): a scrape parses with prometheus_client's own parser, and its
figures are the database's."""

import collections

from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import false, func, select

from common.db import api as db
from common.db import models
from common.db.session import reader


def scrape(stack):
    resp = stack.http.get(stack.url + "/metrics")
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    # Not a Cinder route: it carries no OpenStack-API-Version, so tests/contract.py (which
    # checks only responses that do) leaves it alone instead of needing a NO_SCHEMA entry.
    assert "OpenStack-API-Version" not in resp.headers
    return {f.name: f for f in text_string_to_metric_families(resp.text)}


def by_label(family, label, sample_name=None):
    return {s.labels[label]: s.value for s in family.samples
            if sample_name is None or s.name == sample_name}


def db_counts(model):
    with reader() as s:
        rows = s.execute(select(model.status, func.count())
                         .where(model.deleted == false()).group_by(model.status))
        return {status: float(n) for status, n in rows}


def test_scrape_matches_the_database(stack):
    for _ in range(2):
        stack.wait_volume(stack.create_volume(size=1)["id"], ("available",))
    stack.override("fail_points", ["create_volume.create_storage"], group="debug")
    failed = stack.create_volume(size=2)
    assert stack.wait_volume(failed["id"], ("error", "available"))["status"] == "error"
    stack.override("fail_points", [], group="debug")
    volume = stack.create_volume(size=1)
    stack.wait_volume(volume["id"], ("available",))
    snapshot = stack.create_snapshot(volume["id"])
    stack.wait_snapshot(snapshot["id"], ("available",))
    # a deleted volume is counted nowhere
    gone = stack.create_volume(size=1)
    stack.wait_volume(gone["id"], ("available",))
    assert stack.request("DELETE", "/volumes/" + gone["id"]).status_code == 202
    stack.wait_volume(gone["id"], ("deleted",))

    families = scrape(stack)

    volumes = by_label(families["lamina_volumes"], "status")
    assert volumes == db_counts(models.Volume) == {"available": 3.0, "error": 1.0}
    assert by_label(families["lamina_snapshots"], "status") == \
        db_counts(models.Snapshot) == {"available": 1.0}
    assert families["lamina_backups"].type == "gauge"
    assert by_label(families["lamina_backups"], "status") == db_counts(models.Backup) == {}

    pools = db.pool_get_all()
    assert pools
    for suffix, column in (("total", "total_capacity_gb"), ("free", "free_capacity_gb"),
                           ("allocated", "allocated_capacity_gb"),
                           ("provisioned", "allocated_capacity_gb"),
                           ("usable", "usable_capacity_gb")):
        scraped = by_label(families["lamina_pool_capacity_%s_gb" % suffix], "pool")
        assert scraped == {p.name: float(getattr(p, column)) for p in pools}, suffix
    # the three available volumes' claims (the errored one released its own)
    assert by_label(families["lamina_pool_capacity_allocated_gb"], "pool") == \
        {"stack@file#pool0": 3.0}

    # nothing is in flight any more
    assert families["lamina_operations_in_flight"].samples == []


def test_requests_are_counted_by_route_not_path(stack):
    ids = [stack.create_volume(size=1)["id"] for _ in range(2)]
    for volume_id in ids:
        stack.wait_volume(volume_id, ("available",))
        assert stack.request("GET", "/volumes/%s" % volume_id).status_code == 200
    assert stack.request("GET", "/volumes/no-such-volume").status_code == 404
    assert stack.http.get(stack.url + "/no/such/path").status_code == 404

    families = scrape(stack)

    counts = collections.Counter()
    for s in families["lamina_api_requests"].samples:
        if s.name == "lamina_api_requests_total":
            counts[(s.labels["method"], s.labels["route"], s.labels["status"])] += s.value
    show = "/v3/<project_id>/volumes/<volume_id>"
    assert counts[("POST", "/v3/<project_id>/volumes", "202")] == 2
    # two shows (plus the polls of wait_volume, all 200) and the 404 of the missing one
    assert counts[("GET", show, "200")] >= 2
    assert counts[("GET", show, "404")] == 1
    assert counts[("GET", "unmatched", "404")] == 1
    # never the raw path: no label holds a volume id
    assert not [k for k in counts if any(v in k[1] for v in ids + ["no-such-volume"])]

    histogram = families["lamina_api_request_duration_seconds"]
    assert histogram.type == "histogram"
    samples = {(s.name, s.labels["method"], s.labels["route"]): s.value
               for s in histogram.samples if "le" not in s.labels}
    assert samples[("lamina_api_request_duration_seconds_count", "GET", show)] == \
        counts[("GET", show, "200")] + counts[("GET", show, "404")]
    assert samples[("lamina_api_request_duration_seconds_sum", "GET", show)] > 0
    infinite = [s.value for s in histogram.samples
                if s.labels.get("le") == "+Inf" and s.labels["route"] == show]
    assert infinite == [samples[("lamina_api_request_duration_seconds_count", "GET", show)]]

    # the scrape itself is counted by the next one
    again = scrape(stack)
    assert any(s.labels["route"] == "/metrics" and s.labels["status"] == "200"
               for s in again["lamina_api_requests"].samples)


def test_operations_in_flight(make_stack):
    # The volume service waits in create_storage, so the create is in flight while scraped.
    stack = make_stack(overrides={"debug.delay_points": ["create_volume.create_storage:3"]})
    volume = stack.create_volume(size=1)
    workers = db.worker_get_all()
    assert [(w.resource_type, w.resource_id) for w in workers] == [("volume", volume["id"])]

    families = scrape(stack)

    in_flight = families["lamina_operations_in_flight"].samples
    assert [(s.labels["resource_type"], s.labels["operation"], s.value) for s in in_flight] \
        == [("volume", workers[0].operation, 1.0)]
    (age,) = families["lamina_operation_oldest_age_seconds"].samples
    assert 0 <= age.value < 3
    stack.wait_volume(volume["id"], ("available",))
    assert scrape(stack)["lamina_operations_in_flight"].samples == []


def test_disabled(make_stack):
    stack = make_stack(overrides={"metrics_enabled": False})
    resp = stack.http.get(stack.url + "/metrics")
    assert resp.status_code == 404


def test_openmetrics_when_asked(stack):
    # what Prometheus' scrape asks for first
    resp = stack.http.get(stack.url + "/metrics", headers={
        "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in openmetrics_parser.text_string_to_metric_families(resp.text)}
    assert families["lamina_pool_capacity_total_gb"].samples
    assert resp.text.endswith("# EOF\n")


def sample(families, name, **labels):
    """The value of the sample `name` with exactly these labels (0 when not there yet: the
    process's counters are shared by every stack this test process ran)."""
    for family in families.values():
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def test_process_counters_scheduler_flows_rpc(stack):
    """The counters of this process (common/metrics.py) on the API's scrape, as lamina-aio
    shows them: the scheduler's decisions and rejections by filter, flow failures by task and
    RPC latency by topic and method."""
    before = scrape(stack)
    resp = stack.request("POST", "/types", {"volume_type": {
        "name": "nowhere", "extra_specs": {"volume_backend_name": "nowhere"}}})
    assert resp.status_code == 200, resp.text
    refused = stack.create_volume(size=1, volume_type="nowhere")
    assert stack.wait_volume(refused["id"], ("error", "available"))["status"] == "error"
    stack.wait_volume(stack.create_volume(size=1)["id"], ("available",))
    stack.override("fail_points", ["create_volume.create_storage"], group="debug")
    failed = stack.create_volume(size=1)
    assert stack.wait_volume(failed["id"], ("error", "available"))["status"] == "error"
    stack.override("fail_points", [], group="debug")

    after = scrape(stack)

    def grew(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert after["lamina_scheduler_decisions"].type == "counter"
    assert grew("lamina_scheduler_decisions_total", result="no_valid_backend") == 1
    assert grew("lamina_scheduler_decisions_total", result="placed") == 2
    assert grew("lamina_scheduler_rejections_total", filter="CapabilitiesFilter") == 1
    assert grew("lamina_scheduler_rejections_total", filter="CapacityFilter") == 0
    assert grew("lamina_flow_failures_total", flow="create_volume", task="create_storage") == 1
    assert grew("lamina_flow_failures_total", flow="create_volume",
                task="check_still_creating") == 0
    assert grew("lamina_flow_runs_total", flow="create_volume", result="failed") == 1
    assert grew("lamina_flow_runs_total", flow="create_volume", result="succeeded") == 1

    assert after["lamina_rpc_client_duration_seconds"].type == "histogram"
    # the API's casts to the scheduler (3 creates), the scheduler's to the volume service (2)
    for topic, casts in (("lamina-scheduler", 3), ("lamina-volume", 2)):
        labels = {"topic": topic, "method": "create_volume", "kind": "cast"}
        assert grew("lamina_rpc_client_duration_seconds_count", **labels) == casts, topic
        assert grew("lamina_rpc_client_duration_seconds_bucket", le="+Inf", **labels) == casts
        assert grew("lamina_rpc_client_duration_seconds_sum", **labels) > 0
