"""A real Nova attaches Lamina volumes (issue 10): nova 34 with placement 16 and the fake virt
driver (deploy/nova/nova-aio.sh), Lamina behind the real Keystone with a file back end
exported over tgt iSCSI (tests/integration/nova.py). Driven with openstacksdk as alice
(member of project alpha) would: Nova finds Lamina through Keystone's catalog only.

The fake virt driver never opens the device, so what this proves is the control path Nova
takes (attachment create / update with its connector / complete, begin_detaching, attachment
delete, the volume-extended event); the data path over the same connection_info is proved by
test_attach_iscsi.py and test_attach_rbd.py."""

import time

import openstack
import pytest

from tests.integration.nova import nova_cloud, poll  # noqa: F401 (nova_cloud: a fixture)

pytestmark = pytest.mark.integration
FLAVOR = "lamina-nova-test"
DEADLINE = 120


def connect(ks, user, password, project, volume_url=None):
    """Compute through Keystone's catalog; block storage too for Nova itself, which finds
    Lamina in region lamina-nova (tests/integration/nova.py); this client is given the
    same endpoint directly."""
    project_id = openstack.connect(
        auth_type="password",
        auth={"auth_url": ks["LAMINA_KS_AUTH_URL"], "username": user, "password": password,
              "project_name": project, "user_domain_name": ks["LAMINA_KS_DOMAIN"],
              "project_domain_name": ks["LAMINA_KS_DOMAIN"]}).current_project_id
    return openstack.connect(
        block_storage_endpoint_override="%s/v3/%s" % (volume_url, project_id),
        auth_type="password",
        auth={"auth_url": ks["LAMINA_KS_AUTH_URL"], "username": user, "password": password,
              "project_name": project, "user_domain_name": ks["LAMINA_KS_DOMAIN"],
              "project_domain_name": ks["LAMINA_KS_DOMAIN"]},
        region_name=ks["LAMINA_KS_REGION"], compute_api_version="2.79",
        block_storage_api_version="3")


@pytest.fixture(scope="module")
def conn(nova_cloud):  # noqa: F811
    ks = nova_cloud.ks
    admin = connect(ks, ks["LAMINA_KS_ADMIN_USER"], ks["LAMINA_KS_ADMIN_PASSWORD"],
                    ks["LAMINA_KS_ADMIN_PROJECT"], nova_cloud.lamina_url)
    if admin.compute.find_flavor(FLAVOR) is None:
        admin.compute.create_flavor(name=FLAVOR, ram=64, vcpus=1, disk=0)
    return connect(ks, ks["LAMINA_KS_MEMBER_A_USER"], ks["LAMINA_KS_PASSWORD"],
                   ks["LAMINA_KS_PROJECT_A"], nova_cloud.lamina_url)


def volume(conn, volume_id):
    return conn.block_storage.get_volume(volume_id)


def volume_in(conn, volume_id, status):
    found = volume(conn, volume_id)
    return found if found.status == status else None


def server_attachment_ids(found):
    return [(a["server_id"], a["attachment_id"]) for a in found.attachments]


def test_nova_boots_attaches_extends_detaches_and_deletes(nova_cloud, conn):  # noqa: F811
    bs, compute = conn.block_storage, conn.compute
    made = []
    try:
        boot = bs.create_volume(size=1, name="nova-boot")
        made.append(boot.id)
        data = bs.create_volume(size=1, name="nova-data")
        made.append(data.id)
        for v in (boot, data):
            bs.wait_for_status(v, "available", failures=["error"], wait=DEADLINE)
        bs.set_volume_bootable_status(boot, True)
        assert volume(conn, boot.id).is_bootable

        # boot from the Lamina volume
        flavor = compute.find_flavor(FLAVOR)
        server = compute.create_server(
            name="nova-lamina", flavor_id=flavor.id, networks="none",
            block_device_mapping=[{"boot_index": 0, "uuid": boot.id, "source_type": "volume",
                                   "destination_type": "volume",
                                   "delete_on_termination": False}])
        server = compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"],
                                         wait=DEADLINE)
        shown = poll("boot volume in-use", lambda: volume_in(conn, boot.id, "in-use"))
        assert [a for a, _ in server_attachment_ids(shown)] == [server.id]
        boot_attachment = server_attachment_ids(shown)[0][1]
        assert set(nova_cloud.targets()) == {boot_attachment}

        # attach the second one
        started = time.monotonic()
        compute.create_volume_attachment(server, volume_id=data.id)
        shown = poll("data volume in-use", lambda: volume_in(conn, data.id, "in-use"))
        attach_seconds = time.monotonic() - started
        [(server_id, data_attachment)] = server_attachment_ids(shown)
        assert server_id == server.id
        targets = nova_cloud.targets()
        assert set(targets) == {boot_attachment, data_attachment}
        assert [a.volume_id for a in compute.volume_attachments(server)] in (
            [boot.id, data.id], [data.id, boot.id])

        # extend it while attached: Lamina grows it and tells Nova
        resp = bs.post("/volumes/%s/action" % data.id, json={"os-extend": {"new_size": 2}},
                       microversion="3.42")
        assert resp.status_code == 202, resp.text
        shown = poll("data volume at 2 GiB and in-use", lambda: (
            lambda v: v if v.size == 2 and v.status == "in-use" else None)(
                volume(conn, data.id)))
        assert server_attachment_ids(shown) == [(server.id, data_attachment)]

        def extend_event():
            for act in compute.server_actions(server):
                if act.action == "extend_volume":
                    detail = compute.get_server_action(act.request_id, server)
                    events = {e["event"]: e["result"] for e in detail.events or []}
                    if events.get("compute_extend_volume") == "Success":
                        return detail
            return None

        poll("Nova's extend_volume instance action (the volume-extended event)", extend_event)

        # detach it
        started = time.monotonic()
        compute.delete_volume_attachment(data.id, server)
        shown = poll("data volume available", lambda: volume_in(conn, data.id, "available"))
        detach_seconds = time.monotonic() - started
        assert shown.attachments == []
        poll("the data volume's target gone",
             lambda: set(nova_cloud.targets()) == {boot_attachment})

        # delete the server: the boot volume is left available (delete_on_termination false)
        compute.delete_server(server)
        compute.wait_for_delete(server, wait=DEADLINE)
        shown = poll("boot volume available", lambda: volume_in(conn, boot.id, "available"))
        assert shown.attachments == []
        poll("no target left", lambda: nova_cloud.targets() == {})

        for volume_id in made:
            assert volume(conn, volume_id).status == "available"
        print("\nnova attach (server add volume -> in-use): %.2f s; detach (server remove "
              "volume -> available): %.2f s" % (attach_seconds, detach_seconds))
    finally:
        for volume_id in made:
            found = bs.find_volume(volume_id)
            if found is not None and found.status in ("available", "error"):
                bs.delete_volume(found)
        for volume_id in made:
            poll("volume %s deleted" % volume_id,
                 lambda volume_id=volume_id: bs.find_volume(volume_id) is None)
