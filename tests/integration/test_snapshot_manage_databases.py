"""Snapshot manage/unmanage and the later-microversion list features on the deployed
databases (a fresh MariaDB and PostgreSQL database each): the quota charge a manage moves,
with_count's count query, the time comparison and glance_metadata filters.
tests/functional/test_snapshot_manage.py and test_list_features.py run them on SQLite."""

import pytest

from api import microversion
from tests.functional import test_list_features as lf
from tests.functional import test_snapshot_manage as sm

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(make_stack, deployed_database, monkeypatch):
    monkeypatch.setattr(microversion, "MAX_VERSION", (3, 70))
    return make_stack(database_url=deployed_database)


def test_snapshot_manage(stack):
    sm.test_manage_existing_snapshot_file(stack)


def test_snapshot_unmanage(stack):
    sm.test_unmanage_snapshot_leaves_storage(stack)


def test_snapshot_manage_over_quota(stack):
    sm.test_manage_snapshot_over_quota_is_413(stack)


def test_with_count(stack):
    lf.test_with_count_3_45(stack)


def test_glance_metadata_filter(stack):
    lf.test_glance_metadata_filter_3_4(stack)


def test_consumes_quota(stack):
    lf.test_consumes_quota_field_and_filter_3_65(stack)


def test_time_comparison_filters(stack):
    lf.test_time_comparison_filters_3_60(stack)
