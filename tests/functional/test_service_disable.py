"""`cinder service-disable` takes effect at once (issue 13): the very next create goes to
another back end, because the schedulers hear of it by fanout and, whatever a scheduler's
cache still says, the capacity claim itself refuses a disabled or frozen back end."""

from common.db import api as db
from common.db import models
from common.db.session import writer


def hosts_of(stack, volume_ids):
    return {stack.wait_volume(v, ("available",))["os-vol-host-attr:host"].split("#")[0]
            for v in volume_ids}


def test_the_next_create_after_disable_goes_elsewhere(make_stack):
    # a long periodic reload: only the fanout (or the claim) can make the change seen
    stack = make_stack(backends={"a": {}, "b": {}},
                       overrides={"scheduler_pool_reload_interval": 3600})
    resp = stack.request("PUT", "/os-services/disable",
                         {"host": "stack@a", "binary": "cinder-volume"})
    assert resp.status_code == 200, resp.text
    made = [stack.create_volume(size=1)["id"] for _ in range(6)]
    assert hosts_of(stack, made) == {"stack@b"}
    resp = stack.request("PUT", "/os-services/enable",
                         {"host": "stack@a", "binary": "cinder-volume"})
    assert resp.status_code == 200, resp.text
    resp = stack.request("PUT", "/os-services/disable",
                         {"host": "stack@b", "binary": "cinder-volume"})
    assert resp.status_code == 200, resp.text
    made = [stack.create_volume(size=1)["id"] for _ in range(3)]
    assert hosts_of(stack, made) == {"stack@a"}


def _set(host, **values):
    with writer() as s:
        s.query(models.Service).filter_by(host=host, binary="lamina-volume").update(values)


def test_the_claim_refuses_a_disabled_or_frozen_back_end(make_stack):
    make_stack(backends={"a": {}})
    pool = db.pool_get_all(host="stack@a")[0].name
    assert db.pool_claim(pool, 1, enabled_only=True)
    _set("stack@a", disabled=True)
    assert not db.pool_claim(pool, 1, enabled_only=True)
    assert db.pool_claim(pool, 1)  # other claims (extend, admin moves) are not placements
    _set("stack@a", disabled=False, frozen=True)
    assert not db.pool_claim(pool, 1, enabled_only=True)
    _set("stack@a", frozen=False)
    assert db.pool_claim(pool, 1, enabled_only=True)
