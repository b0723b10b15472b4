"""QoS specs (/qos-specs) on the in-process stack (noauth: `admin:p1` an administrator, `u1:p1`
a member): each call's happy path, bad input creating or changing nothing, 404s, 403 for
members, and every success body against Tempest's schema (tempest/lib/api_schema/response/
volume/qos.py, the one Tempest's qos_client checks)."""

import pytest
from tempest.lib.api_schema.response.volume import qos as qos_schema
from tempest.lib.api_schema.response.volume import volume_types as type_schema
from tempest.lib.common import rest_client

MEMBER = "u1:p1"


class _Status(dict):
    def __init__(self, status):
        super().__init__()
        self.status = status


def check(schema, resp):
    """The response is what Tempest's client accepts for this call."""
    body = resp.json() if resp.content else ""
    rest_client.RestClient.validate_response(schema, _Status(resp.status_code), body)
    return body


def fault(resp, code, name):
    assert resp.status_code == code, resp.text
    body = resp.json()
    assert list(body) == [name] and body[name]["code"] == code, body
    return body[name]["message"]


@pytest.fixture
def qos(stack):
    def create(name="gold", **specs):
        resp = stack.request("POST", "/qos-specs", {"qos_specs": dict(name=name, **specs)})
        return check(qos_schema.show_qos, resp)["qos_specs"]
    return create


def names(stack):
    return sorted(q["name"] for q in check(qos_schema.list_qos,
                                           stack.request("GET", "/qos-specs"))["qos_specs"])


def test_create_show_list(stack, qos):
    spec = qos("gold", read_iops_sec="20", total_bytes_sec=1024)
    assert spec["consumer"] == "back-end"  # Cinder's default
    assert spec["specs"] == {"read_iops_sec": "20", "total_bytes_sec": "1024"}
    resp = stack.request("GET", "/qos-specs/%s" % spec["id"])
    body = check(qos_schema.show_qos, resp)
    assert body["qos_specs"] == spec
    assert body["links"][0]["href"].endswith("/v3/p1/qos-specs/%s" % spec["id"])
    for consumer in ("front-end", "both"):
        assert qos("q-" + consumer, consumer=consumer)["consumer"] == consumer
    assert qos("  padded  ")["name"] == "padded"
    assert names(stack) == ["gold", "padded", "q-both", "q-front-end"]

    # filters, sort and paging
    resp = stack.request("GET", "/qos-specs?consumer=both")
    assert [q["name"] for q in check(qos_schema.list_qos, resp)["qos_specs"]] == ["q-both"]
    resp = stack.request("GET", "/qos-specs?name=gold")
    assert [q["id"] for q in check(qos_schema.list_qos, resp)["qos_specs"]] == [spec["id"]]
    resp = stack.request("GET", "/qos-specs?sort=name:asc")
    ordered = [q["name"] for q in check(qos_schema.list_qos, resp)["qos_specs"]]
    assert ordered == ["gold", "padded", "q-both", "q-front-end"]
    resp = stack.request("GET", "/qos-specs?sort=name:asc&limit=2")
    page = check(qos_schema.list_qos, resp)
    assert [q["name"] for q in page["qos_specs"]] == ["gold", "padded"]
    resp = stack.request("GET", "/qos-specs?sort=name:asc&limit=2&marker=%s"
                         % page["qos_specs"][1]["id"])
    assert [q["name"] for q in resp.json()["qos_specs"]] == ["q-both", "q-front-end"]
    resp = stack.request("GET", "/qos-specs?sort=name:asc&limit=2&offset=1")
    assert [q["name"] for q in check(qos_schema.list_qos, resp)["qos_specs"]] == [
        "padded", "q-both"]
    fault(stack.request("GET", "/qos-specs?bogus=1"), 400, "badRequest")
    fault(stack.request("GET", "/qos-specs?offset=-1"), 400, "badRequest")
    fault(stack.request("GET", "/qos-specs?offset=x"), 400, "badRequest")
    fault(stack.request("GET", "/qos-specs?sort=specs"), 400, "badRequest")


@pytest.mark.parametrize("body", [
    {"qos_specs": {"name": "x", "consumer": "sideways"}},  # Cinder: 400, valid consumers
    {"qos_specs": {"read_iops_sec": "20"}},  # no name
    {"qos_specs": {"name": "   "}},
    {"qos_specs": {"name": ""}},
    {"qos_specs": {"name": "x" * 256}},
    {"qos_specs": {"name": "x", "read_iops_sec": {"nested": 1}}},
    {"qos_specs": {"name": "x", "read_iops_sec": None}},
    {"qos_specs": {"name": "x", "bad key!": "1"}},
    {"qos_specs": "x"},
    {"qos_spec": {"name": "x"}},
    {"qos_specs": {"name": "x"}, "extra": 1},
])
def test_create_bad_input_creates_nothing(stack, body):
    message = fault(stack.request("POST", "/qos-specs", body), 400, "badRequest")
    if body == {"qos_specs": {"name": "x", "consumer": "sideways"}}:
        assert message == ("Invalid qos specs: Valid consumer of QoS specs are: "
                           "['front-end', 'back-end', 'both']")
    assert names(stack) == []


def test_create_duplicate_name_is_409(stack, qos):
    qos("gold")
    fault(stack.request("POST", "/qos-specs", {"qos_specs": {"name": "gold"}}), 409,
          "conflictingRequest")
    fault(stack.request("POST", "/qos-specs", {"qos_specs": {"name": " gold "}}), 409,
          "conflictingRequest")
    assert names(stack) == ["gold"]


def test_set_and_unset_keys(stack, qos):
    spec = qos("gold", read_iops_sec="20")
    path = "/qos-specs/%s" % spec["id"]
    resp = stack.request("PUT", path, {"qos_specs": {"read_iops_sec": 30, "write_iops_sec": "5"}})
    assert check(qos_schema.set_qos_key, resp) == {
        "qos_specs": {"read_iops_sec": "30", "write_iops_sec": "5"}}
    resp = stack.request("PUT", path, {"qos_specs": {"consumer": "front-end"}})
    assert check(qos_schema.set_qos_key, resp) == {"qos_specs": {"consumer": "front-end"}}
    shown = check(qos_schema.show_qos, stack.request("GET", path))["qos_specs"]
    assert shown["consumer"] == "front-end"
    assert shown["specs"] == {"read_iops_sec": "30", "write_iops_sec": "5"}

    # bad input changes nothing
    for bad in ({"qos_specs": {"consumer": "nowhere"}}, {"qos_specs": {"k": None}},
                {"qos_specs": ["k"]}, {"keys": ["k"]}):
        fault(stack.request("PUT", path, bad), 400, "badRequest")
    assert check(qos_schema.show_qos, stack.request("GET", path))["qos_specs"] == shown

    # unset: a key it does not have is 404 and then none is removed
    resp = stack.request("PUT", path + "/delete_keys", {"keys": ["read_iops_sec", "nope"]})
    assert "nope" in fault(resp, 404, "itemNotFound")
    assert check(qos_schema.show_qos, stack.request("GET", path))["qos_specs"] == shown
    for bad in ({"keys": "read_iops_sec"}, {"keys": [1]}, {"key": ["read_iops_sec"]},
                {"keys": ["a", "a"]}):
        fault(stack.request("PUT", path + "/delete_keys", bad), 400, "badRequest")
    resp = stack.request("PUT", path + "/delete_keys", {"keys": ["read_iops_sec"]})
    check(qos_schema.unset_qos_key, resp)
    shown = check(qos_schema.show_qos, stack.request("GET", path))["qos_specs"]
    assert shown["specs"] == {"write_iops_sec": "5"}


def test_unknown_specs_are_404(stack):
    missing = "/qos-specs/6f1c5b1e-0000-4000-8000-000000000000"
    default = stack.request("GET", "/types/default").json()["volume_type"]["id"]
    for method, path, body in [
            ("GET", missing, None),
            ("PUT", missing, {"qos_specs": {"a": "1"}}),
            ("PUT", missing + "/delete_keys", {"keys": ["a"]}),
            ("DELETE", missing, None),
            ("DELETE", missing + "?force=True", None),
            ("GET", missing + "/associations", None),
            ("GET", missing + "/associate?vol_type_id=" + default, None),
            ("GET", missing + "/disassociate?vol_type_id=" + default, None),
            ("GET", missing + "/disassociate_all", None)]:
        fault(stack.request(method, path, body), 404, "itemNotFound")


def test_associate_disassociate_and_delete(stack, qos):
    gold, silver = qos("gold", total_iops_sec="1000"), qos("silver")
    vtype = stack.request("POST", "/types", {"volume_type": {"name": "fast"}})
    created = check(type_schema.create_volume_type, vtype)["volume_type"]
    assert "qos_specs_id" not in created  # Cinder's create body does not carry it
    type_id = created["id"]
    gp = "/qos-specs/%s" % gold["id"]

    def type_qos(token=None):
        body = check(type_schema.show_volume_type,
                     stack.request("GET", "/types/%s" % type_id, token=token))
        return body["volume_type"].get("qos_specs_id", "absent")

    assert type_qos() is None
    resp = stack.request("GET", gp + "/associate?vol_type_id=%s" % type_id)
    check(qos_schema.associate_qos, resp)
    assert type_qos() == gold["id"]
    assert type_qos(MEMBER) == "absent"  # only admins see it (access_types_qos_specs_id)
    listed = check(type_schema.list_volume_types, stack.request("GET", "/types"))
    assert {t["name"]: t["qos_specs_id"] for t in listed["volume_types"]}["fast"] == gold["id"]
    resp = stack.request("GET", gp + "/associations")
    assert check(qos_schema.show_association_qos, resp) == {"qos_associations": [
        {"association_type": "volume_type", "name": "fast", "id": type_id}]}
    # the same again is accepted; other specs on the same type are refused
    check(qos_schema.associate_qos, stack.request("GET", gp + "/associate?vol_type_id=%s"
                                                  % type_id))
    resp = stack.request("GET", "/qos-specs/%s/associate?vol_type_id=%s" % (silver["id"],
                                                                             type_id))
    assert gold["id"] in fault(resp, 400, "badRequest")
    assert type_qos() == gold["id"]
    # bad arguments
    for path in (gp + "/associate", gp + "/associate?vol_type_id=", gp + "/disassociate"):
        assert "Volume Type id" in fault(stack.request("GET", path), 400, "badRequest")
    missing_type = "6f1c5b1e-0000-4000-8000-00000000beef"
    for action in ("associate", "disassociate"):
        fault(stack.request("GET", gp + "/%s?vol_type_id=%s" % (action, missing_type)), 404,
              "itemNotFound")

    # associated: delete without force is refused, and the specs stay
    assert fault(stack.request("DELETE", gp), 400, "badRequest") == "Qos specs still in use."
    fault(stack.request("DELETE", gp + "?force=maybe"), 400, "badRequest")
    check(qos_schema.show_qos, stack.request("GET", gp))

    # disassociate (silver was never associated: nothing changes, still 202)
    check(qos_schema.disassociate_qos, stack.request(
        "GET", "/qos-specs/%s/disassociate?vol_type_id=%s" % (silver["id"], type_id)))
    assert type_qos() == gold["id"]
    check(qos_schema.disassociate_qos,
          stack.request("GET", gp + "/disassociate?vol_type_id=%s" % type_id))
    assert type_qos() is None
    assert check(qos_schema.show_association_qos,
                 stack.request("GET", gp + "/associations")) == {"qos_associations": []}

    # disassociate_all
    default_id = stack.request("GET", "/types/default").json()["volume_type"]["id"]
    for tid in (type_id, default_id):
        stack.request("GET", gp + "/associate?vol_type_id=%s" % tid)
    assert len(stack.request("GET", gp + "/associations").json()["qos_associations"]) == 2
    check(qos_schema.disassociate_all_qos, stack.request("GET", gp + "/disassociate_all"))
    assert stack.request("GET", gp + "/associations").json() == {"qos_associations": []}

    # force delete takes the association off the type
    stack.request("GET", gp + "/associate?vol_type_id=%s" % type_id)
    check(qos_schema.delete_qos, stack.request("DELETE", gp + "?force=True"))
    fault(stack.request("GET", gp), 404, "itemNotFound")
    assert type_qos() is None
    # unassociated: a plain delete works
    check(qos_schema.delete_qos, stack.request("DELETE", "/qos-specs/%s" % silver["id"]))
    assert names(stack) == []


def test_members_are_refused(stack, qos):
    spec = qos("gold", read_iops_sec="20")
    type_id = stack.request("GET", "/types/default").json()["volume_type"]["id"]
    path = "/qos-specs/%s" % spec["id"]
    for method, url, body in [
            ("GET", "/qos-specs", None),
            ("POST", "/qos-specs", {"qos_specs": {"name": "mine"}}),
            ("GET", path, None),
            ("PUT", path, {"qos_specs": {"read_iops_sec": "1"}}),
            ("PUT", path + "/delete_keys", {"keys": ["read_iops_sec"]}),
            ("GET", path + "/associations", None),
            ("GET", path + "/associate?vol_type_id=" + type_id, None),
            ("GET", path + "/disassociate?vol_type_id=" + type_id, None),
            ("GET", path + "/disassociate_all", None),
            ("DELETE", path + "?force=True", None)]:
        fault(stack.request(method, url, body, token=MEMBER), 403, "forbidden")
    assert check(qos_schema.show_qos, stack.request("GET", path))["qos_specs"] == spec
    assert names(stack) == ["gold"]
    assert stack.request("GET", "/types/%s" % type_id).json()["volume_type"][
        "qos_specs_id"] is None


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.integration),
                        pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request):
    """A fresh database of each kind (set up before, so torn down after, the stack)."""
    if request.param == "sqlite":
        yield None
        return
    from tests.integration import cluster

    url = cluster.create_database(request.param)
    yield url
    cluster.drop_database(url)


def test_races(database_url, make_stack):
    """Concurrent creates of one name: one 200, the rest 409. An associate racing a plain
    delete: either the delete wins (the associate then 404) or the associate does (the delete
    then 400), and no type is ever left pointing at deleted specs."""
    from tests import races

    stack = make_stack(database_url=database_url)

    def create(name):
        return stack.request("POST", "/qos-specs", {"qos_specs": {"name": name}})

    outcomes = races.race(*[(create, "same")] * 10)
    codes = sorted(resp.status_code for _, _, resp in outcomes)
    assert codes == [200] + [409] * 9, codes
    assert names(stack) == ["same"]

    type_id = stack.request("POST", "/types", {"volume_type": {"name": "raced"}}).json()[
        "volume_type"]["id"]
    for i in range(5):
        spec = stack.request("POST", "/qos-specs", {"qos_specs": {"name": "r%d" % i}}).json()
        path = "/qos-specs/%s" % spec["qos_specs"]["id"]
        assoc, dele = races.race(
            (stack.request, "GET", path + "/associate?vol_type_id=" + type_id),
            (stack.request, "DELETE", path))
        pair = (assoc[2].status_code, dele[2].status_code)
        assert pair in ((202, 400), (404, 202)), pair
        shown = stack.request("GET", "/types/%s" % type_id).json()["volume_type"]
        if pair == (202, 400):
            assert shown["qos_specs_id"] == spec["qos_specs"]["id"]
            stack.request("GET", path + "/disassociate_all")
            assert stack.request("DELETE", path).status_code == 202
        else:
            assert shown["qos_specs_id"] is None
