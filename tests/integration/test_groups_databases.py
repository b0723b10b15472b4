"""Generic volume groups on the deployed databases (a fresh MariaDB and PostgreSQL database
each): the group lifecycle, a group snapshot and groups from it and from the group (data
compared), the groups quota, and a failed group delete. tests/functional/test_groups.py runs
the same on SQLite."""

import pytest

from tests.functional import test_groups as g
from tests.integration import cluster

pytestmark = pytest.mark.integration


@pytest.fixture(params=["mysql", "postgresql"])
def stack(request, make_stack):
    url = cluster.create_database(request.param)
    try:
        yield make_stack(database_url=url)
    finally:
        from common.db import session

        session.dispose()
        cluster.drop_database(url)


def test_group_lifecycle(stack):
    g.test_group_type_name_taken_and_in_use(stack)
    g.test_group_lifecycle(stack)


def test_group_snapshot_and_groups_from_sources(stack):
    g.test_group_snapshot_and_group_from_it_data_equal(stack)


def test_groups_quota(stack):
    g.test_groups_quota(stack)


def test_failed_group_delete(stack):
    g.test_group_delete_failure_at_each_step(stack, "delete_group.delete_members")
