"""Content-addressed chunk repositories for backups: a POSIX directory or a Ceph pool.

`open_store()` builds the one `[backup] backup_chunk_store` names; both share the chunk
encoding and checks of base.py."""

from backup_worker.chunkstore.base import (  # noqa: F401  (the package's interface)
    COMPRESSIONS,
    ChunkNotFound,
    ChunkStore,
    CorruptChunk,
    CorruptManifest,
    ManifestNotFound,
    digest_of,
)


def open_store(kind=None, **kwargs):
    """The configured repository (or `kind`: "posix", "rados"), opened."""
    from oslo_config import cfg

    kind = kind or cfg.CONF.backup.backup_chunk_store
    if kind == "posix":
        from backup_worker.chunkstore import posix
        return posix.PosixChunkStore(**kwargs)
    if kind == "rados":
        from backup_worker.chunkstore import rados
        return rados.RadosChunkStore(**kwargs)
    raise ValueError("unknown backup chunk store %r" % kind)
