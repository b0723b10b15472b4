"""os-volume_upload_image refusals that need no image service (whole stack in one process,
file driver): each is answered before Glance is asked, and leaves the volume as it was: its
status, no workers row, no user message, its storage untouched. The uploads themselves run
against the real Glance in tests/integration/test_upload_image.py."""

import pytest

from common import context
from common.db import api as db
from tests.functional.test_volume_actions import act, row

MEMBER = "bob:p1"
UPLOAD = "os-volume_upload_image"


@pytest.fixture
def volume(stack):
    v = stack.create_volume(size=1)
    return stack.wait_volume(v["id"], ("available",))


def assert_untouched(stack, volume_id, status="available"):
    r = row(volume_id)
    assert r.status == status
    assert [w for w in db.worker_get_all() if w.resource_id == volume_id] == []
    messages = stack.request("GET", "/messages", version="3.3").json()["messages"]
    assert [m for m in messages if m["resource_uuid"] == volume_id] == []
    assert len(stack.volume_files()) == 1


@pytest.mark.parametrize("args", [
    {}, {"image_name": ""}, {"image_name": None}, {"image_name": "x" * 256},
    {"disk_format": "raw"}, {"image_name": "i", "disk_format": "iso"},
    {"image_name": "i", "disk_format": "QCOW3"}, {"image_name": "i", "force": "perhaps"},
    {"image_name": "i", "container_format": 5}, {"image_name": "i", "extra": 1},
    None, "image",
])
def test_bad_body(stack, volume, args):
    resp = act(stack, volume["id"], UPLOAD, args)
    assert resp.status_code == 400, resp.text
    assert "badRequest" in resp.json()
    assert_untouched(stack, volume["id"])


def test_a_format_qemu_img_cannot_write_is_refused(stack, volume):
    # ploop is in Cinder's list, but qemu-img does not write it
    resp = act(stack, volume["id"], UPLOAD, {"image_name": "i", "disk_format": "ploop"})
    assert resp.status_code == 400, resp.text
    assert "Invalid disk-format 'ploop'" in resp.json()["badRequest"]["message"]
    assert_untouched(stack, volume["id"])


@pytest.mark.parametrize("extra", [{"visibility": "private"}, {"protected": False}])
def test_visibility_and_protected_only_from_3_1(stack, volume, extra):
    for version in (None, "3.0"):
        resp = act(stack, volume["id"], UPLOAD, {"image_name": "i", **extra}, version=version)
        assert resp.status_code == 400, resp.text
    assert_untouched(stack, volume["id"])


@pytest.mark.parametrize("extra", [{"visibility": "everyone"}, {"protected": "maybe"},
                                   {"visibility": None}])
def test_bad_visibility_or_protected_at_3_1(stack, volume, extra):
    resp = act(stack, volume["id"], UPLOAD, {"image_name": "i", **extra}, version="3.1")
    assert resp.status_code == 400, resp.text
    assert_untouched(stack, volume["id"])


def test_public_image_is_for_admins(stack, volume):
    resp = act(stack, volume["id"], UPLOAD, {"image_name": "i", "visibility": "public"},
               version="3.1", token=MEMBER)
    assert resp.status_code == 403 and "forbidden" in resp.json()
    assert_untouched(stack, volume["id"])


@pytest.mark.parametrize("status", ["error", "creating", "extending", "uploading",
                                    "maintenance"])
def test_volume_not_available(stack, volume, status):
    vid = volume["id"]
    assert act(stack, vid, "os-reset_status", {"status": status}).status_code == 202
    for force in (False, True):
        resp = act(stack, vid, UPLOAD, {"image_name": "i", "force": force})
        assert resp.status_code == 400, resp.text
        assert "must be available" in resp.json()["badRequest"]["message"]
    assert_untouched(stack, vid, status)


def test_in_use_needs_force(stack, volume):
    vid = volume["id"]
    assert act(stack, vid, "os-reset_status",
               {"status": "in-use", "attach_status": "attached"}).status_code == 202
    for force in (False, "false", "0"):
        resp = act(stack, vid, UPLOAD, {"image_name": "i", "force": force})
        assert resp.status_code == 400, resp.text
        assert "must be available, currently in-use" in resp.json()["badRequest"]["message"]
    assert_untouched(stack, vid, "in-use")


def test_force_ignored_when_force_upload_is_disabled(make_stack):
    stack = make_stack(overrides={"enable_force_upload": False})
    v = stack.create_volume(size=1)
    vid = stack.wait_volume(v["id"], ("available",))["id"]
    assert act(stack, vid, "os-reset_status",
               {"status": "in-use", "attach_status": "attached"}).status_code == 202
    resp = act(stack, vid, UPLOAD, {"image_name": "i", "force": True})
    assert resp.status_code == 400, resp.text
    assert "must be available, currently in-use" in resp.json()["badRequest"]["message"]
    assert_untouched(stack, vid, "in-use")


def test_missing_and_other_projects_volume(stack, volume):
    missing = act(stack, "00000000-0000-0000-0000-000000000000", UPLOAD, {"image_name": "i"})
    assert missing.status_code == 404
    other = act(stack, volume["id"], UPLOAD, {"image_name": "i"}, token="bob:p2",
                project="p2")
    assert other.status_code == 404
    assert_untouched(stack, volume["id"])


def test_no_image_service_leaves_the_volume_available(stack, volume):
    """Without a reachable Glance (none is configured here) the image cannot be created:
    the request fails before the volume moves."""
    resp = act(stack, volume["id"], UPLOAD, {"image_name": "i"})
    assert resp.status_code in (403, 503), resp.text
    assert_untouched(stack, volume["id"])


# --- how the volume service ends an upload that failed or was interrupted ----------------------

def _manager(stack, host="stack@file"):
    return [svc for svc in stack.services if svc.host == host][0].manager


def _left_uploading(volume_id, attached):
    """The state the api leaves behind once it has cast the upload: `uploading`, the
    workers row claimed for the volume's service."""
    from common.db import models
    from common.db.session import writer

    values = {"status": "uploading", "previous_status": "in-use" if attached else "available"}
    if attached:
        values["attach_status"] = "attached"
    with writer() as s:
        s.query(models.Volume).filter(models.Volume.id == volume_id).update(values)
        s.add(models.Worker(resource_type="volume", resource_id=volume_id,
                            operation="upload_image", host="stack@file"))


def _upload_messages(stack, volume_id, token=None):
    messages = stack.request("GET", "/messages?resource_uuid=" + volume_id, token=token,
                             version="3.3").json()["messages"]
    return [m for m in messages if m["event_id"] == "VOLUME_VOLUME_003_004"]


@pytest.mark.parametrize("attached", [False, True])
def test_interrupted_upload_ends_at_start(stack, volume, attached):
    """A volume service that stopped mid-upload: at its start the volume goes back to what
    its attachments say, with a message, and the workers row goes."""
    vid = volume["id"]
    _left_uploading(vid, attached)
    _manager(stack).cleanup_interrupted()
    assert row(vid).status == ("in-use" if attached else "available")
    assert db.worker_get_all() == []
    # in the volume's project: its owner (a member, who sees only the project's) reads it
    (message,) = _upload_messages(stack, vid, token=MEMBER)
    assert "interrupted" in message["user_message"]
    assert len(stack.volume_files()) == 1


@pytest.mark.parametrize("point", ["upload_image.check_uploading",
                                   "upload_image.copy_to_image"])
def test_failed_upload_flow_ends_back_available(make_stack, point):
    """The flow failing (an injected failure at each step before the data moves): its
    reverts put the volume back, release the workers row and say why."""
    stack = make_stack(overrides={"debug.fail_points": [point]})
    v = stack.create_volume(size=1)
    vid = stack.wait_volume(v["id"], ("available",))["id"]
    _left_uploading(vid, attached=False)
    _manager(stack).copy_volume_to_image(context.get_admin_context(), vid,
                                         "11111111-2222-3333-4444-555555555555")
    stack.wait_volume(vid, ("available",))
    # the status and the workers row change in one transaction
    assert db.worker_get_all() == []
    (message,) = _upload_messages(stack, vid)
    assert "copy volume to image" in message["user_message"]
    assert point in message["user_message"]
    assert len(stack.volume_files()) == 1
