"""GET /volumes/detail?limit=1000 with many volumes in the database.

The rows go in directly (SQLAlchemy Core bulk inserts into the volumes table: available, the
default volume type, a host), into one project the benchmark then lists as its admin."""

import datetime
import time
import uuid

from sqlalchemy import create_engine, select

from bench.common import summary_ms
from common.db import models

TARGET_MS = 50.0  # detail page of 1000 among 100k, MariaDB and PostgreSQL (issue 14)
PROJECT = "bench-list"


def _engine(db_url):
    if db_url.startswith("sqlite"):
        return create_engine(db_url, connect_args={"timeout": 60})
    return create_engine(db_url)


def default_type_id(engine):
    with engine.connect() as conn:
        return conn.execute(select(models.VolumeType.id).where(
            models.VolumeType.name == "__DEFAULT__")).scalar_one()


def insert_volumes(db_url, start, count, batch=5000, project=PROJECT):
    """Insert volumes start..start+count-1 (created_at one second apart, so the default order
    is the insertion order even where DATETIME keeps whole seconds, as on MariaDB); returns
    their ids in insertion order and the seconds it took."""
    engine = _engine(db_url)
    type_id = default_type_id(engine)
    table = models.Volume.__table__
    base = datetime.datetime(2024, 1, 1)
    ids = []
    t0 = time.perf_counter()
    try:
        for lo in range(start, start + count, batch):
            rows = []
            for i in range(lo, min(lo + batch, start + count)):
                when = base + datetime.timedelta(seconds=i)
                vid = str(uuid.uuid4())
                ids.append(vid)
                rows.append({
                    "id": vid, "project_id": project, "user_id": "admin",
                    "name": "bulk-%06d" % i, "description": None, "size": 1,
                    "status": "available", "attach_status": "detached",
                    "migration_status": None, "availability_zone": "nova",
                    "host": "bench@file#pool0", "volume_type_id": type_id,
                    "bootable": False, "multiattach": False,
                    "provider_location": "/bench/volume-%s" % vid, "launched_at": when,
                    "terminated_at": None, "deleted": False, "deleted_at": None,
                    "created_at": when, "updated_at": when})
            with engine.begin() as conn:
                conn.execute(table.insert(), rows)
    finally:
        engine.dispose()
    return ids, time.perf_counter() - t0


def delete_inserted(db_url, project=PROJECT):
    engine = _engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(models.Volume.__table__.delete().where(
                models.Volume.project_id == project))
    finally:
        engine.dispose()


def _time_requests(client, path, requests, warm=2, expect=None):
    times = []
    for i in range(warm + requests):
        t = time.perf_counter()
        resp = client.get(path)
        elapsed = time.perf_counter() - t
        if resp.status_code != 200:
            raise RuntimeError("GET %s: %s %s" % (path, resp.status_code, resp.text[:200]))
        if expect is not None:
            got = len(resp.json()["volumes"])
            if got != expect:
                raise RuntimeError("GET %s returned %d volumes, not %d" % (path, got, expect))
        if i >= warm:
            times.append(elapsed)
    return summary_ms(times), len(resp.content)


def _in_process_query(requests):
    """The embedded stack only: the DB query (ORM objects, no HTTP, no JSON) alone."""
    from common import context
    from common.db import api as db

    ctx = context.RequestContext(user_id="admin", project_id=PROJECT, is_admin=True)
    times = []
    for i in range(requests + 2):
        t = time.perf_counter()
        rows = db.volume_get_all(ctx, limit=1000)
        if i >= 2:
            times.append(time.perf_counter() - t)
    assert len(rows) == 1000
    return summary_ms(times)


def detail_latency(target, results, sizes, requests, at_size=None):
    """Fill the volumes table up to each size in turn and time the first detail page;
    at_size(size), when given, runs once the table holds that many (bench.lifecycle.growth:
    the create path measured again with that many volumes in the database).

    The rows go into the client's project (its Keystone project id where the set-up uses
    Keystone); a set-up with another schema (Cinder) inserts them itself
    (target.insert_volumes / delete_inserted)."""
    client = target.client(PROJECT)
    project = client.project_id
    own_insert = getattr(target, "insert_volumes", None)
    reference = getattr(target, "reference", False)
    ids = []
    try:
        for size in sizes:
            if own_insert:
                more, took = own_insert(len(ids), size - len(ids), project)
            else:
                more, took = insert_volumes(target.db_url, len(ids), size - len(ids),
                                            project=project)
            ids += more
            print("    inserted %d rows (%d in all) in %.1f s" % (len(more), len(ids), took),
                  flush=True)
            setup = target.name
            label = "%dk vols" % (size // 1000) if size >= 1000 else "%d vols" % size
            page, nbytes = _time_requests(client, "/volumes/detail?limit=1000", requests,
                                          expect=min(1000, size))
            results.add("detail page", setup, "%s: first page p50" % label, page["p50"], "ms",
                        TARGET_MS if size >= 100000 and not reference else None,
                        note="GET /volumes/detail?limit=1000, %d KiB" % (nbytes // 1024),
                        key="detail_p50_%d" % size)
            results.add("detail page", setup, "%s: first page p90" % label, page["p90"], "ms")
            # A page in the middle (marker pagination), and the summary list.
            marker = ids[len(ids) // 2]
            mid, _ = _time_requests(client, "/volumes/detail?limit=1000&marker=" + marker,
                                    max(5, requests // 2), expect=min(1000, len(ids) // 2))
            results.add("detail page", setup, "%s: middle page (marker) p50" % label,
                        mid["p50"], "ms")
            summ, _ = _time_requests(client, "/volumes?limit=1000", max(5, requests // 2),
                                     expect=min(1000, size))
            results.add("detail page", setup, "%s: summary list p50" % label, summ["p50"],
                        "ms", note="GET /volumes?limit=1000")
            detail = {"first_page_ms": page, "middle_page_ms": mid, "summary_ms": summ,
                      "bytes": nbytes, "insert_s": took}
            if target.name == "embedded":
                query = _in_process_query(max(5, requests // 2))
                results.add("detail page", setup, "%s: db.volume_get_all alone p50" % label,
                            query["p50"], "ms", note="in-process, no HTTP/rendering")
                detail["db_query_ms"] = query
            results.detail("detail_page/%s/%d" % (setup, size), detail)
            if at_size is not None:
                at_size(size)
    finally:
        if own_insert:
            target.delete_inserted(project)
        else:
            delete_inserted(target.db_url, project=project)
