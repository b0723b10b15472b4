"""Issue 5's quota guarantee on the deployed databases: 50 concurrent volume inserts against a
quota of 10 volumes insert exactly 10 on MariaDB and on PostgreSQL (a fresh database each),
the usage equals the recount, and the first charge of a project (its usage rows created
concurrently) does not fail. The in-process stack runs the same on SQLite
(tests/functional/test_quotas.py)."""

import concurrent.futures
import uuid

import pytest
from oslo_config import cfg

from common import exception, quota
from common.db import api as db
from common.db import migration, quota_api, session
from tests.integration import cluster
from tests.stack import parse_once

pytestmark = pytest.mark.integration
CONF = cfg.CONF


@pytest.fixture(params=["mysql", "postgresql"])
def database(request):
    parse_once()
    url = cluster.create_database(request.param)
    CONF.set_override("connection", url, group="database")
    CONF.set_override("quota_volumes", 10)
    CONF.set_override("quota_gigabytes", 1000)
    session.dispose()
    try:
        migration.db_sync()
        yield url
    finally:
        session.dispose()
        CONF.clear_override("connection", group="database")
        CONF.clear_override("quota_volumes")
        CONF.clear_override("quota_gigabytes")
        cluster.drop_database(url)


def test_concurrent_creates_against_quota(database):
    vtype = db.volume_type_create("gold-" + uuid.uuid4().hex[:6])

    def create(i):
        try:
            quota.create_volume({"project_id": "p", "user_id": "u", "size": 2,
                                 "status": "creating", "attach_status": "detached",
                                 "volume_type_id": vtype.id, "name": "v%d" % i}, {})
            return "created"
        except exception.OverLimit:
            return "over"

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(create, range(50)))
    assert results.count("created") == 10, results
    assert results.count("over") == 40
    usage = quota_api.usage_get_all("p")
    assert usage["volumes"] == 10 and usage["gigabytes"] == 20
    assert usage["volumes_" + vtype.name] == 10
    assert quota_api.recount()["p"] == {k: v for k, v in usage.items() if v}
    assert quota.check() == []
