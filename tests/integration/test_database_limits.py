"""The database refuses connections (MariaDB's per-user connection limit, as a busy or
restarting server would): transactions wait and retry instead of failing flows half-way,
and no volume is left in a transitional status."""

import concurrent.futures
import logging
import uuid

import pymysql
import pytest

from tests.integration import cluster
from tests.stack import Stack

pytestmark = pytest.mark.integration

USER_CONNECTION_LIMIT = 4


@pytest.fixture
def limited_mysql_url():
    url = cluster.create_database("mysql")
    name = url.rsplit("/", 1)[1].split("?")[0]
    user = "lim_%s" % uuid.uuid4().hex[:8]
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY 'pw' "
                    "WITH MAX_USER_CONNECTIONS %d" % (user, USER_CONNECTION_LIMIT))
        cur.execute("GRANT ALL ON %s.* TO '%s'@'127.0.0.1'" % (name, user))
    yield "mysql+pymysql://%s:pw@127.0.0.1/%s?charset=utf8mb4" % (user, name)
    with conn.cursor() as cur:
        cur.execute("DROP USER '%s'@'127.0.0.1'" % user)
    conn.close()
    cluster.drop_database(url)


@pytest.mark.skip(reason="starves past connect_retry_timeout under full-suite load (seen "
                         "2026-11-23: a request got 500 after 60 s of refusals; a re-run with "
                         "limit 4 hung); the retry itself is in common/db/session.py; fix the "
                         "fairness of the retry before re-enabling")
def test_refused_connections_are_retried(tmp_path, limited_mysql_url, caplog):
    # Pools allowed to open far more connections than the server grants this user.
    stack = Stack(tmp_path, database_url=limited_mysql_url,
                  overrides={"database.max_pool_size": 1, "database.max_overflow": 8,
                             "volume_flow_workers": 4}).start()
    try:
        with caplog.at_level(logging.WARNING, logger="common.db.session"):
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                ids = list(pool.map(lambda _: stack.create_volume(size=1)["id"], range(24)))
            final = [stack.wait_volume(v, ("available", "error"), timeout=120) for v in ids]
        assert [v["status"] for v in final] == ["available"] * 24
        assert any("No database connection" in r.getMessage() for r in caplog.records), \
            "the server never refused a connection: the test did not exercise the retry"
        assert len(stack.volume_files()) == 24
    finally:
        stack.stop()
