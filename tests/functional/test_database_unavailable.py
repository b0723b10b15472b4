"""The database away: the API answers 503 serviceUnavailable with Retry-After (never a 500,
never a request held for connect_retry_timeout), and when the database is back the same
processes serve again (the services' periodic tasks survived the outage). The outage is
real: the stack's database URL is switched to a MariaDB port nothing listens on, so every
connection is refused, then switched back (tests/integration/test_faults.py restarts a real
MariaDB under load)."""

import pytest

from common.db import session
from tests import stack as stack_mod
from tests.integration.cluster import free_port


@pytest.fixture
def stack(tmp_path):
    s = stack_mod.Stack(tmp_path, overrides={"database.api_connect_retry_timeout": 1,
                                             "database.connect_retry_timeout": 1}).start()
    yield s
    s.stop()


def switch_database(stack, url):
    stack.override("connection", url, group="database")
    session.dispose()


def test_api_answers_503_with_retry_after_while_the_database_is_away(stack):
    volume = stack.create_volume()
    stack.wait_volume(volume["id"], ["available"])
    sqlite_url = stack.database_url

    switch_database(stack, "mysql+pymysql://root@127.0.0.1:%d/lamina" % free_port())
    for method, path, body in (("GET", "/volumes/detail", None),
                               ("GET", "/volumes/" + volume["id"], None),
                               ("POST", "/volumes", {"volume": {"size": 1}}),
                               ("DELETE", "/volumes/" + volume["id"], None)):
        resp = stack.request(method, path, body)
        assert resp.status_code == 503, (method, path, resp.status_code, resp.text)
        assert int(resp.headers["Retry-After"]) > 0
        fault = resp.json()["serviceUnavailable"]
        assert fault["code"] == 503 and "database" in fault["message"]

    switch_database(stack, sqlite_url)
    resp = stack.request("GET", "/volumes/" + volume["id"])
    assert resp.status_code == 200 and resp.json()["volume"]["status"] == "available"
    # nothing the refused requests asked for happened: one volume, still available
    assert [v["id"] for v in stack.request("GET", "/volumes").json()["volumes"]] == \
        [volume["id"]]
    # the scheduler and the volume service work on
    again = stack.create_volume()
    stack.wait_volume(again["id"], ["available"])
