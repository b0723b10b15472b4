"""The rbd driver's shared cluster handle: a handle that failed is shut down only once no
call uses it any more. librados can hang for good shutting down a handle another thread is
inside (seen in make test: a create failing on a stopped cluster shut the handle down while
the pool report was in mon_command on it, and both threads hung)."""

import threading

from volume_worker.drivers.rbd import RBDDriver


class FakeHandle:
    def __init__(self):
        self.shut_down = False

    def shutdown(self):
        self.shut_down = True


def driver_with_handles():
    driver = object.__new__(RBDDriver)  # no configuration needed: _connect is replaced
    driver._client, driver._users, driver._lock = None, {}, threading.Lock()
    made = []

    def connect():
        made.append(FakeHandle())
        return made[-1]

    driver._connect = connect
    return driver, made


def test_a_dropped_handle_waits_for_its_last_user():
    driver, made = driver_with_handles()
    first = driver._borrow()
    second = driver._borrow()
    assert first is second and len(made) == 1
    driver._drop_connection(first)         # one call saw Ceph fail
    assert not first.shut_down             # the other is still inside it
    driver._give_back(first)
    assert not first.shut_down
    driver._give_back(second)
    assert first.shut_down
    fresh = driver._borrow()               # the next call connects anew
    assert fresh is not first and len(made) == 2
    driver._give_back(fresh)
    assert not fresh.shut_down


def test_an_idle_handle_is_shut_down_when_dropped():
    driver, made = driver_with_handles()
    handle = driver._borrow()
    driver._give_back(handle)
    driver._drop_connection(handle)
    assert handle.shut_down


def test_a_late_drop_never_drops_the_new_handle():
    driver, made = driver_with_handles()
    old = driver._borrow()
    driver._drop_connection(old)
    driver._give_back(old)
    new = driver._borrow()
    driver._drop_connection(old)           # a second failure report about the old handle
    assert driver._borrow() is new and not new.shut_down
