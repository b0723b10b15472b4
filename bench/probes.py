"""Probes: small in-process measurements, each isolating one cost the profiles of the big
benchmarks pointed at, so a change to it can be checked in seconds. Each figure is shown with
a reference (the same work done the cheap way) where there is one; none has a target.

  body validation    api.schemas.validate (as every POST/PUT calls it) vs a validator
                     built once for the schema
  MariaDB connect    a new DB-API connection as the product's engine opens one (PyMySQL's
                     default TLS "preferred" mode) vs with ssl_disabled
  pool churn         connections the product's engine opens for bursts of short transactions
                     from 64 threads (the RPC executor's size), a pause between bursts
  detail query       the SQL of volume_get_all (first page of 1000 among 100k) on MariaDB:
                     as rendered (deleted IS false) vs deleted = false; whether it filesorts
  flow overhead      volume_worker.flows.common.run_flow of three no-op tasks
  volume load        db.volume_get (one volume row, as GET /volumes/{id} loads it), SQLite
  volume flows       CPU of the volume service's create_volume and delete_volume flows per
                     volume (flow.run in this thread, file driver, SQLite), over 200 volumes
"""

import contextlib
import os
import threading
import time

import jsonschema
from oslo_config import cfg
from sqlalchemy import event, select, text

from bench.common import summary_ms

CONF = cfg.CONF


@contextlib.contextmanager
def configured_db(kind, workdir):
    """Point this process's Lamina config at a fresh database of `kind` (migrated); yields
    its URL. fake:// transport, so RPC clients can be built."""
    from common import rpc
    from common.db import migration, session
    from tests.integration import cluster
    from tests.stack import parse_once

    parse_once()
    import scheduler.service  # noqa: F401  (registers options)
    import volume_worker.service  # noqa: F401

    if kind == "sqlite":
        os.makedirs(workdir, exist_ok=True)
        path = os.path.join(workdir, "probe.sqlite")
        if os.path.exists(path):
            os.remove(path)
        url = "sqlite:///" + path
    else:
        url = cluster.create_database(kind)
    CONF.set_override("connection", url, group="database")
    rpc.use_transport_url("fake://")
    session.dispose()
    try:
        migration.db_sync()
        yield url
    finally:
        session.dispose()
        CONF.clear_override("connection", group="database")
        rpc.cleanup()
        rpc.use_transport_url(None)
        if kind != "sqlite":
            cluster.drop_database(url)


def _per_call(fn, n, warm=3):
    for _ in range(warm):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return summary_ms(times)


def body_validation(results):
    from api import schemas

    body = {"volume": {"size": 1, "name": "probe"}}
    product = _per_call(lambda: schemas.validate(body, schemas.volume_create), 200)
    validator = jsonschema.validators.validator_for(schemas.volume_create)(
        schemas.volume_create)
    cached = _per_call(lambda: validator.validate(body), 2000)
    results.add("probe", "in-process", "POST body validation p50", product["p50"], "ms",
                note="api.schemas.validate(body, volume_create)")
    results.add("probe", "in-process", "  same, validator built once p50", cached["p50"],
                "ms", note="reference")


def mariadb_connect(results):
    from common.db import session

    engine = session.get_engine()
    cargs, cparams = engine.dialect.create_connect_args(engine.url)

    def connect(extra):
        conn = engine.dialect.connect(*cargs, **dict(cparams, **extra))
        conn.close()

    product = _per_call(lambda: connect({}), 30)
    no_tls = _per_call(lambda: connect({"ssl_disabled": True}), 30)
    results.add("probe", "in-process, MariaDB", "new DB connection p50", product["p50"], "ms",
                note="as the engine opens one (PyMySQL default TLS 'preferred')")
    results.add("probe", "in-process, MariaDB", "  same, ssl_disabled p50", no_tls["p50"],
                "ms", note="reference")


def pool_churn(results, threads=64, bursts=5, per_thread=5):
    """Bursts of `threads` concurrent short transactions with a pause between them, as RPC
    requests arrive: counts the connections the engine opens."""
    from common.db import session
    from common.db.session import reader

    engine = session.get_engine()
    opened = []
    listener = lambda *a: opened.append(1)
    event.listen(engine, "connect", listener)

    def work():
        for _ in range(per_thread):
            with reader() as s:
                s.execute(text("SELECT SLEEP(0.002)"))

    try:
        t = time.perf_counter()
        for _ in range(bursts):
            workers = [threading.Thread(target=work) for _ in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            time.sleep(0.2)
        took = time.perf_counter() - t
    finally:
        event.remove(engine, "connect", listener)
    results.add("probe", "in-process, MariaDB", "connections opened, %d bursts x %d threads"
                % (bursts, threads), len(opened), "conns",
                note="[database] max_pool_size=%d max_overflow=%d; %d txns in %.1f s"
                     % (CONF.database.max_pool_size, CONF.database.max_overflow,
                        bursts * threads * per_thread, took))


def detail_query(results, url, rows=100000):
    from bench import listing
    from common import context
    from common.db import api as db
    from common.db import models, session

    listing.insert_volumes(url, 0, rows)
    ctx = context.RequestContext(user_id="admin", project_id=listing.PROJECT, is_admin=True)
    stmt = db.paginate(db._volume_scope(ctx, select(models.Volume)), models.Volume,
                       ("created_at",), ("desc",), None, 1000)
    engine = session.get_engine()
    sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
    variants = {"as rendered": sql,
                "deleted = false": sql.replace("volumes.deleted IS false",
                                               "volumes.deleted = false")}
    for label, query in variants.items():
        with engine.connect() as conn:
            plan = [tuple(r) for r in conn.exec_driver_sql("EXPLAIN " + query)]
            timing = _per_call(lambda q=query, c=conn: c.exec_driver_sql(q).fetchall(), 10)
        filesort = any("filesort" in str(r[-1]) for r in plan)
        results.add("probe", "in-process, MariaDB",
                    "detail SQL, 1000 of %dk, %s p50" % (rows // 1000, label), timing["p50"],
                    "ms", note="filesort" if filesort else "no filesort")
        results.detail("probe/detail_query/%s" % label, {"sql": query, "explain": plan,
                                                         "ms": timing})
    orm = _per_call(lambda: db.volume_get_all(ctx, limit=1000), 10)
    results.add("probe", "in-process, MariaDB", "db.volume_get_all(limit=1000) p50",
                orm["p50"], "ms", note="query + ORM objects, %dk rows" % (rows // 1000))


def flow_overhead(results):
    from taskflow import task
    from taskflow.patterns import linear_flow

    from volume_worker.flows import common

    class Nothing(task.Task):
        def execute(self):
            return None

    def run():
        flow = linear_flow.Flow("probe").add(Nothing(name="a"), Nothing(name="b"),
                                             Nothing(name="c"))
        common.run_flow(flow, {})

    timing = _per_call(run, 200)
    results.add("probe", "in-process", "run_flow, 3 no-op tasks p50", timing["p50"], "ms",
                note="TaskFlow engine load+compile+run")


def volume_load(results):
    from common import context
    from common.db import api as db

    vtype = db.volume_type_get_by_name("__DEFAULT__")
    volume = db.volume_create({"project_id": "probe", "user_id": "admin", "size": 1,
                               "status": "available", "availability_zone": "nova",
                               "volume_type_id": vtype.id}, metadata={"k": "v"})
    ctx = context.RequestContext(user_id="admin", project_id="probe", is_admin=True)
    timing = _per_call(lambda: db.volume_get(ctx, volume.id), 300)
    results.add("probe", "in-process, SQLite", "db.volume_get (one row) p50", timing["p50"],
                "ms", note="joined type + selectin metadata + selectin extra_specs")


def volume_flows(results, workdir, n=200):
    """CPU seconds (this thread's) of create_volume.run and delete_volume.run per volume, as
    the volume service runs them: rows as the API and scheduler leave them (`creating` on
    the host with a pool claim and the workers row; `deleting` with its workers row)."""
    from common import context
    from common.db import api as db
    from common.db import models
    from volume_worker import drivers
    from volume_worker.flows import create_volume, delete_volume

    backend, host = "probe_file", "probe@probe_file"
    driver = drivers.load_driver(backend)
    CONF.set_override("volume_driver", "file", group=backend)
    CONF.set_override("file_volume_dir", os.path.join(workdir, "probe-volumes"), group=backend)
    os.makedirs(os.path.join(workdir, "probe-volumes", "pool0"), exist_ok=True)
    driver.do_setup()
    db.pools_report(host, driver.get_pools())
    pool = host + "#pool0"
    vtype = db.volume_type_get_by_name("__DEFAULT__")
    ctx = context.RequestContext(user_id="admin", project_id="probe", is_admin=True)
    ids = []
    for _ in range(n + 3):
        volume = db.volume_create({"project_id": "probe", "user_id": "admin", "size": 1,
                                   "status": "creating", "availability_zone": "nova",
                                   "volume_type_id": vtype.id, "host": pool})
        db.worker_set_host("volume", volume.id, host)
        db.pool_claim(pool, 1)
        ids.append(volume.id)

    def cpu_per_volume(fn):
        times = []
        for vid in ids:
            t = time.thread_time()
            fn(vid)
            times.append(time.thread_time() - t)
        return summary_ms(times[3:])

    create = cpu_per_volume(lambda vid: create_volume.run(ctx, driver, host, vid))
    for vid in ids:  # as the API's delete leaves it
        db.conditional_update(models.Volume, vid, {"status": "deleting"},
                              {"status": "available"})
        db.worker_claim("volume", vid, "delete", host=host)
    delete = cpu_per_volume(lambda vid: delete_volume.run(ctx, driver, host, vid))
    for name, timing in (("create_volume", create), ("delete_volume", delete)):
        results.add("probe", "in-process, SQLite", "%s flow CPU per volume, mean" % name,
                    timing["mean"], "ms", note="file driver, %d volumes; p50 %.2f ms"
                    % (n, timing["p50"]))
        results.detail("probe/volume_flows/%s" % name, timing)


def run(results, workdir, mariadb=True, detail_rows=100000):
    body_validation(results)
    with configured_db("sqlite", workdir):
        flow_overhead(results)
        volume_load(results)
        volume_flows(results, workdir)
    if mariadb:
        with configured_db("mysql", workdir) as url:
            mariadb_connect(results)
            pool_churn(results)
            detail_query(results, url, detail_rows)
