"""lamina-manage run as an operator runs it (a subprocess, in a directory of its own): without
a configuration it says which option to set and creates nothing; a SQLite file that does not
exist is named, and only `db sync` makes it."""

import os
import subprocess

import pytest

BIN = os.path.join(os.path.dirname(__file__), "..", "..", ".venv", "bin", "lamina-manage")


def manage(cwd, *args):
    # HOME inside cwd: no ~/.lamina/lamina.conf of the machine's is found
    env = dict(os.environ, HOME=str(cwd))
    return subprocess.run([BIN, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_no_configuration_names_the_option_and_creates_nothing(tmp_path):
    if os.path.exists("/etc/lamina/lamina.conf") or os.path.exists("/etc/lamina.conf"):
        pytest.skip("this machine has a system-wide lamina.conf")
    for command in (["service", "list"], ["pool", "list"], ["db", "sync"],
                    ["quota", "check"]):
        result = manage(tmp_path, *command)
        assert result.returncode == 2, result
        assert "--config-file" in result.stderr and "[database] connection" in result.stderr
        assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == []


def test_a_missing_sqlite_file_is_named_and_db_sync_makes_it(tmp_path):
    database = tmp_path / "lamina.sqlite"
    conf = tmp_path / "lamina.conf"
    conf.write_text("[database]\nconnection = sqlite:///%s\n" % database)
    result = manage(tmp_path, "--config-file", str(conf), "pool", "list")
    assert result.returncode == 2 and str(database) in result.stderr, result
    assert not database.exists()
    result = manage(tmp_path, "--config-file", str(conf), "db", "sync")
    assert result.returncode == 0, result
    result = manage(tmp_path, "--config-file", str(conf), "pool", "list")
    assert result.returncode == 0 and "Pool" in result.stdout, result


# --- against a running lamina-aio (a subprocess): its control socket and SQLite file --------

AIO = os.path.join(os.path.dirname(BIN), "lamina-aio")
# An extend's extend_storage step waits this long, so `volume ops` catches it in flight
# (each lamina-manage run takes a second or more: a Python start).
HOLD_SECONDS = 8


@pytest.fixture(scope="module")
def aio(tmp_path_factory):
    from tests.integration import cluster

    workdir = tmp_path_factory.mktemp("manage-aio")
    data = workdir / "data"
    conf = workdir / "aio.conf"
    conf.write_text("[debug]\ndelay_points = extend_volume.extend_storage:%d\n"
                    % HOLD_SECONDS)
    port = cluster.free_port()
    log = str(workdir / "aio.log")
    proc = cluster.Proc("aio", [AIO, "--config-file", str(conf), "--data-dir", str(data),
                                "--port", str(port)], log).start()
    url = "http://127.0.0.1:%d" % port
    cluster.wait_http(url + "/", proc=proc.popen, log=log)
    proc.url, proc.data, proc.workdir = url, str(data), workdir
    yield proc
    proc.stop()


def aio_manage(aio, *args):
    return manage(aio.workdir, "--aio-dir", aio.data, "--timeout", "5", *args)


def api(aio, method, path, body=None, version="3.0"):
    import requests

    return requests.request(method, "%s/v3/p1%s" % (aio.url, path), json=body, timeout=30,
                            headers={"X-Auth-Token": "admin:p1",
                                     "OpenStack-API-Version": "volume " + version})


def wait_status(aio, volume_id, statuses, timeout=30):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        volume = api(aio, "GET", "/volumes/" + volume_id).json()["volume"]
        if volume["status"] in statuses:
            return volume
        time.sleep(0.2)
    raise AssertionError("volume %s still %s" % (volume_id, volume["status"]))


def test_aio_service_list_shows_each_services_live_answer(aio):
    result = aio_manage(aio, "service", "list")
    assert result.returncode == 0, result
    lines = {line.split()[1]: line for line in result.stdout.splitlines()[1:]
             if line.startswith("lamina-")}
    assert set(lines) == {"aio", "aio@file"}, result.stdout
    for binary in ("lamina-scheduler", "lamina-volume", "lamina-backup"):
        line = next(x for x in result.stdout.splitlines() if x.startswith(binary))
        # answered by the aio process itself: its pid, Lamina's version
        assert "pid %d" % aio.popen.pid in line and "0.1.0" in line, line
    assert "pool aio@file#pool0: up" in result.stdout
    assert oct(os.stat(os.path.join(aio.data, "control.sock")).st_mode & 0o777) == "0o600"


def test_aio_volume_ops_lists_an_operation_in_flight(aio):
    created = api(aio, "POST", "/volumes", {"volume": {"size": 1, "name": "held"}})
    assert created.status_code == 202, created.text
    volume_id = created.json()["volume"]["id"]
    wait_status(aio, volume_id, ("available",))
    extend = api(aio, "POST", "/volumes/%s/action" % volume_id, {"os-extend": {"new_size": 2}})
    assert extend.status_code == 202, extend.text
    import time

    deadline = time.monotonic() + HOLD_SECONDS * 3
    while time.monotonic() < deadline:
        result = aio_manage(aio, "volume", "ops")
        line = next((x for x in result.stdout.splitlines() if volume_id in x), "")
        if line.endswith(" yes"):
            break
        time.sleep(0.2)
    assert line.startswith("aio@file") and "extend" in line and line.endswith(" yes"), \
        result.stdout
    assert "aio@file: 1 in flight in the service" in result.stdout
    assert wait_status(aio, volume_id, ("available",))["size"] == 2
    result = aio_manage(aio, "volume", "ops")
    assert volume_id not in result.stdout and "0 in flight" in result.stdout, result.stdout


def test_aio_disable_refuses_the_next_create_and_enable_takes_it_again(aio):
    result = aio_manage(aio, "service", "disable", "aio@file", "--reason", "maintenance")
    assert result.returncode == 0 and "disabled; the schedulers were told" in result.stdout, \
        result
    services = api(aio, "GET", "/os-services?binary=cinder-volume").json()["services"]
    assert services[0]["status"] == "disabled"
    assert services[0]["disabled_reason"] == "maintenance"
    refused = api(aio, "POST", "/volumes", {"volume": {"size": 1}}).json()["volume"]
    assert wait_status(aio, refused["id"], ("error", "available"))["status"] == "error"
    result = aio_manage(aio, "service", "enable", "aio@file")
    assert result.returncode == 0, result
    placed = api(aio, "POST", "/volumes", {"volume": {"size": 1}}).json()["volume"]
    assert wait_status(aio, placed["id"], ("error", "available"))["status"] == "available"


def test_aio_pool_refresh_log_levels_and_cleanup(aio):
    result = aio_manage(aio, "pool", "refresh")
    assert result.returncode == 0 and "aio@file: reported 1 pool(s)" in result.stdout, result
    result = aio_manage(aio, "log", "set", "debug", "--service", "lamina-volume",
                        "--prefix", "volume_worker")
    assert result.returncode == 0 and "aio@file" in result.stdout, result
    result = aio_manage(aio, "log", "get", "--host", "aio@file", "--prefix",
                        "volume_worker.manager")
    assert "volume_worker.manager" in result.stdout and "DEBUG" in result.stdout, result
    # the host answers: it ends its own lost operations (none here)
    result = aio_manage(aio, "volume", "cleanup", "aio@file")
    assert result.returncode == 0 and "aio@file answers" in result.stdout, result
    assert "0 operation(s) ended; 0 still owned" in result.stdout


def test_aio_scheduler_explain(aio):
    from scheduler import rpcapi as scheduler_rpcapi

    result = aio_manage(aio, "scheduler", "explain", "--size", "100000")
    if not hasattr(scheduler_rpcapi.SchedulerAPI, "explain"):
        assert result.returncode == 1 and "no explain method" in result.stderr, result
        return
    assert result.returncode == 0, result
    row = next(x for x in result.stdout.splitlines() if x.startswith("aio@file#pool0"))
    assert row.split()[1] == "no", result.stdout  # rejected, by a named filter
    assert "Chosen: none" in result.stdout


def test_api_log_levels_at_3_32(aio):
    body = {"level": "DEBUG", "binary": "*", "prefix": "volume_worker.drivers"}
    assert api(aio, "PUT", "/os-services/set-log", body, "3.31").status_code == 400
    assert api(aio, "PUT", "/os-services/set-log", body, "3.32").status_code == 202
    bad = api(aio, "PUT", "/os-services/set-log", dict(body, level="LOUD"), "3.32")
    assert bad.status_code == 400
    got = api(aio, "PUT", "/os-services/get-log", {"prefix": "volume_worker.drivers"},
              "3.32")
    assert got.status_code == 200, got.text
    by_binary = {(e["binary"], e["host"]): e["levels"] for e in got.json()["log_levels"]}
    assert ("cinder-api", "aio") in by_binary and ("cinder-volume", "aio@file") in by_binary
    for levels in by_binary.values():
        assert levels["volume_worker.drivers.file"] == "DEBUG", by_binary
    api(aio, "PUT", "/os-services/set-log", dict(body, level="INFO"), "3.32")
    only_api = api(aio, "PUT", "/os-services/get-log", {"binary": "cinder-api",
                                                         "prefix": "api.routes"}, "3.32")
    assert [e["binary"] for e in only_api.json()["log_levels"]] == ["cinder-api"]


def test_api_workers_cleanup_at_3_24(aio):
    assert api(aio, "POST", "/workers/cleanup", {}, "3.23").status_code == 404
    answer = api(aio, "POST", "/workers/cleanup", {"host": "aio@file"}, "3.24")
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert [s["host"] for s in body["cleaning"]] == ["aio@file"] and body["unavailable"] == []
    assert api(aio, "POST", "/workers/cleanup", {"binary": "cinder-scheduler"},
               "3.24").status_code == 400


def test_aio_db_purge(aio):
    created = api(aio, "POST", "/volumes", {"volume": {"size": 1, "metadata": {"k": "v"}}})
    volume_id = created.json()["volume"]["id"]
    wait_status(aio, volume_id, ("available",))
    assert api(aio, "DELETE", "/volumes/" + volume_id).status_code == 202
    import time

    deadline = time.monotonic() + 30
    while api(aio, "GET", "/volumes/" + volume_id).status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    result = aio_manage(aio, "db", "purge", "--before", "not-a-date")
    assert result.returncode == 2 and "--before" in result.stderr
    result = aio_manage(aio, "db", "purge", "--before", "2999-01-01")
    counts = {line.split()[0]: int(line.split()[1]) for line in result.stdout.splitlines()
              if "row(s) purged" in line}
    # the deleted volumes (this one and the refused one of the disable test) and their
    # metadata, children first
    assert counts["volumes"] >= 1 and counts["volume_metadata"] >= 1, result.stdout
    lines = result.stdout.splitlines()
    assert lines.index(next(x for x in lines if x.startswith("volume_metadata "))) < \
        lines.index(next(x for x in lines if x.startswith("volumes ")))


def test_aio_stopped_is_named_not_a_traceback(aio):
    aio.stop()
    result = aio_manage(aio, "service", "list")
    assert result.returncode == 1, result
    assert "no answer (no lamina-aio answers on %s" % os.path.join(aio.data, "control.sock") \
        in result.stdout and "Traceback" not in result.stderr, result


def test_rpc_command_without_transport_names_the_option(tmp_path):
    database = tmp_path / "lamina.sqlite"
    conf = tmp_path / "lamina.conf"
    conf.write_text("[database]\nconnection = sqlite:///%s\n" % database)
    assert manage(tmp_path, "--config-file", str(conf), "db", "sync").returncode == 0
    result = manage(tmp_path, "--config-file", str(conf), "service", "list")
    assert result.returncode == 2 and "[DEFAULT] transport_url" in result.stderr, result
    assert "--aio-dir" in result.stderr
