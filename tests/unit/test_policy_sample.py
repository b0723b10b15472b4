"""The committed policy sample is what the code's rules generate, and the personas hold."""

import os
import subprocess
import sys

from tests.stack import parse_once

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_policy_sample_is_current():
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + ":" + os.environ["PATH"])
    result = subprocess.run(["bash", os.path.join(ROOT, "deploy", "config",
                                                  "policy-sample-gen.sh"), "--check"],
                            capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_personas():
    parse_once()
    from api import policy
    from common.context import RequestContext

    def ctx(*roles, project="a"):
        c = RequestContext(user_id="u", project_id=project, roles=list(roles))
        c.is_admin = policy.check_is_admin(c)
        return c

    reader, member, admin = ctx("reader"), ctx("member", "reader"), ctx("admin", "member")
    mine, theirs = {"project_id": "a"}, {"project_id": "b"}
    for rule in ("volume:get", "volume:get_all", "volume_extension:quotas:show"):
        assert policy.check(reader, rule, mine) and policy.check(member, rule, mine)
        assert not policy.check(member, rule, theirs)
        assert policy.check(admin, rule, theirs)
    for rule in ("volume:create", "volume:delete", "volume:extend", "volume:create_snapshot"):
        assert not policy.check(reader, rule, mine)
        assert policy.check(member, rule, mine) and not policy.check(member, rule, theirs)
        assert policy.check(admin, rule, theirs)
    for rule in ("volume_extension:types_manage", "volume_extension:quotas:update",
                 "volume_extension:volume_admin_actions:reset_status",
                 "volume_extension:volume_admin_actions:force_delete",
                 "volume_extension:snapshot_admin_actions:reset_status"):
        assert not policy.check(member, rule, mine)
        assert policy.check(admin, rule, theirs)
    assert not reader.is_admin and not member.is_admin and admin.is_admin
