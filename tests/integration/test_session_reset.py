"""A pooled connection goes back without the pool's ROLLBACK round trip only when its last
transaction committed (common/db/session.py _skip_reset_after_commit), on MariaDB and
PostgreSQL; one given back any other way is still rolled back, so no transaction (and no
uncommitted write, no lock) ever travels to the next user of the connection."""

import pytest
from oslo_config import cfg
from sqlalchemy import text

from common.db import session
from tests.integration import cluster
from tests.stack import parse_once

pytestmark = pytest.mark.integration
CONF = cfg.CONF


@pytest.fixture(params=["mysql", "postgresql"])
def engine(request):
    parse_once()
    url = cluster.create_database(request.param)
    CONF.set_override("connection", url, group="database")
    CONF.set_override("max_pool_size", 1, group="database")
    CONF.set_override("max_overflow", 0, group="database")
    session.dispose()
    try:
        engine = session.get_engine()
        with session.writer() as s:
            s.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY, v INTEGER)"))
        yield engine
    finally:
        session.dispose()
        for name in ("connection", "max_pool_size", "max_overflow"):
            CONF.clear_override(name, group="database")
        cluster.drop_database(url)


def _count_rollbacks(engine):
    """The DB-API rollbacks SQLAlchemy sends (the pool's reset and Connection.rollback)."""
    seen = []
    original = engine.dialect.do_rollback

    def counting(dbapi_connection):
        seen.append(1)
        return original(dbapi_connection)

    engine.dialect.do_rollback = counting
    return seen


def test_committed_transactions_are_not_rolled_back_again(engine):
    rollbacks = _count_rollbacks(engine)
    for i in range(5):
        with session.writer() as s:
            s.execute(text("INSERT INTO probe VALUES (:i, 0)"), {"i": i})
        with session.reader() as s:
            assert s.execute(text("SELECT COUNT(*) FROM probe")).scalar() == i + 1
    assert rollbacks == []


def test_a_connection_given_back_mid_transaction_is_rolled_back(engine):
    rollbacks = _count_rollbacks(engine)
    abandoned = session._sessionmaker()
    abandoned.execute(text("INSERT INTO probe VALUES (100, 1)"))
    abandoned.close()  # no commit: the write must not survive, nor its transaction
    assert rollbacks == [1]  # the close's own rollback; none from the pool after it
    with session.reader() as s:  # the same (only) pooled connection
        assert s.execute(text("SELECT COUNT(*) FROM probe WHERE id = 100")).scalar() == 0


def test_a_failed_writer_is_rolled_back(engine):
    rollbacks = _count_rollbacks(engine)
    with pytest.raises(RuntimeError):
        with session.writer() as s:
            s.execute(text("INSERT INTO probe VALUES (200, 1)"))
            raise RuntimeError("the caller failed half-way")
    assert rollbacks == [1]
    with session.writer() as s:
        s.execute(text("INSERT INTO probe VALUES (201, 1)"))
    with session.reader() as s:
        rows = s.execute(text("SELECT id FROM probe WHERE id >= 200")).scalars().all()
    assert rows == [201]
    assert rollbacks == [1]


def _kill_server_side(engine, backend_id):
    """End one session from the server side, as a database restart ends them all."""
    import sqlalchemy

    other = sqlalchemy.create_engine(engine.url, poolclass=sqlalchemy.pool.NullPool)
    with other.connect() as conn:
        if engine.dialect.name == "mysql":
            conn.exec_driver_sql("KILL CONNECTION %d" % backend_id)
        else:
            conn.exec_driver_sql("SELECT pg_terminate_backend(%d)" % backend_id)
    other.dispose()


def test_a_connection_lost_mid_transaction_fails_as_unavailable(engine):
    """The database went away under a statement: the caller gets the driver's lost-connection
    error (the API's 503, a flow's retry), never the pool's bookkeeping failing on the dead
    connection (that was a 500), and the next transaction works on a new connection."""
    backend_query = ("SELECT CONNECTION_ID()" if engine.dialect.name == "mysql"
                     else "SELECT pg_backend_pid()")
    with pytest.raises(Exception) as failure:
        with session.writer() as s:
            s.execute(text("INSERT INTO probe VALUES (300, 1)"))
            _kill_server_side(engine, s.execute(text(backend_query)).scalar())
            s.execute(text("UPDATE probe SET v = 2 WHERE id = 300"))
    assert session.is_unavailable_error(failure.value), repr(failure.value)
    with session.reader() as s:
        assert s.execute(text("SELECT COUNT(*) FROM probe WHERE id = 300")).scalar() == 0
