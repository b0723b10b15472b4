"""Every refusal is in the API's log once, with the route and the reason the client got, so an
operator can tell why a client had a 400 (issue 13)."""

import logging
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
