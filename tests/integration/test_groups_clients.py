"""Generic volume groups through unchanged python-cinderclient (3.14) on the in-process
stack, and group snapshots on the rbd driver against the real single-node Ceph: an RBD
snapshot of each member image, a group made from them with the snapshot's data."""

import json

import pytest
from cinderclient import client as cinder_client
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

from common import quota
from common.db import api as db
from tests.integration import ceph, scenarios
from tests.stack import Stack

pytestmark = pytest.mark.integration
GiB = 1024 ** 3


def cinder(stack, version="3.14"):
    auth = token_endpoint.Token("%s/v3/p1" % stack.url, "admin:p1")
    return cinder_client.Client(version, session=ks_session.Session(auth=auth))


def wait(get, statuses, timeout=60):
    return scenarios.wait_for(lambda: (lambda r: r if r.status in statuses else None)(get()),
                              timeout=timeout)


def gone(get):
    def probe():
        try:
            get()
        except Exception as exc:  # cinderclient's NotFound
            return exc if getattr(exc, "code", None) == 404 else None
        return None
    return scenarios.wait_for(probe, timeout=60)


def run_group_scenario(stack, volume_type):
    c = cinder(stack)
    gt = c.group_types.create("gt-clients")
    group = c.groups.create(gt.id, volume_type, name="g")
    group = wait(lambda: c.groups.get(group.id), ("available", "error"))
    assert group.status == "available"
    members = [c.volumes.create(1, volume_type=volume_type, group_id=group.id, name="m%d" % i)
               for i in range(2)]
    for m in members:
        assert wait(lambda m=m: c.volumes.get(m.id), ("available", "error")).status == \
            "available"
        assert c.volumes.get(m.id).group_id == group.id
    gs = c.group_snapshots.create(group.id, name="gs")
    gs = wait(lambda: c.group_snapshots.get(gs.id), ("available", "error"))
    assert gs.status == "available"
    copy = c.groups.create_from_src(gs.id, None, name="copy")
    copy = wait(lambda: c.groups.get(copy["id"] if isinstance(copy, dict) else copy.id),
                ("available", "error"))
    assert copy.status == "available" and copy.group_snapshot_id == gs.id
    assert {g.name for g in c.groups.list()} == {"g", "copy"}
    copy_members = [v for v in c.volumes.list(search_opts={"group_id": copy.id})]
    assert len(copy_members) == 2
    c.groups.delete(copy, delete_volumes=True)
    gone(lambda: c.groups.get(copy.id))
    c.group_snapshots.delete(gs)
    gone(lambda: c.group_snapshots.get(gs.id))
    c.groups.delete(group, delete_volumes=True)
    gone(lambda: c.groups.get(group.id))
    c.group_types.delete(gt)
    assert db.worker_get_all() == []
    assert quota.check() == []
    return members, copy_members


@pytest.fixture
def file_stack(tmp_path):
    s = Stack(tmp_path).start()
    yield s
    s.stop()


def test_cinderclient_groups_file(file_stack):
    run_group_scenario(file_stack, "__DEFAULT__")


# --- rbd ---------------------------------------------------------------------------------------

@pytest.fixture
def rbd_stack(tmp_path):
    ceph.require()
    stack = Stack(tmp_path, backends={"ceph": ceph.backend_options()}).start()
    yield stack
    stack.stop()


def _image(name, fn):
    import rados
    import rbd

    cluster = rados.Rados(conffile=ceph.CONF, rados_id=ceph.USER,
                          conf={"keyring": ceph.KEYRING})
    cluster.connect(timeout=10)
    try:
        with cluster.open_ioctx(ceph.POOL) as ioctx, rbd.Image(ioctx, name) as img:
            return fn(img)
    finally:
        cluster.shutdown()


def test_rbd_group_snapshot_and_group_from_it(rbd_stack):
    c = cinder(rbd_stack)
    gt = c.group_types.create("gt-rbd")
    made = c.groups.create(gt.id, "__DEFAULT__", name="g")
    group = wait(lambda: c.groups.get(made.id), ("available", "error"))
    assert group.status == "available"
    members = [c.volumes.create(1, volume_type="__DEFAULT__", group_id=group.id)
               for _ in range(2)]
    for i, m in enumerate(members):
        assert wait(lambda m=m: c.volumes.get(m.id), ("available", "error")).status == \
            "available"
        _image("volume-" + m.id, lambda img, i=i: img.write(b"rbd-member-%d" % i, 0))
    gs = c.group_snapshots.create(group.id, name="gs")
    gs = wait(lambda: c.group_snapshots.get(gs.id), ("available", "error"))
    assert gs.status == "available"
    snapshot_rows = [s for s in db.snapshot_get_all(_admin(), all_projects=True)
                     if s.group_snapshot_id == gs.id]
    for snap in snapshot_rows:  # an RBD snapshot of each member image
        out = ceph.run("rbd", "snap", "ls", "%s/volume-%s" % (ceph.POOL, snap.volume_id),
                       "--format", "json").stdout
        assert "snapshot-" + snap.id in {s["name"] for s in json.loads(out or "[]")}
    for m in members:
        _image("volume-" + m.id, lambda img: img.write(b"overwritten!!", 0))
    created = c.groups.create_from_src(gs.id, None, name="copy")
    copy_id = created["id"] if isinstance(created, dict) else created.id
    copy = wait(lambda: c.groups.get(copy_id), ("available", "error"), timeout=120)
    assert copy.status == "available"
    by_source = {s.id: s.volume_id for s in snapshot_rows}
    for v in c.volumes.list(search_opts={"group_id": copy.id}):
        source_index = [m.id for m in members].index(by_source[v.snapshot_id])
        data = _image("volume-" + v.id, lambda img: img.read(0, 12))
        assert data == b"rbd-member-%d" % source_index
    c.groups.delete(c.groups.get(copy.id), delete_volumes=True)
    gone(lambda: c.groups.get(copy.id))
    c.group_snapshots.delete(gs)
    gone(lambda: c.group_snapshots.get(gs.id))
    c.groups.delete(group, delete_volumes=True)
    gone(lambda: c.groups.get(group.id))
    assert [i for i in ceph.rbd_ls() if any(m.id in i for m in members)] == []
    assert db.worker_get_all() == []
    assert quota.check() == []


def _admin():
    from common import context

    return context.get_admin_context()


# --- the cinder CLI against lamina-aio -----------------------------------------------------------

@pytest.fixture(scope="module")
def aio(tmp_path_factory):
    from tests.integration import cluster

    proc = cluster.AioProcess(tmp_path_factory.mktemp("groups-aio")).start()
    yield proc
    proc.stop()


@pytest.mark.clients
def test_cinder_cli_groups(aio):
    def cli(*args):
        rc, out = scenarios.cinder_cli(aio.url, "--os-volume-api-version", "3.14", *args)
        assert rc == 0, out
        return out

    def field(out, name):
        return scenarios.table_field(out, name)

    def group_status(group_id):
        return field(cli("group-show", group_id), "status")

    assert "gt-cli" in cli("group-type-create", "gt-cli")
    gt = "gt-cli"  # Cinder takes a group type's name or id
    group = field(cli("group-create", "--name", "g-cli", gt, "__DEFAULT__"), "id")
    assert scenarios.wait_for(lambda: group_status(group) in ("available", "error"))
    assert group_status(group) == "available"
    volume = field(cli("create", "--group-id", group, "--volume-type", "__DEFAULT__",
                       "--name", "member", "1"), "id")
    assert scenarios.wait_for(
        lambda: field(cli("show", volume), "status") in ("available", "error"))
    assert field(cli("show", volume), "group_id") == group
    gs = field(cli("group-snapshot-create", "--name", "gs-cli", group), "id")
    assert scenarios.wait_for(
        lambda: field(cli("group-snapshot-show", gs), "status") in ("available", "error"))
    assert field(cli("group-snapshot-show", gs), "status") == "available"
    copy = field(cli("group-create-from-src", "--group-snapshot", gs, "--name", "copy-cli"),
                 "id")
    assert scenarios.wait_for(lambda: group_status(copy) in ("available", "error"))
    assert group_status(copy) == "available"
    listed = cli("group-list")
    assert group in listed and copy in listed
    cli("group-delete", "--delete-volumes", copy)
    assert scenarios.wait_for(lambda: copy not in cli("group-list"))
    cli("group-snapshot-delete", gs)
    assert scenarios.wait_for(lambda: gs not in cli("group-snapshot-list"))
    cli("group-delete", "--delete-volumes", group)
    assert scenarios.wait_for(lambda: group not in cli("group-list"))
    cli("group-type-delete", gt)
