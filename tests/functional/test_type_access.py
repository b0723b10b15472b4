"""Private volume types and project access (os-volume-type-access), on the in-process stack
(noauth: `admin:p1` is an administrator, `u1:p1` a member of p1, `u2:p2` of p2)."""

MEMBER = "u1:p1"
OTHER = "u2:p2"


def type_names(stack, token, project="p1"):
    resp = stack.request("GET", "/types", token=token, project=project)
    assert resp.status_code == 200, resp.text
    return [t["name"] for t in resp.json()["volume_types"]]


def test_private_type_access(make_stack):
    stack = make_stack()
    resp = stack.request("POST", "/types", {"volume_type": {
        "name": "secret", "os-volume-type-access:is_public": False}})
    assert resp.status_code == 200, resp.text
    vtype = resp.json()["volume_type"]
    path = "/types/%s" % vtype["id"]

    # not granted: the type does not exist for members
    assert "secret" not in type_names(stack, MEMBER)
    assert stack.request("GET", path, token=MEMBER).status_code == 404
    resp = stack.request("POST", "/volumes", {"volume": {"size": 1, "volume_type": "secret"}},
                         token=MEMBER)
    assert resp.status_code == 404, resp.text

    # only admins change access
    add = {"addProjectAccess": {"project": "p1"}}
    assert stack.request("POST", path + "/action", add, token=MEMBER).status_code == 403
    assert stack.request("POST", path + "/action", add).status_code == 202
    assert stack.request("POST", path + "/action", add).status_code == 409
    resp = stack.request("GET", path + "/os-volume-type-access")
    assert resp.json() == {"volume_type_access": [{"volume_type_id": vtype["id"],
                                                   "project_id": "p1"}]}

    # granted to p1: p1 sees and uses it, p2 still does not
    assert "secret" in type_names(stack, MEMBER)
    assert stack.request("GET", path, token=MEMBER).status_code == 200
    resp = stack.request("POST", "/volumes", {"volume": {"size": 1, "volume_type": "secret"}},
                         token=MEMBER)
    assert resp.status_code == 202, resp.text
    assert "secret" not in type_names(stack, OTHER, project="p2")
    assert stack.request("GET", path, token=OTHER, project="p2").status_code == 404

    # removed: gone again for p1
    remove = {"removeProjectAccess": {"project": "p1"}}
    assert stack.request("POST", path + "/action", remove).status_code == 202
    assert stack.request("POST", path + "/action", remove).status_code == 404
    assert "secret" not in type_names(stack, MEMBER)

    # public types have no access list
    default = stack.request("GET", "/types/default").json()["volume_type"]
    resp = stack.request("POST", "/types/%s/action" % default["id"], add)
    assert resp.status_code == 400
    assert stack.request("GET", "/types/%s/os-volume-type-access"
                         % default["id"]).status_code == 404
    for bad in ({"addProjectAccess": {}}, {"addProjectAccess": {"project": 1}},
                {"bogus": {"project": "p1"}}):
        assert stack.request("POST", path + "/action", bad).status_code == 400, bad
