"""Backups end to end through the real API in the in-process stack: the backup service's flows
(backup_worker/flows), its queue, its start-up cleanup, over the file driver's volumes and a
posix repository under the stack's directory. Data is compared by sha256 of the volume files.
"""

import base64
import hashlib
import json
import logging
import os
import random
import time
import uuid

import pytest

from common import quota
from common.db import api as db
from common.db import models
from common.db.session import reader, writer

MiB = 1024 * 1024
GiB = 1024 * MiB


# --- helpers ---------------------------------------------------------------------------------

def volume_path(stack, volume_id):
    return os.path.join(stack.workdir, "file", "pool0", "volume-" + volume_id)


def write_pattern(path, seed, regions, size=4 * MiB):
    """Write seeded random bytes at each offset of `regions`."""
    rng = random.Random(seed)
    with open(path, "r+b") as f:
        for offset in regions:
            f.seek(offset)
            f.write(rng.randbytes(size))


def sha256_of(path, length=None):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        left = length if length is not None else os.fstat(f.fileno()).st_size
        while left > 0:
            piece = f.read(min(8 * MiB, left))
            if not piece:
                break
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def repo(stack):
    return os.path.join(stack.workdir, "backups")


def chunk_files(stack):
    found = []
    for root, _dirs, files in os.walk(os.path.join(repo(stack), "chunks")):
        found += [os.path.join(root, f) for f in files if not f.startswith(".tmp-")]
    return found


def manifests(stack):
    return sorted(f[:-5] for f in os.listdir(os.path.join(repo(stack), "manifests"))
                  if f.endswith(".json"))


def ref_counts(stack):
    from backup_worker.chunkstore import posix

    store = posix.PosixChunkStore(repo(stack))
    try:
        return dict(store._db.execute("SELECT digest, count FROM refs").fetchall())
    finally:
        store.close()


def volume_with_data(stack, size=1, seed=1, regions=None):
    volume = stack.create_volume(size=size)
    stack.wait_volume(volume["id"], ("available",))
    write_pattern(volume_path(stack, volume["id"]), seed,
                  regions if regions is not None else [0, 64 * MiB, 300 * MiB, 700 * MiB])
    return volume


def create_backup(stack, volume_id, status=202, version=None, **fields):
    resp = stack.request("POST", "/backups", {"backup": dict(volume_id=volume_id, **fields)},
                         version=version)
    assert resp.status_code == status, resp.text
    return resp.json()["backup"] if status == 202 else resp.json()


def get_backup(stack, backup_id):
    resp = stack.request("GET", "/backups/" + backup_id, version=None)
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    return resp.json()["backup"]


def wait_backup(stack, backup_id, statuses, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        backup = get_backup(stack, backup_id)
        status = "deleted" if backup is None else backup["status"]
        if status in statuses:
            return backup or {"status": "deleted"}
        if time.monotonic() > deadline:
            raise AssertionError("backup %s is %s, not %s after %ss"
                                 % (backup_id, status, statuses, timeout))
        time.sleep(0.05)


def backed_up(stack, volume_id, **fields):
    backup = create_backup(stack, volume_id, **fields)
    done = wait_backup(stack, backup["id"], ("available", "error"))
    assert done["status"] == "available", (done, messages_for(stack, backup["id"]))
    return done


def restore(stack, backup_id, volume_id=None, status=202):
    body = {"restore": {"volume_id": volume_id} if volume_id else {}}
    resp = stack.request("POST", "/backups/%s/restore" % backup_id, body)
    assert resp.status_code == status, resp.text
    return resp.json()["restore"] if status == 202 else resp.json()


def restored(stack, backup_id, volume_id=None):
    answer = restore(stack, backup_id, volume_id)
    volume = stack.wait_volume(answer["volume_id"], ("available", "error", "error_restoring"),
                               timeout=60)
    assert volume["status"] == "available", messages_for(stack, answer["volume_id"])
    wait_backup(stack, backup_id, ("available",))
    return volume


def messages_for(stack, resource_id):
    resp = stack.request("GET", "/messages?resource_uuid=" + resource_id, version="3.3")
    assert resp.status_code == 200
    return resp.json()["messages"]


def delete_backup(stack, backup_id, status=202):
    resp = stack.request("DELETE", "/backups/" + backup_id)
    assert resp.status_code == status, resp.text
    return resp


def settled(stack):
    """Nothing stuck, quotas exact."""
    assert db.worker_get_all() == []
    assert quota.check() == []


# --- backup, incremental, restore ------------------------------------------------------------

def test_full_then_incremental_restore_each(stack):
    volume = volume_with_data(stack)
    path = volume_path(stack, volume["id"])
    first_sha = sha256_of(path)

    full = backed_up(stack, volume["id"], name="full")
    assert stack.wait_volume(volume["id"], ("available",))["status"] == "available"
    with reader() as s:
        row = s.get(models.Backup, full["id"])
        assert row.progress == 100 and row.service == "posix" and row.object_count == 4
    chunks_after_full = len(chunk_files(stack))
    assert chunks_after_full == 4  # holes are not stored

    # change 1% (10 MiB of 1 GiB, in three places: 2-5.3 MiB rewrites chunk 0 and fills the
    # hole of chunk 1; the other two fill one hole chunk each)
    write_pattern(path, 2, [2 * MiB, 500 * MiB, 900 * MiB], size=10 * MiB // 3)
    second_sha = sha256_of(path)
    assert second_sha != first_sha
    incremental = backed_up(stack, volume["id"], incremental=True)
    assert incremental["is_incremental"] is True
    with reader() as s:
        assert s.get(models.Backup, incremental["id"]).parent_id == full["id"]
        assert s.get(models.Backup, full["id"]).num_dependent_backups == 1
    # only the changed chunks are new
    assert len(chunk_files(stack)) - chunks_after_full == 4

    one = restored(stack, full["id"])
    two = restored(stack, incremental["id"])
    assert sha256_of(volume_path(stack, one["id"])) == first_sha
    assert sha256_of(volume_path(stack, two["id"])) == second_sha
    assert one["name"] == "restore_backup_%s" % full["id"]
    settled(stack)


def test_force_backup_of_an_in_use_volume(stack):
    volume = volume_with_data(stack)
    path = volume_path(stack, volume["id"])
    sha = sha256_of(path)
    action = "/volumes/%s/action" % volume["id"]
    assert stack.request("POST", action, {"os-reserve": {}}).status_code == 202
    assert stack.request("POST", action, {"os-attach": {
        "instance_uuid": "0b7b5e1b-3a54-4b4a-9d47-2a4c1f5f3f1a",
        "mountpoint": "/dev/vdb"}}).status_code == 202
    assert stack.wait_volume(volume["id"], ("in-use",))["status"] == "in-use"
    create_backup(stack, volume["id"], status=400)
    backup = backed_up(stack, volume["id"], force=True)
    assert stack.wait_volume(volume["id"], ("in-use",))["status"] == "in-use"
    copy = restored(stack, backup["id"])
    assert sha256_of(volume_path(stack, copy["id"])) == sha
    # the temporary copy the volume service made is gone
    assert not [f for f in os.listdir(os.path.dirname(path)) if f.startswith(".backup-")]
    settled(stack)


def test_backup_of_a_snapshot(stack):
    volume = volume_with_data(stack)
    path = volume_path(stack, volume["id"])
    at_snapshot = sha256_of(path)
    snapshot = stack.create_snapshot(volume["id"])
    stack.wait_snapshot(snapshot["id"], ("available",))
    write_pattern(path, 9, [0, 200 * MiB])  # the volume moves on
    backup = backed_up(stack, volume["id"], snapshot_id=snapshot["id"])
    assert backup["snapshot_id"] == snapshot["id"]
    assert stack.wait_snapshot(snapshot["id"], ("available",))["status"] == "available"
    copy = restored(stack, backup["id"])
    assert sha256_of(volume_path(stack, copy["id"])) == at_snapshot
    settled(stack)


def test_restore_onto_existing_volumes(stack):
    volume = volume_with_data(stack)
    sha = sha256_of(volume_path(stack, volume["id"]))
    backup = backed_up(stack, volume["id"])

    # named: an unnamed target's restore answer has volume_name null, which Tempest's schema
    # refuses (reported to the API side)
    equal = stack.create_volume(size=1, name="equal")
    stack.wait_volume(equal["id"], ("available",))
    write_pattern(volume_path(stack, equal["id"]), 5, [100 * MiB, 1000 * MiB])  # old data
    restored(stack, backup["id"], equal["id"])
    assert sha256_of(volume_path(stack, equal["id"])) == sha

    larger = stack.create_volume(size=2, name="larger")
    stack.wait_volume(larger["id"], ("available",))
    write_pattern(volume_path(stack, larger["id"]), 6, [1500 * MiB])  # in the tail
    restored(stack, backup["id"], larger["id"])
    larger_path = volume_path(stack, larger["id"])
    assert sha256_of(larger_path, GiB) == sha
    with open(larger_path, "rb") as f:
        f.seek(1500 * MiB)
        assert f.read(4 * MiB) == bytes(4 * MiB)  # the tail reads as zeros

    big = volume_with_data(stack, size=2, seed=3, regions=[0])
    big_backup = backed_up(stack, big["id"])
    small = stack.create_volume(size=1, name="small")
    stack.wait_volume(small["id"], ("available",))
    restore(stack, big_backup["id"], small["id"], status=400)
    assert stack.wait_volume(small["id"], ("available",))["status"] == "available"
    settled(stack)


# --- chains, pruning -------------------------------------------------------------------------

def test_chain_rule_then_allowed_order(stack):
    volume = volume_with_data(stack)
    full = backed_up(stack, volume["id"])
    incremental = backed_up(stack, volume["id"], incremental=True)
    resp = delete_backup(stack, full["id"], status=400)
    assert "Incremental backups exist for this backup." in resp.text
    delete_backup(stack, incremental["id"])
    wait_backup(stack, incremental["id"], ("deleted",))
    delete_backup(stack, full["id"])
    wait_backup(stack, full["id"], ("deleted",))
    assert manifests(stack) == [] and chunk_files(stack) == [] and ref_counts(stack) == {}
    settled(stack)


def test_pruning_deletes_the_full_and_incrementals_still_restore(stack):
    stack.override("backup_pruning", True, group="backup")
    volume = volume_with_data(stack)
    path = volume_path(stack, volume["id"])
    full = backed_up(stack, volume["id"])
    write_pattern(path, 4, [64 * MiB])
    first = backed_up(stack, volume["id"], incremental=True)
    sha_first = sha256_of(path)
    write_pattern(path, 5, [700 * MiB])
    second = backed_up(stack, volume["id"], incremental=True)
    sha_second = sha256_of(path)

    delete_backup(stack, full["id"])
    wait_backup(stack, full["id"], ("deleted",))
    with reader() as s:
        assert s.get(models.Backup, first["id"]).parent_id is None
        assert s.get(models.Backup, second["id"]).parent_id == first["id"]
    assert sha256_of(volume_path(stack, restored(stack, first["id"])["id"])) == sha_first
    delete_backup(stack, first["id"])
    wait_backup(stack, first["id"], ("deleted",))
    with reader() as s:
        assert s.get(models.Backup, second["id"]).parent_id is None
    assert sha256_of(volume_path(stack, restored(stack, second["id"])["id"])) == sha_second
    settled(stack)


# --- corruption ------------------------------------------------------------------------------

def test_corrupt_chunk_fails_the_restore_and_names_it(stack):
    volume = volume_with_data(stack, regions=[0])
    backup = backed_up(stack, volume["id"])
    [chunk] = chunk_files(stack)
    with open(chunk, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    answer = restore(stack, backup["id"])
    target = stack.wait_volume(answer["volume_id"], ("error", "available"), timeout=60)
    assert target["status"] == "error"
    assert wait_backup(stack, backup["id"], ("available",))["status"] == "available"
    digest = os.path.basename(chunk)
    for resource in (answer["volume_id"], backup["id"]):
        text = " ".join(m["user_message"] for m in messages_for(stack, resource))
        assert digest in text, text
    settled(stack)


# --- export and import -----------------------------------------------------------------------

def _export(stack, backup_id):
    resp = stack.request("GET", "/backups/%s/export_record" % backup_id)
    assert resp.status_code == 200, resp.text
    return resp.json()["backup-record"]


def _import(stack, record, status=201):
    resp = stack.request("POST", "/backups/import_record", {"backup-record": record})
    assert resp.status_code == status, resp.text
    return resp.json()["backup"]


def test_export_lose_the_record_import_restore(stack):
    """The database loses the backup's row (the repository keeps its manifest): the exported
    record brings it back, and it restores the same data."""
    volume = volume_with_data(stack)
    sha = sha256_of(volume_path(stack, volume["id"]))
    backup = backed_up(stack, volume["id"])
    record = _export(stack, backup["id"])
    assert "posix" in record["backup_service"]  # the repository kind, in Cinder's words
    with writer() as s:
        row = s.get(models.Backup, backup["id"])
        quota.release_backup(row.project_id, row.size, session=s)
        s.delete(row)
    assert get_backup(stack, backup["id"]) is None
    imported = _import(stack, record)
    assert imported["id"] == backup["id"]
    assert wait_backup(stack, backup["id"], ("available", "error"))["status"] == "available"
    copy = restored(stack, backup["id"])
    assert sha256_of(volume_path(stack, copy["id"])) == sha
    settled(stack)


def test_import_of_a_deleted_backup_is_an_error(stack):
    volume = volume_with_data(stack)
    backup = backed_up(stack, volume["id"])
    record = _export(stack, backup["id"])
    delete_backup(stack, backup["id"])
    wait_backup(stack, backup["id"], ("deleted",))
    _import(stack, record)
    done = wait_backup(stack, backup["id"], ("available", "error"))
    assert done["status"] == "error"
    assert "manifest" in done["fail_reason"].lower()
    delete_backup(stack, backup["id"])
    wait_backup(stack, backup["id"], ("deleted",))
    settled(stack)


def _with_new_id(record):
    fields = json.loads(base64.b64decode(record["backup_url"]))
    fields["id"] = str(uuid.uuid4())
    return dict(record, backup_url=base64.b64encode(json.dumps(fields).encode()).decode()), \
        fields["id"]


def test_import_under_a_new_id_is_a_backup_of_its_own(stack):
    """Tempest's export/import test imports the record under a new id while the original
    stays: each then holds the data, and deleting either never breaks the other."""
    volume = volume_with_data(stack)
    sha = sha256_of(volume_path(stack, volume["id"]))
    backup = backed_up(stack, volume["id"])
    record, new_id = _with_new_id(_export(stack, backup["id"]))
    assert _import(stack, record)["id"] == new_id
    assert wait_backup(stack, new_id, ("available", "error"))["status"] == "available"
    assert manifests(stack) == sorted([backup["id"], new_id])
    held = ref_counts(stack)
    assert held and all(count % 2 == 0 for count in held.values())  # both reference each
    delete_backup(stack, backup["id"])
    wait_backup(stack, backup["id"], ("deleted",))
    copy = restored(stack, new_id)
    assert sha256_of(volume_path(stack, copy["id"])) == sha
    delete_backup(stack, new_id)
    wait_backup(stack, new_id, ("deleted",))
    assert manifests(stack) == [] and chunk_files(stack) == []
    settled(stack)


@pytest.mark.parametrize("step", ["take_data", "take_data.copied"])
def test_import_under_a_new_id_failing_takes_nothing(make_stack, step):
    stack = make_stack()
    volume = volume_with_data(stack, regions=[0])
    backup = backed_up(stack, volume["id"])
    before = ref_counts(stack)
    record, new_id = _with_new_id(_export(stack, backup["id"]))
    stack.override("fail_points", ["import_record." + step], group="debug")
    _import(stack, record)
    done = wait_backup(stack, new_id, ("available", "error"))
    assert done["status"] == "error" and "import_record." + step in done["fail_reason"]
    assert manifests(stack) == [backup["id"]] and ref_counts(stack) == before
    settled(stack)


def test_a_restore_brings_back_the_volume_metadata_and_bootable(stack):
    volume = stack.create_volume(size=1, metadata={"origin": "backed-up", "tier": "gold"})
    stack.wait_volume(volume["id"], ("available",))
    resp = stack.request("POST", "/volumes/%s/action" % volume["id"],
                         {"os-set_bootable": {"bootable": True}})
    assert resp.status_code == 200, resp.text
    backup = backed_up(stack, volume["id"])
    copy = restored(stack, backup["id"])
    assert copy["metadata"] == {"origin": "backed-up", "tier": "gold"}
    assert copy["bootable"] == "true"
    # onto an existing volume: its own keys stay, the backed-up ones win
    target = stack.create_volume(size=1, name="target", metadata={"tier": "bronze", "own": "1"})
    stack.wait_volume(target["id"], ("available",))
    onto = restored(stack, backup["id"], target["id"])
    assert onto["metadata"] == {"origin": "backed-up", "tier": "gold", "own": "1"}
    settled(stack)


# --- the queue, force delete -----------------------------------------------------------------

def test_backups_beyond_the_limit_wait_queued(make_stack, caplog):
    caplog.set_level(logging.INFO, logger="backup_worker.manager")
    stack = make_stack(overrides={"backup.backup_max_concurrent": 1,
                                  "debug.delay_points": ["create_backup.store_data:1"]})
    volumes = [volume_with_data(stack, seed=i, regions=[0]) for i in range(3)]
    backups = [create_backup(stack, v["id"]) for v in volumes]
    time.sleep(0.5)
    now = [get_backup(stack, b["id"]) for b in backups]
    assert all(b["status"] == "creating" for b in now)
    with reader() as s:
        assert all(s.get(models.Backup, b["id"]).progress in (None, 0) for b in backups[1:])
    for b in backups:
        assert wait_backup(stack, b["id"], ("available", "error"))["status"] == "available"
    waits = [r.getMessage() for r in caplog.records if " waits: " in r.getMessage()]
    assert [b["id"] for b in backups[1:]] == [m.split()[3] for m in waits]
    settled(stack)


def test_force_delete_of_a_creating_backup_stops_it(make_stack):
    stack = make_stack(overrides={"backup.backup_progress_chunks": 1,
                                  "debug.delay_points": ["create_backup.progress:0.3"]})
    volume = volume_with_data(stack, regions=[i * 16 * MiB for i in range(12)])
    backup = create_backup(stack, volume["id"])
    deadline = time.monotonic() + 30
    while (get_backup(stack, backup["id"]) or {}).get("status") == "creating":
        with reader() as s:
            if (s.get(models.Backup, backup["id"]).progress or 0) > 0:
                break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    resp = stack.request("POST", "/backups/%s/action" % backup["id"], {"os-force_delete": {}})
    assert resp.status_code == 202, resp.text
    wait_backup(stack, backup["id"], ("deleted",))
    assert stack.wait_volume(volume["id"], ("available",))["status"] == "available"
    assert manifests(stack) == [] and chunk_files(stack) == [] and ref_counts(stack) == {}
    settled(stack)


# --- a crash mid-backup ----------------------------------------------------------------------

def test_backup_service_stopped_mid_backup(make_stack):
    """The backup service goes away while a backup runs; the next one to start on the host
    ends it: backup `error` with the reason, no manifest, no chunk nor count left, the volume
    back to available, nothing stuck, quotas exact."""
    from backup_worker import service as backup_service
    from common import service as common_service

    stack = make_stack(overrides={"backup.backup_progress_chunks": 1,
                                  "debug.delay_points": ["create_backup.progress:4"]})
    volume = volume_with_data(stack, regions=[i * 16 * MiB for i in range(8)])
    backup = create_backup(stack, volume["id"])
    deadline = time.monotonic() + 30
    while not chunk_files(stack):  # the engine has taken references and stored chunks
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert ref_counts(stack)  # references taken, no manifest names them
    old = next(s for s in stack.services if s.binary == common_service.BACKUP_BINARY)
    # the process "dies": no more messages; its flow thread sleeps in a progress report
    # (4 s) and is killed below, after the new service's cleanup has been checked
    old._server.stop()
    for task in old._tasks:
        task.stop()
    new = backup_service.build_service()
    new.start()  # init_host: the cleanup and the repository recount
    stack.services[stack.services.index(old)] = new
    try:
        done = get_backup(stack, backup["id"])
        assert done["status"] == "error"
        assert done["fail_reason"] == "the backup service stopped during the backup"
        assert stack.wait_volume(volume["id"], ("available",))["status"] == "available"
        assert manifests(stack) == [] and chunk_files(stack) == []
        assert ref_counts(stack) == {}
        settled(stack)
    finally:
        # the dead flow's thread ends at its next report, as if it had died with its process
        stack.override("fail_points", ["create_backup.progress"], group="debug")
        old.manager.shutdown()
    assert get_backup(stack, backup["id"])["status"] == "error"
    assert manifests(stack) == [] and chunk_files(stack) == [] and ref_counts(stack) == {}
    settled(stack)
    # the errored backup deletes cleanly
    delete_backup(stack, backup["id"])
    wait_backup(stack, backup["id"], ("deleted",))
    settled(stack)


# --- a failure at each task ------------------------------------------------------------------

CREATE_STEPS = ["check_still_creating", "prepare_source", "store_data", "store_data.stored",
                "release_source", "mark_available", "progress"]


@pytest.mark.parametrize("step", CREATE_STEPS)
def test_create_failure_at_each_task(make_stack, step):
    stack = make_stack(overrides={"debug.fail_points": ["create_backup." + step]})
    volume = volume_with_data(stack, regions=[0, 64 * MiB])
    backup = create_backup(stack, volume["id"])
    done = wait_backup(stack, backup["id"], ("available", "error"))
    assert done["status"] == "error"
    assert "create_backup." + step in done["fail_reason"]
    msgs = messages_for(stack, backup["id"])
    assert len(msgs) == 1 and "create_backup." + step in msgs[0]["user_message"]
    assert stack.wait_volume(volume["id"], ("available",))["status"] == "available"
    assert manifests(stack) == [] and chunk_files(stack) == [] and ref_counts(stack) == {}
    assert not [f for f in os.listdir(os.path.dirname(volume_path(stack, volume["id"])))
                if f.startswith(".backup-")]
    settled(stack)
    stack.override("fail_points", [], group="debug")
    delete_backup(stack, backup["id"])
    wait_backup(stack, backup["id"], ("deleted",))
    settled(stack)


RESTORE_STEPS = ["check_restoring", "prepare_target", "restore_data", "mark_restored",
                 "progress"]


@pytest.mark.parametrize("step", RESTORE_STEPS)
def test_restore_failure_at_each_task(make_stack, step):
    stack = make_stack()
    volume = volume_with_data(stack, regions=[0])
    backup = backed_up(stack, volume["id"])
    target = stack.create_volume(size=1, name="target")
    stack.wait_volume(target["id"], ("available",))
    stack.override("fail_points", ["restore_backup." + step], group="debug")
    restore(stack, backup["id"], target["id"])
    done = stack.wait_volume(target["id"], ("error_restoring", "available"), timeout=60)
    assert done["status"] == "error_restoring"
    assert wait_backup(stack, backup["id"], ("available",))["status"] == "available"
    assert "restore_backup." + step in messages_for(stack, target["id"])[0]["user_message"]
    settled(stack)
    # a restore made for a new volume leaves that volume `error`
    answer = restore(stack, backup["id"])
    assert stack.wait_volume(answer["volume_id"], ("error", "available"),
                             timeout=60)["status"] == "error"
    assert wait_backup(stack, backup["id"], ("available",))["status"] == "available"
    settled(stack)


DELETE_STEPS = ["check_deleting", "delete_data", "drop_source_snapshot", "mark_deleted"]


@pytest.mark.parametrize("step", DELETE_STEPS)
def test_delete_failure_at_each_task(make_stack, step):
    stack = make_stack()
    volume = volume_with_data(stack, regions=[0])
    backup = backed_up(stack, volume["id"])
    stack.override("fail_points", ["delete_backup." + step], group="debug")
    delete_backup(stack, backup["id"])
    done = wait_backup(stack, backup["id"], ("error_deleting", "deleted"))
    assert done["status"] == "error_deleting"
    assert "delete_backup." + step in messages_for(stack, backup["id"])[0]["user_message"]
    settled(stack)  # the backup still counts: its row lives
    # the data goes only with the delete_data step done
    assert (manifests(stack) == []) == (step in ("drop_source_snapshot", "mark_deleted"))
    # once the failure is gone, a force delete finishes it and nothing is left
    stack.override("fail_points", [], group="debug")
    resp = stack.request("POST", "/backups/%s/action" % backup["id"], {"os-force_delete": {}})
    assert resp.status_code == 202, resp.text
    wait_backup(stack, backup["id"], ("deleted",))
    assert manifests(stack) == [] and chunk_files(stack) == [] and ref_counts(stack) == {}
    settled(stack)


IMPORT_STEPS = ["check_importing", "check_repository", "take_data", "mark_available"]


@pytest.mark.parametrize("step", IMPORT_STEPS)
def test_import_failure_at_each_task(make_stack, step):
    stack = make_stack()
    volume = volume_with_data(stack, regions=[0])
    backup = backed_up(stack, volume["id"])
    record = _export(stack, backup["id"])
    with writer() as s:
        row = s.get(models.Backup, backup["id"])
        quota.release_backup(row.project_id, row.size, session=s)
        s.delete(row)
    stack.override("fail_points", ["import_record." + step], group="debug")
    _import(stack, record)
    done = wait_backup(stack, backup["id"], ("available", "error"))
    assert done["status"] == "error"
    assert "import_record." + step in done["fail_reason"]
    settled(stack)
    assert manifests(stack) == [backup["id"]]  # an import never removes data


@pytest.mark.parametrize("flow,step", [("create_backup", "mark_available"),
                                       ("restore_backup", "restore_data"),
                                       ("delete_backup", "delete_data")])
def test_failure_whose_rollback_fails_still_ends(make_stack, flow, step):
    """The step fails and so does the revert that would end the operation: the backup
    service still ends it (status, source or target, workers row, message)."""
    first = {"create_backup": "check_still_creating", "restore_backup": "check_restoring",
             "delete_backup": "check_deleting"}[flow]
    points = ["%s.%s" % (flow, step), "%s.%s.revert" % (flow, first)]
    stack = make_stack()
    volume = volume_with_data(stack, regions=[0])
    backup = None if flow == "create_backup" else backed_up(stack, volume["id"])
    stack.override("fail_points", points, group="debug")
    if flow == "create_backup":
        backup = create_backup(stack, volume["id"])
        assert wait_backup(stack, backup["id"], ("error", "available"))["status"] == "error"
        assert stack.wait_volume(volume["id"], ("available",))["status"] == "available"
        assert manifests(stack) == [] and chunk_files(stack) == []
    elif flow == "restore_backup":
        answer = restore(stack, backup["id"])
        assert stack.wait_volume(answer["volume_id"], ("error", "available"),
                                 timeout=60)["status"] == "error"
        assert wait_backup(stack, backup["id"], ("available",))["status"] == "available"
    else:
        delete_backup(stack, backup["id"])
        assert wait_backup(stack, backup["id"],
                           ("error_deleting", "deleted"))["status"] == "error_deleting"
    text = " ".join(m["user_message"] for m in messages_for(stack, backup["id"]))
    assert "rollback did not complete" in text
    settled(stack)


def test_start_up_ends_interrupted_restore_and_delete(make_stack):
    """A restore and a delete this host owned when its backup service stopped (forged here:
    the rows and workers rows a lost message leaves): the next start ends the restore (backup
    available, volume error_restoring) and finishes the delete."""
    from backup_worker import service as backup_service
    from common import service as common_service

    stack = make_stack()
    volume = volume_with_data(stack, regions=[0])
    one = backed_up(stack, volume["id"])
    two = backed_up(stack, volume["id"])
    target = stack.create_volume(size=1, name="target")
    stack.wait_volume(target["id"], ("available",))
    with writer() as s:
        s.get(models.Backup, one["id"]).status = "restoring"
        s.get(models.Backup, one["id"]).restore_volume_id = target["id"]
        s.get(models.Volume, target["id"]).status = "restoring-backup"
        db.worker_claim("backup", one["id"], "restore", host="stack", session=s)
        s.get(models.Backup, two["id"]).status = "deleting"
        db.worker_claim("backup", two["id"], "delete", host="stack", session=s)
    old = next(s for s in stack.services if s.binary == common_service.BACKUP_BINARY)
    old.stop()
    new = backup_service.build_service()
    new.start()
    stack.services[stack.services.index(old)] = new
    assert get_backup(stack, one["id"])["status"] == "available"
    assert stack.wait_volume(target["id"], ("error_restoring",))["status"] == "error_restoring"
    assert "stopped during the restore" in messages_for(stack, target["id"])[0]["user_message"]
    assert get_backup(stack, two["id"]) is None
    assert manifests(stack) == [one["id"]]
    settled(stack)


def test_recount_references_from_the_manifests(tmp_path):
    """What a killed backup leaves in a posix repository (references no manifest names, a
    chunk nobody references, a count too low) is set right by the recount."""
    from backup_worker.chunkstore import posix

    store = posix.PosixChunkStore(str(tmp_path), compression="none", fsync=False)
    try:
        kept = store.put(b"a" * 1000)
        leaked = store.put(b"b" * 1000)
        store.incref(kept, 1)           # one slot names it below, twice
        store.incref(leaked, 3)         # a killed backup's references
        orphan = store.put(b"c" * 1000)  # stored, never referenced
        store.put_manifest("m1", {"chunks": [kept, None, kept]})
        assert store.recount_references() == (1, 2)
        assert store.refcount(kept) == 2
        assert not store.exists(leaked) and not store.exists(orphan)
        assert store.exists(kept)
        assert store.list_chunks() == [kept]
        assert store.recount_references() == (0, 0)
    finally:
        store.close()


def test_a_full_queue_refuses_with_a_message(make_stack):
    """Beyond backup_max_queued the backup service refuses: those backups go to `error`
    with a readable message and their volumes back to available, none stays `creating`."""
    stack = make_stack(overrides={"backup.backup_max_concurrent": 1,
                                  "backup.backup_max_queued": 1,
                                  "debug.delay_points": ["create_backup.store_data:1"]})
    volumes = [volume_with_data(stack, seed=i, regions=[0]) for i in range(4)]
    backups = [create_backup(stack, v["id"]) for v in volumes]
    final = [wait_backup(stack, b["id"], ("available", "error")) for b in backups]
    refused = [b for b in final if b["status"] == "error"]
    assert refused and len(refused) < len(final)
    for b in refused:
        assert "at capacity" in messages_for(stack, b["id"])[0]["user_message"]
    for v in volumes:
        assert stack.wait_volume(v["id"], ("available",))["status"] == "available"
    assert len(manifests(stack)) == len(final) - len(refused)
    settled(stack)


def test_force_delete_of_a_queued_backup(make_stack):
    """A backup force-deleted while it waits for a slot never runs: it is gone, its volume
    available at once, and the backup ahead of it completes."""
    stack = make_stack(overrides={"backup.backup_max_concurrent": 1,
                                  "debug.delay_points": ["create_backup.store_data:2"]})
    first_volume = volume_with_data(stack, seed=1, regions=[0])
    second_volume = volume_with_data(stack, seed=2, regions=[0])
    first = create_backup(stack, first_volume["id"])
    second = create_backup(stack, second_volume["id"])
    time.sleep(0.3)
    resp = stack.request("POST", "/backups/%s/action" % second["id"], {"os-force_delete": {}})
    assert resp.status_code == 202, resp.text
    wait_backup(stack, second["id"], ("deleted",), timeout=1.5)  # not behind the first
    assert stack.wait_volume(second_volume["id"], ("available",))["status"] == "available"
    assert get_backup(stack, first["id"])["status"] == "creating"
    assert wait_backup(stack, first["id"], ("available", "error"))["status"] == "available"
    assert manifests(stack) == [first["id"]]
    settled(stack)


def test_lost_request_is_reaped(make_stack):
    """A create whose message never reached the backup service (forged: the rows the api
    writes, no cast) ends in `error`, its volume back to available, not `creating` for ever."""
    stack = make_stack(overrides={"backup.backup_operation_timeout": 1})
    volume = volume_with_data(stack, regions=[0])
    backup = backed_up(stack, volume["id"])
    with writer() as s:
        s.get(models.Backup, backup["id"]).status = "creating"
        row = s.get(models.Volume, volume["id"])
        row.previous_status, row.status = "available", "backing-up"
        db.worker_claim("backup", backup["id"], "create", host="stack", session=s)
    done = wait_backup(stack, backup["id"], ("error",), timeout=30)
    assert done["fail_reason"] == "the backup request was lost (no backup service ran it)"
    assert stack.wait_volume(volume["id"], ("available",))["status"] == "available"
    assert manifests(stack) == []  # a create that ends in error keeps no data
    settled(stack)


def test_a_shared_repository_is_recounted_only_alone(make_stack):
    """With backup_repository_shared, a backup service that starts while another is up
    leaves the counts alone (that one's running backups hold references no manifest shows
    yet); started alone, it recounts."""
    from backup_worker import service as backup_service
    from backup_worker.chunkstore import posix
    from common import service as common_service

    stack = make_stack(overrides={"backup.backup_repository_shared": True})
    store = posix.PosixChunkStore(repo(stack))
    try:
        in_flight = store.put(b"x" * 5000)
        store.incref(in_flight)  # another host's backup, half-way
    finally:
        store.close()
    db.service_heartbeat("otherhost", common_service.BACKUP_BINARY, "lamina-backup")

    def restart():
        old = next(s for s in stack.services if s.binary == common_service.BACKUP_BINARY)
        old.stop()
        new = backup_service.build_service()
        new.start()
        stack.services[stack.services.index(old)] = new

    restart()
    assert ref_counts(stack) == {in_flight: 1} and len(chunk_files(stack)) == 1
    with writer() as s:
        s.query(models.Service).filter_by(host="otherhost").delete()
    restart()
    assert ref_counts(stack) == {} and chunk_files(stack) == []


def test_start_up_runs_an_interrupted_import_again(make_stack):
    from backup_worker import service as backup_service
    from common import service as common_service

    stack = make_stack()
    volume = volume_with_data(stack, regions=[0])
    backup = backed_up(stack, volume["id"])
    with writer() as s:
        s.get(models.Backup, backup["id"]).status = "creating"
        db.worker_claim("backup", backup["id"], "import", host="stack", session=s)
    old = next(s for s in stack.services if s.binary == common_service.BACKUP_BINARY)
    old.stop()
    new = backup_service.build_service()
    new.start()
    stack.services[stack.services.index(old)] = new
    assert get_backup(stack, backup["id"])["status"] == "available"
    assert stack.wait_volume(volume["id"], ("available",))["status"] == "available"
    settled(stack)


def test_a_clean_stop_ends_running_backups_and_the_next_start_the_queued(make_stack):
    """SIGTERM (Service.stop): the running backup stops at its next progress report and ends
    as a failure does (error, source given back, nothing left in the repository); a queued one
    is not started, and the next start ends it."""
    from backup_worker import service as backup_service
    from common import service as common_service

    stack = make_stack(overrides={"backup.backup_max_concurrent": 1,
                                  "backup.backup_progress_chunks": 1,
                                  "debug.delay_points": ["create_backup.progress:0.3"]})
    running_volume = volume_with_data(stack, seed=1, regions=[i * 16 * MiB for i in range(8)])
    queued_volume = volume_with_data(stack, seed=2, regions=[0])
    running = create_backup(stack, running_volume["id"])
    queued = create_backup(stack, queued_volume["id"])
    deadline = time.monotonic() + 30
    while not chunk_files(stack):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    old = next(s for s in stack.services if s.binary == common_service.BACKUP_BINARY)
    old.stop()
    done = get_backup(stack, running["id"])
    assert done["status"] == "error"
    assert "stopped during the operation" in done["fail_reason"]
    assert stack.wait_volume(running_volume["id"], ("available",))["status"] == "available"
    assert get_backup(stack, queued["id"])["status"] == "creating"
    assert manifests(stack) == [] and chunk_files(stack) == [] and ref_counts(stack) == {}
    new = backup_service.build_service()
    new.start()
    stack.services[stack.services.index(old)] = new
    done = get_backup(stack, queued["id"])
    assert done["status"] == "error"
    assert done["fail_reason"] == "the backup service stopped during the backup"
    assert stack.wait_volume(queued_volume["id"], ("available",))["status"] == "available"
    settled(stack)
