"""Retype and migration on the deployed databases (a fresh MariaDB and PostgreSQL database
each). MariaDB assigns an UPDATE's SET items left to right, so a status copied into
previous_status in the same statement must be assigned first; these runs keep that true.
tests/functional/test_volume_actions.py runs the same tests on SQLite."""

import pytest

from tests.functional import test_volume_actions as actions

pytestmark = pytest.mark.integration


@pytest.fixture
def make_db_stack(make_stack, deployed_database):
    return lambda **kwargs: make_stack(database_url=deployed_database, **kwargs)


def test_retype_in_place(make_db_stack):
    actions.test_retype_in_place_when_the_pool_still_matches(make_db_stack)


def test_retype_across_backends(make_db_stack):
    actions.test_retype_across_backends_on_demand_moves_the_data(make_db_stack)


def test_migrate(make_db_stack):
    actions.test_migrate_volume_moves_the_data(make_db_stack)
