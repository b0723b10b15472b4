"""Separate lamina-api, lamina-scheduler and two lamina-volume processes on real RabbitMQ,
with MariaDB and with PostgreSQL."""

import collections
import concurrent.futures
import os
import time

import pytest

from tests.integration import cluster, scenarios

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["mysql", "postgresql"])
def deployed(request, tmp_path_factory):
    c = cluster.Cluster(tmp_path_factory.mktemp("cluster-" + request.param),
                        db_kind=request.param,
                        volume_hosts={"node1": {"file_max_capacity_gb": 1000},
                                      "node2": {"file_max_capacity_gb": 2000}},
                        scheduler_opts={"scheduler_default_weighers": "VolumeNumberWeigher"})
    try:
        c.start()
    except Exception:
        print(c.logs())
        c.stop()
        raise
    yield c
    c.stop()


def create_and_wait(c, count, volume_type=None, size=1):
    ids = []
    for i in range(count):
        body = {"volume": {"size": size, "name": "w%d" % i}}
        if volume_type:
            body["volume"]["volume_type"] = volume_type
        resp = c.request("POST", "/volumes", body)
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["volume"]["id"])
    return [wait_status(c, vid, ("available", "error")) for vid in ids]


def wait_status(c, volume_id, statuses, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        resp = c.request("GET", "/volumes/" + volume_id)
        if resp.status_code == 404 and "deleted" in statuses:
            return {"id": volume_id, "status": "deleted"}
        volume = resp.json()["volume"]
        if volume["status"] in statuses:
            return volume
        assert time.monotonic() < deadline, (volume, c.logs())
        time.sleep(0.1)


def delete_all(c, volumes):
    for v in volumes:
        assert c.request("DELETE", "/volumes/" + v["id"]).status_code == 202
    for v in volumes:
        wait_status(c, v["id"], ("deleted",))


def test_services_listed(deployed):
    services = deployed.request("GET", "/os-services").json()["services"]
    up = {(s["binary"], s["host"]) for s in services if s["state"] == "up"}
    assert ("cinder-scheduler", deployed.host("scheduler0")) in up
    assert ("cinder-volume", deployed.host("node1") + "@file") in up
    assert ("cinder-volume", deployed.host("node2") + "@file") in up


def test_cli_scenario(deployed):
    scenarios.run_cli_scenario(deployed.url, "file")


def test_sdk_scenario(deployed):
    scenarios.run_sdk_scenario(deployed.url, "file", api="v3")
    scenarios.run_sdk_scenario(deployed.url, "file", api="v2")


def test_snapshot_scenario(deployed):
    """Snapshot, volume from snapshot, clone and cascade delete over RabbitMQ: the volume
    from a snapshot lands on its source's node whatever the weigher prefers."""
    scenarios.run_snapshot_sdk_scenario(deployed.url, api="v3")
    scenarios.run_snapshot_cli_scenario(deployed.url)
    origin = create_and_wait(deployed, 1)[0]
    snap = deployed.request("POST", "/snapshots",
                            {"snapshot": {"volume_id": origin["id"]}}).json()["snapshot"]
    scenarios.wait_for(lambda: deployed.request("GET", "/snapshots/" + snap["id"]).json()[
        "snapshot"]["status"] == "available")
    copies = []
    for source in [{"snapshot_id": snap["id"]}] * 3 + [{"source_volid": origin["id"]}] * 3:
        resp = deployed.request("POST", "/volumes", {"volume": dict(size=1, **source)})
        assert resp.status_code == 202, resp.text
        copies.append(resp.json()["volume"]["id"])
    copies = [wait_status(deployed, v, ("available", "error")) for v in copies]
    assert {v["status"] for v in copies} == {"available"}
    backend = origin["os-vol-host-attr:host"].split("#")[0]
    assert {v["os-vol-host-attr:host"].split("#")[0] for v in copies} == {backend}
    delete_all(deployed, copies)
    assert deployed.request("DELETE", "/volumes/%s?cascade=true"
                            % origin["id"]).status_code == 202
    wait_status(deployed, origin["id"], ("deleted",))


def wait_for_fresh_pool_reports(c):
    """The schedulers learn about deletes of earlier tests from the volume services' next
    reports (every second here); wait for two so the weighers start from the real counts."""
    time.sleep(2.5)


def test_volume_number_weigher_spreads_3_3(deployed):
    wait_for_fresh_pool_reports(deployed)
    volumes = create_and_wait(deployed, 6)
    assert all(v["status"] == "available" for v in volumes), volumes
    hosts = collections.Counter(v["os-vol-host-attr:host"].split("@")[0] for v in volumes)
    assert sorted(hosts.values()) == [3, 3], hosts
    delete_all(deployed, volumes)


def test_capacity_weigher_prefers_most_free(deployed):
    deployed.restart_schedulers({"scheduler_default_weighers": "CapacityWeigher"})
    wait_for_fresh_pool_reports(deployed)
    try:
        volumes = create_and_wait(deployed, 6)
        hosts = collections.Counter(v["os-vol-host-attr:host"].split("@")[0] for v in volumes)
        # node2 reports 2000 GiB against node1's 1000: all six go there
        assert hosts == {deployed.host("node2"): 6}, hosts
        delete_all(deployed, volumes)
    finally:
        deployed.restart_schedulers({"scheduler_default_weighers": "VolumeNumberWeigher"})


def test_files_on_the_chosen_host(deployed):
    volume = create_and_wait(deployed, 1)[0]
    node = volume["os-vol-host-attr:host"].split("@")[0].rsplit("-", 1)[0]
    path = os.path.join(deployed.workdir, node, "volumes", "pool0", "volume-" + volume["id"])
    assert os.path.getsize(path) == 1024 ** 3
    delete_all(deployed, [volume])
    assert not os.path.exists(path)


def test_manage_service_list(deployed):
    import subprocess

    out = subprocess.run([os.path.join(cluster.BIN, "lamina-manage"), "--config-file",
                          os.path.join(deployed.workdir, "api.conf"), "service", "list"],
                         capture_output=True, text=True, check=True).stdout
    assert deployed.host("node1") + "@file" in out and " up " in out


@pytest.fixture
def small_cluster(tmp_path):
    """Two schedulers and two small back ends: room for exactly 100 volumes of 1 GiB."""
    c = cluster.Cluster(tmp_path / "small", db_kind="mysql", schedulers=2,
                        volume_hosts={
                            "node1": {"file_max_capacity_gb": 50,
                                      "max_over_subscription_ratio": 1.0},
                            "node2": {"file_max_capacity_gb": 50,
                                      "max_over_subscription_ratio": 1.0}})
    c.start()
    yield c
    c.stop()


def test_burst_with_two_schedulers_never_overfills(small_cluster):
    c = small_cluster

    def create(_):
        resp = c.request("POST", "/volumes", {"volume": {"size": 1}})
        assert resp.status_code == 202, resp.text
        return resp.json()["volume"]["id"]

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        ids = list(pool.map(create, range(200)))
    final = [wait_status(c, vid, ("available", "error"), timeout=180) for vid in ids]
    statuses = collections.Counter(v["status"] for v in final)
    assert statuses == {"available": 100, "error": 100}, statuses
    pools = c.request("GET", "/scheduler-stats/get_pools?detail=true").json()["pools"]
    for pool in pools:
        assert pool["capabilities"]["allocated_capacity_gb"] == 50, pool


def test_kill9_volume_worker_mid_create(tmp_path):
    """kill -9 a volume service while volumes are being created: after its restart every
    volume is `available` or `error`, none `creating`, and no file is orphaned."""
    c = cluster.Cluster(tmp_path / "kill", db_kind="mysql",
                        volume_hosts={"node1": {}})
    c.start()
    try:
        conf = os.path.join(c.workdir, "node1.conf")
        with open(conf) as f:
            text = f.read()
        # Slow the storage step so the kill lands while creates are in flight.
        with open(conf, "w") as f:
            f.write(text.replace("[database]", "[debug]\ndelay_points = "
                                 "create_volume.create_storage:3\n\n[database]"))
        c.procs["node1"].stop()
        c.restart_volume("node1")
        c.wait_services("lamina-volume", 1)
        ids = [c.request("POST", "/volumes", {"volume": {"size": 1}}).json()["volume"]["id"]
               for _ in range(8)]
        # wait until every volume has been handed to the volume service
        scenarios.wait_for(lambda: all(
            c.request("GET", "/volumes/" + v).json()["volume"]["os-vol-host-attr:host"]
            for v in ids), timeout=30)
        time.sleep(0.5)
        c.procs["node1"].kill9()
        with open(conf, "w") as f:
            f.write(text)
        c.restart_volume("node1")
        final = [wait_status(c, v, ("available", "error"), timeout=60) for v in ids]
        assert all(v["status"] in ("available", "error") for v in final)
        assert any(v["status"] == "error" for v in final), final
        pool_dir = os.path.join(c.workdir, "node1", "volumes", "pool0")
        files = {f[len("volume-"):] for f in os.listdir(pool_dir)}
        available = {v["id"] for v in final if v["status"] == "available"}
        assert files == available
        msgs = c.request("GET", "/messages", version="3.3").json()["messages"]
        assert any("interrupted" in m["user_message"] for m in msgs), msgs
    finally:
        c.stop()
