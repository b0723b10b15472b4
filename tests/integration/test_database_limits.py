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

USER_CONNECTION_LIMIT = 3


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


def test_refused_connections_are_retried(tmp_path, limited_mysql_url, caplog):
    # Pools allowed to open far more connections than the server grants this user.
    stack = Stack(tmp_path, database_url=limited_mysql_url,
                  overrides={"database.max_pool_size": 1, "database.max_overflow": 12,
                             "volume_flow_workers": 8}).start()
    try:
        with caplog.at_level(logging.WARNING, logger="common.db.session"):
            with concurrent.futures.ThreadPoolExecutor(12) as pool:
                ids = list(pool.map(lambda _: stack.create_volume(size=1)["id"], range(30)))
            final = [stack.wait_volume(v, ("available", "error"), timeout=120) for v in ids]
        assert [v["status"] for v in final] == ["available"] * 30
        assert any("No database connection" in r.getMessage() for r in caplog.records), \
            "the server never refused a connection: the test did not exercise the retry"
        assert len(stack.volume_files()) == 30
    finally:
        stack.stop()
