"""The volume service's light reads and its one-statement soft delete (common/db/api.py
volume_row, volume_delete_finish), and the flows that use them end as before."""

from common.db import api as db
from common.db import attachments_api as attachments
from common.db import models
from common.db.session import writer
from volume_worker.flows import common, create_volume, delete_volume


def test_volume_row_has_the_rows_columns_and_its_dependents(stack):
    volume = stack.create_volume(size=2)
    stack.wait_volume(volume["id"], ("available",))
    row = db.volume_row(volume["id"])
    full = db.volume_get_internal(volume["id"])
    for column in models.Volume.__table__.c:
        assert getattr(row, column.name) == getattr(full, column.name), column.name
    assert db.volume_row("no-such-volume") is None

    plain = db.volume_row(volume["id"], with_dependents=True)
    assert not plain.has_snapshots and not plain.has_attachments
    snapshot = stack.create_snapshot(volume["id"])
    stack.wait_snapshot(snapshot["id"], ("available",))
    attachments.attachment_reserve(None, volume["id"], "instance-1", project_only=False)
    both = db.volume_row(volume["id"], with_dependents=True)
    assert both.has_snapshots and both.has_attachments


def test_volume_delete_finish_is_conditional_on_deleting(stack):
    volume = stack.create_volume(size=2)
    stack.wait_volume(volume["id"], ("available",))
    pool = "stack@file#pool0"
    assert db.pool_get(pool).allocated_capacity_gb == 2
    with writer() as s:
        assert not db.volume_delete_finish(volume["id"], pool, 2, s)  # available: not this
    assert not db.volume_get_internal(volume["id"]).deleted
    assert db.pool_get(pool).allocated_capacity_gb == 2
    assert db.conditional_update(models.Volume, volume["id"], {"status": "deleting"},
                                 {"status": "available"})
    assert db.worker_claim("volume", volume["id"], "delete", host="stack@file")
    with writer() as s:
        assert db.volume_delete_finish(volume["id"], pool, 2, s)
    gone = db.volume_get_internal(volume["id"])
    assert gone.deleted and gone.status == "deleted"
    assert gone.deleted_at is not None and gone.terminated_at is not None
    assert db.pool_get(pool).allocated_capacity_gb == 0 and db.worker_get_all() == []
    with writer() as s:
        assert not db.volume_delete_finish(volume["id"], pool, 2, s)  # once only
    assert db.pool_get(pool).allocated_capacity_gb == 0


def test_volume_create_finish_is_conditional_on_creating(stack):
    volume = stack.create_volume(size=1)
    stack.wait_volume(volume["id"], ("available",))
    assert db.worker_claim("volume", volume["id"], "create", host="stack@file")
    with writer() as s:  # available: nothing changes, the workers row stays
        assert not db.volume_create_finish(volume["id"], {"status": "error"}, s)
    assert db.volume_row(volume["id"]).status == "available"
    assert len(db.worker_get_all()) == 1
    assert db.conditional_update(models.Volume, volume["id"], {"status": "creating"},
                                 {"status": "available"})
    with writer() as s:
        assert db.volume_create_finish(volume["id"], {"status": "available",
                                                      "provider_location": "here"}, s)
    row = db.volume_row(volume["id"])
    assert row.status == "available" and row.provider_location == "here"
    assert db.worker_get_all() == []


def test_the_service_builds_its_create_and_delete_flows_once(stack):
    first = stack.create_volume(size=1)
    stack.wait_volume(first["id"], ("available",))
    second = stack.create_volume(size=1)
    stack.wait_volume(second["id"], ("available",))
    for volume in (first, second):
        assert stack.request("DELETE", "/volumes/" + volume["id"]).status_code == 202
        stack.wait_volume(volume["id"], ("deleted",))
    [manager] = [svc.manager for svc in stack.services if svc.binary == "lamina-volume"]
    flows = manager.driver.__dict__["_lamina_shared_flows"]
    assert set(flows) == {(create_volume.__name__, (manager.host,)),
                          (delete_volume.__name__, ())}
    assert common.shared_flow(create_volume.build, manager.driver, manager.host) is \
        flows[(create_volume.__name__, (manager.host,))]
    assert stack.volume_files() == [] and db.worker_get_all() == []
