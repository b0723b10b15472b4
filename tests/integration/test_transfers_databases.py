"""Volume transfers on the deployed databases (a fresh MariaDB and PostgreSQL database each):
racing accepts and deletes of one transfer (exactly one wins), and two transfers accepted at
once in opposite directions (both go through: the usage rows are locked in one order), with
the usage of every project equal to the recount afterwards. tests/functional/test_transfers.py
runs the same rules on SQLite."""

import pytest

from api import microversion
from tests import races
from tests.functional import test_transfers as t

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(make_stack, deployed_database, monkeypatch):
    monkeypatch.setattr(microversion, "MAX_VERSION", (3, 59))
    return make_stack(database_url=deployed_database)


def test_transfer_and_races(stack):
    t.test_transfer_with_snapshots_moves_them_and_their_quota(stack)
    t.test_racing_accepts_and_deletes_exactly_one_wins(stack)


def test_opposite_transfers_at_once(stack):
    for _ in range(3):
        mine, my_snaps = t.volume_with_snapshots(stack, size=1, snapshots=1)
        theirs, their_snaps = t.volume_with_snapshots(stack, size=2, snapshots=1,
                                                      token=t.TAKER, project="p2")
        to_p2 = t.offer(stack, mine)
        to_p1 = t.offer(stack, theirs, token=t.TAKER, project="p2")
        outcomes = races.race((t.accept, stack, to_p2, t.TAKER, "p2"),
                              (t.accept, stack, to_p1, t.GIVER, "p1"))
        assert [resp.status_code for _s, _a, resp in outcomes] == [202, 202], \
            [resp.text for _s, _a, resp in outcomes]
        assert t.volume_row(mine).project_id == "p2" and t.snapshot_projects(my_snaps) == {"p2"}
        assert t.volume_row(theirs).project_id == "p1"
        assert t.snapshot_projects(their_snaps) == {"p1"}
        t.recounted("p1", "p2")
