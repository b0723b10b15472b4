"""Per-project default volume types (3.62, /default-types) on the in-process stack.

Below 3.62 the calls answer 404, as for a method that does not exist. Tempest has no schema
for these calls: the bodies are checked against Cinder's API reference (`default_type` is
`project_id` and `volume_type_id`, nothing else)."""

import jsonschema
import pytest

from api import microversion
from common.db import types_api
from tests.functional.test_qos_specs import fault

MEMBER = "u1:p1"
ITEM = {"type": "object",
        "properties": {"project_id": {"type": "string"},
                       "volume_type_id": {"type": "string", "format": "uuid"}},
        "required": ["project_id", "volume_type_id"], "additionalProperties": False}
SHOW = {"type": "object", "properties": {"default_type": ITEM}, "required": ["default_type"],
        "additionalProperties": False}
LIST = {"type": "object", "properties": {"default_types": {"type": "array", "items": ITEM}},
        "required": ["default_types"], "additionalProperties": False}
V = "3.62"


def ok(resp, schema, code=200):
    assert resp.status_code == code, resp.text
    body = resp.json()
    jsonschema.validate(body, schema)
    return body


@pytest.fixture
def at_362(monkeypatch):
    monkeypatch.setattr(microversion, "MAX_VERSION", (3, 62))


def new_type(stack, name):
    resp = stack.request("POST", "/types", {"volume_type": {"name": name}})
    assert resp.status_code == 200, resp.text
    return resp.json()["volume_type"]["id"]


def volume_type_of_new_volume(stack, project):
    resp = stack.request("POST", "/volumes", {"volume": {"size": 1}}, token="u:%s" % project,
                         project=project)
    assert resp.status_code == 202, resp.text
    return resp.json()["volume"]["volume_type"]


def test_microversion_gate(stack):
    calls = [("GET", "/default-types", None), ("GET", "/default-types/p2", None),
             ("PUT", "/default-types/p2", {"default_type": {"volume_type": "__DEFAULT__"}}),
             ("DELETE", "/default-types/p2", None)]
    for method, path, body in calls:
        for version in (None, "3.42", "3.61"):  # the method does not exist below 3.62
            fault(stack.request(method, path, body, version=version), 404, "itemNotFound")


def test_set_show_list_unset(stack, at_362):
    gold = new_type(stack, "gold")
    resp = stack.request("PUT", "/default-types/p2", {"default_type": {"volume_type": "gold"}},
                         version=V)
    assert ok(resp, SHOW) == {"default_type": {"project_id": "p2", "volume_type_id": gold}}
    assert ok(stack.request("GET", "/default-types/p2", version=V), SHOW) == resp.json()
    silver = new_type(stack, "silver")
    resp = stack.request("PUT", "/default-types/p3", {"default_type": {"volume_type": silver}},
                         version=V)
    assert ok(resp, SHOW)["default_type"]["volume_type_id"] == silver
    # replace p2's
    resp = stack.request("PUT", "/default-types/p2", {"default_type": {"volume_type": silver}},
                         version=V)
    assert ok(resp, SHOW)["default_type"]["volume_type_id"] == silver
    assert ok(stack.request("GET", "/default-types", version=V), LIST) == {"default_types": [
        {"project_id": "p2", "volume_type_id": silver},
        {"project_id": "p3", "volume_type_id": silver}]}
    assert types_api.projects_with_default_type(silver) == ["p2", "p3"]
    assert types_api.projects_with_default_type(gold) == []

    resp = stack.request("DELETE", "/default-types/p2", version=V)
    assert (resp.status_code, resp.content) == (204, b"")
    fault(stack.request("GET", "/default-types/p2", version=V), 404, "itemNotFound")
    resp = stack.request("DELETE", "/default-types/p2", version=V)  # none: still 204
    assert resp.status_code == 204
    assert ok(stack.request("GET", "/default-types", version=V), LIST) == {"default_types": [
        {"project_id": "p3", "volume_type_id": silver}]}


def test_bad_input_sets_nothing(stack, at_362):
    for body in ({"default_type": {"volume_type": "no-such-type"}},
                 {"default_type": {"volume_type": ""}},
                 {"default_type": {"volume_type": 5}},
                 {"default_type": {}},
                 {"default_type": {"volume_type": "__DEFAULT__", "extra": 1}},
                 {"default": {"volume_type": "__DEFAULT__"}},
                 {}):
        fault(stack.request("PUT", "/default-types/p2", body, version=V), 400, "badRequest")
    fault(stack.request("PUT", "/default-types/p2", raw="{nope", version=V), 400, "badRequest")
    assert ok(stack.request("GET", "/default-types", version=V), LIST) == {"default_types": []}


def test_volume_create_uses_the_project_default(stack, at_362):
    new_type(stack, "gold")
    resp = stack.request("PUT", "/default-types/p2", {"default_type": {"volume_type": "gold"}},
                         version=V)
    assert resp.status_code == 200, resp.text
    # at every version, as Cinder: the project's default comes before default_volume_type
    assert volume_type_of_new_volume(stack, "p2") == "gold"
    assert volume_type_of_new_volume(stack, "p1") == "__DEFAULT__"
    resp = stack.request("GET", "/types/default", token="u:p2", project="p2")
    assert resp.json()["volume_type"]["name"] == "gold"
    # a type named explicitly still wins
    resp = stack.request("POST", "/volumes", {"volume": {"size": 1, "volume_type": "__DEFAULT__"}},
                         token="u:p2", project="p2")
    assert resp.json()["volume"]["volume_type"] == "__DEFAULT__"
    # unset: the configured default again
    assert stack.request("DELETE", "/default-types/p2", version=V).status_code == 204
    assert volume_type_of_new_volume(stack, "p2") == "__DEFAULT__"


def test_configured_default_stays_protected(stack, at_362):
    """The admin's own project having another default does not make __DEFAULT__ deletable."""
    default = stack.request("GET", "/types/default").json()["volume_type"]
    new_type(stack, "gold")
    resp = stack.request("PUT", "/default-types/p1", {"default_type": {"volume_type": "gold"}},
                         version=V)
    assert resp.status_code == 200, resp.text
    assert stack.request("GET", "/types/default").json()["volume_type"]["name"] == "gold"
    fault(stack.request("DELETE", "/types/%s" % default["id"]), 400, "badRequest")
    resp = stack.request("PUT", "/types/%s" % default["id"], {"volume_type": {"name": "x"}})
    fault(resp, 400, "badRequest")
    assert stack.request("GET", "/types/%s" % default["id"]).json()["volume_type"][
        "name"] == "__DEFAULT__"


def test_members_are_refused(stack, at_362):
    resp = stack.request("PUT", "/default-types/p1",
                         {"default_type": {"volume_type": "__DEFAULT__"}}, version=V)
    assert resp.status_code == 200, resp.text
    for method, path, body in [
            ("GET", "/default-types", None), ("GET", "/default-types/p1", None),
            ("PUT", "/default-types/p1", {"default_type": {"volume_type": "__DEFAULT__"}}),
            ("DELETE", "/default-types/p1", None)]:
        fault(stack.request(method, path, body, token=MEMBER, version=V), 403, "forbidden")
    assert stack.request("GET", "/default-types/p1", version=V).status_code == 200


def test_a_projects_default_type_cannot_be_deleted(stack, at_362):
    """As Cinder's VolumeTypeDefaultDeletionError: 400 while any project has the type as its
    default, deletable again once the default is unset. The type is another project's
    default, so the check is not the admin's own default type (test above)."""
    gold = new_type(stack, "gold")
    resp = stack.request("PUT", "/default-types/p2", {"default_type": {"volume_type": "gold"}},
                         version=V)
    assert resp.status_code == 200, resp.text
    for version in (None, V):  # the refusal does not depend on the request's microversion
        message = fault(stack.request("DELETE", "/types/" + gold, version=version), 400,
                        "badRequest")
        assert message == ("The volume type %s is a default volume type and cannot be "
                           "deleted." % gold)
    assert stack.request("GET", "/types/" + gold).status_code == 200
    assert types_api.projects_with_default_type(gold) == ["p2"]
    # an unknown type is still 404 first
    fault(stack.request("DELETE", "/types/" + "0" * 36), 404, "itemNotFound")
    assert stack.request("DELETE", "/default-types/p2", version=V).status_code == 204
    resp = stack.request("DELETE", "/types/" + gold)
    assert resp.status_code == 202, resp.text
    fault(stack.request("GET", "/types/" + gold), 404, "itemNotFound")
