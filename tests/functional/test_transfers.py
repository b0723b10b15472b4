"""Volume transfers (os-volume-transfer; volume-transfers from 3.55) on the in-process stack
(noauth: `u1:p1` is a member of p1, `u2:p2` of p2, `admin:...` an administrator).

Every response is checked against the Tempest schema its client uses at that microversion
(tempest/lib/services/volume/v3/transfers_client.py); quotas of both projects are compared
with a recount of the tables after every transfer."""

import importlib
import urllib.error
import urllib.request

import pytest
import requests
from tempest.lib.common import rest_client

from api import microversion
from common import quota
from common.db import api as db
from common.db import quota_api
from tests import races

GIVER = "u1:p1"
TAKER = "u2:p2"
THIRD = "u3:p3"
OLD, NEW = "/os-volume-transfer", "/volume-transfers"


@pytest.fixture(autouse=True)
def above_the_maximum(monkeypatch):
    # 3.55-3.59 are built but above the advertised maximum (docs/api.md): raise it for these
    # tests only.
    monkeypatch.setattr(microversion, "MAX_VERSION", (3, 59))


def schema_module(version):
    numbers = tuple(int(n) for n in (version or "3.0").split("."))
    name = "transfers"
    if numbers >= (3, 57):
        name = "v3_57.transfers"
    elif numbers >= (3, 55):
        name = "v3_55.transfers"
    return importlib.import_module("tempest.lib.api_schema.response.volume." + name)


class _Resp(dict):
    def __init__(self, resp):
        super().__init__(resp.headers)
        self.status = resp.status_code


def checked(resp, schema_name, version=None, status=None, body=None):
    """The response (or `body`, what the test makes of it), validated as Tempest's transfers
    client validates it."""
    if status is not None:
        assert resp.status_code == status, resp.text
    if body is None:
        body = resp.json() if resp.text else resp.text
    schema = getattr(schema_module(version), schema_name)
    rest_client.RestClient.validate_response(schema, _Resp(resp), body)
    return body


def unhooked_get(stack, path, token, version):
    """GET outside the requests hook of tests/conftest.py (tests/contract.py): a full page
    of a transfer list carries Cinder's `transfers_links`, which Tempest's list schema lacks
    (Tempest never pages transfers); the caller checks the rest against the schema."""
    request = urllib.request.Request("%s/v3/p1%s" % (stack.url, path), headers={
        "X-Auth-Token": token, "OpenStack-API-Version": "volume " + version})
    try:
        with urllib.request.urlopen(request) as answer:
            status, headers, text = answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        status, headers, text = error.code, dict(error.headers), error.read()
    resp = requests.models.Response()
    resp.status_code, resp._content = status, text
    resp.headers.update(headers)
    return resp


def refused(resp, code, fault):
    assert resp.status_code == code, resp.text
    body = resp.json()
    assert list(body) == [fault] and body[fault]["code"] == code, body
    return body[fault]["message"]


def recounted(*projects):
    """Assert that the usage rows of the projects equal a recount of the tables (and that
    `lamina-manage quota check` finds nothing); return {project: usage}."""
    assert quota.check() == []
    counted = quota_api.recount()
    result = {}
    for project in projects:
        rows = {r: n for r, n in quota_api.usage_get_all(project).items() if n}
        assert rows == {r: n for r, n in counted.get(project, {}).items() if n}, project
        result[project] = rows
    return result


def volume_with_snapshots(stack, size=2, snapshots=2, token=GIVER, project="p1"):
    resp = stack.request("POST", "/volumes", {"volume": {"size": size, "name": "gift"}},
                         token=token, project=project)
    assert resp.status_code == 202, resp.text
    volume = resp.json()["volume"]
    stack.wait_volume(volume["id"], ("available",))
    snaps = []
    for i in range(snapshots):
        resp = stack.request("POST", "/snapshots", {"snapshot": {
            "volume_id": volume["id"], "name": "s%d" % i}}, token=token, project=project)
        assert resp.status_code == 202, resp.text
        snaps.append(resp.json()["snapshot"]["id"])
        stack.wait_snapshot(snaps[-1], ("available",))
    return volume["id"], snaps


def offer(stack, volume_id, root=NEW, version="3.57", token=GIVER, project="p1", **fields):
    resp = stack.request("POST", root, {"transfer": dict(volume_id=volume_id, **fields)},
                         token=token, project=project, version=version)
    return checked(resp, "create_volume_transfer", version, 202)["transfer"]


def accept(stack, transfer, token=TAKER, project="p2", root=NEW, version="3.57", key=None):
    return stack.request("POST", "%s/%s/accept" % (root, transfer["id"]),
                         {"accept": {"auth_key": key or transfer["auth_key"]}},
                         token=token, project=project, version=version)


def volume_row(volume_id):
    return db.volume_get_internal(volume_id)


def snapshot_projects(snapshot_ids):
    return {db.snapshot_get_internal(s).project_id for s in snapshot_ids}


def test_transfer_with_snapshots_moves_them_and_their_quota(stack):
    volume_id, snaps = volume_with_snapshots(stack)
    before = recounted("p1", "p2")
    assert before["p1"]["gigabytes"] == 6 and before["p1"]["snapshots"] == 2
    assert before.get("p2", {}) == {}

    transfer = offer(stack, volume_id, name="  for p2  ")
    assert transfer["name"] == "for p2" and transfer["no_snapshots"] is False
    assert (transfer["source_project_id"], transfer["destination_project_id"],
            transfer["accepted"]) == ("p1", None, False)
    assert len(transfer["auth_key"]) == 16
    assert volume_row(volume_id).status == "awaiting-transfer"
    # the volume cannot be deleted, extended or snapshotted while it is offered
    assert stack.request("DELETE", "/volumes/%s" % volume_id, token=GIVER).status_code == 400
    assert stack.request("POST", "/volumes/%s/action" % volume_id,
                         {"os-extend": {"new_size": 3}}, token=GIVER).status_code == 400
    assert stack.request("POST", "/snapshots", {"snapshot": {"volume_id": volume_id}},
                         token=GIVER).status_code == 400

    # the giver sees it (never the key again); the taker knows it only by id
    for version in ("3.0", "3.55", "3.57", "3.59"):
        for root in (OLD, NEW) if version >= "3.55" else (OLD,):
            path = "%s/%s" % (root, transfer["id"])
            shown = checked(stack.request("GET", path, token=GIVER, version=version),
                            "show_volume_transfer", version, 200)["transfer"]
            assert shown["id"] == transfer["id"] and "auth_key" not in shown
            listed = checked(stack.request("GET", root, token=GIVER, version=version),
                             "list_volume_transfers_no_detail", version, 200)
            assert [t["id"] for t in listed["transfers"]] == [transfer["id"]]
            detailed = checked(stack.request("GET", root + "/detail", token=GIVER,
                                             version=version),
                               "list_volume_transfers_with_detail", version, 200)
            assert detailed["transfers"] == [shown]
    refused(stack.request("GET", "%s/%s" % (OLD, transfer["id"]), token=TAKER, project="p2"),
            404, "itemNotFound")
    assert checked(stack.request("GET", OLD + "/detail", token=TAKER, project="p2"),
                   "list_volume_transfers_with_detail", None, 200) == {"transfers": []}
    admin = checked(stack.request("GET", OLD + "/detail?all_tenants=1", project="p9",
                                  token="admin:p9"),
                    "list_volume_transfers_with_detail", None, 200)
    assert [t["id"] for t in admin["transfers"]] == [transfer["id"]]
    # a member of the giving project cannot accept on another project's URL
    refused(accept(stack, transfer, token=GIVER), 400, "badRequest")

    accepted = checked(accept(stack, transfer), "accept_volume_transfer", "3.57", 202)
    assert accepted == {"transfer": {
        "id": transfer["id"], "volume_id": volume_id, "name": "for p2",
        "links": accepted["transfer"]["links"]}}

    row = volume_row(volume_id)
    assert (row.project_id, row.user_id, row.status) == ("p2", "u2", "available")
    assert snapshot_projects(snaps) == {"p2"}
    assert {db.snapshot_get_internal(s).user_id for s in snaps} == {"u2"}
    refused(stack.request("GET", "/volumes/%s" % volume_id, token=GIVER), 404, "itemNotFound")
    shown = stack.request("GET", "/volumes/%s" % volume_id, token=TAKER, project="p2")
    assert shown.status_code == 200 and shown.json()["volume"]["user_id"] == "u2"
    listed = stack.request("GET", "/snapshots?volume_id=%s" % volume_id, token=TAKER,
                           project="p2").json()["snapshots"]
    assert sorted(s["id"] for s in listed) == sorted(snaps)
    # the transfer is over: gone for everyone, the history kept in the row (3.57 fields)
    for token, project in ((GIVER, "p1"), (TAKER, "p2"), ("admin:p1", "p1")):
        refused(stack.request("GET", "%s/%s" % (OLD, transfer["id"]), token=token,
                              project=project), 404, "itemNotFound")
    refused(accept(stack, transfer), 404, "itemNotFound")

    after = recounted("p1", "p2")
    assert after.get("p1", {}) == {}
    assert after["p2"] == before["p1"]
    assert after["p2"] == {"volumes": 1, "gigabytes": 6, "snapshots": 2,
                           "volumes___DEFAULT__": 1, "gigabytes___DEFAULT__": 6,
                           "snapshots___DEFAULT__": 2}
    # the new owner uses it as its own, and the quota follows its deletes
    for snap in snaps:
        assert stack.request("DELETE", "/snapshots/%s" % snap, token=TAKER,
                             project="p2").status_code == 202
        stack.wait_snapshot(snap, ("deleted",))
    assert stack.request("DELETE", "/volumes/%s" % volume_id, token=TAKER,
                         project="p2").status_code == 202
    stack.wait_volume(volume_id, ("deleted",))
    assert recounted("p1", "p2") == {"p1": {}, "p2": {}}


def test_no_snapshots_leaves_them_with_the_giver(stack):
    volume_id, snaps = volume_with_snapshots(stack, size=1, snapshots=1)
    # at 3.55 no_snapshots is accepted on volume-transfers only
    resp = stack.request("POST", OLD, {"transfer": {"volume_id": volume_id,
                                                    "no_snapshots": True}},
                         token=GIVER, version="3.55")
    refused(resp, 400, "badRequest")
    refused(stack.request("POST", NEW, {"transfer": {"volume_id": volume_id,
                                                     "no_snapshots": True}},
                          token=GIVER, version="3.54"), 404, "itemNotFound")
    assert volume_row(volume_id).status == "available"

    transfer = offer(stack, volume_id, version="3.55", no_snapshots="true")
    assert transfer["no_snapshots"] is True and "source_project_id" not in transfer
    checked(accept(stack, transfer, version="3.55"), "accept_volume_transfer", "3.55", 202)
    assert volume_row(volume_id).project_id == "p2"
    assert snapshot_projects(snaps) == {"p1"}
    usage = recounted("p1", "p2")
    assert usage["p1"] == {"snapshots": 1, "gigabytes": 1, "snapshots___DEFAULT__": 1,
                           "gigabytes___DEFAULT__": 1}
    assert usage["p2"] == {"volumes": 1, "gigabytes": 1, "volumes___DEFAULT__": 1,
                           "gigabytes___DEFAULT__": 1}
    # p2 offers it on with snapshots: p1's snapshot is not p2's to give, and stays
    transfer = offer(stack, volume_id, token=TAKER, project="p2")
    checked(accept(stack, transfer, token=THIRD, project="p3"), "accept_volume_transfer",
            "3.57", 202)
    assert volume_row(volume_id).project_id == "p3" and snapshot_projects(snaps) == {"p1"}
    recounted("p1", "p2", "p3")


def test_wrong_key_and_bad_bodies_change_nothing(stack):
    volume_id, _snaps = volume_with_snapshots(stack, size=1, snapshots=0)
    transfer = offer(stack, volume_id, root=OLD, version=None)
    assert set(transfer) == {"id", "created_at", "name", "volume_id", "auth_key", "links"}
    before = recounted("p1", "p2")
    message = refused(accept(stack, transfer, root=OLD, version=None, key="0" * 16), 400,
                      "badRequest")
    assert "invalid auth key" in message
    for bad in ({}, {"accept": {}}, {"accept": {"auth_key": 7}}, {"accept": {"auth_key": ""}},
                {"accept": {"auth_key": transfer["auth_key"], "x": 1}}, {"accepted": {}}):
        refused(stack.request("POST", "%s/%s/accept" % (OLD, transfer["id"]), bad,
                              token=TAKER, project="p2"), 400, "badRequest")
    refused(stack.request("POST", "%s/%s/accept" % (OLD, db.new_id()),
                          {"accept": {"auth_key": transfer["auth_key"]}}, token=TAKER,
                          project="p2"), 404, "itemNotFound")
    assert volume_row(volume_id).project_id == "p1"
    assert volume_row(volume_id).status == "awaiting-transfer"
    assert recounted("p1", "p2") == before
    # still on offer, and the right key takes it
    assert stack.request("GET", "%s/%s" % (OLD, transfer["id"]), token=GIVER).status_code \
        == 200
    checked(accept(stack, transfer, root=OLD, version=None), "accept_volume_transfer", None,
            202)


def test_over_quota_receiver_is_refused_and_nothing_moves(stack):
    volume_id, snaps = volume_with_snapshots(stack, size=2, snapshots=1)
    transfer = offer(stack, volume_id)
    before = recounted("p1", "p2")
    cases = (
        ({"gigabytes": 3}, "Requested volume or snapshot exceeds allowed gigabytes quota. "
                           "Requested 4G, quota is 3G and 0G has been consumed."),
        ({"volumes": 0}, "Maximum number of volumes allowed (0) exceeded for quota "
                         "'volumes'."),
        ({"snapshots": 0}, "Maximum number of snapshots allowed (0) exceeded"),
    )
    for limits, message in cases:
        assert stack.request("PUT", "/os-quota-sets/p2", {"quota_set": limits}).status_code \
            == 200
        assert refused(accept(stack, transfer), 413, "overLimit") == message
        assert stack.request("PUT", "/os-quota-sets/p2", {"quota_set": {
            key: -1 for key in limits}}).status_code == 200
        row = volume_row(volume_id)
        assert (row.project_id, row.status) == ("p1", "awaiting-transfer")
        assert snapshot_projects(snaps) == {"p1"}
        assert recounted("p1", "p2") == before
        shown = stack.request("GET", "%s/%s" % (NEW, transfer["id"]), token=GIVER,
                              version="3.57")
        assert checked(shown, "show_volume_transfer", "3.57", 200)["transfer"][
            "accepted"] is False
    # room again: the same transfer goes through
    assert stack.request("PUT", "/os-quota-sets/p2",
                         {"quota_set": {"gigabytes": 4, "volumes": 1}}).status_code == 200
    checked(accept(stack, transfer), "accept_volume_transfer", "3.57", 202)
    assert recounted("p1", "p2")["p2"]["gigabytes"] == 4


def test_only_available_volumes_and_snapshots_are_transferred(stack):
    volume_id, snaps = volume_with_snapshots(stack, size=1, snapshots=1)
    other = stack.request("POST", "/volumes", {"volume": {"size": 1}}, token=TAKER,
                          project="p2").json()["volume"]
    stack.wait_volume(other["id"], ("available",))
    # another project's volume does not exist for the caller
    refused(stack.request("POST", OLD, {"transfer": {"volume_id": other["id"]}}, token=GIVER),
            404, "itemNotFound")
    for bad in ({}, {"transfer": {}}, {"transfer": {"volume_id": "nope"}},
                {"transfer": {"volume_id": volume_id, "bogus": 1}},
                {"transfer": {"volume_id": volume_id, "name": "x" * 256}},
                {"transfer": {"volume_id": volume_id, "no_snapshots": "maybe"}}):
        refused(stack.request("POST", NEW, bad, token=GIVER, version="3.55"), 400,
                "badRequest")
    # a snapshot not available: refused with snapshots, fine without
    assert stack.request("POST", "/snapshots/%s/action" % snaps[0],
                         {"os-reset_status": {"status": "error"}}).status_code == 202
    message = refused(stack.request("POST", NEW, {"transfer": {"volume_id": volume_id}},
                                    token=GIVER, version="3.55"), 400, "badRequest")
    assert snaps[0] in message
    assert volume_row(volume_id).status == "available"
    transfer = offer(stack, volume_id, version="3.55", no_snapshots=True)
    # a volume offered already is not available
    message = refused(stack.request("POST", OLD, {"transfer": {"volume_id": volume_id}},
                                    token=GIVER), 400, "badRequest")
    assert "awaiting-transfer" in message
    assert stack.request("DELETE", "%s/%s" % (OLD, transfer["id"]),
                         token=GIVER).status_code == 202
    # nor is a volume in error
    assert stack.request("POST", "/volumes/%s/action" % volume_id,
                         {"os-reset_status": {"status": "error"}}).status_code == 202
    message = refused(stack.request("POST", OLD, {"transfer": {"volume_id": volume_id}},
                                    token=GIVER), 400, "badRequest")
    assert "must be available" in message
    assert stack.request("GET", OLD, token=GIVER).json() == {"transfers": []}
    recounted("p1", "p2")


def test_delete_withdraws_the_offer(stack):
    volume_id, _snaps = volume_with_snapshots(stack, size=1, snapshots=0)
    transfer = offer(stack, volume_id)
    path = "%s/%s" % (NEW, transfer["id"])
    # only the giving project (or an admin) may withdraw it
    refused(stack.request("DELETE", path, token=TAKER, project="p2", version="3.57"), 404,
            "itemNotFound")
    resp = stack.request("DELETE", path, token=GIVER, version="3.57")
    checked(resp, "delete_volume_transfer", "3.57", 202)
    assert volume_row(volume_id).status == "available"
    refused(stack.request("GET", path, token=GIVER, version="3.57"), 404, "itemNotFound")
    refused(stack.request("DELETE", path, token=GIVER, version="3.57"), 404, "itemNotFound")
    refused(accept(stack, transfer), 404, "itemNotFound")
    assert volume_row(volume_id).project_id == "p1"
    # offered again, then withdrawn by an admin
    transfer = offer(stack, volume_id, root=OLD, version="3.0")
    assert stack.request("DELETE", "%s/%s" % (OLD, transfer["id"]),
                         token="admin:p9", project="p9").status_code == 202
    assert volume_row(volume_id).status == "available"
    recounted("p1", "p2")
    # an offer goes with its volume when an admin force deletes it (force delete does not
    # give quota back yet, docs/api.md: no recount after it)
    transfer = offer(stack, volume_id)
    assert stack.request("POST", "/volumes/%s/action" % volume_id,
                         {"os-force_delete": {}}).status_code == 202
    stack.wait_volume(volume_id, ("deleted",))
    refused(stack.request("GET", "%s/%s" % (OLD, transfer["id"]), token=GIVER), 404,
            "itemNotFound")
    refused(accept(stack, transfer), 404, "itemNotFound")


def test_lists_page_and_sort(stack):
    ids = []
    for i in range(4):
        volume_id, _ = volume_with_snapshots(stack, size=1, snapshots=0)
        ids.append(offer(stack, volume_id, name="t%d" % i)["id"])
    newest_first = list(reversed(ids))

    def listed(query, version):
        resp = unhooked_get(stack, OLD + query, GIVER, version)
        body = resp.json()
        links = body.pop("transfers_links", None)  # Cinder's, when a page is full
        checked(resp, "list_volume_transfers_no_detail", version, 200, body=body)
        return [t["id"] for t in body["transfers"]], links

    assert listed("", "3.0") == (newest_first, None)
    page, links = listed("?limit=2", "3.0")
    assert page == newest_first[:2] and "marker=%s" % newest_first[1] in links[0]["href"]
    assert listed("?limit=2&offset=1", "3.0")[0] == newest_first[1:3]
    # before 3.59 marker and sort are not paging arguments; from 3.59 they are
    assert listed("?marker=%s&sort=name:asc" % ids[0], "3.58")[0] == newest_first
    assert listed("?sort=name:asc", "3.59")[0] == ids
    assert listed("?sort=name:asc&limit=2&marker=%s" % ids[1], "3.59")[0] == ids[2:]
    assert listed("?name=t2", "3.59")[0] == [ids[2]]
    for query in ("?sort=size", "?limit=x", "?offset=-1", "?bogus=1"):
        refused(stack.request("GET", OLD + query, token=GIVER, version="3.59"), 400,
                "badRequest")
    refused(stack.request("GET", OLD + "?marker=%s" % db.new_id(), token=GIVER,
                          version="3.59"), 404, "itemNotFound")  # as every list's marker
    # volume-transfers is the same list from 3.55 (404 below)
    assert listed("?sort=name:desc", "3.59")[0] == newest_first
    resp = stack.request("GET", NEW + "?sort=name:asc", token=GIVER, version="3.59")
    assert [t["id"] for t in checked(resp, "list_volume_transfers_no_detail", "3.59",
                                     200)["transfers"]] == ids
    refused(stack.request("GET", NEW, token=GIVER, version="3.54"), 404, "itemNotFound")


def test_racing_accepts_and_deletes_exactly_one_wins(stack):
    for round_ in range(4):
        volume_id, snaps = volume_with_snapshots(stack, size=1, snapshots=1)
        transfer = offer(stack, volume_id)
        calls = [(accept, stack, transfer, TAKER, "p2"), (accept, stack, transfer, THIRD, "p3")]
        if round_ % 2:
            calls.append((stack.request, "DELETE", "%s/%s" % (OLD, transfer["id"]), None,
                          GIVER))
        outcomes = races.race(*calls)
        races.assert_one_wins(outcomes)
        won = [i for i, (_s, _a, resp) in enumerate(outcomes) if resp.status_code == 202][0]
        row = volume_row(volume_id)
        owner = ("p2", "p3", "p1")[won]
        assert (row.project_id, row.status) == (owner, "available"), outcomes
        assert snapshot_projects(snaps) == {owner}
        recounted("p1", "p2", "p3")


def test_racing_offers_of_one_volume_make_one_transfer(stack):
    volume_id, _snaps = volume_with_snapshots(stack, size=1, snapshots=0)
    body = {"transfer": {"volume_id": volume_id}}
    outcomes = races.race(*[(stack.request, "POST", OLD, body, GIVER)] * 3,
                          (stack.request, "DELETE", "/volumes/%s" % volume_id, None, GIVER))
    codes = races.assert_one_wins(outcomes)
    listed = stack.request("GET", OLD, token=GIVER).json()["transfers"]
    if codes[-1] == 202:  # the delete won: no offer was made
        assert listed == []
    else:
        assert len(listed) == 1 and volume_row(volume_id).status == "awaiting-transfer"
