"""Volume transfers through unchanged python-cinderclient against the in-process stack: its
Python API at 3.0 (os-volume-transfer) and 3.55/3.59 (volume-transfers, snapshots, sort), and
the `cinder transfer-create / transfer-list / transfer-show / transfer-accept /
transfer-delete` commands (noauth: user:project tokens)."""

import pytest
from cinderclient import client as cinder_client
from cinderclient import exceptions as cinder_exc
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

from api import microversion
from common import quota
from common.db import api as db
from tests.integration import scenarios
from tests.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("transfers-clients")).start()
    yield s
    s.stop()


@pytest.fixture
def above_the_maximum(monkeypatch):
    # 3.55-3.59 are built but above the advertised maximum (docs/api.md).
    monkeypatch.setattr(microversion, "MAX_VERSION", (3, 59))


def cinder(stack, token, project, version="3.0"):
    auth = token_endpoint.Token("%s/v3/%s" % (stack.url, project), token)
    return cinder_client.Client(version, session=ks_session.Session(auth=auth))


def available_volume(client, size=1):
    volume = client.volumes.create(size, name="gift")
    scenarios.wait_for(lambda: client.volumes.get(volume.id).status == "available")
    return volume


def test_cinderclient_python_api(stack):
    giver, taker = cinder(stack, "u1:p1", "p1"), cinder(stack, "u2:p2", "p2")
    volume = available_volume(giver)
    transfer = giver.transfers.create(volume.id, name="to p2")
    assert transfer.auth_key and transfer.volume_id == volume.id
    assert giver.volumes.get(volume.id).status == "awaiting-transfer"
    assert [t.id for t in giver.transfers.list()] == [transfer.id]
    assert [t.id for t in giver.transfers.list(detailed=False)] == [transfer.id]
    shown = giver.transfers.get(transfer.id)
    assert shown.name == "to p2" and not hasattr(shown, "auth_key")
    # the taker does not see it; a wrong key is refused
    assert taker.transfers.list() == []
    with pytest.raises(cinder_exc.NotFound):
        taker.transfers.get(transfer.id)
    with pytest.raises(cinder_exc.BadRequest):
        taker.transfers.accept(transfer.id, "0" * 16)
    accepted = taker.transfers.accept(transfer.id, transfer.auth_key)
    assert accepted.volume_id == volume.id
    assert taker.volumes.get(volume.id).status == "available"
    with pytest.raises(cinder_exc.NotFound):
        giver.volumes.get(volume.id)
    # withdrawn: the volume is available again
    again = taker.transfers.create(volume.id)
    taker.transfers.delete(again.id)
    assert taker.volumes.get(volume.id).status == "available"
    with pytest.raises(cinder_exc.NotFound):
        taker.transfers.get(again.id)
    assert quota.check() == []


def test_cinderclient_with_snapshots_at_3_55(stack, above_the_maximum):
    giver = cinder(stack, "u1:p1", "p1", "3.59")
    taker = cinder(stack, "u2:p2", "p2", "3.59")
    volume = available_volume(giver)
    snapshot = giver.volume_snapshots.create(volume.id)
    scenarios.wait_for(lambda: giver.volume_snapshots.get(snapshot.id).status == "available")
    first = giver.transfers.create(volume.id, name="b", no_snapshots=True)
    assert first.no_snapshots is True and first.source_project_id == "p1"
    giver.transfers.delete(first.id)
    other = available_volume(giver)
    kept = giver.transfers.create(other.id, name="a")
    transfer = giver.transfers.create(volume.id, name="c")
    assert transfer.no_snapshots is False
    assert [t.name for t in giver.transfers.list(sort="name:asc")] == ["a", "c"]
    assert giver.transfers.get(transfer.id).accepted is False
    taker.transfers.accept(transfer.id, transfer.auth_key)
    assert taker.volume_snapshots.get(snapshot.id).status == "available"
    with pytest.raises(cinder_exc.NotFound):
        giver.volume_snapshots.get(snapshot.id)
    giver.transfers.delete(kept.id)
    assert quota.check() == []


def test_cinder_cli(stack):
    volume = available_volume(cinder(stack, "u1:p1", "p1"))
    code, out = scenarios.cinder_cli(stack.url, "transfer-create", "--name", "cli", volume.id,
                                     user="u1")
    assert code == 0, out
    transfer_id = scenarios.table_field(out, "id")
    auth_key = scenarios.table_field(out, "auth_key")
    code, out = scenarios.cinder_cli(stack.url, "transfer-list", user="u1")
    assert code == 0 and transfer_id in out and "cli" in out, out
    code, out = scenarios.cinder_cli(stack.url, "transfer-show", transfer_id, user="u1")
    assert code == 0 and scenarios.table_field(out, "volume_id") == volume.id, out
    assert "auth_key" not in out
    # another project: not listed, a wrong key refused, the right one accepted
    code, out = scenarios.cinder_cli(stack.url, "transfer-list", user="u2", project="p2")
    assert code == 0 and transfer_id not in out, out
    code, out = scenarios.cinder_cli(stack.url, "transfer-accept", transfer_id, "0" * 16,
                                     user="u2", project="p2")
    assert code != 0 and "invalid auth key" in out, out
    code, out = scenarios.cinder_cli(stack.url, "transfer-accept", transfer_id, auth_key,
                                     user="u2", project="p2")
    assert code == 0 and scenarios.table_field(out, "volume_id") == volume.id, out
    assert db.volume_get_internal(volume.id).project_id == "p2"
    # offered back, then withdrawn with transfer-delete
    code, out = scenarios.cinder_cli(stack.url, "transfer-create", volume.id, user="u2",
                                     project="p2")
    assert code == 0, out
    back = scenarios.table_field(out, "id")
    code, out = scenarios.cinder_cli(stack.url, "transfer-delete", back, user="u2",
                                     project="p2")
    assert code == 0, out
    assert db.volume_get_internal(volume.id).status == "available"
    assert quota.check() == []
