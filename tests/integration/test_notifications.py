"""Notifications as Cinder emits them (common/notifications.py), read back from RabbitMQ.

One deployed cluster (api, scheduler, four volume services, a backup service beside
node1's, on MariaDB and a fresh vhost) with `[oslo_messaging_notifications] driver =
messagingv2`, except `node2`, whose config has that section empty (the default: no driver).
An oslo.messaging notification listener in the test, on the cluster's vhost and topic
`notifications`, reads what they send: create, extend (resize) and delete of a volume on
node1 as start/end pairs in order with Cinder's payload keys; nothing at all about a volume
on node2; a snapshot's create and delete pairs; a failed create's start and error (node3
fails every create); a backup's create, restore and delete pairs; a retype in place's
volume.retype (sent by the scheduler, as the volume's service). node4's notifications go to
a broker that is not there: they are lost (and logged), and no operation fails."""

import queue
import signal
import time

import oslo_messaging as messaging
import pytest
from oslo_config import cfg

from tests.integration import cluster, scenarios

pytestmark = pytest.mark.integration

NOTIFYING = {"oslo_messaging_notifications": {"driver": "messagingv2"}}
VOLUME_KEYS = {"tenant_id", "host", "user_id", "availability_zone", "volume_id",
               "volume_type", "display_name", "launched_at", "created_at", "status",
               "snapshot_id", "size", "replication_status", "replication_extended_status",
               "replication_driver_data", "metadata", "volume_attachment"}
BACKUP_KEYS = {"tenant_id", "user_id", "availability_zone", "backup_id", "host", "display_name",
               "created_at", "status", "volume_id", "size", "service_metadata", "service",
               "fail_reason"}
SNAPSHOT_KEYS = {"tenant_id", "user_id", "availability_zone", "snapshot_id", "display_name",
                 "volume_id", "volume_size", "created_at", "status", "deleted", "metadata"}


class Collector:
    """The listener's endpoint: every notification, in the order received (`received` to
    consume, `everything` kept)."""

    def __init__(self):
        self.received = queue.Queue()
        self.everything = []

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self._got(("INFO", publisher_id, event_type, payload))

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        self._got(("ERROR", publisher_id, event_type, payload))

    def _got(self, notification):
        self.everything.append(notification)
        self.received.put(notification)


@pytest.fixture(scope="module")
def notifying(tmp_path_factory):
    c = cluster.Cluster(
        tmp_path_factory.mktemp("notifications"), db_kind="mysql", conf_sections=NOTIFYING,
        volume_hosts={"node1": {"volume_backend_name": "loud"},
                      # the section empty: oslo.messaging's defaults, no driver
                      "node2": {"volume_backend_name": "quiet",
                                "conf_sections": {"oslo_messaging_notifications": {}}},
                      "node3": {"volume_backend_name": "broken", "conf_sections": {
                          "debug": {"fail_points": "create_volume.create_storage"}}},
                      "node4": {"volume_backend_name": "unheard", "conf_sections": {
                          "oslo_messaging_notifications": dict(
                              NOTIFYING["oslo_messaging_notifications"], retry="0",
                              transport_url="rabbit://guest:guest@127.0.0.1:1/")}}})
    try:
        c.start()
        c.start_backup("node1")  # the one backup service the backup test needs
        c.wait_services("lamina-backup", 1)
    except Exception:
        print(c.logs())
        c.stop()
        raise
    conf = cfg.ConfigOpts()
    conf([], project="lamina-test-listener")
    transport = messaging.get_notification_transport(
        conf, url="rabbit://guest:guest@%s/%s" % (cluster.RABBIT, c.vhost))
    # the exchange and queues as the services declare them (common/rpc.py: durable)
    conf.set_override("amqp_durable_queues", True, group="oslo_messaging_rabbit")
    collector = Collector()
    listener = messaging.get_notification_listener(
        transport, [messaging.Target(topic="notifications")], [collector],
        executor="threading")
    listener.start()
    c.types = {}
    for name, backend in (("loud", "loud"), ("quiet", "quiet"), ("broken", "broken"),
                          ("unheard", "unheard"), ("loud-too", "loud")):
        resp = c.request("POST", "/types", {"volume_type": {
            "name": name, "extra_specs": {"volume_backend_name": backend}}})
        assert resp.status_code == 200, resp.text
        c.types[name] = resp.json()["volume_type"]["id"]
    c.collector = collector
    yield c
    listener.stop()
    listener.wait()
    transport.cleanup()
    for proc in c.procs.values():  # all at once: stop() then only waits for each
        if proc.popen is not None and proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGTERM)
    c.stop()


def next_about(c, resource_key, resource_id, timeout=30):
    """The next notification about the resource (others, of earlier steps, skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no notification about %s %s\n%s" % (resource_key, resource_id,
                                                               c.logs())
        try:
            priority, publisher, event_type, payload = c.collector.received.get(
                timeout=left)
        except queue.Empty:
            continue
        if payload.get(resource_key) == resource_id:
            return priority, publisher, event_type, payload


def volume_status(c, volume_id):
    resp = c.request("GET", "/volumes/" + volume_id)
    return "deleted" if resp.status_code == 404 else resp.json()["volume"]["status"]


def wait_volume(c, volume_id, status):
    scenarios.wait_for(lambda: volume_status(c, volume_id) == status, timeout=60)


def create_volume(c, volume_type):
    resp = c.request("POST", "/volumes", {"volume": {"size": 1, "name": "n-" + volume_type,
                                                     "volume_type": volume_type,
                                                     "metadata": {"purpose": "notify"}}})
    assert resp.status_code == 202, resp.text
    volume_id = resp.json()["volume"]["id"]
    wait_volume(c, volume_id, "available")
    return volume_id


def test_nothing_emitted_without_a_driver_then_volume_pairs_in_order(notifying):
    c = notifying
    # node2 has no driver (the default): its whole volume life sends nothing
    quiet = create_volume(c, "quiet")
    assert c.request("DELETE", "/volumes/" + quiet).status_code == 202
    wait_volume(c, quiet, "deleted")

    loud = create_volume(c, "loud")
    resp = c.request("POST", "/volumes/%s/action" % loud, {"os-extend": {"new_size": 2}})
    assert resp.status_code == 202, resp.text
    wait_volume(c, loud, "available")
    assert c.request("DELETE", "/volumes/" + loud).status_code == 202
    wait_volume(c, loud, "deleted")

    seen = [next_about(c, "volume_id", loud) for _ in range(6)]
    assert [event for _, _, event, _ in seen] == [
        "volume.create.start", "volume.create.end", "volume.resize.start",
        "volume.resize.end", "volume.delete.start", "volume.delete.end"]
    assert {priority for priority, _, _, _ in seen} == {"INFO"}
    assert {publisher for _, publisher, _, _ in seen} == {"volume.%s@file"
                                                          % c.host("node1")}
    for _, _, event, payload in seen:
        assert VOLUME_KEYS <= set(payload), (event, sorted(payload))
        assert payload["tenant_id"] == "p1"
        assert payload["metadata"] == {"purpose": "notify"}
    payloads = {event: payload for _, _, event, payload in seen}
    assert payloads["volume.create.start"]["status"] == "creating"
    assert payloads["volume.create.end"]["status"] == "available"
    assert payloads["volume.create.end"]["host"].startswith(c.host("node1") + "@file#")
    assert [payloads[e]["size"] for e in ("volume.create.end", "volume.resize.start",
                                          "volume.resize.end")] == [1, 1, 2]
    assert payloads["volume.delete.end"]["status"] == "deleted"

    # node2's volume was gone before node1's began: had node2 sent anything, it would have
    # arrived before these
    assert not [n for n in c.collector.everything if n[3].get("volume_id") == quiet]
    assert not [n for n in c.collector.everything if c.host("node2") in n[1]]


def test_snapshot_create_and_delete_pairs(notifying):
    c = notifying
    volume_id = create_volume(c, "loud")
    resp = c.request("POST", "/snapshots", {"snapshot": {"volume_id": volume_id,
                                                         "name": "n-snap"}})
    assert resp.status_code == 202, resp.text
    snapshot_id = resp.json()["snapshot"]["id"]
    scenarios.wait_for(lambda: c.request("GET", "/snapshots/" + snapshot_id).json()[
        "snapshot"]["status"] == "available", timeout=60)
    assert c.request("DELETE", "/snapshots/" + snapshot_id).status_code == 202
    scenarios.wait_for(lambda: c.request("GET", "/snapshots/" + snapshot_id).status_code
                       == 404, timeout=60)

    seen = [next_about(c, "snapshot_id", snapshot_id) for _ in range(4)]
    assert [event for _, _, event, _ in seen] == [
        "snapshot.create.start", "snapshot.create.end", "snapshot.delete.start",
        "snapshot.delete.end"]
    assert {publisher for _, publisher, _, _ in seen} == {"snapshot.%s@file"
                                                          % c.host("node1")}
    for _, _, event, payload in seen:
        assert SNAPSHOT_KEYS <= set(payload), (event, sorted(payload))
        assert (payload["volume_id"], payload["volume_size"]) == (volume_id, 1)
    assert [p["status"] for _, _, _, p in seen] == ["creating", "available", "deleting",
                                                    "deleted"]
    assert c.request("DELETE", "/volumes/" + volume_id).status_code == 202
    wait_volume(c, volume_id, "deleted")


def test_failed_create_sends_start_then_error(notifying):
    c = notifying
    resp = c.request("POST", "/volumes", {"volume": {"size": 1, "volume_type": "broken"}})
    assert resp.status_code == 202, resp.text
    volume_id = resp.json()["volume"]["id"]
    wait_volume(c, volume_id, "error")
    seen = [next_about(c, "volume_id", volume_id) for _ in range(2)]
    assert [(priority, event) for priority, _, event, _ in seen] == [
        ("INFO", "volume.create.start"), ("ERROR", "volume.create.error")]
    assert seen[1][1] == "volume.%s@file" % c.host("node3")
    assert VOLUME_KEYS <= set(seen[1][3])
    assert seen[1][3]["status"] == "error"
    assert c.request("DELETE", "/volumes/" + volume_id).status_code == 202
    wait_volume(c, volume_id, "deleted")


def test_retype_in_place_sends_volume_retype(notifying):
    c = notifying
    volume_id = create_volume(c, "loud")
    resp = c.request("POST", "/volumes/%s/action" % volume_id,
                     {"os-retype": {"new_type": "loud-too"}})
    assert resp.status_code == 202, resp.text
    scenarios.wait_for(lambda: c.request("GET", "/volumes/" + volume_id).json()["volume"][
        "volume_type"] == "loud-too", timeout=60)
    events = [next_about(c, "volume_id", volume_id) for _ in range(3)]
    assert [event for _, _, event, _ in events] == [
        "volume.create.start", "volume.create.end", "volume.retype"]
    _, publisher, _, payload = events[2]
    assert publisher == "volume.%s@file" % c.host("node1")
    assert (payload["volume_type"], payload["status"]) == (c.types["loud-too"], "available")
    assert c.request("DELETE", "/volumes/" + volume_id).status_code == 202
    wait_volume(c, volume_id, "deleted")


def backup_status(c, backup_id):
    resp = c.request("GET", "/backups/" + backup_id)
    return "deleted" if resp.status_code == 404 else resp.json()["backup"]["status"]


def test_backup_create_restore_delete_pairs(notifying):
    c = notifying
    volume_id = create_volume(c, "loud")
    resp = c.request("POST", "/backups", {"backup": {"volume_id": volume_id,
                                                     "name": "n-backup"}})
    assert resp.status_code == 202, resp.text
    backup_id = resp.json()["backup"]["id"]
    scenarios.wait_for(lambda: backup_status(c, backup_id) == "available", timeout=60)
    resp = c.request("POST", "/backups/%s/restore" % backup_id,
                     {"restore": {"volume_id": volume_id}})
    assert resp.status_code == 202, resp.text
    scenarios.wait_for(lambda: backup_status(c, backup_id) == "available" and
                       volume_status(c, volume_id) == "available", timeout=60)
    assert c.request("DELETE", "/backups/" + backup_id).status_code == 202
    scenarios.wait_for(lambda: backup_status(c, backup_id) == "deleted", timeout=60)

    seen = [next_about(c, "backup_id", backup_id) for _ in range(6)]
    assert [event for _, _, event, _ in seen] == [
        "backup.create.start", "backup.create.end", "backup.restore.start",
        "backup.restore.end", "backup.delete.start", "backup.delete.end"]
    assert {publisher for _, publisher, _, _ in seen} == {"backup." + c.host("node1")}
    for _, _, event, payload in seen:
        assert BACKUP_KEYS <= set(payload), (event, sorted(payload))
        assert (payload["volume_id"], payload["size"]) == (volume_id, 1)
    assert seen[1][3]["status"] == "available"
    assert seen[5][3]["status"] == "deleted"
    assert c.request("DELETE", "/volumes/" + volume_id).status_code == 202
    wait_volume(c, volume_id, "deleted")


def test_unreachable_notification_broker_fails_no_operation(notifying):
    """node4's notifications go to their own transport_url, a port nobody listens on, with
    no retry: every send fails and is logged, and the volume's create and delete still end
    as they should."""
    c = notifying
    volume_id = create_volume(c, "unheard")
    assert c.request("DELETE", "/volumes/" + volume_id).status_code == 202
    wait_volume(c, volume_id, "deleted")
    with open(c.procs["node4"].log) as f:
        log = f.read()
    assert log.count("Could not send notification") >= 4, cluster.tail(c.procs["node4"].log)
    assert not [n for n in c.collector.everything if n[3].get("volume_id") == volume_id]
