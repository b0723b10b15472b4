"""Every refusal is in the API's log once, with the route and the reason the client got, so an
operator can tell why a client had a 400 (issue 13)."""

import logging
import re
import uuid


def refusals(caplog):
    return [r for r in caplog.records if r.name == "api.app" and " refused " in r.getMessage()]


def test_a_4xx_is_logged_once_at_info_with_route_and_reason(stack, caplog):
    caplog.set_level(logging.INFO, logger="api.app")
    resp = stack.request("POST", "/volumes", {"volume": {"size": "x"}})
    assert resp.status_code == 400
    missing = str(uuid.uuid4())
    assert stack.request("GET", "/volumes/" + missing).status_code == 404
    assert stack.http.get(stack.url + "/v3/p1/no-such-thing").status_code == 404
    found = refusals(caplog)
    assert len(found) == 3, [r.getMessage() for r in found]
    bad, not_found, no_route = (r.getMessage() for r in found)
    assert all(r.levelno == logging.INFO for r in found)
    assert "POST /v3/p1/volumes (/v3/<project_id>/volumes) refused 400 badRequest" in bad
    assert resp.json()["badRequest"]["message"] in bad
    assert "refused 404 itemNotFound" in not_found and missing in not_found
    assert "(-) refused 404 itemNotFound" in no_route


def test_a_success_logs_no_refusal(stack, caplog):
    caplog.set_level(logging.INFO, logger="api.app")
    assert stack.request("GET", "/volumes").status_code == 200
    assert refusals(caplog) == []


ACCESS_LINE = re.compile(
    r'^(?P<remote>\S+) - (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" '
    r'(?P<status>\d{3}) (?P<length>\d+|-) "(?P<referer>[^"]*)" "(?P<agent>(?:[^"\\]|\\.)*)" '
    r'(?P<duration>\d+\.\d{3}) (?P<request_id>\S+)$')


def access_lines(caplog):
    return [ACCESS_LINE.match(r.getMessage()) for r in caplog.records
            if r.name == "lamina.api.access"]


def test_every_request_has_one_access_line_in_the_combined_format(stack, caplog):
    caplog.set_level(logging.INFO, logger="lamina.api.access")
    created = stack.http.post(stack.url + "/v3/p1/volumes?x=1", json={"volume": {"size": 1}},
                              headers={"X-Auth-Token": "alice:p1", "User-Agent": 'tool "7"'})
    assert created.status_code == 202
    refused = stack.request("POST", "/volumes", {"volume": {"size": "x"}})
    assert refused.status_code == 400
    assert stack.http.get(stack.url + "/").status_code in (200, 300)
    lines = access_lines(caplog)
    assert len(lines) == 3 and all(lines), [r.getMessage() for r in caplog.records
                                            if r.name == "lamina.api.access"]
    create, bad, versions = lines
    assert create["request"] == "POST /v3/p1/volumes?x=1 HTTP/1.1"
    assert (create["status"], create["user"], create["remote"]) == ("202", "alice",
                                                                  "127.0.0.1")
    assert int(create["length"]) == len(created.content)
    assert create["agent"] == 'tool \\"7\\"'
    assert create["request_id"] == created.headers["X-OpenStack-Request-ID"]
    assert bad["status"] == "400" and bad["request_id"] == refused.headers[
        "X-OpenStack-Request-ID"]
    # the version document builds no context: no user, and not the last request's either
    assert versions["user"] == "-" and versions["request_id"] == "-"
    stack.wait_volume(created.json()["volume"]["id"], ["available"])
