import pytest
import requests

from tests import contract
from tests.stack import Stack

_send = requests.Session.send


def _send_checked(self, request, **kwargs):
    """Every response from Lamina, whoever asked (the stack's helpers, python-cinderclient,
    openstacksdk), is checked against Cinder's contract (tests/contract.py)."""
    response = _send(self, request, **kwargs)
    if not kwargs.get("stream"):
        body = (request.body.decode(errors="replace") if isinstance(request.body, bytes)
                else request.body)
        contract.check(request.method, request.url, body, response.status_code,
                       response.headers, response.text)
    return response


requests.Session.send = _send_checked


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp_path).start()
    yield s
    s.stop()


@pytest.fixture(params=["mysql", "postgresql"])
def deployed_database(request):
    """A fresh MariaDB, then PostgreSQL, database (its URL) for tests of the deployed
    databases; dropped after the test. Ask for it after make_stack, so the stacks stop first."""
    from common.db import session
    from tests.integration import cluster

    url = cluster.create_database(request.param)
    yield url
    session.dispose()
    cluster.drop_database(url)


@pytest.fixture
def make_stack(tmp_path):
    """Build a stack with custom back ends or options: make_stack(backends=..., overrides=...)."""
    made = []

    def _make(**kwargs):
        s = Stack(tmp_path / ("s%d" % len(made)), **kwargs).start()
        made.append(s)
        return s

    yield _make
    for s in made:
        s.stop()
