"""The RADOS chunk store and the RBD reader/writer of the backup engine on the real
single-node Ceph of deploy/ceph (the `backups` pool, images in `volumes`). Skipped without
Ceph unless LAMINA_REQUIRE_CEPH=1 (make test), as every Ceph test.

Each test works in a RADOS namespace of its own inside the pool, so it sees only its objects
and removes them at the end."""

import collections
import hashlib
import os
import random
import threading
import uuid

import pytest

from backup_worker import engine
from backup_worker.chunkstore import base as chunk_base
from tests.integration import ceph

pytestmark = pytest.mark.integration
MiB = 1024 * 1024
CHUNK = 256 * 1024
BACKUP_POOL = os.environ.get("LAMINA_CEPH_BACKUP_POOL", "backups")


@pytest.fixture(scope="module")
def cluster():
    ceph.require()
    import rados

    client = rados.Rados(conffile=ceph.CONF, rados_id=ceph.USER,
                         conf={"keyring": ceph.KEYRING, "rados_osd_op_timeout": "30",
                               "rados_mon_op_timeout": "30"})
    client.connect(timeout=10)
    yield client
    client.shutdown()


@pytest.fixture
def store(cluster):
    from backup_worker.chunkstore import rados as rados_store

    namespace = "test-" + uuid.uuid4().hex[:12]
    repository = rados_store.RadosChunkStore(pool=BACKUP_POOL, client=cluster,
                                             namespace=namespace)
    yield repository
    ioctx = cluster.open_ioctx(BACKUP_POOL)
    ioctx.set_namespace(namespace)
    try:
        for obj in list(ioctx.list_objects()):
            ioctx.remove_object(obj.key)
    finally:
        ioctx.close()
        repository.close()


def raw_ioctx(cluster, store):
    ioctx = cluster.open_ioctx(BACKUP_POOL)
    ioctx.set_namespace(store._ioctx.get_namespace())
    return ioctx


def test_chunks_round_trip_and_corruption_is_caught(cluster, store):
    data = random.Random(1).randbytes(3 * MiB) + b"text " * 100000
    digest = store.put(data)
    assert store.exists(digest)
    assert store.get(digest) == data
    assert store.put(data) == digest  # idempotent
    ioctx = raw_ioctx(cluster, store)
    try:
        blob = ioctx.read(store.chunk_object(digest), 16 * MiB, 0)
        ioctx.write_full(store.chunk_object(digest), blob[:-10] + b"0123456789")
        with pytest.raises(chunk_base.CorruptChunk, match=digest):
            store.get(digest)
        ioctx.write_full(store.chunk_object(digest), blob[:100])
        with pytest.raises(chunk_base.CorruptChunk, match=digest):
            store.get(digest)
    finally:
        ioctx.close()
    with pytest.raises(chunk_base.ChunkNotFound):
        store.get(chunk_base.digest_of(b"never stored"))


def test_reference_counts_are_atomic(store):
    digest = store.put(b"shared chunk")
    errors = []

    def take():
        try:
            for _ in range(25):
                store.incref(digest)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.refcount(digest) == 100
    assert store.decref(digest, 99) == 1
    assert store.exists(digest)
    assert store.decref(digest) == 0
    assert not store.exists(digest)


def test_manifest_is_readable_only_when_complete(cluster, store):
    store.put_manifest("b1", {"chunks": ["x"], "size": 1})
    assert store.get_manifest("b1") == {"chunks": ["x"], "size": 1}
    ioctx = raw_ioctx(cluster, store)
    try:  # a manifest whose writer died before the complete mark
        ioctx.write_full(store.manifest_object("b2"), b'{"chunks": [')
    finally:
        ioctx.close()
    with pytest.raises(chunk_base.ManifestNotFound):
        store.get_manifest("b2")
    assert store.list_manifests() == ["b1"]
    store.delete_manifest("b1")
    with pytest.raises(chunk_base.ManifestNotFound):
        store.get_manifest("b1")


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_file_backups_into_rados_prune_and_restore(store, tmp_path):
    source = str(tmp_path / "volume")
    rng = random.Random(3)
    with open(source, "wb") as f:
        f.truncate(32 * MiB)
        f.write(rng.randbytes(6 * MiB))
        f.seek(20 * MiB)
        f.write(b"pattern " * (MiB // 8))
    eng = engine.BackupEngine(store, chunk_size=CHUNK, workers=2)
    with engine.FileReader(source) as reader:
        eng.backup(reader, "full")
    sums = {"full": sha256_file(source)}
    with open(source, "r+b") as f:
        for index in (1, 7, 13):
            f.seek(index * CHUNK + 17)
            f.write(rng.randbytes(1000))
    with engine.FileReader(source) as reader:
        incremental = eng.backup(reader, "incr", parent_id="full")
    sums["incr"] = sha256_file(source)
    assert incremental["stats"]["new"] == 3
    for backup_id, expected in sums.items():
        target = str(tmp_path / backup_id)
        with engine.FileWriter.create(target, 32 * MiB) as writer:
            eng.restore(backup_id, writer)
        assert sha256_file(target) == expected
    eng.delete("full")
    target = str(tmp_path / "after-prune")
    with engine.FileWriter.create(target, 32 * MiB) as writer:
        eng.restore("incr", writer)
    assert sha256_file(target) == sums["incr"]
    slots = collections.Counter(d for d in incremental["chunks"] if d)
    assert {d: store.refcount(d) for d in slots} == dict(slots)


def test_rbd_images_full_and_diff_incremental(cluster, store):
    import rbd

    ioctx = cluster.open_ioctx(ceph.POOL)
    name = "backup-test-" + uuid.uuid4().hex[:8]
    restored = [name + "-r1", name + "-r2"]
    size = 64 * MiB
    rng = random.Random(5)
    rbd.RBD().create(ioctx, name, size, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
    try:
        with rbd.Image(ioctx, name) as image:
            image.write(rng.randbytes(8 * MiB), 0)
            image.write(b"rbd " * (MiB // 4), 40 * MiB)
            image.create_snap("s1")
        eng = engine.BackupEngine(store, chunk_size=CHUNK, workers=2)
        with rbd.Image(ioctx, name, snapshot="s1", read_only=True) as image:
            reader = engine.RBDReader(image)
            full = eng.backup(reader, "full", snapshot="s1")
            image_s1 = image.read(0, size)
        assert full["stats"]["read"] == 12 * MiB // CHUNK  # the 3 allocated 4 MiB objects
        with rbd.Image(ioctx, name) as image:
            image.write(rng.randbytes(4096), 3 * CHUNK + 5)
            image.write(rng.randbytes(4096), 50 * CHUNK)
            image.create_snap("s2")
        with rbd.Image(ioctx, name, snapshot="s2", read_only=True) as image:
            incremental = eng.backup(engine.RBDReader(image), "incr", parent_id="full",
                                     snapshot="s2")
            image_s2 = image.read(0, size)
        # rbd diff: only the chunks of the changed RADOS objects (4 MiB each) were read
        assert incremental["stats"]["read"] <= 2 * (4 * MiB // CHUNK)
        assert incremental["stats"]["new"] == 2
        with rbd.Image(ioctx, name) as image:
            image.remove_snap("s1")
        with rbd.Image(ioctx, name, snapshot="s2", read_only=True) as image:
            # the parent's snapshot is gone: no diff, block hashes instead (nothing new)
            again = eng.backup(engine.RBDReader(image), "again", parent_id="full",
                               snapshot="s2")
        assert again["stats"]["new"] == 0 and again["chunks"] == incremental["chunks"]
        for backup_id, copy, expected in (("full", restored[0], image_s1),
                                          ("incr", restored[1], image_s2)):
            rbd.RBD().create(ioctx, copy, size, old_format=False,
                             features=rbd.RBD_FEATURE_LAYERING)
            with rbd.Image(ioctx, copy) as image:
                eng.restore(backup_id, engine.RBDWriter(image, fresh=True))
                assert image.read(0, size) == expected
    finally:
        for image_name in restored + [name]:
            try:
                with rbd.Image(ioctx, image_name) as image:
                    for snap in list(image.list_snaps()):
                        image.remove_snap(snap["name"])
                rbd.RBD().remove(ioctx, image_name)
            except rbd.ImageNotFound:
                pass
        ioctx.close()
