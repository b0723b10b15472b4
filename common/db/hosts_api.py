"""What a volume back end holds, per project: the figures of `GET /os-hosts/{host}`."""

from sqlalchemy import false, func, or_, select

from common.db import models
from common.db.session import reader


def _on_backend(column, backend):
    # A volume's host is `host@backend#pool`: the back end's own and every pool of it.
    # LIKE's wildcards in a host name are escaped so they match only themselves.
    return or_(column == backend, column.startswith(backend + "#", autoescape=True))


def backend_usage(backend):
    """{project_id: (volume_count, volume_gb, snapshot_count, snapshot_gb)} of the live
    volumes and snapshots on the back end `host@backend`."""
    usage = {}
    with reader() as s:
        volumes = s.execute(
            select(models.Volume.project_id, func.count(models.Volume.id),
                   func.coalesce(func.sum(models.Volume.size), 0))
            .where(_on_backend(models.Volume.host, backend), models.Volume.deleted == false())
            .group_by(models.Volume.project_id)).all()
        snapshots = s.execute(
            select(models.Snapshot.project_id, func.count(models.Snapshot.id),
                   func.coalesce(func.sum(models.Snapshot.volume_size), 0))
            .join(models.Volume, models.Volume.id == models.Snapshot.volume_id)
            .where(_on_backend(models.Volume.host, backend),
                   models.Snapshot.deleted == false())
            .group_by(models.Snapshot.project_id)).all()
    for project, count, size in volumes:
        usage[project] = (int(count), int(size), 0, 0)
    for project, count, size in snapshots:
        vcount, vsize, _, _ = usage.get(project, (0, 0, 0, 0))
        usage[project] = (vcount, vsize, int(count), int(size))
    return usage
