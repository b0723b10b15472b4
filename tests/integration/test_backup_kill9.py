"""kill -9 of a real lamina-backup process in the middle of a backup (deployed: lamina-api,
lamina-scheduler, lamina-volume and lamina-backup on RabbitMQ and MariaDB). After the backup
service starts again nothing is stuck: the backup is `error` with the reason, the volume back
to `available`, no workers row, no manifest of it in the repository, and `lamina-manage quota
check` finds no drift. A new backup of the volume then completes and restores."""

import hashlib
import os
import random
import subprocess

import pytest

from tests.integration import cluster, scenarios

pytestmark = pytest.mark.integration
MiB = 1024 * 1024


def backup_of(c, backup_id):
    resp = c.request("GET", "/backups/" + backup_id)
    assert resp.status_code == 200, resp.text
    return resp.json()["backup"]


def test_kill9_backup_service_mid_backup(tmp_path):
    c = cluster.Cluster(tmp_path / "kill-backup", db_kind="mysql", volume_hosts={"node1": {}},
                        backups=True)
    c.start()
    try:
        volume = c.request("POST", "/volumes", {"volume": {"size": 1}}).json()["volume"]
        scenarios.wait_for(lambda: c.request("GET", "/volumes/" + volume["id"])
                           .json()["volume"]["status"] == "available", timeout=60)
        path = os.path.join(c.workdir, "node1", "volumes", "pool0", "volume-" + volume["id"])
        rng = random.Random(9)
        with open(path, "r+b") as f:
            for region in range(16):
                f.seek(region * 64 * MiB)
                f.write(rng.randbytes(4 * MiB))
        with open(path, "rb") as f:
            expected = hashlib.sha256(f.read()).hexdigest()

        # a slow backup service: each progress report (every chunk) waits a second
        conf = os.path.join(c.workdir, "node1-backup.conf")
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text.replace("[backup]", "[debug]\ndelay_points = create_backup.progress:1"
                                 "\n\n[backup]\nbackup_progress_chunks = 1\n"))
        c.procs["node1-backup"].stop()
        c.procs["node1-backup"] = c._proc("node1-backup", "lamina-backup", conf).start()
        c.wait_services("lamina-backup", 1)

        resp = c.request("POST", "/backups", {"backup": {"volume_id": volume["id"]}})
        assert resp.status_code == 202, resp.text
        backup_id = resp.json()["backup"]["id"]
        # in flight: chunks are being stored and the progress reported
        scenarios.wait_for(lambda: (backup_of(c, backup_id).get("status") == "creating" and
                                    c.request("GET", "/volumes/" + volume["id"]).json()
                                    ["volume"]["status"] == "backing-up" and
                                    os.path.isdir(os.path.join(c.workdir, "node1-backup",
                                                               "repository", "chunks"))),
                           timeout=60)
        c.procs["node1-backup"].kill9()
        c.start_backup("node1")  # a fresh config: no delay
        c.wait_services("lamina-backup", 1)

        done = scenarios.wait_for(lambda: (lambda b: b if b["status"] != "creating" else None)(
            backup_of(c, backup_id)), timeout=60)
        assert done["status"] == "error", done
        assert "stopped during the backup" in done["fail_reason"]
        vol = c.request("GET", "/volumes/" + volume["id"]).json()["volume"]
        assert vol["status"] == "available"
        manifests = os.path.join(c.workdir, "node1-backup", "repository", "manifests")
        assert not os.path.exists(os.path.join(manifests, backup_id + ".json"))
        check = subprocess.run([os.path.join(cluster.BIN, "lamina-manage"), "--config-file",
                                os.path.join(c.workdir, "api.conf"), "quota", "check"],
                               capture_output=True, text=True, timeout=120)
        assert check.returncode == 0 and "no drift" in check.stdout, check.stdout + check.stderr

        # the service works on: a new backup completes and restores the same data
        resp = c.request("POST", "/backups", {"backup": {"volume_id": volume["id"]}})
        assert resp.status_code == 202, resp.text
        again = resp.json()["backup"]["id"]
        scenarios.wait_for(lambda: backup_of(c, again)["status"] == "available", timeout=120)
        restore = c.request("POST", "/backups/%s/restore" % again, {"restore": {}}).json()
        target = restore["restore"]["volume_id"]
        scenarios.wait_for(lambda: c.request("GET", "/volumes/" + target)
                           .json()["volume"]["status"] == "available", timeout=120)
        copy = os.path.join(c.workdir, "node1", "volumes", "pool0", "volume-" + target)
        with open(copy, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == expected
    finally:
        c.stop()
