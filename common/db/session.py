"""Engine and transactions.

Every service shares one database. ``writer()`` and ``reader()`` open a short transaction; on
SQLite (the embedded default) a writer takes the write lock at BEGIN so that a read-then-write
transaction waits for the lock instead of failing with "database is locked" half-way through.
"""

import contextlib
import logging
import os
import random
import threading
import time

from oslo_config import cfg
from sqlalchemy import create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import sessionmaker

LOG = logging.getLogger(__name__)

database_opts = [
    cfg.StrOpt("connection", secret=True,
               default="sqlite:///lamina.sqlite",
               help="SQLAlchemy URL of the database every service shares: "
                    "sqlite:///path (embedded), mysql+pymysql://user:pw@host/db or "
                    "postgresql+psycopg2://user:pw@host/db (deployed)."),
    cfg.IntOpt("max_pool_size", default=10, min=1,
               help="Connections kept open per process (server databases only). A process "
                    "holds at most max_pool_size + max_overflow: size the database's "
                    "max_connections for the sum over every process."),
    cfg.IntOpt("max_overflow", default=10, min=0,
               help="Connections opened beyond max_pool_size under load; past that, "
                    "threads wait up to pool_timeout for a free one."),
    cfg.IntOpt("pool_timeout", default=30, min=1,
               help="Seconds to wait for a free connection of this process's pool."),
    cfg.IntOpt("connect_retry_timeout", default=60, min=0,
               help="Seconds a transaction keeps retrying to get a connection when the "
                    "database refuses one (too many connections, restarting, unreachable) "
                    "before the error reaches the caller. Nothing has run at that point, so "
                    "retrying is safe."),
    cfg.IntOpt("api_connect_retry_timeout", default=3, min=0,
               help="connect_retry_timeout for the API's requests: a client waits no longer "
                    "than this for a database connection; then the API answers 503 with "
                    "Retry-After instead of holding the request while the database is away."),
    cfg.IntOpt("sqlite_busy_timeout", default=60, min=1,
               help="Seconds an SQLite writer waits for the write lock."),
    cfg.BoolOpt("connection_debug", default=False, help="Log every SQL statement."),
]

CONF = cfg.CONF
CONF.register_opts(database_opts, group="database")

_lock = threading.Lock()
_engine = None
_sessionmaker = None
_tls = threading.local()


def _make_engine(url):
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = create_engine(url, echo=CONF.database.connection_debug,
                               connect_args={"check_same_thread": False,
                                             "timeout": CONF.database.sqlite_busy_timeout},
                               pool_size=CONF.database.max_pool_size, max_overflow=-1)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            # Let SQLAlchemy's begin event, not pysqlite, decide how transactions start.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE" if getattr(_tls, "write", False) else "BEGIN")

        return engine
    kwargs = dict(pool_size=CONF.database.max_pool_size, max_overflow=CONF.database.max_overflow,
                  pool_timeout=CONF.database.pool_timeout, pool_pre_ping=True,
                  pool_recycle=3600, echo=CONF.database.connection_debug)
    if url.startswith("mysql"):
        if "ssl" not in url:
            # PyMySQL otherwise builds a TLS context for every new connection (~20 ms of CPU)
            # even when the server has TLS off; ask for TLS in the URL (ssl_ca=...) to use it.
            kwargs["connect_args"] = {"ssl_disabled": True}
        # READ COMMITTED: a conditional UPDATE sees rows committed by other services at once,
        # and gap locks of REPEATABLE READ do not serialise unrelated inserts.
        kwargs["isolation_level"] = "READ COMMITTED"
    # The pool's own reset (a ROLLBACK on every return) is replaced by _reset_on_return.
    kwargs["pool_reset_on_return"] = None
    engine = create_engine(url, **kwargs)
    _skip_reset_after_commit(engine)
    return engine


def _skip_reset_after_commit(engine):
    """Give a connection back to the pool without a ROLLBACK round trip when its last
    transaction ended in a COMMIT or a ROLLBACK of its own (every writer() and reader()
    ends so): it holds no transaction then. A connection given back any other way (a failed
    COMMIT, a session closed mid-transaction) is rolled back as the pool's default reset
    would."""
    ended = "lamina_transaction_ended"

    def mark(conn, value):
        # An invalidated connection (lost under a statement) is not asked: reading its info
        # would try to reconnect inside the failing transaction, and its record is discarded
        # anyway; a closed one has nothing to mark.
        if conn.closed or conn.invalidated:
            return
        if value:
            conn.info[ended] = True
        else:
            conn.info.pop(ended, None)

    @event.listens_for(engine, "begin")
    def _began(conn):
        mark(conn, False)

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _ending(conn):
        mark(conn, True)

    @event.listens_for(engine, "handle_error")
    def _failed(context):
        # a COMMIT or ROLLBACK that failed may have left the transaction open
        if context.connection is not None:
            mark(context.connection, False)

    @event.listens_for(engine, "reset")
    def _reset_on_return(dbapi_conn, record, reset_state):
        clean = record.info.pop(ended, False)
        if reset_state.terminate_only or reset_state.transaction_was_reset or clean:
            return
        engine.dialect.do_rollback(dbapi_conn)


def get_engine():
    global _engine, _sessionmaker
    with _lock:
        if _engine is None:
            _engine = _make_engine(CONF.database.connection)
            _sessionmaker = sessionmaker(bind=_engine, expire_on_commit=False)
        return _engine


def dispose():
    """Forget the engine (tests switch databases; forked children must not share sockets)."""
    global _engine, _sessionmaker
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine = None
        _sessionmaker = None


def _connected_session():
    """A session in a transaction that already holds its connection.

    Getting the connection is where an overloaded or restarting database fails (MariaDB's
    "Too many connections", PostgreSQL's "too many clients", a refused socket, this pool's
    own limit). Nothing has been read or written yet, so that step is retried with backoff
    instead of failing a flow half-way or leaving its revert unable to run."""
    get_engine()
    retry_timeout = getattr(_tls, "connect_retry_timeout", None)
    if retry_timeout is None:
        retry_timeout = CONF.database.connect_retry_timeout
    deadline = time.monotonic() + retry_timeout
    delay = 0.1
    while True:
        session = _sessionmaker()
        try:
            session.begin()
            session.connection()
            return session
        except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError) as exc:
            session.close()
            if time.monotonic() + delay > deadline:
                raise
            LOG.warning("No database connection (%s); retrying in %.1f s",
                        str(exc).splitlines()[0], delay)
            # Jittered, so threads refused together do not all come back together.
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 2.0)


def set_thread_connect_retry_timeout(seconds):
    """Bound this thread's wait for a connection (None: connect_retry_timeout again). The
    API's request threads use api_connect_retry_timeout: a client gets 503 soon rather
    than a request held for a minute."""
    _tls.connect_retry_timeout = seconds


def is_unavailable_error(exc):
    """Whether exc says the database cannot be reached or answer now (refused, restarting,
    lost connection, pool exhausted): the caller may retry later; nothing was committed."""
    return isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError,
                            sa_exc.TimeoutError)) or (
        isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated)


def committed_despite(exc, landed):
    """Whether a write that failed with exc committed all the same.

    The server may commit and then lose the connection before its answer arrives (a
    database restarted or killed under the COMMIT): the caller sees "Lost connection" for
    a transaction that is in. For a write whose effect can be recognised, landed(session)
    reads it back in a new transaction (waiting for the database as any transaction does);
    an error that is not about the connection is never such a case."""
    if not is_unavailable_error(exc):
        return False
    with _transaction() as session:
        return bool(landed(session))


def write_once_more_if_lost(write, landed):
    """write() (one transaction whose conditional UPDATEs make a second send harmless),
    sent again once if the connection was lost under it and landed(session) finds it did
    not commit: the last step of a delete, whose storage is already gone, must not end the
    volume in error_deleting only because the database restarted at that moment."""
    try:
        return write()
    except Exception as exc:
        if not is_unavailable_error(exc):
            raise
        if committed_despite(exc, landed):
            LOG.warning("The database went away under a commit that had landed")
            return None
        LOG.warning("The database went away under a write (%s); sending it again",
                    str(exc).splitlines()[0])
        return write()


@contextlib.contextmanager
def _transaction():
    session = _connected_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextlib.contextmanager
def writer():
    _tls.write = True
    try:
        with _transaction() as session:
            yield session
    finally:
        _tls.write = False


@contextlib.contextmanager
def reader():
    with _transaction() as session:
        yield session
