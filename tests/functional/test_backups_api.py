"""The backups API (issue 11) through the in-process stack: create and its refusals, views per
microversion and role, list filters, sort and paging, update, delete and the chain rule,
restore to an existing or a new volume, volumes from backups (3.47), the admin actions,
export and import of records, and the /v2 paths. Every response is checked against Tempest's
schemas (tests/contract.py).

The backup service's side (reading and writing the data) is tested with it; here its casts are
recorded instead of sent (fixture `casts`), so a backup stays where the API leaves it, and
`finish_backup` stands for the backup service's success transaction where a test needs an
`available` backup (docs/backups-design.md, "create | backup service")."""

import base64
import json
import time

import pytest
from sqlalchemy import func, select

from api import microversion
from backup_worker import rpcapi as backup_rpcapi
from common import backup_record
from common.db import api as db
from common.db import backups_api, models
from common.db.session import reader

MEMBER = "alice:p1"
OTHER = "bob:p2"


@pytest.fixture
def latest(monkeypatch):
    """Microversions up to 3.64 (backups' own up to encryption_key_id), above the maximum."""
    monkeypatch.setattr(microversion, "MAX_VERSION", (3, 64))


@pytest.fixture
def casts(monkeypatch):
    """The casts to the backup service, recorded: (method, host, *ids)."""
    sent = []
    for method in ("create_backup", "restore_backup", "delete_backup", "import_record"):
        def record(self, ctxt, host, *args, _method=method):
            sent.append((_method, host) + args)
        monkeypatch.setattr(backup_rpcapi.BackupAPI, method, record, raising=False)
    return sent


@pytest.fixture
def backup_service(stack, casts):
    """A live lamina-backup service on the stack's host (the stack runs one, heartbeating
    every second; this makes sure its row is there before the first request)."""
    db.service_heartbeat("stack", "lamina-backup", "lamina-backup", availability_zone="nova")
    return "stack"


def available_volume(stack, size=1, token=None, project=None, **fields):
    resp = stack.request("POST", "/volumes", {"volume": dict(size=size, **fields)},
                         token=token, project=project)
    assert resp.status_code == 202, resp.text
    volume_id = resp.json()["volume"]["id"]
    if project is None:
        return stack.wait_volume(volume_id, ("available",), token=token)
    while db.volume_get_internal(volume_id).status != "available":
        time.sleep(0.05)
    return resp.json()["volume"]


def create(stack, volume_id, version=None, token=None, **fields):
    return stack.request("POST", "/backups", {"backup": dict(volume_id=volume_id, **fields)},
                         version=version, token=token)


def row(backup_id):
    return backups_api.backup_get_internal(backup_id)


def finish_backup(backup_id):
    """What the backup service's create flow does when it succeeds (one transaction: backup
    available, its source back, the workers row released): the service is not in this stack,
    and these tests are about the API around it."""
    from common.db.session import writer

    backup = row(backup_id)
    with writer() as s:
        assert db.conditional_update(models.Backup, backup_id,
                                     {"status": "available", "service": "posix",
                                      "object_count": 3, "progress": 100},
                                     {"status": "creating"}, session=s)
        if backup.snapshot_id:
            db.conditional_update(models.Snapshot, backup.snapshot_id, {"status": "available"},
                                  {"status": "backing-up"}, session=s)
        else:
            volume = s.get(models.Volume, backup.volume_id)
            db.conditional_update(models.Volume, backup.volume_id,
                                  {"status": volume.previous_status},
                                  {"status": "backing-up"}, session=s)
        db.worker_release("backup", backup_id, session=s)


def available_backup(stack, volume_id, **fields):
    resp = create(stack, volume_id, **fields)
    assert resp.status_code == 202, resp.text
    backup_id = resp.json()["backup"]["id"]
    finish_backup(backup_id)
    return backup_id


def backup_rows():
    with reader() as s:
        return s.scalar(select(func.count(models.Backup.id)).where(
            models.Backup.deleted.is_(False)))


def usage(stack):
    qs = stack.request("GET", "/os-quota-sets/p1?usage=true").json()["quota_set"]
    return qs["backups"]["in_use"], qs["backup_gigabytes"]["in_use"]


def error_message(resp):
    return next(iter(resp.json().values()))["message"]


# --- create ------------------------------------------------------------------------------------

def test_create_full_then_incremental(stack, backup_service, casts):
    volume = available_volume(stack, size=2)
    resp = create(stack, volume["id"], name="b1", description="first", container="c")
    assert resp.status_code == 202, resp.text
    body = resp.json()["backup"]
    assert set(body) == {"id", "links", "name"} and body["name"] == "b1"
    backup = row(body["id"])
    assert (backup.status, backup.size, backup.host, backup.is_incremental) == (
        "creating", 2, "stack", False)
    assert backup.container == "c" and backup.data_timestamp is not None
    assert casts == [("create_backup", "stack", body["id"])]
    assert stack.wait_volume(volume["id"], ("backing-up",))["status"] == "backing-up"
    assert db.volume_get_internal(volume["id"]).previous_status == "available"
    assert [w.operation for w in db.worker_get_all(host="stack")
            if w.resource_id == body["id"]] == ["create"]
    assert usage(stack) == (1, 2)
    # a second backup while the volume is backing-up: refused, nothing written
    resp = create(stack, volume["id"])
    assert resp.status_code == 400
    assert 'must be available or in-use, but the current status is "backing-up"' in (
        error_message(resp))
    finish_backup(body["id"])
    assert stack.wait_volume(volume["id"], ("available",))
    resp = create(stack, volume["id"], incremental=True)
    assert resp.status_code == 202, resp.text
    incremental = row(resp.json()["backup"]["id"])
    assert incremental.is_incremental and incremental.parent_id == body["id"]
    assert row(body["id"]).num_dependent_backups == 1
    shown = stack.request("GET", "/backups/" + body["id"]).json()["backup"]
    assert shown["has_dependent_backups"] is True and shown["is_incremental"] is False
    assert usage(stack) == (2, 4)


def test_create_refusals_write_nothing(stack, backup_service, casts):
    volume = available_volume(stack)
    before = (backup_rows(), usage(stack))

    def refused(resp, code, text):
        assert resp.status_code == code, resp.text
        assert text in error_message(resp), resp.text
        assert (backup_rows(), usage(stack)) == before
        assert casts == []
        assert db.volume_get_internal(volume["id"]).status == "available"

    refused(create(stack, "00000000-0000-0000-0000-000000000001"), 404, "could not be found")
    refused(stack.request("POST", "/backups", {"backup": {}}), 400, "volume_id")
    refused(create(stack, volume["id"], incremental=True), 400,
            "Invalid backup: No backups available to do an incremental backup.")
    # another project's volume is not found
    refused(stack.request("POST", "/backups", {"backup": {"volume_id": volume["id"]}},
                          token=OTHER, project="p2"), 404, "could not be found")
    # metadata and availability_zone before their microversions: unknown keys
    refused(create(stack, volume["id"], metadata={"k": "v"}), 400, "metadata")
    refused(create(stack, volume["id"], availability_zone="nova"), 400, "availability_zone")
    # in use without force
    db.conditional_update(models.Volume, volume["id"], {"status": "in-use"}, {})
    refused_in_use = create(stack, volume["id"])
    assert refused_in_use.status_code == 400
    assert "Backing up an in-use volume must use the force flag." in error_message(
        refused_in_use)
    assert (backup_rows(), usage(stack)) == before
    db.conditional_update(models.Volume, volume["id"], {"status": "available"}, {})
    # frozen back end
    stack.request("PUT", "/os-services/freeze", {"host": "stack@file"})
    refused(create(stack, volume["id"]), 400,
            "Modification operations are not allowed on frozen storage backends.")
    stack.request("PUT", "/os-services/thaw", {"host": "stack@file"})


def test_create_in_use_with_force_keeps_previous_status(stack, backup_service, casts):
    volume = available_volume(stack)
    db.conditional_update(models.Volume, volume["id"], {"status": "in-use"}, {})
    resp = create(stack, volume["id"], force=True)
    assert resp.status_code == 202, resp.text
    assert db.volume_get_internal(volume["id"]).previous_status == "in-use"
    finish_backup(resp.json()["backup"]["id"])
    assert db.volume_get_internal(volume["id"]).status == "in-use"


def test_create_from_snapshot(stack, backup_service, casts):
    volume = available_volume(stack)
    other = available_volume(stack)
    snap = stack.create_snapshot(volume["id"])
    stack.wait_snapshot(snap["id"], ("available",))
    resp = create(stack, other["id"], snapshot_id=snap["id"])
    assert resp.status_code == 400
    assert "does not match with snapshot.volume_id" in error_message(resp)
    resp = create(stack, volume["id"], snapshot_id=snap["id"])
    assert resp.status_code == 202, resp.text
    backup = row(resp.json()["backup"]["id"])
    snapshot = db.snapshot_get_internal(snap["id"])
    assert snapshot.status == "backing-up" and backup.snapshot_id == snap["id"]
    assert backup.data_timestamp == snapshot.created_at
    # the volume is untouched by a backup of its snapshot
    assert db.volume_get_internal(volume["id"]).status == "available"
    resp = create(stack, volume["id"], snapshot_id=snap["id"])
    assert resp.status_code == 400
    assert 'Snapshot to be backed up must be available, but the current status is ' \
           '"backing-up".' in error_message(resp)
    assert backup_rows() == 1


def test_no_backup_service_is_503_and_nothing_written(stack, casts):
    volume = available_volume(stack)
    # the stack's own backup service, disabled: none can take the backup
    db.service_update("stack", "lamina-backup", {"disabled": True})
    resp = create(stack, volume["id"])
    assert resp.status_code == 503
    assert error_message(resp) == "Service lamina-backup could not be found."
    assert backup_rows() == 0 and usage(stack) == (0, 0) and casts == []
    assert db.volume_get_internal(volume["id"]).status == "available"
    # enabled again but silent for longer than service_down_time: down, the same answer
    from datetime import timedelta

    db.service_update("stack", "lamina-backup", {"disabled": False})
    stack.override("service_down_time", 1)
    db.service_update("stack", "lamina-backup",
                      {"heartbeat_at": models.utcnow() - timedelta(hours=1)})
    resp = create(stack, volume["id"])
    assert resp.status_code in (202, 503)  # the live service may heartbeat meanwhile
    if resp.status_code == 503:
        assert backup_rows() == 0


def test_quota_refusal(make_stack, casts):
    stack = make_stack(overrides={"quota_backups": 1})
    db.service_heartbeat("stack", "lamina-backup", "lamina-backup", availability_zone="nova")
    volume = available_volume(stack)
    available_backup(stack, volume["id"])
    resp = create(stack, volume["id"])
    assert resp.status_code == 413
    assert error_message(resp) == "Maximum number of backups allowed (1) exceeded"
    assert backup_rows() == 1 and usage(stack) == (1, 1) and len(casts) == 1
    assert db.volume_get_internal(volume["id"]).status == "available"


def test_metadata_and_zone_at_their_versions(stack, backup_service, casts, latest):
    volume = available_volume(stack)
    resp = create(stack, volume["id"], version="3.43", metadata={"k": "v"})
    assert resp.status_code == 202, resp.text
    backup_id = resp.json()["backup"]["id"]
    shown = stack.request("GET", "/backups/" + backup_id, version="3.43").json()["backup"]
    assert shown["metadata"] == {"k": "v"}
    assert "metadata" not in stack.request("GET", "/backups/" + backup_id,
                                           version="3.42").json()["backup"]
    finish_backup(backup_id)
    resp = create(stack, volume["id"], version="3.51", availability_zone="elsewhere")
    assert resp.status_code == 503  # no backup service in that zone
    resp = create(stack, volume["id"], version="3.51", availability_zone="nova")
    assert resp.status_code == 202, resp.text
    assert row(resp.json()["backup"]["id"]).availability_zone == "nova"


# --- views, list -------------------------------------------------------------------------------

def test_views_per_microversion_and_role(stack, backup_service, casts, latest):
    volume = available_volume(stack, token=MEMBER)
    resp = create(stack, volume["id"], token=MEMBER, name="mine")
    backup_id = resp.json()["backup"]["id"]
    base = {"id", "name", "description", "status", "size", "object_count", "container",
            "availability_zone", "created_at", "updated_at", "fail_reason", "volume_id",
            "links", "is_incremental", "has_dependent_backups", "snapshot_id",
            "data_timestamp"}
    show = lambda version, token=None: stack.request(  # noqa: E731
        "GET", "/backups/" + backup_id, version=version, token=token).json()["backup"]
    assert set(show(None)) == base
    assert set(show("3.17")) == base
    assert set(show("3.18")) == base | {"os-backup-project-attr:project_id"}
    assert show("3.18")["os-backup-project-attr:project_id"] == "p1"
    assert set(show("3.18", MEMBER)) == base  # the project attribute is admins' only
    assert set(show("3.43", MEMBER)) == base | {"metadata"}
    assert set(show("3.56")) == base | {"metadata", "os-backup-project-attr:project_id",
                                        "user_id"}
    assert show("3.56")["user_id"] == "alice"
    assert set(show("3.64", MEMBER)) == base | {"metadata"}  # no key: no encryption_key_id
    db.conditional_update(models.Backup, backup_id,
                          {"encryption_key_id": "11111111-2222-3333-4444-555555555555"}, {})
    assert show("3.64", MEMBER)["encryption_key_id"] == "11111111-2222-3333-4444-555555555555"
    assert "encryption_key_id" not in show("3.63", MEMBER)
    summary = stack.request("GET", "/backups", token=MEMBER).json()["backups"]
    assert [set(b) for b in summary] == [{"id", "links", "name"}]
    # another project does not see it
    assert stack.request("GET", "/backups/" + backup_id, token=OTHER,
                         project="p2").status_code == 404
    assert stack.request("GET", "/backups", token=OTHER, project="p2").json()["backups"] == []


def test_list_filters_sort_paging_count(stack, backup_service, casts, latest):
    first = available_volume(stack)
    second = available_volume(stack)
    ids = [available_backup(stack, first["id"], name="a"),
           available_backup(stack, second["id"], name="b"),
           available_backup(stack, first["id"], name="c")]
    listed = stack.request("GET", "/backups/detail").json()["backups"]
    assert [b["id"] for b in listed] == ids[::-1]  # created_at descending
    by_volume = stack.request("GET", "/backups?volume_id=" + first["id"]).json()["backups"]
    assert {b["id"] for b in by_volume} == {ids[0], ids[2]}
    assert [b["id"] for b in stack.request("GET", "/backups?name=b").json()["backups"]] == [
        ids[1]]
    assert stack.request("GET", "/backups?status=creating").json()["backups"] == []
    assert stack.request("GET", "/backups?bogus=1").status_code == 400
    asc = stack.request("GET", "/backups?sort=name:asc", version="3.37").json()["backups"]
    assert [b["name"] for b in asc] == ["a", "b", "c"]
    assert stack.request("GET", "/backups?sort=name:asc", version="3.36").status_code == 400
    desc = stack.request("GET", "/backups?sort_key=display_name&sort_dir=desc").json()
    assert [b["name"] for b in desc["backups"]] == ["c", "b", "a"]
    assert stack.request("GET", "/backups?sort=nope").status_code == 400
    page = stack.request("GET", "/backups?limit=2").json()
    assert [b["id"] for b in page["backups"]] == [ids[2], ids[1]]
    assert "marker=%s" % ids[1] in page["backups_links"][0]["href"]
    rest = stack.request("GET", "/backups?limit=2&marker=" + ids[1]).json()
    assert [b["id"] for b in rest["backups"]] == [ids[0]] and "backups_links" not in rest
    assert [b["id"] for b in stack.request("GET", "/backups?offset=1&limit=1").json()[
        "backups"]] == [ids[1]]
    counted = stack.request("GET", "/backups?with_count=true&limit=1&volume_id=" + first["id"],
                            version="3.45").json()
    assert counted["count"] == 2 and len(counted["backups"]) == 1
    assert "count" not in stack.request("GET", "/backups?with_count=true",
                                        version="3.44").json()


def test_admin_lists_all_projects(stack, backup_service, casts):
    volume = available_volume(stack, token=OTHER, project="p2")
    resp = stack.request("POST", "/backups", {"backup": {"volume_id": volume["id"]}},
                         token=OTHER, project="p2")
    assert resp.status_code == 202, resp.text
    assert stack.request("GET", "/backups").json()["backups"] == []
    everyone = stack.request("GET", "/backups/detail?all_tenants=1").json()["backups"]
    assert [b["id"] for b in everyone] == [resp.json()["backup"]["id"]]
    assert stack.request("GET", "/backups?all_tenants=1&project_id=p1").json()[
        "backups"] == []
    # a member's all_tenants is ignored, and project_id is not its filter
    assert stack.request("GET", "/backups?all_tenants=1", token=MEMBER).json()["backups"] == []
    assert stack.request("GET", "/backups?project_id=p2", token=MEMBER).status_code == 400


# --- update, delete ----------------------------------------------------------------------------

def test_update(stack, backup_service, casts, latest):
    volume = available_volume(stack)
    backup_id = available_backup(stack, volume["id"], name="old")
    body = {"backup": {"name": "new", "description": "d"}}
    assert stack.request("PUT", "/backups/" + backup_id, body).status_code == 404  # 3.0
    resp = stack.request("PUT", "/backups/" + backup_id, body, version="3.9")
    assert resp.status_code == 200, resp.text
    assert resp.json()["backup"]["name"] == "new"
    assert (row(backup_id).name, row(backup_id).description) == ("new", "d")
    resp = stack.request("PUT", "/backups/" + backup_id,
                         {"backup": {"metadata": {"a": "1"}}}, version="3.42")
    assert resp.status_code == 400
    resp = stack.request("PUT", "/backups/" + backup_id,
                         {"backup": {"metadata": {"a": "1"}}}, version="3.43")
    assert resp.status_code == 200, resp.text
    assert {m.key: m.value for m in row(backup_id).backup_metadata} == {"a": "1"}
    assert stack.request("PUT", "/backups/" + backup_id, body, version="3.9", token=OTHER,
                         project="p2").status_code == 404


def test_delete_rules(stack, backup_service, casts):
    volume = available_volume(stack)
    full = available_backup(stack, volume["id"])
    incremental = available_backup(stack, volume["id"], incremental=True)
    resp = stack.request("DELETE", "/backups/" + full)
    assert resp.status_code == 400
    assert error_message(resp) == "Invalid backup: Incremental backups exist for this backup."
    assert row(full).status == "available"
    resp = stack.request("DELETE", "/backups/" + incremental)
    assert resp.status_code == 202
    assert row(incremental).status == "deleting"
    assert casts[-1] == ("delete_backup", "stack", incremental)
    assert [w.operation for w in db.worker_get_all(host="stack")
            if w.resource_id == incremental] == ["delete"]
    resp = stack.request("DELETE", "/backups/" + incremental)
    assert resp.status_code == 400
    assert error_message(resp) == "Invalid backup: Backup status must be available or error"
    # a creating backup: only force-deletable, by an admin
    creating = create(stack, volume["id"]).json()["backup"]["id"]
    assert stack.request("DELETE", "/backups/" + creating).status_code == 400
    force = {"os-force_delete": {}}
    assert stack.request("POST", "/backups/%s/action" % creating, force,
                         token=MEMBER).status_code == 403
    assert stack.request("POST", "/backups/%s/action" % creating, force).status_code == 202
    assert row(creating).status == "deleting"


def test_delete_with_pruning(make_stack, casts):
    stack = make_stack(overrides={"backup.backup_pruning": True})
    db.service_heartbeat("stack", "lamina-backup", "lamina-backup", availability_zone="nova")
    volume = available_volume(stack)
    full = available_backup(stack, volume["id"])
    available_backup(stack, volume["id"], incremental=True)
    assert stack.request("DELETE", "/backups/" + full).status_code == 202
    assert row(full).status == "deleting"


def test_delete_refused_while_a_volume_is_made_from_it(stack, backup_service, casts):
    volume = available_volume(stack)
    backup_id = available_backup(stack, volume["id"])
    resp = stack.request("POST", "/backups/%s/restore" % backup_id, {"restore": {}})
    assert resp.status_code == 202, resp.text
    new_volume = resp.json()["restore"]["volume_id"]
    # the backup is `restoring` onto the new volume: no delete
    resp = stack.request("DELETE", "/backups/" + backup_id)
    assert resp.status_code == 400
    assert error_message(resp) == "Invalid backup: Backup status must be available or error"
    # an admin frees the backup while the volume is still being restored (the status the
    # volume service's create flow leaves it in: set here, that flow is another slice's)
    stack.request("POST", "/backups/%s/action" % backup_id,
                  {"os-reset_status": {"status": "available"}})
    stack.wait_volume(new_volume, ("available", "error", "restoring-backup"))
    db.conditional_update(models.Volume, new_volume, {"status": "restoring-backup"}, {})
    resp = stack.request("DELETE", "/backups/" + backup_id)
    assert resp.status_code == 400
    assert "a volume is being created from backup" in error_message(resp)
    assert row(backup_id).status == "available"


# --- restore -----------------------------------------------------------------------------------

def test_restore_to_existing_volume(stack, backup_service, casts):
    source = available_volume(stack, size=2)
    backup_id = available_backup(stack, source["id"])
    small = available_volume(stack, size=1, name="small")
    resp = stack.request("POST", "/backups/%s/restore" % backup_id,
                         {"restore": {"volume_id": small["id"]}})
    assert resp.status_code == 400
    assert error_message(resp) == ("Invalid volume: volume size 1 is too small to restore "
                                   "backup of size 2.")
    assert row(backup_id).status == "available"
    target = available_volume(stack, size=3, name="target")
    resp = stack.request("POST", "/backups/%s/restore" % backup_id,
                         {"restore": {"volume_id": target["id"]}})
    assert resp.status_code == 202, resp.text
    assert resp.json()["restore"] == {"backup_id": backup_id, "volume_id": target["id"],
                                      "volume_name": "target"}
    backup = row(backup_id)
    assert (backup.status, backup.restore_volume_id) == ("restoring", target["id"])
    assert db.volume_get_internal(target["id"]).status == "restoring-backup"
    assert casts[-1] == ("restore_backup", "stack", backup_id, target["id"])
    # the backup is busy now
    resp = stack.request("POST", "/backups/%s/restore" % backup_id,
                         {"restore": {"volume_id": small["id"]}})
    assert resp.status_code == 400
    assert error_message(resp) == "Invalid backup: Backup status must be available"
    # a target that is not available
    with_target = available_backup(stack, source["id"])
    resp = stack.request("POST", "/backups/%s/restore" % with_target,
                         {"restore": {"volume_id": target["id"]}})
    assert resp.status_code == 400
    assert error_message(resp) == "Invalid volume: Volume to be restored to must be available"
    assert stack.request("POST", "/backups/%s/restore" % with_target,
                         {"restore": {"volume_id": target["id"]}}, token=OTHER,
                         project="p2").status_code == 404


def test_restore_to_new_volume(stack, backup_service, casts):
    source = available_volume(stack, size=2)
    backup_id = available_backup(stack, source["id"])
    before = stack.request("GET", "/os-quota-sets/p1?usage=true").json()["quota_set"]
    resp = stack.request("POST", "/backups/%s/restore" % backup_id, {"restore": None})
    assert resp.status_code == 202, resp.text
    restore = resp.json()["restore"]
    assert restore["volume_name"] == "restore_backup_%s" % backup_id
    volume = db.volume_get_internal(restore["volume_id"])
    assert (volume.size, volume.backup_id) == (2, backup_id)
    backup = row(backup_id)
    assert (backup.status, backup.restore_volume_id) == ("restoring", volume.id)
    after = stack.request("GET", "/os-quota-sets/p1?usage=true").json()["quota_set"]
    assert after["volumes"]["in_use"] == before["volumes"]["in_use"] + 1
    assert after["gigabytes"]["in_use"] == before["gigabytes"]["in_use"] + 2
    named = available_backup(stack, source["id"])
    resp = stack.request("POST", "/backups/%s/restore" % named, {"restore": {"name": "r"}})
    assert resp.json()["restore"]["volume_name"] == "r"


def test_restore_new_volume_over_quota_writes_nothing(make_stack, casts):
    stack = make_stack(overrides={"quota_volumes": 1})
    db.service_heartbeat("stack", "lamina-backup", "lamina-backup", availability_zone="nova")
    source = available_volume(stack)
    backup_id = available_backup(stack, source["id"])
    resp = stack.request("POST", "/backups/%s/restore" % backup_id, {"restore": {}})
    assert resp.status_code == 413
    assert row(backup_id).status == "available" and row(backup_id).restore_volume_id is None
    assert len(db.volume_get_all(_admin(), all_projects=True)) == 1


def _admin():
    from common.context import RequestContext

    return RequestContext(user_id="admin", project_id="p1", is_admin=True)


def test_volume_from_backup_at_347_and_its_failure(stack, backup_service, casts, latest):
    source = available_volume(stack, size=2)
    backup_id = available_backup(stack, source["id"])
    body = {"volume": {"backup_id": backup_id, "name": "from-backup"}}
    resp = stack.request("POST", "/volumes", body, version="3.46")
    assert resp.status_code == 400
    resp = stack.request("POST", "/volumes", body, version="3.47")
    assert resp.status_code == 202, resp.text
    volume = db.volume_get_internal(resp.json()["volume"]["id"])
    assert (volume.size, volume.backup_id) == (2, backup_id)
    assert row(backup_id).status == "restoring"
    # the backup is busy: a second volume from it is refused, nothing written
    count = len(db.volume_get_all(_admin(), all_projects=True))
    resp = stack.request("POST", "/volumes", body, version="3.47")
    assert resp.status_code == 400
    assert len(db.volume_get_all(_admin(), all_projects=True)) == count
    # a create that fails (no back end for the type) gives the backup back
    other = available_backup(stack, source["id"])
    stack.request("POST", "/types", {"volume_type": {
        "name": "nowhere", "extra_specs": {"volume_backend_name": "nope"}}})
    resp = stack.request("POST", "/volumes", {"volume": {
        "backup_id": other, "volume_type": "nowhere"}}, version="3.47")
    assert resp.status_code == 202, resp.text
    stack.wait_volume(resp.json()["volume"]["id"], ("error",))
    assert row(other).status == "available" and row(other).restore_volume_id is None


# --- admin actions, policy ---------------------------------------------------------------------

def test_reset_status_and_policy(stack, backup_service, casts):
    volume = available_volume(stack, token=MEMBER)
    backup_id = create(stack, volume["id"], token=MEMBER).json()["backup"]["id"]
    reset = {"os-reset_status": {"status": "error"}}
    assert stack.request("POST", "/backups/%s/action" % backup_id, reset,
                         token=MEMBER).status_code == 403
    assert row(backup_id).status == "creating"
    assert stack.request("POST", "/backups/%s/action" % backup_id,
                         {"os-reset_status": {"status": "deleting"}}).status_code == 400
    assert stack.request("POST", "/backups/%s/action" % backup_id, reset).status_code == 202
    assert row(backup_id).status == "error"
    assert not [w for w in db.worker_get_all() if w.resource_id == backup_id]
    assert stack.request("POST", "/backups/%s/action" % backup_id,
                         {"os-nope": {}}).status_code == 400
    for method, path, body in (
            ("GET", "/backups/%s/export_record" % backup_id, None),
            ("POST", "/backups/import_record",
             {"backup-record": {"backup_service": "posix", "backup_url": "eA=="}})):
        assert stack.request(method, path, body, token=MEMBER).status_code == 403


# --- export, import ----------------------------------------------------------------------------

def test_export_import_round_trip(stack, backup_service, casts):
    volume = available_volume(stack, size=2)
    parent = available_backup(stack, volume["id"], name="full")
    backup_id = available_backup(stack, volume["id"], name="inc", incremental=True,
                                 description="d")
    resp = stack.request("GET", "/backups/%s/export_record" % backup_id)
    assert resp.status_code == 200, resp.text
    record = resp.json()["backup-record"]
    assert record["backup_service"] == "cinder.backup.drivers.posix"  # Cinder's spelling
    decoded = json.loads(base64.b64decode(record["backup_url"]))
    assert decoded["id"] == backup_id and decoded["size"] == 2
    assert decoded["parent_id"] == parent and decoded["name"] == "inc"
    # a live backup with that id: refused
    resp = stack.request("POST", "/backups/import_record", {"backup-record": record})
    assert resp.status_code == 400
    assert error_message(resp) == "Invalid backup: Backup already exists in database."
    # as the backup service's delete would end: the row deleted, quota given back
    from common import quota
    from common.db.session import writer
    with writer() as s:
        db.conditional_update(models.Backup, backup_id, {"deleted": True, "status": "deleted"},
                              {}, session=s)
        quota.release_backup("p1", 2, session=s)
        backups_api.add_dependent(s, parent, -1, parent_status=None)
    assert usage(stack) == (1, 2)
    resp = stack.request("POST", "/backups/import_record", {"backup-record": record})
    assert resp.status_code == 201, resp.text
    assert resp.json()["backup"]["id"] == backup_id
    imported = row(backup_id)
    assert (imported.status, imported.name, imported.description, imported.parent_id) == (
        "creating", "inc", "d", parent)
    assert imported.service == "posix" and not imported.deleted
    assert row(parent).num_dependent_backups == 1
    assert casts[-1] == ("import_record", "stack", backup_id)
    assert usage(stack) == (2, 4)
    assert backup_record.decode(backup_record.encode(imported))["id"] == backup_id


def test_export_and_import_refusals(stack, backup_service, casts):
    volume = available_volume(stack)
    creating = create(stack, volume["id"]).json()["backup"]["id"]
    resp = stack.request("GET", "/backups/%s/export_record" % creating)
    assert resp.status_code == 400
    assert error_message(resp) == ("Invalid backup: Backup status must be available and not "
                                   "creating.")
    before = (backup_rows(), usage(stack))
    for url in ("not base64!", base64.b64encode(b"not json").decode(),
                base64.b64encode(b"[1, 2]").decode(),
                base64.b64encode(json.dumps({"id": "x", "size": "big"}).encode()).decode()):
        resp = stack.request("POST", "/backups/import_record",
                             {"backup-record": {"backup_service": "posix", "backup_url": url}})
        assert resp.status_code == 400, url
        assert error_message(resp) in ("Invalid backup: Can't parse backup record.",
                                       "Invalid input received: Provided backup record is "
                                       "missing size attribute")
    resp = stack.request("POST", "/backups/import_record",
                         {"backup-record": {"backup_service": "posix"}})
    assert resp.status_code == 400
    assert (backup_rows(), usage(stack)) == before


# --- /v2 and project-less paths ----------------------------------------------------------------

def test_v2_and_projectless_paths(stack, backup_service, casts):
    volume = available_volume(stack)
    resp = stack.request("POST", "/backups", {"backup": {"volume_id": volume["id"]}},
                         api="v2")
    assert resp.status_code == 202, resp.text
    backup_id = resp.json()["backup"]["id"]
    assert "/v2/p1/backups/" in resp.json()["backup"]["links"][0]["href"]
    shown = stack.request("GET", "/backups/" + backup_id, api="v2").json()["backup"]
    assert "metadata" not in shown and "os-backup-project-attr:project_id" not in shown
    assert [b["id"] for b in stack.request("GET", "/backups/detail", api="v2").json()[
        "backups"]] == [backup_id]
    import requests
    resp = requests.get("%s/v3/backups/%s" % (stack.url, backup_id),
                        headers={"X-Auth-Token": "admin:p1"})
    assert resp.status_code == 200 and resp.json()["backup"]["id"] == backup_id


# --- casts that do not leave -------------------------------------------------------------------

def test_unsent_casts_end_the_operation(stack, backup_service, casts, monkeypatch):
    volume = available_volume(stack, size=2)
    backup_id = available_backup(stack, volume["id"])
    target = available_volume(stack, size=2, name="t")

    def down(self, *args):
        raise RuntimeError("transport gone")

    for method in ("create_backup", "restore_backup", "delete_backup"):
        monkeypatch.setattr(backup_rpcapi.BackupAPI, method, down)
    resp = create(stack, volume["id"])
    assert resp.status_code == 503
    [failed] = [b for b in backups_api.backup_get_all(_admin()) if b.id != backup_id]
    assert failed.status == "error" and "could not be reached" in failed.fail_reason
    assert db.volume_get_internal(volume["id"]).status == "available"
    resp = stack.request("POST", "/backups/%s/restore" % backup_id,
                         {"restore": {"volume_id": target["id"]}})
    assert resp.status_code == 503
    assert (row(backup_id).status, row(backup_id).restore_volume_id) == ("available", None)
    assert db.volume_get_internal(target["id"]).status == "available"
    assert stack.request("DELETE", "/backups/" + backup_id).status_code == 503
    assert row(backup_id).status == "error_deleting"
    assert not [w for w in db.worker_get_all() if w.resource_type == "backup"]


# --- with the stack's backup service ---------------------------------------------------------

def wait_backup(stack, backup_id, statuses, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        resp = stack.request("GET", "/backups/" + backup_id)
        if resp.status_code == 404 and "deleted" in statuses:
            return "deleted"
        backup = resp.json()["backup"]
        if backup["status"] in statuses:
            return backup["status"]
        assert time.monotonic() < deadline, backup
        time.sleep(0.05)


def test_the_backup_service_takes_every_cast(stack):
    """The casts as the backup service takes them (statuses only: the data is its tests')."""
    volume = available_volume(stack)
    resp = create(stack, volume["id"])
    assert resp.status_code == 202, resp.text
    backup_id = resp.json()["backup"]["id"]
    assert wait_backup(stack, backup_id, ("available", "error")) == "available"
    assert stack.wait_volume(volume["id"], ("available",))
    resp = stack.request("POST", "/backups/%s/restore" % backup_id, {"restore": {}})
    assert resp.status_code == 202, resp.text
    assert stack.wait_volume(resp.json()["restore"]["volume_id"], ("available", "error"))[
        "status"] == "available"
    assert wait_backup(stack, backup_id, ("available",)) == "available"
    record = stack.request("GET", "/backups/%s/export_record" % backup_id).json()[
        "backup-record"]
    # the database loses the row (its data stays in the repository): the record brings it back
    from common import quota
    from common.db.session import writer
    with writer() as s:
        db.conditional_update(models.Backup, backup_id, {"deleted": True, "status": "deleted"},
                              {}, session=s)
        quota.release_backup("p1", 1, session=s)
    resp = stack.request("POST", "/backups/import_record", {"backup-record": record})
    assert resp.status_code == 201, resp.text
    assert wait_backup(stack, backup_id, ("available", "error")) == "available"
    assert usage(stack) == (1, 1)
    # a delete removes the data too: an import of its record then ends `error`
    assert stack.request("DELETE", "/backups/" + backup_id).status_code == 202
    assert wait_backup(stack, backup_id, ("deleted", "error_deleting")) == "deleted"
    assert usage(stack) == (0, 0)
    resp = stack.request("POST", "/backups/import_record", {"backup-record": record})
    assert resp.status_code == 201, resp.text
    assert wait_backup(stack, backup_id, ("available", "error")) == "error"
    assert "not found" in row(backup_id).fail_reason


def test_restores_refused_while_the_backup_service_is_down(stack, backup_service, casts,
                                                           latest):
    source = available_volume(stack)
    target = available_volume(stack, name="t")
    backup_id = available_backup(stack, source["id"])
    volumes = len(db.volume_get_all(_admin(), all_projects=True))
    db.service_update("stack", "lamina-backup", {"disabled": True})
    for path, body, version in (
            ("/backups/%s/restore" % backup_id, {"restore": {}}, None),
            ("/backups/%s/restore" % backup_id, {"restore": {"volume_id": target["id"]}}, None),
            ("/volumes", {"volume": {"backup_id": backup_id}}, "3.47")):
        resp = stack.request("POST", path, body, version=version)
        assert resp.status_code == 503, resp.text
        assert error_message(resp) == "Service lamina-backup could not be found."
    assert stack.request("DELETE", "/backups/" + backup_id).status_code == 503
    assert len(db.volume_get_all(_admin(), all_projects=True)) == volumes
    assert row(backup_id).status == "available" and row(backup_id).restore_volume_id is None
    assert db.volume_get_internal(target["id"]).status == "available"
    assert len(casts) == 1  # the create only
    # another project's backup is not found for a volume create either
    db.service_update("stack", "lamina-backup", {"disabled": False})
    resp = stack.request("POST", "/volumes", {"volume": {"backup_id": backup_id}},
                         version="3.47", token=OTHER, project="p2")
    assert resp.status_code == 404


def test_import_under_a_new_id_as_tempest_does(stack, backup_service, casts):
    """Tempest's export/import test decodes the record, changes its id and imports that."""
    volume = available_volume(stack)
    backup_id = available_backup(stack, volume["id"], name="orig")
    record = stack.request("GET", "/backups/%s/export_record" % backup_id).json()[
        "backup-record"]
    decoded = json.loads(base64.b64decode(record["backup_url"]))
    new_id = "5a2f6a52-8d8c-4b3e-9d0e-5d3c3e0c9b1f"
    decoded.update(id=new_id, service=None)
    resp = stack.request("POST", "/backups/import_record", {"backup-record": {
        "backup_service": record["backup_service"],
        "backup_url": base64.b64encode(json.dumps(decoded).encode()).decode()}})
    assert resp.status_code == 201, resp.text
    assert resp.json()["backup"] == {"id": new_id, "name": "orig",
                                     "links": resp.json()["backup"]["links"]}
    imported = row(new_id)
    assert (imported.status, imported.service, imported.project_id) == (
        "creating", "posix", "p1")
    assert casts[-1] == ("import_record", "stack", new_id)
    assert usage(stack) == (2, 2)
