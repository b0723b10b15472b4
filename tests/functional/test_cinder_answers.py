"""Answers where Cinder's differ from the obvious one (found by Tempest and the clients):
the status code of a missing referenced resource, what a 404 may reveal, force with cascade."""

from common.db import api as db

GiB = 1024 ** 3


def available(stack, **fields):
    volume = stack.create_volume(size=1, **fields)
    return stack.wait_volume(volume["id"], ("available",))


def test_snapshot_without_volume_id_is_404(stack):
    for body in ({"snapshot": {"name": "s"}}, {"snapshot": {"volume_id": None}}):
        resp = stack.request("POST", "/snapshots", body)
        assert resp.status_code == 404 and "itemNotFound" in resp.json(), resp.text
    assert stack.request("GET", "/snapshots").json()["snapshots"] == []


def test_unknown_marker_is_404(stack):
    available(stack)
    for path in ("/volumes", "/volumes/detail", "/snapshots", "/snapshots/detail", "/types"):
        resp = stack.request("GET", path + "?marker=00000000-0000-0000-0000-000000000000")
        assert resp.status_code == 404, (path, resp.text)
        assert "Marker" in resp.json()["itemNotFound"]["message"]


def test_sort_by_display_name(stack):
    for name in ("b", "a", "c"):
        available(stack, name=name)
    for query in ("sort=display_name:asc", "sort_key=display_name&sort_dir=asc"):
        names = [v["name"] for v in
                 stack.request("GET", "/volumes?" + query).json()["volumes"]]
        assert names == ["a", "b", "c"], (query, names)


def test_private_type_by_name_does_not_reveal_its_id(stack):
    resp = stack.request("POST", "/types", {"volume_type": {
        "name": "secret", "os-volume-type-access:is_public": False}})
    type_id = resp.json()["volume_type"]["id"]
    for path in ("/types/secret", "/types/" + type_id):
        resp = stack.request("GET", path, token="bob:p2", project="p2")
        assert resp.status_code == 404
        assert type_id not in resp.text or path.endswith(type_id), resp.text
    create = stack.request("POST", "/volumes", {"volume": {"size": 1, "volume_type": "secret"}},
                           token="bob:p2", project="p2")
    assert create.status_code == 404 and type_id not in create.text, create.text
    assert "secret" in create.json()["itemNotFound"]["message"]


def test_delete_with_cascade_and_force(stack):
    """3.23 ?force=true with cascade=true: an admin deletes the volume and its snapshots
    whatever their status; the quota of both is given back."""
    volume = available(stack)
    snaps = [stack.create_snapshot(volume["id"], name="s%d" % i) for i in range(2)]
    for snap in snaps:
        stack.wait_snapshot(snap["id"], ("available",))
    for action, target in (("os-reset_status", "/volumes/%s/action" % volume["id"]),
                           ("os-reset_status", "/snapshots/%s/action" % snaps[0]["id"])):
        assert stack.request("POST", target, {action: {"status": "error"}}).status_code == 202
    member = stack.request("DELETE", "/volumes/%s?cascade=true&force=true" % volume["id"],
                           version="3.23", token="bob:p1")
    assert member.status_code == 403
    resp = stack.request("DELETE", "/volumes/%s?cascade=true&force=true" % volume["id"],
                         version="3.23")
    assert resp.status_code == 202, resp.text
    stack.wait_volume(volume["id"], ("deleted",))
    for snap in snaps:
        stack.wait_snapshot(snap["id"], ("deleted",))
    assert stack.volume_files() == [] and stack.snapshot_files() == []
    usage = stack.request("GET", "/os-quota-sets/p1?usage=true").json()["quota_set"]
    assert usage["volumes"]["in_use"] == 0 and usage["snapshots"]["in_use"] == 0
    assert usage["gigabytes"]["in_use"] == 0
    assert db.worker_get_all() == []


def test_offset_bootable_and_message_delete(stack):
    made = [available(stack, name="v%d" % i) for i in range(3)]
    names = [v["name"] for v in
             stack.request("GET", "/volumes?sort=name:asc&offset=1").json()["volumes"]]
    assert names == ["v1", "v2"]
    snap = stack.create_snapshot(made[0]["id"], name="s0")
    stack.wait_snapshot(snap["id"], ("available",))
    assert stack.request("GET", "/snapshots?offset=1").json()["snapshots"] == []
    assert stack.request("GET", "/volumes?offset=-1").status_code == 400
    # bootable filters at 3.0 too (3.2 made the value case-insensitive)
    assert stack.request("POST", "/volumes/%s/action" % made[2]["id"],
                         {"os-set_bootable": {"bootable": True}}).status_code == 200
    boot = stack.request("GET", "/volumes?bootable=true").json()["volumes"]
    assert [v["id"] for v in boot] == [made[2]["id"]]
    # a user message is deleted with 204
    stack.override("fail_points", ["create_volume.create_storage"], group="debug")
    bad = stack.create_volume(size=1)
    stack.wait_volume(bad["id"], ("error",))
    msgs = stack.request("GET", "/messages", version="3.3").json()["messages"]
    resp = stack.request("DELETE", "/messages/" + msgs[0]["id"], version="3.3")
    assert resp.status_code == 204 and not resp.text


def test_force_delete_of_a_snapshot_in_deleting(stack):
    """As Tempest's test_snapshot_force_delete_when_snapshot_is_deleting: an admin resets a
    snapshot to deleting and force-deletes it; the delete is sent again and ends."""
    volume = available(stack)
    snap = stack.create_snapshot(volume["id"])
    stack.wait_snapshot(snap["id"], ("available",))
    action = "/snapshots/%s/action" % snap["id"]
    assert stack.request("POST", action, {"os-reset_status": {"status": "deleting"}}
                         ).status_code == 202
    assert stack.request("POST", action, {"os-force_delete": {}}).status_code == 202
    stack.wait_snapshot(snap["id"], ("deleted",))
    assert stack.snapshot_files() == [] and db.worker_get_all() == []
