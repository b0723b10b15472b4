"""A volume's image metadata and bootable flag go with its data, as in Cinder: to its
snapshots, to the volumes made from them and to its clones; and the create and update answers
carry no volume_image_metadata (Tempest's schemas refuse it there: tests/contract.py checks
every response)."""

import pytest

IMAGE = {"image_id": "5c4d0a4e-2bd6-4b5b-9d56-1f0b6a9b8c11", "image_name": "debian",
         "disk_format": "qcow2", "hw_disk_bus": "scsi"}


def act(stack, volume_id, action, args):
    resp = stack.request("POST", "/volumes/%s/action" % volume_id, {action: args})
    assert resp.status_code in (200, 202), resp.text
    return resp


@pytest.fixture
def bootable(stack):
    volume = stack.wait_volume(stack.create_volume(size=1)["id"], ("available",))
    act(stack, volume["id"], "os-set_bootable", {"bootable": True})
    act(stack, volume["id"], "os-set_image_metadata", {"metadata": IMAGE})
    return volume


def shown(stack, volume_id):
    return stack.request("GET", "/volumes/%s" % volume_id).json()["volume"]


def test_a_clone_boots_with_the_same_image_metadata(stack, bootable):
    clone = stack.create_volume(source_volid=bootable["id"])
    assert "volume_image_metadata" not in clone
    clone = stack.wait_volume(clone["id"], ("available",))
    body = shown(stack, clone["id"])
    assert (body["bootable"], body["volume_image_metadata"]) == ("true", IMAGE)


def test_a_volume_from_a_snapshot_gets_what_the_volume_had_when_snapshotted(stack, bootable):
    snapshot = stack.create_snapshot(bootable["id"])
    stack.wait_snapshot(snapshot["id"], ("available",))
    # a change to the volume after the snapshot is not the snapshot's
    act(stack, bootable["id"], "os-set_image_metadata", {"metadata": {"image_name": "later"}})
    volume = stack.wait_volume(stack.create_volume(snapshot_id=snapshot["id"])["id"],
                               ("available",))
    body = shown(stack, volume["id"])
    assert (body["bootable"], body["volume_image_metadata"]) == ("true", IMAGE)
    assert shown(stack, bootable["id"])["volume_image_metadata"]["image_name"] == "later"


def test_update_answers_without_image_metadata(stack, bootable):
    resp = stack.request("PUT", "/volumes/%s" % bootable["id"], {"volume": {"name": "renamed"}})
    assert resp.status_code == 200, resp.text
    assert "volume_image_metadata" not in resp.json()["volume"]
    assert shown(stack, bootable["id"])["volume_image_metadata"] == IMAGE


def test_a_plain_volume_copies_nothing(stack):
    volume = stack.wait_volume(stack.create_volume(size=1)["id"], ("available",))
    clone = stack.wait_volume(stack.create_volume(source_volid=volume["id"])["id"],
                              ("available",))
    body = shown(stack, clone["id"])
    assert body["bootable"] == "false" and "volume_image_metadata" not in body
