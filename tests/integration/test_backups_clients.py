"""Backups through unchanged clients against the in-process stack (its backup service keeps a
POSIX repository under the stack's directory): python-cinderclient's Python API on /v3 and on
seed 000's /v2/{tenant_id} paths, the `cinder backup-*` commands, and openstacksdk's block
storage proxy on /v3 and /v2. Each checks the data too: a restored volume holds the bytes of
the volume at its backup."""

import base64
import hashlib
import json
import os
import uuid

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
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("backups-clients")).start()
    yield s
    s.stop()


def cinder(stack, api="v3", version="3.0", project="p1", user="admin"):
    auth = token_endpoint.Token("%s/%s/%s" % (stack.url, api, project),
                                "%s:%s" % (user, project))
    return cinder_client.Client(version, session=ks_session.Session(auth=auth))


def volume_path(volume_id):
    """The file of a file-driver volume (provider_location holds its path)."""
    path = db.volume_get_internal(volume_id).provider_location
    assert path and os.path.exists(path), path
    return path


def write_pattern(volume_id, seed):
    with open(volume_path(volume_id), "r+b") as f:
        for block in range(0, 4):
            f.seek(block * 256 * 1024)
            f.write(hashlib.sha256(b"%s-%d" % (seed, block)).digest() * 1024)


def checksum(volume_id):
    with open(volume_path(volume_id), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def wait_status(get, ident, status, failures=("error",)):
    def reached():
        current = get(ident).status
        assert current not in failures, "%s is %s" % (ident, current)
        return current == status
    scenarios.wait_for(reached, timeout=120)


def gone(get, ident):
    def check():
        try:
            get(ident)
            return False
        except cinder_exc.NotFound:
            return True
    scenarios.wait_for(check, timeout=120)


@pytest.mark.parametrize("api", ["v3", "v2"])
def test_cinderclient_python_api(stack, api):
    client = cinder(stack, api)
    volume = client.volumes.create(1, name="source", metadata={"origin": "client"})
    wait_status(client.volumes.get, volume.id, "available")
    write_pattern(volume.id, b"full")
    full_sum = checksum(volume.id)

    full = client.backups.create(volume.id, name="full", description="first")
    wait_status(client.backups.get, full.id, "available")
    assert client.volumes.get(volume.id).status == "available"
    shown = client.backups.get(full.id)
    assert (shown.name, shown.description, shown.is_incremental, shown.size) == (
        "full", "first", False, 1)

    write_pattern(volume.id, b"incremental")
    incr_sum = checksum(volume.id)
    incr = client.backups.create(volume.id, name="incr", incremental=True)
    wait_status(client.backups.get, incr.id, "available")
    assert client.backups.get(incr.id).is_incremental is True
    assert client.backups.get(full.id).has_dependent_backups is True
    assert {b.id for b in client.backups.list()} >= {full.id, incr.id}
    assert [b.id for b in client.backups.list(search_opts={"name": "incr"})] == [incr.id]

    # the chain rule: the full backup goes only after its incremental
    with pytest.raises(cinder_exc.BadRequest, match="Incremental backups exist"):
        client.backups.delete(full.id)

    restored = client.restores.restore(full.id)
    wait_status(client.volumes.get, restored.volume_id, "available")
    wait_status(client.backups.get, full.id, "available")
    assert checksum(restored.volume_id) == full_sum
    assert client.volumes.get(restored.volume_id).metadata.get("origin") == "client"

    # onto the existing volume: the incremental's data
    client.restores.restore(incr.id, volume_id=restored.volume_id)
    wait_status(client.volumes.get, restored.volume_id, "available")
    wait_status(client.backups.get, incr.id, "available")
    assert checksum(restored.volume_id) == incr_sum

    client.backups.delete(incr.id)
    gone(client.backups.get, incr.id)
    client.backups.delete(full.id)
    gone(client.backups.get, full.id)
    for volume_id in (volume.id, restored.volume_id):
        client.volumes.delete(volume_id)
        gone(client.volumes.get, volume_id)
    assert quota.check() == []


def test_cinderclient_admin_calls(stack):
    admin = cinder(stack)
    volume = admin.volumes.create(1, name="exported")
    wait_status(admin.volumes.get, volume.id, "available")
    write_pattern(volume.id, b"export")
    expected = checksum(volume.id)
    backup = admin.backups.create(volume.id, name="to export")
    wait_status(admin.backups.get, backup.id, "available")

    record = admin.backups.export_record(backup.id)
    assert record["backup_service"].startswith("cinder.backup.drivers")
    # imported under a new id (as Tempest does): a backup of its own, which outlives the
    # original's delete and restores the same data (a record imported after its row was
    # lost, same id: tests/functional/test_backups.py)
    fields = json.loads(base64.b64decode(record["backup_url"]))
    fields["id"] = new_id = str(uuid.uuid4())
    imported = admin.backups.import_record(
        record["backup_service"], base64.b64encode(json.dumps(fields).encode()).decode())
    assert imported["id"] == new_id
    wait_status(admin.backups.get, new_id, "available")
    admin.backups.delete(backup.id)
    gone(admin.backups.get, backup.id)
    restored = admin.restores.restore(new_id)
    wait_status(admin.volumes.get, restored.volume_id, "available")
    wait_status(admin.backups.get, new_id, "available")
    assert checksum(restored.volume_id) == expected

    admin.backups.reset_state(new_id, "error")
    assert admin.backups.get(new_id).status == "error"
    admin.backups.delete(new_id, force=True)
    gone(admin.backups.get, new_id)

    # a member of the project may not use the admin calls
    member = cinder(stack, user="member")
    member_backup = member.backups.create(volume.id, name="member's")
    wait_status(member.backups.get, member_backup.id, "available")
    with pytest.raises(cinder_exc.Forbidden):
        member.backups.reset_state(member_backup.id, "error")
    with pytest.raises(cinder_exc.Forbidden):
        member.backups.export_record(member_backup.id)
    member.backups.delete(member_backup.id)
    gone(member.backups.get, member_backup.id)
    for volume_id in (volume.id, restored.volume_id):
        admin.volumes.delete(volume_id)
        gone(admin.volumes.get, volume_id)
    assert quota.check() == []


def test_cinderclient_update_at_3_9(stack):
    client = cinder(stack, version="3.9")
    volume = client.volumes.create(1)
    wait_status(client.volumes.get, volume.id, "available")
    backup = client.backups.create(volume.id, name="before")
    wait_status(client.backups.get, backup.id, "available")
    client.backups.update(backup.id, name="after", description="renamed")
    shown = client.backups.get(backup.id)
    assert (shown.name, shown.description) == ("after", "renamed")
    client.backups.delete(backup.id)
    gone(client.backups.get, backup.id)
    client.volumes.delete(volume.id)
    gone(client.volumes.get, volume.id)


def test_cinder_cli(stack):
    rc, out = scenarios.cinder_cli(stack.url, "create", "--name", "cli-src", "1")
    assert rc == 0, out
    volume_id = scenarios.table_field(out, "id")
    client = cinder(stack)
    wait_status(client.volumes.get, volume_id, "available")

    rc, out = scenarios.cinder_cli(stack.url, "backup-create", "--name", "cli-full", volume_id)
    assert rc == 0, out
    backup_id = scenarios.table_field(out, "id")
    wait_status(client.backups.get, backup_id, "available")
    rc, out = scenarios.cinder_cli(stack.url, "backup-create", "--incremental", "--name",
                                   "cli-incr", volume_id)
    assert rc == 0, out
    incr_id = scenarios.table_field(out, "id")
    wait_status(client.backups.get, incr_id, "available")

    rc, out = scenarios.cinder_cli(stack.url, "backup-list")
    assert rc == 0 and backup_id in out and incr_id in out, out
    rc, out = scenarios.cinder_cli(stack.url, "backup-show", incr_id)
    assert rc == 0, out
    assert scenarios.table_field(out, "is_incremental") == "True"

    rc, out = scenarios.cinder_cli(stack.url, "backup-delete", backup_id)
    assert "Incremental backups exist" in out, out

    rc, out = scenarios.cinder_cli(stack.url, "backup-restore", "--name", "cli-restored",
                                   incr_id)
    assert rc == 0, out
    restored_id = scenarios.table_field(out, "volume_id")
    wait_status(client.volumes.get, restored_id, "available")
    wait_status(client.backups.get, incr_id, "available")

    rc, out = scenarios.cinder_cli(stack.url, "backup-export", incr_id)
    assert rc == 0, out
    assert scenarios.table_field(out, "backup_service").startswith("cinder.backup.drivers")

    rc, out = scenarios.cinder_cli(stack.url, "backup-reset-state", "--state", "error",
                                   incr_id)
    assert rc == 0, out
    assert client.backups.get(incr_id).status == "error"
    for ident in (incr_id, backup_id):
        rc, out = scenarios.cinder_cli(stack.url, "backup-delete", ident)
        assert rc == 0, out
        gone(client.backups.get, ident)
    for ident in (volume_id, restored_id):
        client.volumes.delete(ident)
        gone(client.volumes.get, ident)
    assert quota.check() == []


@pytest.mark.parametrize("api", ["v3", "v2"])
def test_openstacksdk(stack, api):
    conn = scenarios.sdk_connection(stack.url, api)
    bs = conn.block_storage
    volume = bs.wait_for_status(bs.create_volume(size=1, name="sdk-src"), "available",
                                failures=["error"], wait=120)
    write_pattern(volume.id, b"sdk")
    expected = checksum(volume.id)
    backup = bs.create_backup(volume_id=volume.id, name="sdk-backup")
    backup = bs.wait_for_status(bs.get_backup(backup.id), "available", failures=["error"],
                                wait=120)
    assert backup.volume_id == volume.id and backup.size == 1
    assert backup.id in [b.id for b in bs.backups()]
    assert backup.id in [b.id for b in bs.backups(details=False)]

    bs.restore_backup(backup, name="sdk-restored")
    restored = scenarios.wait_for(
        lambda: [v for v in bs.volumes(name="sdk-restored") if v.status == "available"],
        timeout=120)[0]
    assert checksum(restored.id) == expected
    bs.wait_for_status(bs.get_backup(backup.id), "available", failures=["error"], wait=120)

    bs.delete_backup(backup)
    bs.wait_for_delete(backup, wait=120)
    for ident in (volume.id, restored.id):
        bs.delete_volume(ident)
        bs.wait_for_delete(bs.get_volume(ident), wait=120)
    assert quota.check() == []


def test_openstacksdk_admin_actions_at_3_64(stack, monkeypatch):
    # openstacksdk sends its backup actions at 3.64, above the advertised maximum
    # (docs/api.md): built, and checked here with the maximum raised.
    monkeypatch.setattr(microversion, "MAX_VERSION", (3, 64))
    bs = scenarios.sdk_connection(stack.url).block_storage
    volume = bs.wait_for_status(bs.create_volume(size=1), "available", failures=["error"],
                                wait=120)
    backup = bs.create_backup(volume_id=volume.id)
    bs.wait_for_status(bs.get_backup(backup.id), "available", failures=["error"], wait=120)
    bs.reset_backup_status(backup, "error")
    assert bs.get_backup(backup.id).status == "error"
    bs.delete_backup(backup, force=True)
    bs.wait_for_delete(backup, wait=120)
    bs.delete_volume(volume)
    bs.wait_for_delete(volume, wait=120)
    assert quota.check() == []
