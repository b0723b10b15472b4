"""GET /metrics on the deployed databases (a fresh MariaDB and PostgreSQL database each): the
scrape's GROUP BY counts, pool gauges and operation ages equal the database's there too.
tests/functional/test_metrics.py runs the same checks on SQLite."""

import pytest

from tests.functional import test_metrics as t

pytestmark = pytest.mark.integration


def test_scrape_matches_the_database(make_stack, deployed_database):
    t.test_scrape_matches_the_database(make_stack(database_url=deployed_database))


def test_operations_in_flight(make_stack, deployed_database):
    t.test_operations_in_flight(
        lambda **kwargs: make_stack(database_url=deployed_database, **kwargs))
