"""Retype and migration on the deployed databases (a fresh MariaDB and PostgreSQL database
each). MariaDB assigns an UPDATE's SET items left to right, so a status copied into
previous_status in the same statement must be assigned first; these runs keep that true.
tests/functional/test_volume_actions.py runs the same tests on SQLite."""

import pytest

from tests.functional import test_volume_actions as actions
from tests.integration import cluster

pytestmark = pytest.mark.integration


@pytest.fixture(params=["mysql", "postgresql"])
def make_db_stack(request, make_stack):
    url = cluster.create_database(request.param)
    try:
        yield lambda **kwargs: make_stack(database_url=url, **kwargs)
    finally:
        from common.db import session

        session.dispose()
        cluster.drop_database(url)


def test_retype_in_place(make_db_stack):
    actions.test_retype_in_place_when_the_pool_still_matches(make_db_stack)


def test_retype_across_backends(make_db_stack):
    actions.test_retype_across_backends_on_demand_moves_the_data(make_db_stack)


def test_migrate(make_db_stack):
    actions.test_migrate_volume_moves_the_data(make_db_stack)
