"""Named failure points for fault-injection tests.

Every flow task calls ``check("<flow>.<task>")`` before it acts, and the revert that ends a
failed operation calls ``check("<flow>.<task>.revert")``, so a failing rollback can be tested
too. In production both lists are empty and the check costs two list lookups."""

import time

from oslo_config import cfg

from common import exception

debug_opts = [
    cfg.ListOpt("fail_points", default=[],
                help="Testing only: names of flow steps (e.g. create_volume.create_storage) "
                     "that raise an injected failure when they run, to exercise reverts."),
    cfg.ListOpt("delay_points", default=[],
                help="Testing only: <flow step>:<seconds> pairs; the step sleeps that long "
                     "before it acts, so crash tests can catch work in flight."),
]
cfg.CONF.register_opts(debug_opts, group="debug")


def check(point):
    debug = cfg.CONF.debug
    if debug.delay_points:
        for item in debug.delay_points:
            name, _, seconds = item.partition(":")
            if name == point:
                time.sleep(float(seconds or 0))
    if point in debug.fail_points:
        raise exception.InjectedFailure(point=point)
