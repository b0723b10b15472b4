"""An expired Keystone token is refused with 401.

Keystone is restarted with 5-second tokens (LAMINA_KEYSTONE_TOKEN_EXPIRATION=5, see
deploy/keystone/README.md) for this test and with its default lifetime afterwards; tokens
issued before keep their own expiry (fernet keys stay), so other tests are not disturbed."""

import os
import subprocess
import time

import pytest

from tests.integration.test_keystone import SCRIPT, User, ks, lamina  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


def keystone_start(expiration=None):
    env = dict(os.environ)
    env.pop("LAMINA_KEYSTONE_TOKEN_EXPIRATION", None)
    if expiration is not None:
        env["LAMINA_KEYSTONE_TOKEN_EXPIRATION"] = str(expiration)
    result = subprocess.run(["bash", SCRIPT, "start"], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_expired_token_is_refused(ks, lamina):  # noqa: F811
    try:
        keystone_start(expiration=5)
        alice = User(ks, lamina, ks["LAMINA_KS_MEMBER_A_USER"], ks["LAMINA_KS_PROJECT_A"])
        assert alice.request("GET", "/volumes").status_code == 200
        time.sleep(7)
        resp = alice.request("GET", "/volumes")
        assert resp.status_code == 401, resp.text
    finally:
        keystone_start()
