"""Notifications as Cinder emits them (common/notifications.py), read back from RabbitMQ.

One deployed cluster (api, scheduler, two volume services on MariaDB and a fresh vhost):
`node1` has `[oslo_messaging_notifications] driver = messagingv2`, `node2` keeps the default
(no driver). An oslo.messaging notification listener in the test, on the cluster's vhost and
topic `notifications`, reads what they send: create, extend (resize) and delete of a volume
on node1 as start/end pairs in order with Cinder's payload keys, a snapshot's create and
delete pairs, and nothing at all about a volume on node2."""

import queue
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
    c = cluster.Cluster(tmp_path_factory.mktemp("notifications"), db_kind="mysql",
                        volume_hosts={"node1": {"volume_backend_name": "loud",
                                                "conf_sections": NOTIFYING},
                                      "node2": {"volume_backend_name": "quiet"}})
    try:
        c.start()
    except Exception:
        print(c.logs())
        c.stop()
        raise
    conf = cfg.ConfigOpts()
    conf([], project="lamina-test-listener")
    transport = messaging.get_notification_transport(
        conf, url="rabbit://guest:guest@%s/%s" % (cluster.RABBIT, c.vhost))
    collector = Collector()
    listener = messaging.get_notification_listener(
        transport, [messaging.Target(topic="notifications")], [collector],
        executor="threading")
    listener.start()
    for name in ("loud", "quiet"):
        resp = c.request("POST", "/types", {"volume_type": {
            "name": name, "extra_specs": {"volume_backend_name": name}}})
        assert resp.status_code == 200, resp.text
    c.collector = collector
    yield c
    listener.stop()
    listener.wait()
    transport.cleanup()
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
    assert {n[1].split(".", 1)[1] for n in c.collector.everything} == {
        c.host("node1") + "@file"}


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
