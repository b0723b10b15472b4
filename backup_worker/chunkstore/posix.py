"""A chunk repository in a POSIX directory.

Layout under the root:
  chunks/ab/cd/<digest>     one file per chunk, fanned out by the digest's first 4 hex digits
  manifests/<backup_id>.json
  refs.sqlite               reference counts (one row per chunk)
  refs.lock                 flock()ed around every count change

Every file is written under a temporary name in its final directory, fsynced and renamed, so
a crash leaves either the old state or the new one, plus at worst a `.tmp-*` file that no
reader looks at. The count lock is flock() on the store's own descriptor of refs.lock (flock
locks belong to an open file description, so two stores, in one process or in two, exclude
each other), taken inside a per-process lock per repository, which also lets the threads of
one store take turns on its one sqlite connection (and covers NFS, where flock is emulated by
fcntl record locks that would not separate the threads of one process)."""

import contextlib
import errno
import fcntl
import json
import os
import sqlite3
import threading
import time
import uuid

from oslo_config import cfg

from backup_worker.chunkstore import base
from common import exception

posix_opts = [
    cfg.StrOpt("backup_posix_path",
               help="Directory of the POSIX backup repository (made when missing); the "
                    "all-in-one default is a directory under its --data-dir."),
    cfg.BoolOpt("backup_posix_fsync", default=True,
                help="fsync chunks, manifests and their directories before a backup counts "
                     "as done. Turn off only for throw-away repositories."),
]

CONF = cfg.CONF
CONF.register_opts(posix_opts, group="backup")

_process_locks = {}
_process_locks_guard = threading.Lock()


def _process_lock(path):
    key = os.path.realpath(path)
    with _process_locks_guard:
        return _process_locks.setdefault(key, threading.Lock())


class PosixChunkStore(base.ChunkStore):
    def __init__(self, root=None, compression=None, compression_level=None, fsync=None):
        super().__init__(compression, compression_level)
        root = root or CONF.backup.backup_posix_path
        if not root:
            raise exception.InvalidInput(reason="backup_posix_path is not set")
        self.root = os.path.abspath(root)
        self.fsync = CONF.backup.backup_posix_fsync if fsync is None else fsync
        self.chunk_dir = os.path.join(self.root, "chunks")
        self.manifest_dir = os.path.join(self.root, "manifests")
        for path in (self.root, self.chunk_dir, self.manifest_dir):
            os.makedirs(path, exist_ok=True)
        self._lock_path = os.path.join(self.root, "refs.lock")
        self._db_path = os.path.join(self.root, "refs.sqlite")
        self._thread_lock = _process_lock(self._lock_path)
        # one descriptor and connection per store, used only under the locks below (the
        # threads of a backup take turns; per-thread ones would pile up with every pool)
        self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        # autocommit mode: the transactions below are explicit (BEGIN IMMEDIATE)
        self._db = sqlite3.connect(self._db_path, timeout=60, isolation_level=None,
                                   check_same_thread=False)
        with self._exclusive():
            # under the lock: switching a database to WAL fails ("database is locked")
            # while another connection is inside a transaction
            self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit survives a crash of the process; sync() checkpoints before a
        # manifest is written, so a power loss cannot lose a count a manifest relies on.
        self._db.execute("PRAGMA synchronous=%s" % ("NORMAL" if self.fsync else "OFF"))
        with self._locked() as db:
            db.execute("CREATE TABLE IF NOT EXISTS refs (digest TEXT PRIMARY KEY, "
                       "count INTEGER NOT NULL)")

    # --- files -------------------------------------------------------------------------------

    def chunk_path(self, digest):
        return os.path.join(self.chunk_dir, digest[:2], digest[2:4], digest)

    def manifest_path(self, backup_id):
        return os.path.join(self.manifest_dir, base.check_backup_id(backup_id) + ".json")

    def _write_atomically(self, path, data):
        """Temp name in the same directory, fsync, rename, fsync the directory."""
        directory = os.path.dirname(path)
        tmp = os.path.join(directory, ".tmp-%s-%s" % (os.path.basename(path), uuid.uuid4().hex))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with memoryview(data) as view:
                written = 0
                while written < len(view):
                    written += os.write(fd, view[written:])
            if self.fsync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        try:
            os.rename(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if self.fsync:
            _fsync_dir(directory)

    def exists(self, digest):
        return os.path.exists(self.chunk_path(base.check_digest(digest)))

    def _read_chunk(self, digest):
        try:
            with open(self.chunk_path(digest), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def _write_chunk(self, digest, blob):
        path = self.chunk_path(digest)
        if os.path.exists(path):
            return 0
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._write_atomically(path, blob)  # a racing writer of the same chunk wrote the same
        return len(blob)

    def delete(self, digest):
        with self._locked() as db:
            db.execute("DELETE FROM refs WHERE digest = ?", (base.check_digest(digest),))
            self._unlink_chunk(digest)

    def _unlink_chunk(self, digest):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.chunk_path(digest))

    # --- reference counts --------------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self):
        """Exclusive among this process's threads and every other process."""
        with self._thread_lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _locked(self):
        """One transaction on the counts, exclusive among threads and processes."""
        with self._exclusive():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def incref_many(self, counts):
        result = {}
        with self._locked() as db:
            for digest, n in counts.items():
                base.check_digest(digest)
                db.execute("INSERT INTO refs (digest, count) VALUES (?, ?) ON CONFLICT(digest) "
                           "DO UPDATE SET count = count + excluded.count", (digest, n))
                result[digest] = db.execute("SELECT count FROM refs WHERE digest = ?",
                                            (digest,)).fetchone()[0]
        return result

    def decref_many(self, counts):
        result = {}
        with self._locked() as db:
            for digest, n in counts.items():
                base.check_digest(digest)
                row = db.execute("SELECT count FROM refs WHERE digest = ?", (digest,)).fetchone()
                left = max(0, (row[0] if row else 0) - n)
                if left:
                    db.execute("UPDATE refs SET count = ? WHERE digest = ?", (left, digest))
                else:
                    # still under the lock: nobody can take a reference between the count
                    # reaching zero and the file going
                    db.execute("DELETE FROM refs WHERE digest = ?", (digest,))
                    self._unlink_chunk(digest)
                result[digest] = left
        return result

    def refcount(self, digest):
        with self._thread_lock:
            row = self._db.execute("SELECT count FROM refs WHERE digest = ?",
                                   (base.check_digest(digest),)).fetchone()
        return row[0] if row else 0

    def sync(self):
        if self.fsync:
            with self._thread_lock:
                self._db.execute("PRAGMA wal_checkpoint(FULL)")

    def list_chunks(self):
        digests = set()
        for _directory, _dirs, names in os.walk(self.chunk_dir):
            digests.update(name for name in names if not name.startswith(".tmp-"))
        with self._thread_lock:
            digests.update(row[0] for row in self._db.execute("SELECT digest FROM refs"))
        return sorted(digests)

    def recount_references(self):
        """The counts rewritten from the manifests in one transaction under the repository
        lock (see ChunkStore.recount_references), unreferenced chunk files removed."""
        wanted = self.referenced_counts()
        on_disk = set()
        for _directory, _dirs, names in os.walk(self.chunk_dir):
            on_disk.update(name for name in names if not name.startswith(".tmp-"))
        fixed = removed = 0
        with self._locked() as db:
            have = dict(db.execute("SELECT digest, count FROM refs").fetchall())
            for digest in set(have) | set(wanted) | on_disk:
                want = wanted.get(digest, 0)
                if want == 0:
                    db.execute("DELETE FROM refs WHERE digest = ?", (digest,))
                    if digest in on_disk:
                        self._unlink_chunk(digest)
                        removed += 1
                    elif digest in have:
                        fixed += 1
                elif have.get(digest) != want:
                    db.execute("INSERT INTO refs (digest, count) VALUES (?, ?) ON CONFLICT("
                               "digest) DO UPDATE SET count = excluded.count", (digest, want))
                    fixed += 1
        return fixed, removed

    # --- manifests ---------------------------------------------------------------------------

    def put_manifest(self, backup_id, manifest):
        data = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
        self._write_atomically(self.manifest_path(backup_id), data)

    def get_manifest(self, backup_id):
        try:
            with open(self.manifest_path(backup_id), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise base.ManifestNotFound(backup_id=backup_id)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise base.CorruptManifest(backup_id=backup_id, reason=str(exc))

    def delete_manifest(self, backup_id):
        try:
            os.unlink(self.manifest_path(backup_id))
        except FileNotFoundError:
            raise base.ManifestNotFound(backup_id=backup_id)
        if self.fsync:
            _fsync_dir(self.manifest_dir)

    def list_manifests(self):
        return sorted(name[:-len(".json")] for name in os.listdir(self.manifest_dir)
                      if name.endswith(".json") and not name.startswith(".tmp-"))

    def remove_stale_temp(self, older_than=3600):
        """Remove `.tmp-*` files that writers killed mid-write left behind (none is ever
        read); only old ones, so a write in progress keeps its file. The count removed."""
        deadline = time.time() - older_than
        removed = 0
        for directory, _dirs, names in os.walk(self.root):
            for name in names:
                path = os.path.join(directory, name)
                if name.startswith(".tmp-") and os.stat(path).st_mtime < deadline:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                        removed += 1
        return removed

    def close(self):
        with self._thread_lock:
            if self._db is not None:
                self._db.close()
                os.close(self._fd)
                self._db = None

def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # some file systems cannot fsync a directory
            raise
    finally:
        os.close(fd)
