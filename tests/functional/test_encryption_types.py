"""Volume type encryption (/types/{id}/encryption) on the in-process stack: metadata only (no
data is encrypted), refused while volumes of the type exist, a volume of an encrypted type
shows `encrypted: true`; every success body against Tempest's encryption_types schemas."""

from tempest.lib.api_schema.response.volume import encryption_types as schema

from tests.functional.test_qos_specs import check, fault

MEMBER = "u1:p1"
LUKS = {"provider": "luks", "control_location": "front-end", "cipher": "aes-xts-plain64",
        "key_size": 256}


def new_type(stack, name):
    resp = stack.request("POST", "/types", {"volume_type": {"name": name}})
    assert resp.status_code == 200, resp.text
    return resp.json()["volume_type"]["id"]


def test_create_show_update_delete(stack):
    type_id = new_type(stack, "secret")
    path = "/types/%s/encryption" % type_id
    # none yet: {} (as Cinder), and no key to show
    assert check(schema.show_encryption_type, stack.request("GET", path)) == {}
    fault(stack.request("GET", path + "/provider"), 404, "itemNotFound")

    created = check(schema.create_encryption_type,
                    stack.request("POST", path, {"encryption": LUKS}))["encryption"]
    assert created == dict(LUKS, volume_type_id=type_id, encryption_id=created["encryption_id"])
    shown = check(schema.show_encryption_type, stack.request("GET", path))
    assert {k: shown[k] for k in LUKS} == LUKS
    assert (shown["volume_type_id"], shown["encryption_id"]) == (type_id,
                                                                 created["encryption_id"])
    assert (shown["deleted"], shown["deleted_at"], shown["updated_at"]) == (False, None, None)
    resp = stack.request("GET", path + "/provider")
    assert check(schema.show_encryption_specs_item, resp) == {"provider": "luks"}
    fault(stack.request("GET", path + "/bogus"), 404, "itemNotFound")
    # a second create is refused (400, as Cinder's VolumeTypeEncryptionExists)
    assert "already exists" in fault(stack.request("POST", path, {"encryption": LUKS}), 400,
                                     "badRequest")

    item = "%s/%s" % (path, created["encryption_id"])
    resp = stack.request("PUT", item, {"encryption": {"key_size": "512",
                                                      "control_location": "back-end"}})
    assert check(schema.update_encryption_type, resp) == {
        "encryption": {"key_size": 512, "control_location": "back-end"}}
    shown = check(schema.show_encryption_type, stack.request("GET", path))
    assert (shown["key_size"], shown["control_location"], shown["provider"]) == (
        512, "back-end", "luks")
    assert shown["updated_at"] is not None

    check(schema.delete_encryption_type, stack.request("DELETE", item))
    assert check(schema.show_encryption_type, stack.request("GET", path)) == {}
    fault(stack.request("DELETE", item), 404, "itemNotFound")
    fault(stack.request("PUT", item, {"encryption": {"key_size": 128}}), 404, "itemNotFound")


def test_bad_input_creates_nothing(stack):
    type_id = new_type(stack, "secret")
    path = "/types/%s/encryption" % type_id
    for bad in ({"encryption": {"control_location": "front-end"}},  # no provider
                {"encryption": {"provider": "luks"}},  # no control_location (Cinder: required)
                {"encryption": dict(LUKS, control_location="middle")},
                {"encryption": dict(LUKS, key_size="big")},
                {"encryption": dict(LUKS, key_size=-1)},
                {"encryption": dict(LUKS, cipher=5)},
                {"encryption": dict(LUKS, provider="p" * 256)},
                {"encryption": dict(LUKS, extra="x")},
                {"encryption": "luks"},
                {"encrypt": LUKS}):
        fault(stack.request("POST", path, bad), 400, "badRequest")
    assert check(schema.show_encryption_type, stack.request("GET", path)) == {}
    created = stack.request("POST", path, {"encryption": LUKS}).json()["encryption"]
    item = "%s/%s" % (path, created["encryption_id"])
    for bad in ({"encryption": {"control_location": "middle"}}, {"encryption": {"x": 1}}):
        fault(stack.request("PUT", item, bad), 400, "badRequest")
    shown = stack.request("GET", path).json()
    assert {k: shown[k] for k in LUKS} == LUKS


def test_unknown_type_is_404(stack):
    path = "/types/6f1c5b1e-0000-4000-8000-000000000000/encryption"
    for method, url, body in [("GET", path, None), ("GET", path + "/provider", None),
                              ("POST", path, {"encryption": LUKS}),
                              ("PUT", path + "/x", {"encryption": {"key_size": 1}}),
                              ("DELETE", path + "/x", None)]:
        fault(stack.request(method, url, body), 404, "itemNotFound")


def test_volumes_of_an_encrypted_type(stack):
    type_id = new_type(stack, "secret")
    path = "/types/%s/encryption" % type_id
    created = stack.request("POST", path, {"encryption": LUKS}).json()["encryption"]
    item = "%s/%s" % (path, created["encryption_id"])
    plain = stack.create_volume()
    assert plain["encrypted"] is False
    volume = stack.create_volume(volume_type="secret")
    assert volume["encrypted"] is True
    assert stack.wait_volume(volume["id"], ("available",))["encrypted"] is True
    listed = stack.request("GET", "/volumes/detail").json()["volumes"]
    assert {v["id"]: v["encrypted"] for v in listed} == {volume["id"]: True,
                                                         plain["id"]: False}

    # volumes of the type exist: the specs stay as they are (400, Cinder's messages)
    resp = stack.request("PUT", item, {"encryption": {"key_size": 128}})
    assert fault(resp, 400, "badRequest") == "Cannot update encryption specs. Volume type in use."
    resp = stack.request("DELETE", item)
    assert fault(resp, 400, "badRequest") == "Cannot delete encryption specs. Volume type in use."
    assert stack.request("GET", path).json()["key_size"] == 256
    other = new_type(stack, "busy")
    stack.create_volume(volume_type="busy")
    resp = stack.request("POST", "/types/%s/encryption" % other, {"encryption": LUKS})
    assert fault(resp, 400, "badRequest") == "Cannot create encryption specs. Volume type in use."
    assert stack.request("GET", "/types/%s/encryption" % other).json() == {}

    # the volume gone, the specs can go
    assert stack.request("DELETE", "/volumes/%s" % volume["id"]).status_code == 202
    stack.wait_volume(volume["id"], ("deleted",))
    check(schema.delete_encryption_type, stack.request("DELETE", item))


def test_members_are_refused(stack):
    type_id = new_type(stack, "secret")
    path = "/types/%s/encryption" % type_id
    created = stack.request("POST", path, {"encryption": LUKS}).json()["encryption"]
    item = "%s/%s" % (path, created["encryption_id"])
    for method, url, body in [("GET", path, None), ("GET", path + "/provider", None),
                              ("POST", path, {"encryption": LUKS}),
                              ("PUT", item, {"encryption": {"key_size": 1}}),
                              ("DELETE", item, None)]:
        fault(stack.request(method, url, body, token=MEMBER), 403, "forbidden")
    assert stack.request("GET", path).json()["key_size"] == 256


# --- a volume's encryption metadata (/volumes/{id}/encryption) ---------------------------------

def metadata(stack, volume_id, key=None, **kw):
    """Its body; tests/contract.py validates it against Cinder's shape (ROUTES)."""
    url = "/volumes/%s/encryption%s" % (volume_id, "/" + key if key else "")
    resp = stack.request("GET", url, **kw)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_volume_encryption_metadata(stack):
    type_id = new_type(stack, "secret")
    assert stack.request("POST", "/types/%s/encryption" % type_id,
                         {"encryption": LUKS}).status_code == 200
    plain = stack.create_volume()
    secret = stack.create_volume(volume_type="secret")
    stack.wait_volume(secret["id"], ("available",))

    # unencrypted: the key id alone (null), as Cinder's
    assert metadata(stack, plain["id"]) == {"encryption_key_id": None}
    assert metadata(stack, plain["id"], "encryption_key_id") is None
    fault(stack.request("GET", "/volumes/%s/encryption/provider" % plain["id"]), 404,
          "itemNotFound")
    # encrypted: the type's specs beside the key id (null: Lamina has no key manager)
    assert metadata(stack, secret["id"]) == dict(LUKS, encryption_key_id=None)
    assert metadata(stack, secret["id"], "provider") == "luks"
    assert metadata(stack, secret["id"], "key_size") == 256
    assert metadata(stack, secret["id"], "control_location") == "front-end"
    # a reader of the volume's project may ask (the compute host does, with the user's token)
    assert metadata(stack, secret["id"], token=MEMBER) == dict(LUKS, encryption_key_id=None)

    # another project's volume and an unknown one: 404
    fault(stack.request("GET", "/volumes/%s/encryption" % secret["id"], token="u2:p2",
                        project="p2"), 404, "itemNotFound")
    fault(stack.request("GET", "/volumes/%s/encryption/provider" % secret["id"],
                        token="u2:p2", project="p2"), 404, "itemNotFound")
    fault(stack.request("GET", "/volumes/6f1c5b1e-0000-4000-8000-000000000000/encryption"),
          404, "itemNotFound")


def test_retype_that_changes_encryption_is_refused(stack):
    """Encryption is metadata only here: a retype into or out of an encrypted type, or to
    other encryption specs, would relabel plain bytes. Refused (400, Cinder's message),
    the volume left as it was; between types of equal specs it is accepted."""
    secret = new_type(stack, "secret")
    stack.request("POST", "/types/%s/encryption" % secret, {"encryption": LUKS})
    twin = new_type(stack, "secret-twin")
    stack.request("POST", "/types/%s/encryption" % twin, {"encryption": LUKS})
    other = new_type(stack, "secret-128")
    stack.request("POST", "/types/%s/encryption" % other,
                  {"encryption": dict(LUKS, key_size=128)})
    new_type(stack, "plain")

    def retype(volume_id, new):
        return stack.request("POST", "/volumes/%s/action" % volume_id,
                             {"os-retype": {"new_type": new}})

    plain = stack.wait_volume(stack.create_volume(volume_type="plain")["id"], ("available",))
    secret_volume = stack.wait_volume(stack.create_volume(volume_type="secret")["id"],
                                      ("available",))
    for volume, new in ((plain, "secret"), (secret_volume, "plain"),
                        (secret_volume, "secret-128")):
        assert fault(retype(volume["id"], new), 400, "badRequest") == (
            "Invalid input received: Retype cannot change encryption requirements.")
        shown = stack.request("GET", "/volumes/" + volume["id"]).json()["volume"]
        assert (shown["status"], shown["volume_type"], shown["encrypted"]) == (
            "available", volume["volume_type"], volume["encrypted"])
    assert retype(secret_volume["id"], "secret-twin").status_code == 202
    shown = stack.wait_volume(secret_volume["id"], ("available",))
    assert (shown["volume_type"], shown["encrypted"]) == ("secret-twin", True)
