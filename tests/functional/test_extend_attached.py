"""Extend of an attached (in-use) volume (3.42) on the in-process stack.

The volume grows, goes back to `in-use`, and the compute service is told with a
`volume-extended` server external event per instance, as Cinder tells Nova. A real Nova needs
Cinder's 3.44 (os-complete) to attach, above Lamina's advertised maximum until backups (issue
11) bring 3.43, so here the compute side is a small HTTP endpoint in the test process standing
in for Nova's POST /os-server-external-events; the `[nova]` section reaches it with
keystoneauth's `none` plugin and an endpoint_override."""

import http.server
import json
import os
import threading
import time

import pytest

INSTANCE = "0b8f6f0c-6a51-4a49-9f5b-6f1d9e7c2a10"
CONNECTOR = {"host": "compute1", "initiator": "iqn.2026-12.org.example:compute1"}


class FakeComputeEvents(http.server.BaseHTTPRequestHandler):
    """Records the events it is sent; answers as Nova does (200 with the events)."""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append((self.path, dict(self.headers), body))
        status = self.server.answer
        payload = json.dumps({"events": [dict(e, code=200, status="completed")
                                         for e in body["events"]]}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def compute():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeComputeEvents)
    server.received, server.answer = [], 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _attached_stack(make_stack, compute, fail_points=()):
    stack = make_stack(overrides={
        "nova.auth_type": "none",
        "nova.endpoint_override": "http://127.0.0.1:%d/v2.1" % compute.server_port,
        "debug.fail_points": list(fail_points)})
    volume = stack.create_volume(size=1)
    stack.wait_volume(volume["id"], ("available",))
    vid = volume["id"]
    for name, args in (("os-reserve", None),
                       ("os-initialize_connection", {"connector": CONNECTOR}),
                       ("os-attach", {"instance_uuid": INSTANCE, "mountpoint": "/dev/vdb",
                                      "host_name": "compute1"})):
        resp = stack.request("POST", "/volumes/%s/action" % vid, {name: args})
        assert resp.status_code in (200, 202), resp.text
    assert stack.wait_volume(vid, ("in-use",))["attachments"]
    return stack, vid


def _events(compute, count=1, timeout=30):
    """The events compute was sent, once `count` have arrived: the volume is `in-use` again
    (mark_extended) just before tell_compute sends its event, so a test that looks as soon
    as it sees `in-use` can be there first."""
    deadline = time.monotonic() + timeout
    while len(compute.received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return compute.received


def _extend(stack, vid, new_size, version="3.42"):
    return stack.request("POST", "/volumes/%s/action" % vid,
                         {"os-extend": {"new_size": new_size}}, version=version)


def test_in_use_extend_grows_and_tells_compute(make_stack, compute):
    stack, vid = _attached_stack(make_stack, compute)
    old = _extend(stack, vid, 2, version="3.41")
    assert old.status_code == 400 and "available" in old.text
    assert _extend(stack, vid, 2).status_code == 202
    done = stack.wait_volume(vid, ("in-use", "error_extending"))
    assert (done["status"], done["size"], len(done["attachments"])) == ("in-use", 2, 1)
    path = os.path.join(stack.workdir, "file", "pool0", "volume-" + vid)
    assert os.path.getsize(path) == 2 * 1024 ** 3
    assert len(_events(compute)) == 1
    url, headers, body = compute.received[0]
    assert url == "/v2.1/os-server-external-events"
    assert headers.get("OpenStack-API-Version") == "compute 2.51"
    assert body == {"events": [{"name": "volume-extended", "server_uuid": INSTANCE,
                                "tag": vid}]}


def test_compute_refusing_the_event_keeps_the_extend(make_stack, compute):
    stack, vid = _attached_stack(make_stack, compute)
    compute.answer = 404
    assert _extend(stack, vid, 3).status_code == 202
    done = stack.wait_volume(vid, ("in-use", "error_extending"))
    assert (done["status"], done["size"]) == ("in-use", 3)
    assert len(_events(compute)) == 1


def test_failure_telling_compute_keeps_the_extend(make_stack, compute):
    stack, vid = _attached_stack(make_stack, compute, ["extend_volume.tell_compute"])
    assert _extend(stack, vid, 2).status_code == 202
    done = stack.wait_volume(vid, ("in-use", "error_extending"))
    assert (done["status"], done["size"]) == ("in-use", 2)
    assert compute.received == []


def test_failed_in_use_extend_ends_error_extending_attached(make_stack, compute):
    stack, vid = _attached_stack(make_stack, compute, ["extend_volume.extend_storage"])
    assert _extend(stack, vid, 2).status_code == 202
    done = stack.wait_volume(vid, ("error_extending",))
    assert done["size"] == 1 and len(done["attachments"]) == 1
    assert compute.received == []
