"""The client scenario of issue 2, written once and run against every deployment: a type
with an extra spec, a volume of that type reaching `available`, list, show, update, delete,
gone. Driven by unchanged python-cinderclient (its CLI and its Python API) and openstacksdk."""

import os
import re
import subprocess
import sys
import time
import uuid

import openstack
from cinderclient import client as cinder_client
from cinderclient import exceptions as cinder_exc
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

BIN = os.path.dirname(sys.executable)
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def cinder_cli(url, *args, project="p1", user="admin"):
    """The `cinder` command with its own noauth plugin (token user:project)."""
    argv = [os.path.join(BIN, "cinder"), "--os-auth-type", "noauth", "--os-user-id", user,
            "--os-project-id", project, "--os-endpoint", url + "/v3",
            "--os-volume-api-version", "3", *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout + result.stderr


def table_field(output, field):
    match = re.search(r"\|\s*%s\s*\|\s*(.*?)\s*\|" % re.escape(field), output)
    assert match, output
    return match.group(1)


def wait_for(fn, timeout=60, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(interval)


def run_cli_scenario(url, backend_name):
    name = "gold-" + uuid.uuid4().hex[:6]
    rc, out = cinder_cli(url, "type-create", name)
    assert rc == 0, out
    rc, out = cinder_cli(url, "type-key", name, "set", "volume_backend_name=" + backend_name)
    assert rc == 0, out
    rc, out = cinder_cli(url, "extra-specs-list")
    assert rc == 0 and backend_name in out, out
    rc, out = cinder_cli(url, "create", "--volume-type", name, "--name", "cli-vol",
                         "--metadata", "purpose=test", "1")
    assert rc == 0, out
    volume_id = table_field(out, "id")
    assert re.fullmatch(UUID_RE, volume_id)

    def status():
        code, text = cinder_cli(url, "show", volume_id)
        assert code == 0, text
        return table_field(text, "status")

    assert wait_for(lambda: status() in ("available", "error")) and status() == "available"
    rc, out = cinder_cli(url, "list")
    assert rc == 0 and volume_id in out and "cli-vol" in out, out
    rc, out = cinder_cli(url, "rename", volume_id, "cli-renamed")
    assert rc == 0, out
    rc, out = cinder_cli(url, "show", volume_id)
    assert table_field(out, "name") == "cli-renamed"
    assert table_field(out, "volume_type") == name
    rc, out = cinder_cli(url, "delete", volume_id)
    assert rc == 0, out
    wait_for(lambda: "No volume with a name or ID" in cinder_cli(url, "show", volume_id)[1])
    rc, out = cinder_cli(url, "type-delete", name)
    assert rc == 0, out
    return volume_id


def sdk_connection(url, api="v3", project="p1"):
    endpoint = "%s/%s/%s" % (url, api, project)
    return openstack.connect(auth_type="admin_token",
                             auth={"token": "admin:" + project, "endpoint": endpoint},
                             block_storage_endpoint_override=endpoint,
                             block_storage_api_version="3", region_name="RegionOne")


def run_sdk_scenario(url, backend_name, api="v3"):
    conn = sdk_connection(url, api)
    bs = conn.block_storage
    vtype = bs.create_type(name="sdk-" + uuid.uuid4().hex[:6],
                           extra_specs={"volume_backend_name": backend_name})
    assert bs.get_type(vtype.id).extra_specs == {"volume_backend_name": backend_name}
    volume = bs.create_volume(size=2, name="sdk-vol", volume_type=vtype.name,
                              metadata={"a": "b"})
    volume = bs.wait_for_status(volume, "available", failures=["error"], wait=60)
    assert volume.size == 2 and volume.volume_type == vtype.name
    assert volume.id in [v.id for v in bs.volumes()]
    bs.update_volume(volume, name="sdk-renamed", description="updated")
    shown = bs.get_volume(volume.id)
    assert (shown.name, shown.description, shown.metadata) == ("sdk-renamed", "updated",
                                                               {"a": "b"})
    bs.delete_volume(volume)
    bs.wait_for_delete(volume, wait=60)
    assert volume.id not in [v.id for v in bs.volumes()]
    bs.delete_type(vtype)
    return volume.id


def run_cinderclient_api_scenario(url, backend_name, api="v2"):
    """The Python API of python-cinderclient against the seed's /v2/{project_id} paths."""
    auth = token_endpoint.Token("%s/%s/p1" % (url, api), "admin:p1")
    cinder = cinder_client.Client("3.0", session=ks_session.Session(auth=auth))
    vtype = cinder.volume_types.create("api-" + uuid.uuid4().hex[:6])
    vtype.set_keys({"volume_backend_name": backend_name})
    assert cinder.volume_types.get(vtype.id).get_keys() == {
        "volume_backend_name": backend_name}
    volume = cinder.volumes.create(1, name="api-vol", volume_type=vtype.id)
    wait_for(lambda: cinder.volumes.get(volume.id).status in ("available", "error"))
    assert cinder.volumes.get(volume.id).status == "available"
    assert volume.id in [v.id for v in cinder.volumes.list()]
    cinder.volumes.update(volume, name="api-renamed")
    assert cinder.volumes.get(volume.id).name == "api-renamed"
    cinder.volumes.delete(volume)

    def gone():
        try:
            cinder.volumes.get(volume.id)
            return False
        except cinder_exc.NotFound:
            return True

    wait_for(gone)
    cinder.volume_types.delete(vtype)
    return volume.id


def run_snapshot_sdk_scenario(url, api="v3"):
    """Snapshot, a volume from it, a clone, the chain, cascade delete: openstacksdk."""
    bs = sdk_connection(url, api).block_storage
    volume = bs.wait_for_status(bs.create_volume(size=1, name="origin"), "available",
                                failures=["error"], wait=60)
    first = bs.wait_for_status(bs.create_snapshot(volume_id=volume.id, name="first"),
                               "available", failures=["error"], wait=60)
    second = bs.wait_for_status(bs.create_snapshot(volume_id=volume.id, name="second",
                                                   metadata={"k": "v"}),
                                "available", failures=["error"], wait=60)
    assert bs.get_snapshot(second.id).metadata == {"k": "v"}
    chain = [s.name for s in bs.snapshots(details=True, volume_id=volume.id)]
    assert chain == ["second", "first"], chain
    from_snap = bs.wait_for_status(bs.create_volume(size=2, snapshot_id=first.id),
                                   "available", failures=["error"], wait=60)
    assert from_snap.snapshot_id == first.id and from_snap.size == 2
    clone = bs.wait_for_status(bs.create_volume(size=1, source_volume_id=volume.id),
                               "available", failures=["error"], wait=60)
    assert clone.source_volume_id == volume.id
    bs.delete_volume(from_snap)
    bs.delete_volume(clone)
    bs.wait_for_delete(from_snap, wait=60)
    bs.delete_snapshot(first)
    bs.wait_for_delete(first, wait=60)
    bs.delete_volume(volume, cascade=True)
    bs.wait_for_delete(volume, wait=60)
    assert list(bs.snapshots(volume_id=volume.id)) == []


def run_snapshot_cli_scenario(url):
    rc, out = cinder_cli(url, "create", "--name", "cli-origin", "1")
    assert rc == 0, out
    volume_id = table_field(out, "id")
    wait_for(lambda: table_field(cinder_cli(url, "show", volume_id)[1], "status")
             == "available")
    rc, out = cinder_cli(url, "snapshot-create", "--name", "cli-snap", volume_id)
    assert rc == 0, out
    snapshot_id = table_field(out, "id")
    wait_for(lambda: table_field(cinder_cli(url, "snapshot-show", snapshot_id)[1], "status")
             == "available")
    rc, out = cinder_cli(url, "snapshot-list", "--volume-id", volume_id)
    assert rc == 0 and snapshot_id in out, out
    rc, out = cinder_cli(url, "create", "--snapshot-id", snapshot_id, "--name", "cli-copy")
    assert rc == 0, out
    copy_id = table_field(out, "id")
    wait_for(lambda: table_field(cinder_cli(url, "show", copy_id)[1], "status")
             == "available")
    rc, out = cinder_cli(url, "delete", volume_id)
    assert rc != 0 and "snapshots" in out, out  # refused: it has snapshots
    rc, out = cinder_cli(url, "delete", "--cascade", volume_id)
    assert rc == 0, out
    rc, out = cinder_cli(url, "delete", copy_id)
    assert rc == 0, out
    for vid in (volume_id, copy_id):
        wait_for(lambda vid=vid: "No volume with a name or ID" in cinder_cli(url, "show",
                                                                              vid)[1])
    rc, out = cinder_cli(url, "snapshot-show", snapshot_id)
    assert rc != 0, out
