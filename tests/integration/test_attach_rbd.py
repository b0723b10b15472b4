"""Attachments of rbd volumes, end to end: the in-process stack (tests/stack.py) with an rbd
back end on the single-node Ceph (deploy/ceph/ceph-aio.sh), driven through the HTTP API only,
and a compute host played by tests/compute_client.py (qemu's rbd driver, librbd, opening
the `rbd` connection_info the API handed out with the test cluster's conf and keyring, as a
compute host has them from its own configuration).

Nothing is exported for rbd (the compute host talks to Ceph itself), so what issue 10 asks
to see here is the data path and the states: 4 MiB written through one attachment and read
back through the next (and seen in the image by librbd directly), the legacy actions,
multiattach, delete refused while attached, force-detach, a volume service restart, and
failures part way through the attach flow leaving the volume `available` with a message.

Needs the Ceph cluster (`make test` starts it, LAMINA_REQUIRE_CEPH=1); without it the tests
skip (tests/integration/ceph.py)."""

import hashlib

import pytest

from common.db import attachments_api
from tests import compute_client
from tests.integration import ceph
from tests.integration import test_attach_iscsi as steps  # its HTTP API steps
from tests.stack import Stack

pytestmark = pytest.mark.integration
MiB = 1024 * 1024
V = "3.27"
INITIATOR = "iqn.1994-05.com.example:lamina-rbd-compute1"


def connector(host="compute1"):
    # An rbd attach needs no initiator; Nova's connector carries one anyway.
    return {"host": host, "initiator": "%s-%s" % (INITIATOR, host), "ip": "127.0.0.1",
            "multipath": False, "platform": "x86_64", "os_type": "linux"}


@pytest.fixture
def late(monkeypatch):
    """os-complete is 3.44, above the advertised maximum: raised as test_attachments does."""
    from api import microversion

    monkeypatch.setattr(microversion, "MAX_VERSION", (3, 54))


@pytest.fixture(scope="module")
def rbd_stack(tmp_path_factory):
    ceph.require()
    stack = Stack(tmp_path_factory.mktemp("attach-rbd"),
                  backends={"ceph": ceph.backend_options()}).start()
    yield stack
    stack.stop()


@pytest.fixture
def volumes(rbd_stack):
    """Volumes the test makes; afterwards their attachments and then they go (through the
    API), and an image left behind is removed from Ceph."""
    made = []

    def new(**fields):
        volume = rbd_stack.create_volume(**fields)
        made.append(volume["id"])
        return rbd_stack.wait_volume(volume["id"], ("available",), timeout=60)

    yield new
    from oslo_config import cfg

    cfg.CONF.clear_override("fail_points", group="debug")
    for volume_id in made:
        for attachment in attachments_api.attachments_of_volume(volume_id):
            rbd_stack.request("DELETE", "/attachments/" + attachment.id, version=V)
        if rbd_stack.request("DELETE", "/volumes/" + volume_id).status_code == 202:
            rbd_stack.wait_volume(volume_id, ("deleted",), timeout=60)
        if ceph.rbd_info("volume-" + volume_id) is not None:
            ceph.run("rbd", "rm", "%s/volume-%s" % (ceph.POOL, volume_id), check=False)


def image_bytes(volume_id, offset, length):
    """Bytes of the volume's image read by librbd directly (not through qemu)."""
    import rados
    import rbd

    cluster = rados.Rados(conffile=ceph.CONF, rados_id=ceph.USER,
                          conf={"keyring": ceph.KEYRING})
    cluster.connect(timeout=10)
    try:
        with cluster.open_ioctx(ceph.POOL) as ioctx, \
                rbd.Image(ioctx, "volume-" + volume_id, read_only=True) as image:
            return image.read(offset, length)
    finally:
        cluster.shutdown()


def assert_rbd_connection(info, volume_id, attachment_id=None):
    assert info["driver_volume_type"] == "rbd"
    data = info["data"]
    assert data["name"] == "%s/volume-%s" % (ceph.POOL, volume_id)
    assert data["hosts"] and len(data["hosts"]) == len(data["ports"])
    assert (data["auth_username"], data["volume_id"], data["access_mode"]) == (
        ceph.USER, volume_id, "rw")
    if attachment_id is not None:
        assert data["attachment_id"] == attachment_id


# --- data through what the API hands out ------------------------------------------------------

def test_attach_write_detach_reattach_read(rbd_stack, volumes, late):
    volume = volumes()
    first_id, info = steps.attach(rbd_stack, volume["id"], connector())
    assert_rbd_connection(info, volume["id"], first_id)
    assert steps.volume_of(rbd_stack, volume["id"])["status"] == "in-use"

    disk = compute_client.connect(info)
    disk.write_pattern(0x5A, 0, 4 * MiB)
    assert disk.read_pattern(0x5A, 0, 4 * MiB)
    assert not disk.read_pattern(0x5B, 0, 4 * MiB)  # the check can fail
    assert hashlib.sha256(image_bytes(volume["id"], 0, 4 * MiB)).hexdigest() == \
        hashlib.sha256(b"\x5a" * 4 * MiB).hexdigest()
    # an attached volume is not deleted
    assert rbd_stack.request("DELETE", "/volumes/" + volume["id"]).status_code == 400

    assert steps.delete_attachment(rbd_stack, first_id) == []
    shown = steps.volume_of(rbd_stack, volume["id"])
    assert (shown["status"], shown["attachments"]) == ("available", [])
    assert ceph.rbd_info("volume-" + volume["id"]) is not None  # the image stays

    second_id, again = steps.attach(rbd_stack, volume["id"], connector())
    assert second_id != first_id
    assert_rbd_connection(again, volume["id"], second_id)
    reader = compute_client.connect(again)
    assert reader.read_pattern(0x5A, 0, 4 * MiB)
    assert reader.checksum(4 * MiB) == hashlib.sha256(b"\x5a" * 4 * MiB).hexdigest()
    steps.delete_attachment(rbd_stack, second_id)


def test_legacy_actions_attach_detach_reattach(rbd_stack, volumes):
    volume = volumes()
    vid = volume["id"]
    conn = connector()
    assert steps.action(rbd_stack, vid, "os-reserve").status_code == 202
    resp = steps.action(rbd_stack, vid, "os-initialize_connection", {"connector": conn})
    assert resp.status_code == 200, resp.text
    info = resp.json()["connection_info"]
    assert_rbd_connection(info, vid)
    compute_client.connect(info).write_pattern(0xA7, 0, 4 * MiB)
    assert steps.action(rbd_stack, vid, "os-attach", {
        "instance_uuid": "6f4a3e2c-0d7b-4d7e-9a55-1b2c3d4e5f81", "mountpoint": "/dev/vdb",
        "host_name": "compute1", "mode": "rw"}).status_code == 202
    shown = steps.volume_of(rbd_stack, vid)
    assert shown["status"] == "in-use"
    attachment_id = shown["attachments"][0]["attachment_id"]
    assert steps.action(rbd_stack, vid, "os-begin_detaching").status_code == 202
    assert steps.action(rbd_stack, vid, "os-terminate_connection",
                  {"connector": conn}).status_code == 202
    assert steps.action(rbd_stack, vid, "os-detach",
                  {"attachment_id": attachment_id}).status_code == 202
    assert steps.volume_of(rbd_stack, vid)["status"] == "available"

    assert steps.action(rbd_stack, vid, "os-reserve").status_code == 202
    again = steps.action(rbd_stack, vid, "os-initialize_connection", {"connector": conn}).json()[
        "connection_info"]
    assert compute_client.connect(again).read_pattern(0xA7, 0, 4 * MiB)
    assert steps.action(rbd_stack, vid, "os-terminate_connection",
                  {"connector": conn}).status_code == 202
    assert steps.action(rbd_stack, vid, "os-unreserve").status_code == 202
    assert steps.volume_of(rbd_stack, vid)["status"] == "available"
    assert attachments_api.attachments_of_volume(vid) == []


# --- one attachment, or many --------------------------------------------------------------------

def test_second_attach_refused_multiattach_two_readers(rbd_stack, volumes, late):
    single = volumes()
    attachment_id, _info = steps.attach(rbd_stack, single["id"], connector("compute1"))
    second = steps.create_attachment(rbd_stack, single["id"], connector("compute2"))
    assert second.status_code == 400, second.text
    assert [a.id for a in attachments_api.attachments_of_volume(single["id"])] == [
        attachment_id]
    steps.delete_attachment(rbd_stack, attachment_id)

    resp = rbd_stack.request("POST", "/types", {"volume_type": {
        "name": "rbd-multi", "extra_specs": {"multiattach": "<is> True"}}})
    assert resp.status_code == 200, resp.text
    vtype = resp.json()["volume_type"]
    volume = volumes(volume_type=vtype["id"])
    assert volume["multiattach"] is True
    first_id, first = steps.attach(rbd_stack, volume["id"], connector("compute1"))
    second_id, other = steps.attach(rbd_stack, volume["id"], connector("compute2"))
    assert steps.volume_of(rbd_stack, volume["id"])["status"] == "in-use"
    compute_client.connect(first).write_pattern(0xC3, 0, 4 * MiB)
    assert compute_client.connect(other).read_pattern(0xC3, 0, 4 * MiB)
    assert [a["id"] for a in steps.delete_attachment(rbd_stack, first_id)] == [second_id]
    assert steps.volume_of(rbd_stack, volume["id"])["status"] == "in-use"
    steps.delete_attachment(rbd_stack, second_id)
    assert steps.volume_of(rbd_stack, volume["id"])["status"] == "available"


# --- restart, force-detach --------------------------------------------------------------------

def test_volume_service_restart_keeps_the_attachment(rbd_stack, volumes, late):
    volume = volumes()
    attachment_id, info = steps.attach(rbd_stack, volume["id"], connector())
    compute_client.connect(info).write_pattern(0x6B, 0, 4 * MiB)
    steps.restart_volume_service(rbd_stack)
    assert compute_client.connect(info).read_pattern(0x6B, 0, 4 * MiB)
    assert steps.volume_of(rbd_stack, volume["id"])["status"] == "in-use"
    steps.delete_attachment(rbd_stack, attachment_id)  # the restarted service answers
    assert steps.volume_of(rbd_stack, volume["id"])["status"] == "available"


def test_force_detach(rbd_stack, volumes, late):
    volume = volumes()
    attachment_id, _info = steps.attach(rbd_stack, volume["id"], connector())
    assert steps.action(rbd_stack, volume["id"], "os-force_delete").status_code == 400
    resp = steps.action(rbd_stack, volume["id"], "os-force_detach",
                  {"attachment_id": attachment_id, "connector": connector()})
    assert resp.status_code == 202, resp.text
    shown = steps.volume_of(rbd_stack, volume["id"])
    assert (shown["status"], shown["attachments"]) == ("available", [])
    assert attachments_api.attachments_of_volume(volume["id"]) == []


# --- failures part way ------------------------------------------------------------------------

@pytest.mark.parametrize("step", steps.ATTACH_STEPS)
def test_failure_at_each_attach_step(rbd_stack, volumes, step):
    volume = volumes()
    rbd_stack.override("fail_points", [step], group="debug")
    try:
        resp = steps.create_attachment(rbd_stack, volume["id"], connector())
    finally:
        from oslo_config import cfg

        cfg.CONF.clear_override("fail_points", group="debug")
    assert resp.status_code == 500, resp.text
    assert steps.volume_of(rbd_stack, volume["id"])["status"] == "available"
    assert attachments_api.attachments_of_volume(volume["id"]) == []
    messages = steps.messages_for(rbd_stack, volume["id"])
    assert messages and step in messages[0]["user_message"], messages
    ok = steps.create_attachment(rbd_stack, volume["id"], connector())
    assert ok.status_code == 200, ok.text
    steps.delete_attachment(rbd_stack, ok.json()["attachment"]["id"])
