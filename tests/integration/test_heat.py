"""The real OpenStack Heat (deploy/heat/heat-aio.sh: openstack-heat 27, heat-api and
heat-engine, Keystone auth) orchestrates Lamina volumes (issue 12): HOT templates with
OS::Cinder::VolumeType, OS::Cinder::QoSSpecs, OS::Cinder::Volume and, with the real Nova,
OS::Nova::Server and OS::Cinder::VolumeAttachment, created, updated and deleted through
Heat's API; every outcome is checked through Lamina's own API (and Nova's), not Heat's word.

Lamina is the shared cloud's (tests/integration/cloud.py); the module fixture registers it in
Keystone's region lamina-heat, the one region Heat takes the volume API from
(`[DEFAULT] region_name_for_shared_services` in heat.conf), starts Heat when it is down and
stops it at the end if it started it. Heat not installed: the tests skip naming
`make services`; with LAMINA_REQUIRE_HEAT=1 (make test) they fail instead."""

import os
import subprocess
import threading
import time
import uuid

import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from tests.integration.nova import export_lines, poll
from tests.tempest import harness

pytestmark = pytest.mark.integration

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SCRIPT = os.path.join(ROOT, "deploy", "heat", "heat-aio.sh")
VOLUME_VERSION = "volume 3.45"


def unavailable(reason):
    message = reason + " (make services installs what the Heat tests need)"
    if os.environ.get("LAMINA_REQUIRE_HEAT") == "1":
        pytest.fail(message)
    pytest.skip(message)


def script(*args, timeout=300):
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def heat(request):
    facts = export_lines(script("env", timeout=60).stdout)
    if facts.get("LAMINA_HEAT_INSTALLED") != "1":
        unavailable("Heat is not installed: bash deploy/heat/heat-aio.sh install")
    # a Heat already up belongs to someone else (a person's, another module's): left running
    was_up = script("status", timeout=60).returncode == 0
    # Heat needs no Lamina to start: it starts while the shared cloud does (the first module
    # of a run to ask for the cloud waits minutes for it), its volume region filled in after
    starting = {}

    def start():
        began = time.monotonic()
        starting["result"] = script("start")
        starting["seconds"] = time.monotonic() - began

    thread = threading.Thread(target=start, name="heat-aio-start")
    thread.start()
    catalog = None
    try:
        try:
            cloud = request.getfixturevalue("shared_cloud")
        finally:
            thread.join()
        result = starting.get("result")
        assert result is not None, "heat-aio.sh start did not end in 300 s (a thread error above)"
        assert result.returncode == 0, "heat-aio.sh start failed:\n" + result.stderr[-3000:]
        print("\nheat-aio.sh start: %.2f s%s" % (starting["seconds"],
                                                 " (was up)" if was_up else ""))
        catalog = harness.Catalog(cloud.ks, facts["LAMINA_HEAT_VOLUME_REGION"])
        catalog.register(cloud.url)
        yield Heat(cloud, facts)
    finally:
        try:
            if not was_up:
                script("stop")
        finally:
            if catalog is not None:
                catalog.unregister()


class Client:
    """One Keystone user's session, with the endpoints of Heat, Lamina (the cloud's own
    region, not the one Heat uses: what is checked does not go through Heat's view) and
    Nova."""

    def __init__(self, cloud, user, password, project):
        ks = cloud.ks
        auth = v3.Password(auth_url=ks["LAMINA_KS_AUTH_URL"], username=user,
                           password=password, project_name=project,
                           user_domain_name=ks["LAMINA_KS_DOMAIN"],
                           project_domain_name=ks["LAMINA_KS_DOMAIN"])
        self.sess = ks_session.Session(auth=auth)
        self.volume_filter = {"service_type": "volumev3", "interface": "public",
                              "region_name": cloud.region}
        self.heat_filter = {"service_type": "orchestration", "interface": "public",
                            "region_name": ks["LAMINA_KS_REGION"]}
        self.compute_filter = {"service_type": "compute", "interface": "public",
                               "region_name": ks["LAMINA_KS_REGION"]}

    def volume(self, method, path, **kwargs):
        headers = {"OpenStack-API-Version": VOLUME_VERSION}
        return self.sess.request(path, method, endpoint_filter=self.volume_filter,
                                 headers=headers, raise_exc=False, **kwargs)

    def heat(self, method, path, **kwargs):
        return self.sess.request(path, method, endpoint_filter=self.heat_filter,
                                 raise_exc=False, **kwargs)

    def compute(self, method, path, **kwargs):
        return self.sess.request(path, method, endpoint_filter=self.compute_filter,
                                 headers={"OpenStack-API-Version": "compute 2.79"},
                                 raise_exc=False, **kwargs)


class Heat:
    def __init__(self, cloud, facts):
        self.cloud, self.facts = cloud, facts
        ks = cloud.ks
        self.admin = Client(cloud, ks["LAMINA_KS_ADMIN_USER"], ks["LAMINA_KS_ADMIN_PASSWORD"],
                            ks["LAMINA_KS_ADMIN_PROJECT"])
        self.member = Client(cloud, ks["LAMINA_KS_MEMBER_A_USER"], ks["LAMINA_KS_PASSWORD"],
                             ks["LAMINA_KS_PROJECT_A"])

    def engine_log_tail(self):
        path = os.path.join(self.facts["LAMINA_HEAT_LOG_DIR"], "heat-engine.log")
        try:
            with open(path, errors="replace") as f:
                return "".join(f.readlines()[-15:])
        except OSError:
            return ""


class Stack:
    """A stack driven through Heat's REST API (v1), waited on by polling its status."""

    def __init__(self, heat, client, template, parameters=None):
        self.heat, self.client = heat, client
        self.name = "lamina-heat-%s" % uuid.uuid4().hex[:8]
        resp = client.heat("POST", "/stacks", json={
            "stack_name": self.name, "template": template, "parameters": parameters or {},
            "timeout_mins": 5, "disable_rollback": True})
        assert resp.status_code == 201, resp.text
        self.id = resp.json()["stack"]["id"]
        self.path = "/stacks/%s/%s" % (self.name, self.id)

    def show(self):
        resp = self.client.heat("GET", self.path)
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, resp.text
        return resp.json()["stack"]

    def wait(self, action):
        """Wait for ACTION_COMPLETE; ACTION_FAILED ends the wait, with Heat's reason (which
        quotes Lamina's or Nova's answer) and the engine log's tail."""
        def settled():
            stack = self.show()
            if stack is None and action == "DELETE":
                return {"stack_status": "DELETE_COMPLETE"}
            assert stack is not None, "stack %s vanished" % self.name
            if stack["stack_status"] == action + "_IN_PROGRESS":
                return None
            return stack

        started = time.monotonic()
        stack = poll("stack %s %s" % (self.name, action), settled)
        seconds = time.monotonic() - started
        assert stack["stack_status"] == action + "_COMPLETE", (
            "%s: %s\n%s" % (stack["stack_status"], stack.get("stack_status_reason"),
                            self.heat.engine_log_tail()))
        return stack, seconds

    def resources(self):
        """{logical name: physical id}"""
        resp = self.client.heat("GET", self.path + "/resources")
        assert resp.status_code == 200, resp.text
        return {r["resource_name"]: r["physical_resource_id"]
                for r in resp.json()["resources"]}

    def update(self, parameters):
        # PATCH: the stack's own template, these parameters merged into its own
        resp = self.client.heat("PATCH", self.path, json={"parameters": parameters})
        assert resp.status_code == 202, resp.text

    def delete(self):
        resp = self.client.heat("DELETE", self.path)
        assert resp.status_code in (204, 404), resp.text

    def cleanup(self):
        """After a failure: delete the stack and wait for it to go (best effort, so the
        failure reported is the test's own, not this one's)."""
        try:
            self.delete()
            poll("stack %s deleted" % self.name, lambda: (
                lambda s: s is None or s["stack_status"] != "DELETE_IN_PROGRESS")(self.show()))
        except AssertionError:
            pass


def volume_of(client, volume_id):
    resp = client.volume("GET", "/volumes/" + volume_id)
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    return resp.json()["volume"]


TYPES_TEMPLATE = {
    "heat_template_version": "2018-08-31",
    "parameters": {"size": {"type": "number", "default": 1}},
    "resources": {
        "qos": {"type": "OS::Cinder::QoSSpecs",
                "properties": {"name": "lamina-heat-qos", "specs": {
                    "consumer": "back-end", "total_iops_sec": "500"}}},
        "type": {"type": "OS::Cinder::VolumeType",
                 "properties": {"name": "lamina-heat-type", "is_public": True,
                                "metadata": {"lamina:heat": "yes"}}},
        "qos_association": {"type": "OS::Cinder::QoSAssociation",
                            "properties": {"qos_specs": {"get_resource": "qos"},
                                           "volume_types": [{"get_resource": "type"}]}},
        "volume": {"type": "OS::Cinder::Volume",
                   "properties": {"size": {"get_param": "size"},
                                  "volume_type": {"get_resource": "type"},
                                  "name": "lamina-heat-volume"}},
    },
}


def test_types_qos_and_volume_created_extended_deleted(heat):
    """A type, a QoS spec associated with it and a 1 GiB volume of that type, made by Heat
    as the cloud's admin (types and QoS specs are admin's); the update to size 2 extends the
    volume; the delete removes all three from Lamina."""
    admin = heat.admin
    names = uuid.uuid4().hex[:6]
    template = {**TYPES_TEMPLATE, "resources": {
        name: {**res, "properties": {**res["properties"], **(
            {"name": "%s-%s" % (res["properties"]["name"], names)}
            if "name" in res["properties"] else {})}}
        for name, res in TYPES_TEMPLATE["resources"].items()}}
    stack = Stack(heat, admin, template)
    try:
        _, create_seconds = stack.wait("CREATE")
        ids = stack.resources()
        volume = volume_of(admin, ids["volume"])
        vtype = admin.volume("GET", "/types/" + ids["type"])
        assert vtype.status_code == 200, vtype.text
        vtype = vtype.json()["volume_type"]
        assert vtype["name"] == "lamina-heat-type-" + names
        assert vtype["extra_specs"] == {"lamina:heat": "yes"}
        assert (volume["status"], volume["size"]) == ("available", 1)
        assert volume["volume_type"] == vtype["name"]
        assert volume["name"] == "lamina-heat-volume-" + names
        qos = admin.volume("GET", "/qos-specs/" + ids["qos"])
        assert qos.status_code == 200, qos.text
        qos = qos.json()["qos_specs"]
        assert (qos["consumer"], qos["specs"]) == ("back-end", {"total_iops_sec": "500"})
        associations = admin.volume("GET", "/qos-specs/%s/associations" % ids["qos"])
        assert associations.status_code == 200, associations.text
        assert [a["id"] for a in associations.json()["qos_associations"]] == [ids["type"]]

        stack.update({"size": 2})
        _, update_seconds = stack.wait("UPDATE")
        assert stack.resources()["volume"] == ids["volume"], "the update replaced the volume"
        volume = volume_of(admin, ids["volume"])
        assert (volume["status"], volume["size"]) == ("available", 2)

        stack.delete()
        _, delete_seconds = stack.wait("DELETE")
        assert volume_of(admin, ids["volume"]) is None
        assert admin.volume("GET", "/types/" + ids["type"]).status_code == 404
        assert admin.volume("GET", "/qos-specs/" + ids["qos"]).status_code == 404
        print("\nheat stack (type, qos, volume): create %.2f s, update 1->2 GiB %.2f s, "
              "delete %.2f s" % (create_seconds, update_seconds, delete_seconds))
    finally:
        stack.cleanup()


def server_template(compute, image=None):
    volume = {"size": 1, "name": "lamina-heat-data"}
    if image:
        volume["image"] = image
    return {
        "heat_template_version": "2018-08-31",
        "resources": {
            "volume": {"type": "OS::Cinder::Volume", "properties": volume},
            # no network: Nova here has only a stand-in for one (deploy/nova), as in
            # tests/integration/test_nova.py (networks "none", microversion 2.37)
            "server": {"type": "OS::Nova::Server", "properties": {
                "name": "lamina-heat-server", "image": compute["image_ref"],
                "flavor": compute["flavor_ref"],
                "networks": [{"allocate_network": "none"}]}},
            "attachment": {"type": "OS::Cinder::VolumeAttachment", "properties": {
                "instance_uuid": {"get_resource": "server"},
                "volume_id": {"get_resource": "volume"}}},
        },
    }


def compute_of(heat):
    cloud = heat.cloud
    if cloud.compute is None:
        unavailable(cloud.compute_missing or cloud.image_missing
                    or "the shared cloud runs no compute service")
    return cloud.compute


def check_server_stack(heat, template, image_id=None):
    """Created as alice (member of project alpha): the volume ends in-use, attached to the
    server, in Lamina's view and Nova's; the delete detaches it and removes both."""
    member = heat.member
    stack = Stack(heat, member, template)
    try:
        _, create_seconds = stack.wait("CREATE")
        ids = stack.resources()
        volume = volume_of(member, ids["volume"])
        assert volume["status"] == "in-use"
        assert [a["server_id"] for a in volume["attachments"]] == [ids["server"]]
        assert volume["size"] == 1
        if image_id:
            assert volume["volume_image_metadata"]["image_id"] == image_id
            assert volume["bootable"] == "true"
        server = member.compute("GET", "/servers/" + ids["server"])
        assert server.status_code == 200, server.text
        assert server.json()["server"]["status"] == "ACTIVE"
        attached = member.compute("GET", "/servers/%s/os-volume_attachments" % ids["server"])
        assert attached.status_code == 200, attached.text
        assert [a["volumeId"] for a in attached.json()["volumeAttachments"]] == [ids["volume"]]

        stack.delete()
        _, delete_seconds = stack.wait("DELETE")
        assert volume_of(member, ids["volume"]) is None
        poll("server %s gone" % ids["server"], lambda: member.compute(
            "GET", "/servers/" + ids["server"]).status_code == 404)
        print("\nheat stack (server, volume%s, attachment): create %.2f s, delete %.2f s"
              % (" from an image" if image_id else "", create_seconds, delete_seconds))
    finally:
        stack.cleanup()


def test_server_with_blank_volume_attached(heat):
    compute = compute_of(heat)
    check_server_stack(heat, server_template(compute))


def test_server_with_volume_from_image_attached(heat):
    compute = compute_of(heat)
    check_server_stack(heat, server_template(compute, image=compute["image_ref"]),
                       image_id=compute["image_ref"])


def _wait_status(member, path, key, status, timeout=120):
    def current():
        resp = member.volume("GET", path)
        assert resp.status_code == 200, resp.text
        body = resp.json()[key]
        assert body["status"] != "error", body
        return body if body["status"] == status else None
    return poll("%s %s" % (path, status), current, timeout)


def test_volumes_from_a_snapshot_and_from_a_backup(heat):
    """OS::Cinder::Volume with snapshot_id and with backup_id (Heat restores the backup to a
    new volume), made as alice from a snapshot and a backup of her own volume; the delete
    removes both volumes and leaves the sources."""
    member = heat.member
    resp = member.volume("POST", "/volumes", json={"volume": {"size": 1, "name": "heat-src"}})
    assert resp.status_code == 202, resp.text
    source = resp.json()["volume"]["id"]
    _wait_status(member, "/volumes/" + source, "volume", "available")
    resp = member.volume("POST", "/snapshots", json={"snapshot": {"volume_id": source}})
    assert resp.status_code == 202, resp.text
    snapshot = resp.json()["snapshot"]["id"]
    resp = member.volume("POST", "/backups", json={"backup": {"volume_id": source}})
    assert resp.status_code == 202, resp.text
    backup = resp.json()["backup"]["id"]
    _wait_status(member, "/snapshots/" + snapshot, "snapshot", "available")
    _wait_status(member, "/backups/" + backup, "backup", "available", timeout=300)
    template = {"heat_template_version": "2018-08-31", "resources": {
        "from_snapshot": {"type": "OS::Cinder::Volume",
                          "properties": {"snapshot_id": snapshot}},
        "from_backup": {"type": "OS::Cinder::Volume", "properties": {"backup_id": backup}},
    }}
    stack = Stack(heat, member, template)
    try:
        _, create_seconds = stack.wait("CREATE")
        ids = stack.resources()
        from_snapshot = volume_of(member, ids["from_snapshot"])
        assert (from_snapshot["status"], from_snapshot["snapshot_id"]) == ("available", snapshot)
        from_backup = volume_of(member, ids["from_backup"])
        assert (from_backup["status"], from_backup["size"]) == ("available", 1)
        stack.delete()
        _, delete_seconds = stack.wait("DELETE")
        assert volume_of(member, ids["from_snapshot"]) is None
        assert volume_of(member, ids["from_backup"]) is None
        print("\nheat stack (volume from a snapshot, volume from a backup): create %.2f s, "
              "delete %.2f s" % (create_seconds, delete_seconds))
    finally:
        stack.cleanup()
        for path in ("/backups/" + backup, "/snapshots/" + snapshot):
            member.volume("DELETE", path)
        poll("the source's snapshot gone", lambda: member.volume(
            "GET", "/snapshots/" + snapshot).status_code == 404)
        member.volume("DELETE", "/volumes/" + source)
