"""The volume service's side of backups (docs/backups-design.md) on the in-process stack with
the file back end: prepare_backup_source / release_backup_source / prepare_restore_target
over RPC (VolumeAPI 1.4) for available and in-use volumes and snapshots, the connections
opened with common/connector.py as the backup service opens them, a create from a backup
handing the volume over to the backup service; and the connector's allocation maps, hole
punching and host check on real sparse files.

Most tests write the rows the backups API would write (a backup `creating` or `restoring`,
its volume `backing-up`) and call the volume service as the backup service does, and the cast
to the backup service's restore_backup is recorded; the last one goes the whole way through
the backups API and the stack's backup service."""

import os
import random
import time
import uuid

import pytest

from backup_worker import rpcapi as backup_rpcapi
from common import connector, context, exception
from common.db import api as db
from common.db import models
from common.db.session import reader, writer
from volume_worker import rpcapi as volume_rpcapi

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
CONNECTOR = {"host": "compute1", "initiator": "iqn.2026-12.org.example:compute1",
             "ip": "127.0.0.1", "multipath": False, "platform": "x86_64", "os_type": "linux"}


@pytest.fixture
def ctxt():
    return context.get_admin_context()


@pytest.fixture
def vapi():
    return volume_rpcapi.VolumeAPI()


def available_volume(stack, size=1):
    volume = stack.create_volume(size=size)
    stack.wait_volume(volume["id"], ("available",))
    return db.volume_get_internal(volume["id"])


def volume_path(stack, volume):
    pool = volume.host.split("#")[1]
    return os.path.join(stack.workdir, "file", pool, "volume-%s" % volume.id)


def write_at(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def read_all(opened):
    return opened.read(0, opened.size())


def new_backup(volume, status="creating", **fields):
    """The row the backups API inserts (and, for a volume backup, the volume `backing-up`
    with the status it came from kept)."""
    backup_id = str(uuid.uuid4())
    with writer() as s:
        s.add(models.Backup(id=backup_id, project_id="p1", volume_id=volume.id,
                            status=status, size=volume.size, host="stack", **fields))
    return backup_id


def backing_up(volume_id):
    volume = db.volume_get_internal(volume_id)
    with writer() as s:
        assert db.conditional_update(models.Volume, volume_id,
                                     {"status": "backing-up", "previous_status": volume.status},
                                     {"status": volume.status}, session=s)


def pool_files(stack):
    found = []
    for _root, _dirs, files in os.walk(os.path.join(stack.workdir, "file")):
        found += sorted(files)
    return found


def attach(stack, volume_id):
    def action(name, args=None):
        resp = stack.request("POST", "/volumes/%s/action" % volume_id, {name: args})
        assert resp.status_code in (200, 202), resp.text

    action("os-reserve")
    action("os-initialize_connection", {"connector": CONNECTOR})
    action("os-attach", {"instance_uuid": str(uuid.uuid4()), "mountpoint": "/dev/vdb",
                         "host_name": "compute1", "mode": "rw"})
    assert db.volume_get_internal(volume_id).status == "in-use"


# --- sources ---------------------------------------------------------------------------------


def test_available_volume_is_read_in_place(stack, ctxt, vapi):
    volume = available_volume(stack)
    path = volume_path(stack, volume)
    payload = random.Random(1).randbytes(3 * MiB)
    write_at(path, 100 * MiB, payload)
    backup_id = new_backup(volume)
    backing_up(volume.id)

    source = vapi.prepare_backup_source(ctxt, volume.host, volume.id, backup_id)
    assert source["source_snapshot"] is None
    connection = source["connection"]
    assert connection["driver_volume_type"] == "local"
    assert (connection["data"]["device_path"], connection["data"]["host"]) == (path, "stack")
    assert pool_files(stack) == ["volume-" + volume.id]  # no copy of an idle volume
    opened = connector.open_connection(connection, writable=False)
    try:
        assert opened.size() == 1 * GiB
        assert opened.read(100 * MiB, len(payload)) == payload
        ranges = opened.allocated_ranges()
        # the file system may round extents to its blocks; nothing far from the data
        assert ranges and all(100 * MiB - 64 * KiB <= start and
                              start + length <= 103 * MiB + 64 * KiB for start, length in ranges)
        assert sum(length for _s, length in ranges) >= len(payload)
    finally:
        opened.close()
    assert vapi.release_backup_source(ctxt, volume.host, volume.id, backup_id, True) is None
    assert pool_files(stack) == ["volume-" + volume.id]
    with open(path, "rb") as f:
        f.seek(100 * MiB)
        assert f.read(len(payload)) == payload


def test_in_use_volume_is_read_through_a_temporary_copy(stack, ctxt, vapi):
    volume = available_volume(stack)
    path = volume_path(stack, volume)
    before = random.Random(2).randbytes(MiB)
    write_at(path, 0, before)
    attach(stack, volume.id)
    backup_id = new_backup(volume)
    backing_up(volume.id)
    assert db.volume_get_internal(volume.id).previous_status == "in-use"

    source = vapi.prepare_backup_source(ctxt, volume.host, volume.id, backup_id)
    copy = source["connection"]["data"]["device_path"]
    assert copy != path and os.path.basename(copy) == ".backup-" + backup_id
    assert sorted(pool_files(stack)) == sorted([".backup-" + backup_id, "volume-" + volume.id])
    write_at(path, 0, b"\xaa" * MiB)  # the guest keeps writing: the backup's point stays
    opened = connector.open_connection(source["connection"], writable=False)
    try:
        assert opened.size() == 1 * GiB
        assert opened.read(0, MiB) == before
    finally:
        opened.close()
    # the copy is no storage an admin could manage
    driver = next(svc.manager.driver for svc in stack.services if svc.host == "stack@file")
    names = [v["reference"]["source-name"] for v in driver.get_manageable_volumes(set())]
    assert names == ["volume-" + volume.id]

    vapi.release_backup_source(ctxt, volume.host, volume.id, backup_id, True)
    assert pool_files(stack) == ["volume-" + volume.id]  # no temporary snapshot left
    vapi.release_backup_source(ctxt, volume.host, volume.id, backup_id, True)  # again: fine
    with open(path, "rb") as f:
        assert f.read(MiB) == b"\xaa" * MiB


def test_snapshot_source_reads_the_snapshot(stack, ctxt, vapi):
    volume = available_volume(stack)
    path = volume_path(stack, volume)
    write_at(path, 5 * MiB, b"at snapshot time" * 1000)
    snapshot = stack.create_snapshot(volume.id)
    stack.wait_snapshot(snapshot["id"], ("available",))
    write_at(path, 5 * MiB, b"written later..." * 1000)
    backup_id = new_backup(volume, snapshot_id=snapshot["id"])

    source = vapi.prepare_backup_source(ctxt, volume.host, volume.id, backup_id,
                                        snapshot_id=snapshot["id"])
    assert source["source_snapshot"] is None
    assert os.path.basename(source["connection"]["data"]["device_path"]) == \
        "snapshot-" + snapshot["id"]
    opened = connector.open_connection(source["connection"], writable=False)
    try:
        assert opened.read(5 * MiB, 16000) == b"at snapshot time" * 1000
    finally:
        opened.close()
    vapi.release_backup_source(ctxt, volume.host, volume.id, backup_id, False)
    assert sorted(pool_files(stack)) == sorted(["snapshot-" + snapshot["id"],
                                                "volume-" + volume.id])


def test_in_use_volume_with_a_snapshot_reads_the_snapshot_without_a_copy(stack, ctxt, vapi):
    volume = available_volume(stack)
    snapshot = stack.create_snapshot(volume.id)
    stack.wait_snapshot(snapshot["id"], ("available",))
    attach(stack, volume.id)
    backup_id = new_backup(volume, snapshot_id=snapshot["id"])
    source = vapi.prepare_backup_source(ctxt, volume.host, volume.id, backup_id,
                                        snapshot_id=snapshot["id"])
    assert os.path.basename(source["connection"]["data"]["device_path"]) == \
        "snapshot-" + snapshot["id"]
    assert ".backup-" + backup_id not in pool_files(stack)
    vapi.release_backup_source(ctxt, volume.host, volume.id, backup_id, False)


def test_refusals(stack, ctxt, vapi):
    volume = available_volume(stack)
    other = available_volume(stack)
    snapshot = stack.create_snapshot(other.id)
    stack.wait_snapshot(snapshot["id"], ("available",))
    backup_id = new_backup(volume)
    # a snapshot of another volume
    with pytest.raises(Exception, match="Snapshot %s could not be found" % snapshot["id"]):
        vapi.prepare_backup_source(ctxt, volume.host, volume.id, backup_id,
                                   snapshot_id=snapshot["id"])
    # a volume that is gone
    missing = str(uuid.uuid4())
    with pytest.raises(Exception, match="Volume %s could not be found" % missing):
        vapi.prepare_backup_source(ctxt, volume.host, missing, backup_id)
    # releasing the source of a deleted volume: nothing left to remove
    assert vapi.release_backup_source(ctxt, volume.host, missing, backup_id, False) is None


def test_engine_backs_up_a_source_and_restores_onto_a_target(stack, ctxt, vapi, tmp_path):
    """What the backup service does with the connections: the engine reads only the data
    the source's allocation map names, and writes a new volume's holes not at all."""
    from backup_worker import engine
    from backup_worker.chunkstore import posix

    volume = available_volume(stack)
    rng = random.Random(5)
    regions = [(0, rng.randbytes(2 * MiB)), (700 * MiB, rng.randbytes(MiB))]
    for offset, data in regions:
        write_at(volume_path(stack, volume), offset, data)
    attach(stack, volume.id)
    backup_id = new_backup(volume)
    backing_up(volume.id)
    source = vapi.prepare_backup_source(ctxt, volume.host, volume.id, backup_id)
    with posix.PosixChunkStore(str(tmp_path / "repo")) as store:
        eng = engine.BackupEngine(store, chunk_size=MiB, workers=2)
        with engine.ConnectorReader(
                connector.open_connection(source["connection"], writable=False)) as reader:
            manifest = eng.backup(reader, backup_id)
        vapi.release_backup_source(ctxt, volume.host, volume.id, backup_id, True)
        assert manifest["stats"]["read"] == 3  # 1024 chunks, 3 of them allocated
        assert len([d for d in manifest["chunks"] if d]) == 3

        target = available_volume(stack)
        connection = vapi.prepare_restore_target(ctxt, target.host, target.id)
        with engine.ConnectorWriter(connector.open_connection(connection, writable=True),
                                    fresh=True) as writer_:
            eng.restore(backup_id, writer_)
    with open(volume_path(stack, target), "rb") as restored:
        for offset, data in regions:
            restored.seek(offset)
            assert restored.read(len(data)) == data
    assert os.stat(volume_path(stack, target)).st_blocks * 512 <= 4 * MiB
    assert pool_files(stack) == sorted(["volume-" + volume.id, "volume-" + target.id])


def test_restore_target_is_writable(stack, ctxt, vapi):
    volume = available_volume(stack, size=2)
    path = volume_path(stack, volume)
    connection = vapi.prepare_restore_target(ctxt, volume.host, volume.id)
    assert connection["driver_volume_type"] == "local"
    assert (connection["data"]["device_path"], connection["data"]["host"]) == (path, "stack")
    opened = connector.open_connection(connection, writable=True)
    try:
        assert opened.size() == 2 * GiB
        opened.write(GiB + 7, b"restored")
        opened.flush()
    finally:
        opened.close()
    with open(path, "rb") as f:
        f.seek(GiB + 7)
        assert f.read(8) == b"restored"


# --- a create from a backup hands the volume to the backup service ---------------------------


@pytest.fixture
def restore_casts(monkeypatch):
    calls = []

    def record(self, ctxt, host, backup_id, volume_id):
        calls.append((host, backup_id, volume_id))

    monkeypatch.setattr(backup_rpcapi.BackupAPI, "restore_backup", record, raising=False)
    return calls


def create_from_backup(stack):
    """A volume row `creating` with backup_id set and its backup `restoring` onto it, as
    the api writes them: the create flow is held at its first step while they are set."""
    stack.override("delay_points", ["create_volume.check_still_creating:1.5"], group="debug")
    volume = stack.create_volume(size=1)
    backup_id = str(uuid.uuid4())
    with writer() as s:
        s.add(models.Backup(id=backup_id, project_id="p1", volume_id=str(uuid.uuid4()),
                            status="restoring", size=1, host="backup-host",
                            restore_volume_id=volume["id"]))
        assert db.conditional_update(models.Volume, volume["id"], {"backup_id": backup_id},
                                     {"status": "creating"}, session=s)
    return volume["id"], backup_id


def workers(resource_type, resource_id):
    with reader() as s:
        return [(w.operation, w.host) for w in s.query(models.Worker).filter_by(
            resource_type=resource_type, resource_id=resource_id)]


def test_create_from_a_backup_ends_restoring_and_casts_the_restore(stack, restore_casts):
    volume_id, backup_id = create_from_backup(stack)
    shown = stack.wait_volume(volume_id, ("restoring-backup", "available", "error"))
    assert shown["status"] == "restoring-backup"
    assert restore_casts == [("backup-host", backup_id, volume_id)]
    assert workers("volume", volume_id) == []
    assert workers("backup", backup_id) == [("restore", "backup-host")]
    volume = db.volume_get_internal(volume_id)
    assert os.path.exists(volume_path(stack, volume))  # the storage the restore writes


def test_create_from_a_backup_whose_cast_fails_ends_in_error(stack, monkeypatch):
    def refuse(self, ctxt, host, backup_id, volume_id):
        raise exception.ServiceBusy(service="backup")

    monkeypatch.setattr(backup_rpcapi.BackupAPI, "restore_backup", refuse, raising=False)
    volume_id, backup_id = create_from_backup(stack)
    # restoring-backup comes before the failed cast: wait for where the create ends
    shown = stack.wait_volume(volume_id, ("available", "error"))
    assert shown["status"] == "error"
    assert workers("volume", volume_id) == [] and workers("backup", backup_id) == []
    assert not [f for f in pool_files(stack) if volume_id in f]  # the storage went
    with reader() as s:  # the failed create gave the backup back (common/volume_status.py)
        backup = s.get(models.Backup, backup_id)
        assert (backup.status, backup.restore_volume_id) == ("available", None)


def test_create_from_a_backup_no_longer_restoring_ends_in_error(stack, restore_casts):
    stack.override("delay_points", ["create_volume.check_still_creating:1.5"], group="debug")
    volume = stack.create_volume(size=1)
    backup_id = str(uuid.uuid4())
    with writer() as s:
        s.add(models.Backup(id=backup_id, project_id="p1", volume_id=str(uuid.uuid4()),
                            status="available", size=1, host="backup-host"))
        db.conditional_update(models.Volume, volume["id"], {"backup_id": backup_id},
                              {"status": "creating"}, session=s)
    shown = stack.wait_volume(volume["id"], ("available", "error"))
    assert shown["status"] == "error" and restore_casts == []
    assert workers("backup", backup_id) == []


# --- the connector on real sparse files ------------------------------------------------------


def sparse_file(path, size, regions):
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, data in regions:
            f.seek(offset)
            f.write(data)
    return path


def test_local_allocated_ranges_follow_the_data(tmp_path):
    rng = random.Random(3)
    regions = [(0, rng.randbytes(MiB)), (10 * MiB, rng.randbytes(2 * MiB)),
               (30 * MiB, rng.randbytes(4 * KiB))]
    path = sparse_file(str(tmp_path / "v"), 32 * MiB, regions)
    with connector.open_connection(connector.local_connection(path), False) as opened:
        ranges = opened.allocated_ranges()
        assert opened.changed_ranges("any-snapshot") is None
        assert opened.read(32 * MiB - 10, 100) == bytes(100)  # past the end: zeros
    covered = [(s, s + n) for s, n in ranges]
    for offset, data in regions:  # every region is inside one range ...
        assert any(s <= offset and offset + len(data) <= e for s, e in covered)
    # ... and the holes between them are not (give or take a file system block)
    assert sum(e - s for s, e in covered) <= MiB + 2 * MiB + 4 * KiB + 6 * 64 * KiB
    empty = sparse_file(str(tmp_path / "empty"), 8 * MiB, [])
    with connector.LocalVolume(empty, writable=False) as opened:
        assert opened.allocated_ranges() == []


def test_local_punch_hole_deallocates_and_reads_zeros(tmp_path):
    path = sparse_file(str(tmp_path / "v"), 16 * MiB, [(0, b"\x5a" * (16 * MiB))])
    before = os.stat(path).st_blocks
    with connector.LocalVolume(path, writable=True) as opened:
        opened.punch_hole(4 * MiB, 8 * MiB)
        opened.punch_hole(15 * MiB, 10 * MiB)  # clipped at the end; the size stays
        opened.flush()
        assert opened.size() == 16 * MiB
        assert opened.read(4 * MiB, 8 * MiB) == bytes(8 * MiB)
        assert opened.read(0, 4 * MiB) == b"\x5a" * (4 * MiB)
        assert opened.read(12 * MiB, 3 * MiB) == b"\x5a" * (3 * MiB)
        ranges = opened.allocated_ranges()
    assert os.path.getsize(path) == 16 * MiB
    assert os.stat(path).st_blocks * 512 <= before * 512 - 9 * MiB
    assert not any(s < 12 * MiB and s + n > 4 * MiB for s, n in ranges)


def test_punch_hole_writes_zeros_where_the_file_system_cannot(tmp_path, monkeypatch):
    import errno

    def unsupported(fd, mode, offset, length):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(connector, "_fallocate", unsupported)
    path = sparse_file(str(tmp_path / "v"), 4 * MiB, [(0, b"\x11" * (4 * MiB))])
    with connector.LocalVolume(path, writable=True) as opened:
        opened.punch_hole(MiB, 2 * MiB)
        assert opened.read(0, 4 * MiB) == (b"\x11" * MiB + bytes(2 * MiB) + b"\x11" * MiB)


def test_a_local_connection_of_another_host_opens_only_where_shared(tmp_path):
    path = sparse_file(str(tmp_path / "v"), MiB, [(0, b"data")])
    missing = str(tmp_path / "on-storage-7-only")
    elsewhere = {"driver_volume_type": "local",
                 "data": {"device_path": missing, "host": "storage-7"}}
    with pytest.raises(exception.DriverError, match="on host storage-7.*its storage host"):
        connector.open_connection(elsewhere, writable=False)
    with pytest.raises(exception.DriverError, match="storage-7"):
        connector.copy_volume(elsewhere, connector.local_connection(path), MiB)
    # the same path seen from here (one machine, a shared directory): it opens
    shared = {"driver_volume_type": "local", "data": {"device_path": path, "host": "storage-7"}}
    with connector.open_connection(shared, writable=False) as opened:
        assert opened.read(0, 4) == b"data"
    here = connector.local_connection(path)
    assert here["data"]["host"] == connector.this_host()
    with connector.open_connection(here, writable=False) as opened:
        assert opened.read(0, 4) == b"data"


def test_copy_volume_copies_only_the_data(tmp_path):
    rng = random.Random(4)
    regions = [(MiB, rng.randbytes(MiB)), (9 * MiB + 5, rng.randbytes(1000))]
    source = sparse_file(str(tmp_path / "src"), 16 * MiB, regions)
    target = sparse_file(str(tmp_path / "dst"), 16 * MiB, [])
    connector.copy_volume(connector.local_connection(source), connector.local_connection(target),
                          16 * MiB)
    with open(source, "rb") as a, open(target, "rb") as b:
        assert a.read() == b.read()
    assert os.stat(target).st_blocks * 512 <= 3 * MiB


# --- the whole way: the backups API, the backup service and this side ------------------------


def wait_backup(stack, backup_id, statuses, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        backup = stack.request("GET", "/backups/%s" % backup_id).json()["backup"]
        if backup["status"] in statuses:
            return backup
        assert time.monotonic() < deadline, backup
        time.sleep(0.05)


def test_in_use_backup_and_restore_to_a_new_volume_through_the_services(stack):
    volume = available_volume(stack)
    data = random.Random(6).randbytes(3 * MiB)
    write_at(volume_path(stack, volume), 200 * MiB, data)
    attach(stack, volume.id)
    resp = stack.request("POST", "/backups", {"backup": {"volume_id": volume.id,
                                                         "force": True}})
    assert resp.status_code == 202, resp.text
    backup_id = resp.json()["backup"]["id"]
    assert wait_backup(stack, backup_id, ("available", "error"))["status"] == "available"
    assert db.volume_get_internal(volume.id).status == "in-use"
    assert pool_files(stack) == ["volume-" + volume.id]  # the temporary copy went

    resp = stack.request("POST", "/backups/%s/restore" % backup_id, {"restore": {}})
    assert resp.status_code == 202, resp.text
    restored_id = resp.json()["restore"]["volume_id"]
    shown = stack.wait_volume(restored_id, ("available", "error"), timeout=60)
    assert shown["status"] == "available", shown
    assert wait_backup(stack, backup_id, ("available",))["status"] == "available"
    assert workers("volume", restored_id) == [] and workers("backup", backup_id) == []
    with open(volume_path(stack, db.volume_get_internal(restored_id)), "rb") as f:
        f.seek(200 * MiB)
        assert f.read(len(data)) == data
