"""QoS specs and volume type encryption through unchanged python-cinderclient (the `cinder`
CLI and its Python API) against the in-process stack; the state each command leaves is read
back over HTTP and checked against Tempest's schemas."""

import re
import uuid

import pytest
from cinderclient import client as cinder_client
from cinderclient import exceptions as cinder_exc
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from tempest.lib.api_schema.response.volume import encryption_types as enc_schema
from tempest.lib.api_schema.response.volume import qos as qos_schema

from tests.functional.test_qos_specs import check
from tests.integration import scenarios
from tests.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("qos-clients")).start()
    yield s
    s.stop()


def cli(stack, *args, user="admin"):
    rc, out = scenarios.cinder_cli(stack.url, *args, user=user)
    return rc, out


def ok(stack, *args):
    rc, out = cli(stack, *args)
    assert rc == 0, out
    return out


def new_type(stack):
    name = "t-" + uuid.uuid4().hex[:6]
    resp = stack.request("POST", "/types", {"volume_type": {"name": name}})
    assert resp.status_code == 200, resp.text
    return name, resp.json()["volume_type"]["id"]


def test_cinder_qos_cli(stack):
    name = "gold-" + uuid.uuid4().hex[:6]
    out = ok(stack, "qos-create", name, "consumer=front-end", "read_iops_sec=20")
    qos_id = scenarios.table_field(out, "id")
    assert re.fullmatch(scenarios.UUID_RE, qos_id)
    assert scenarios.table_field(out, "consumer") == "front-end"
    assert name in ok(stack, "qos-list")
    out = ok(stack, "qos-show", qos_id)
    assert "read_iops_sec" in scenarios.table_field(out, "specs")
    assert scenarios.table_field(ok(stack, "qos-show", name), "id") == qos_id  # by name too
    ok(stack, "qos-key", qos_id, "set", "write_iops_sec=5", "total_bytes_sec=1024")
    ok(stack, "qos-key", qos_id, "unset", "read_iops_sec")
    shown = check(qos_schema.show_qos, stack.request("GET", "/qos-specs/%s" % qos_id))
    assert shown["qos_specs"]["specs"] == {"write_iops_sec": "5", "total_bytes_sec": "1024"}

    type_name, type_id = new_type(stack)
    ok(stack, "qos-associate", qos_id, type_id)
    out = ok(stack, "qos-get-association", qos_id)
    assert type_name in out and type_id in out and "volume_type" in out
    rc, out = cli(stack, "qos-delete", qos_id)  # associated: refused without --force
    assert rc != 0 and "still in use" in out, out
    ok(stack, "qos-disassociate", qos_id, type_id)
    assert type_name not in ok(stack, "qos-get-association", qos_id)
    ok(stack, "qos-associate", qos_id, type_id)
    ok(stack, "qos-disassociate-all", qos_id)
    ok(stack, "qos-associate", qos_id, type_id)
    ok(stack, "qos-delete", "--force", "True", qos_id)
    assert stack.request("GET", "/qos-specs/%s" % qos_id).status_code == 404
    assert stack.request("GET", "/types/%s" % type_id).json()["volume_type"][
        "qos_specs_id"] is None
    assert name not in ok(stack, "qos-list")

    # bad input and members: refused, nothing created
    rc, out = cli(stack, "qos-create", name, "consumer=sideways")
    assert rc != 0 and "Valid consumer" in out, out
    rc, out = cli(stack, "qos-list", user="bob")
    assert rc != 0 and "403" in out, out
    assert name not in ok(stack, "qos-list")


def test_cinderclient_qos_python_api(stack):
    auth = token_endpoint.Token("%s/v3/p1" % stack.url, "admin:p1")
    c = cinder_client.Client("3.0", session=ks_session.Session(auth=auth))
    # (set_keys, associate and the like put their argument in the URL as it is: pass ids)
    spec = c.qos_specs.create("silver-" + uuid.uuid4().hex[:6], {"total_iops_sec": "100"})
    assert (spec.consumer, spec.specs) == ("back-end", {"total_iops_sec": "100"})
    assert spec.id in [q.id for q in c.qos_specs.list()]
    c.qos_specs.set_keys(spec.id, {"read_bytes_sec": "4096"})
    c.qos_specs.unset_keys(spec.id, ["total_iops_sec"])
    assert c.qos_specs.get(spec.id).specs == {"read_bytes_sec": "4096"}
    _, type_id = new_type(stack)
    c.qos_specs.associate(spec.id, type_id)
    assert [a.id for a in c.qos_specs.get_associations(spec.id)] == [type_id]
    with pytest.raises(cinder_exc.BadRequest):
        c.qos_specs.delete(spec)
    c.qos_specs.disassociate(spec.id, type_id)
    c.qos_specs.delete(spec)
    with pytest.raises(cinder_exc.NotFound):
        c.qos_specs.get(spec.id)
    dup = c.qos_specs.create("dup-" + uuid.uuid4().hex[:6], {})
    with pytest.raises(cinder_exc.ClientException) as err:  # cinderclient has no 409 class
        c.qos_specs.create(dup.name, {})
    assert err.value.code == 409
    c.qos_specs.delete(dup)


def test_cinder_encryption_type_cli(stack):
    type_name, type_id = new_type(stack)
    out = ok(stack, "encryption-type-create", "--cipher", "aes-xts-plain64", "--key-size",
             "256", "--control-location", "front-end", type_name, "luks")
    assert type_id in out
    out = ok(stack, "encryption-type-show", type_name)
    assert "luks" in out and "aes-xts-plain64" in out
    assert type_id in ok(stack, "encryption-type-list")
    ok(stack, "encryption-type-update", "--key-size", "512", type_name)
    shown = check(enc_schema.show_encryption_type,
                  stack.request("GET", "/types/%s/encryption" % type_id))
    assert (shown["key_size"], shown["provider"]) == (512, "luks")
    out = ok(stack, "create", "--volume-type", type_name, "1")
    assert scenarios.table_field(out, "encrypted") == "True"
    volume_id = scenarios.table_field(out, "id")
    rc, out = cli(stack, "encryption-type-delete", type_name)  # the type has a volume
    assert rc != 0 and "in use" in out, out
    stack.wait_volume(volume_id, ("available",))
    ok(stack, "delete", volume_id)
    stack.wait_volume(volume_id, ("deleted",))
    ok(stack, "encryption-type-delete", type_name)
    assert stack.request("GET", "/types/%s/encryption" % type_id).json() == {}


def test_openstacksdk_qos_and_type_encryption(stack):
    conn = scenarios.sdk_connection(stack.url)
    bs = conn.block_storage
    spec = bs.create_qos_spec(name="sdk-" + uuid.uuid4().hex[:6], consumer="both",
                              total_iops_sec="300")
    assert (spec.consumer, spec.specs) == ("both", {"total_iops_sec": "300"})
    assert spec.id in [q.id for q in bs.qos_specs()]
    assert bs.get_qos_spec(spec.id).name == spec.name
    _, type_id = new_type(stack)
    bs.associate_qos_spec(spec, type_id)
    shown = check(qos_schema.show_association_qos,
                  stack.request("GET", "/qos-specs/%s/associations" % spec.id))
    assert [a["id"] for a in shown["qos_associations"]] == [type_id]
    bs.disassociate_qos_spec(spec, type_id)
    bs.delete_qos_spec(spec)
    assert stack.request("GET", "/qos-specs/%s" % spec.id).status_code == 404

    enc = bs.create_type_encryption(type_id, provider="luks", control_location="front-end",
                                    cipher="aes-xts-plain64", key_size=256)
    got = bs.get_type_encryption(type_id)
    assert (got.provider, got.key_size, got.encryption_id) == ("luks", 256, enc.encryption_id)
    bs.delete_type_encryption(encryption=got)
    assert stack.request("GET", "/types/%s/encryption" % type_id).json() == {}
