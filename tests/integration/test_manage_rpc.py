"""lamina-manage against a deployed cluster (tests/integration/cluster.py: api, scheduler and
two volume services, each its own process, on RabbitMQ and MariaDB): its commands reach the
running services over RPC.

node1's extends hold in extend_storage (a [debug] delay point), so an operation is in flight
there for as long as the test needs; kill -9 of node1 then leaves it owned by a dead host,
and `volume cleanup` ends it through node2, a live service of the same back end."""

import os
import re
import subprocess
import time

import pytest

from tests.integration import cluster

MANAGE = os.path.join(cluster.BIN, "lamina-manage")
HOLD_SECONDS = 300  # longer than the test: node1's extend is still running when killed


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    c = cluster.Cluster(tmp_path_factory.mktemp("manage-rpc"), db_kind="mysql", volume_hosts={
        "node1": {"conf_sections": {"debug": {
            "delay_points": "extend_volume.extend_storage:%d" % HOLD_SECONDS}}},
        "node2": {}})
    c.start()
    yield c
    c.stop()


def manage(c, *args, timeout="3"):
    conf = os.path.join(c.workdir, "api.conf")
    return subprocess.run([MANAGE, "--config-file", conf, "--timeout", timeout, *args],
                          capture_output=True, text=True, timeout=180)


def backend(c, name):
    return c.host(name) + "@file"


def create(c, size=1):
    resp = c.request("POST", "/volumes", {"volume": {"size": size}})
    assert resp.status_code == 202, resp.text
    return wait(c, resp.json()["volume"]["id"], ("available", "error"))


def wait(c, volume_id, statuses, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        volume = c.request("GET", "/volumes/" + volume_id).json()["volume"]
        if volume["status"] in statuses or time.monotonic() > deadline:
            return volume
        time.sleep(0.2)


def line_of(output, *words):
    return next((x for x in output.splitlines() if all(w in x for w in words)), "")


def test_service_list_shows_each_services_live_answer(deployed):
    result = manage(deployed, "service", "list")
    assert result.returncode == 0, result
    for name in ("node1", "node2"):
        row = line_of(result.stdout, "lamina-volume", backend(deployed, name))
        pid = deployed.procs[name].popen.pid
        assert "pid %d" % pid in row and "0.1.0" in row and " up " in row, result.stdout
        assert "pool %s#" % backend(deployed, name) in result.stdout
    assert "pid %d" % deployed.procs["scheduler0"].popen.pid in line_of(
        result.stdout, "lamina-scheduler")


def test_disable_sends_the_very_next_create_to_the_other_back_end(deployed):
    c = deployed
    for off, on in (("node1", "node2"), ("node2", "node1")):
        result = manage(c, "service", "disable", backend(c, off), "--reason", "maintenance")
        assert result.returncode == 0 and "schedulers were told" in result.stdout, result
        volume = create(c)
        assert volume["status"] == "available", volume
        assert volume["os-vol-host-attr:host"].startswith(backend(c, on) + "#"), volume
        # the scheduler names the filter that rejects the disabled back end's pool
        explained = manage(c, "scheduler", "explain", "--size", "1")
        row = line_of(explained.stdout, backend(c, off) + "#")
        assert row.split()[1:3] == ["no", "BackendUpFilter"], explained.stdout
        assert "is disabled" in row
        assert "Chosen: %s#" % backend(c, on) in explained.stdout
        assert manage(c, "service", "enable", backend(c, off)).returncode == 0
    explained = manage(c, "scheduler", "explain", volume["id"])
    assert "Chosen: %s (the decision recorded" % volume["os-vol-host-attr:host"] in \
        explained.stdout, explained.stdout


def test_log_set_debug_changes_a_running_services_level(deployed):
    log = deployed.procs["node2"].log
    with open(log) as f:
        before = f.read()
    assert not re.search(r"^\S+ \S+ \d+ DEBUG ", before, re.M)
    result = manage(deployed, "log", "set", "DEBUG", "--host", backend(deployed, "node2"))
    assert result.returncode == 0 and backend(deployed, "node2") in result.stdout, result
    deadline = time.monotonic() + 30
    debug = None
    while debug is None and time.monotonic() < deadline:
        with open(log) as f:
            debug = re.search(r"^\S+ \S+ \d+ DEBUG .*$", f.read()[len(before):], re.M)
        time.sleep(0.2)
    assert debug is not None, "no DEBUG line in node2's log after log set DEBUG"
    result = manage(deployed, "log", "get", "--host", backend(deployed, "node2"),
                    "--prefix", "volume_worker.manager")
    assert re.search(r"volume_worker\.manager\s+DEBUG", result.stdout), result.stdout
    assert manage(deployed, "log", "set", "INFO").returncode == 0


def test_db_purge_on_mariadb_children_first(deployed):
    c = deployed
    resp = c.request("POST", "/volumes", {"volume": {"size": 1, "metadata": {"k": "v"}}})
    volume = wait(c, resp.json()["volume"]["id"], ("available",))
    assert c.request("DELETE", "/volumes/" + volume["id"]).status_code == 202
    deadline = time.monotonic() + 60
    while c.request("GET", "/volumes/" + volume["id"]).status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    result = manage(c, "db", "purge", "--before", "2999-01-01")
    assert result.returncode == 0, result
    counts = {line.split()[0]: int(line.split()[1]) for line in result.stdout.splitlines()
              if "row(s) purged" in line}
    # MariaDB enforces the foreign keys: the metadata rows had to go first
    assert counts["volumes"] >= 1 and counts["volume_metadata"] >= 1, result.stdout


def test_ops_then_kill9_then_cleanup_ends_the_dead_hosts_operation(deployed):
    c = deployed
    node1 = backend(c, "node1")
    manage(c, "service", "disable", backend(c, "node2"))
    volume = create(c)
    manage(c, "service", "enable", backend(c, "node2"))
    assert volume["os-vol-host-attr:host"].startswith(node1), volume
    assert c.request("POST", "/volumes/%s/action" % volume["id"],
                     {"os-extend": {"new_size": 2}}).status_code == 202
    deadline = time.monotonic() + 30
    while True:
        ops = manage(c, "volume", "ops")
        row = line_of(ops.stdout, volume["id"])
        if row.endswith(" yes") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert row.startswith(node1) and "extend" in row and row.endswith(" yes"), ops.stdout
    assert "%s: 1 in flight in the service" % node1 in ops.stdout

    c.procs["node1"].kill9()
    listed = manage(c, "service", "list")
    assert listed.returncode == 1  # one service did not answer
    assert "no answer" in line_of(listed.stdout, node1), listed.stdout
    assert "pid %d" % c.procs["node2"].popen.pid in line_of(listed.stdout, backend(c, "node2"))
    assert wait(c, volume["id"], ("extending",), timeout=1)["status"] == "extending"

    result = manage(c, "volume", "cleanup", node1)
    assert result.returncode == 0, result
    assert "%s takes its operations over" % backend(c, "node2") in result.stdout
    assert "ended the extend of volume %s" % volume["id"] in result.stdout, result.stdout
    ended = c.request("GET", "/volumes/" + volume["id"]).json()["volume"]
    assert ended["status"] == "error_extending", ended  # no longer transitional
    ops = manage(c, "volume", "ops", node1)
    assert volume["id"] not in ops.stdout, ops.stdout

    # the workers cleanup API: node1 is down by heartbeat only after service_down_time;
    # until then it is cleaned by itself, i.e. asked (and silent): either list names it
    answer = c.request("POST", "/workers/cleanup", {"host": node1}, version="3.24")
    assert answer.status_code == 202, answer.text
    named = [s["host"] for s in answer.json()["cleaning"] + answer.json()["unavailable"]]
    assert named == [node1], answer.json()
