"""Shared building blocks of every service: exception messages and the bounded work pool."""

import threading

import pytest

from common import exception
from common.workpool import BoundedWorkPool


def test_exception_message_from_its_fields():
    assert str(exception.InvalidInput(reason="size")) == "Invalid input received: size"
    assert str(exception.InvalidInput()) == "Invalid input received: %(reason)s"
    assert str(exception.InvalidInput("as given")) == "as given"


def test_exception_raised_with_other_fields_still_says_them():
    # a mistake in an error path must not turn the error being reported into a KeyError
    busy = exception.ServiceBusy(reason="no backup service answers")
    assert "no backup service answers" in str(busy) and busy.code == 503


def test_work_pool_refuses_beyond_its_backlog_and_drains_on_shutdown():
    pool = BoundedWorkPool("volume (test)", max_workers=1, max_backlog=2)
    release = threading.Event()
    started = threading.Event()
    done = []

    def hold():
        started.set()
        release.wait(10)
        done.append("first")

    pool.submit(hold)
    assert started.wait(10)  # the one worker is busy: what follows waits
    pool.submit(done.append, "second")
    pool.submit(done.append, "third")
    with pytest.raises(exception.ServiceBusy) as refused:
        pool.submit(done.append, "fourth")
    assert "volume (test)" in str(refused.value)
    release.set()
    pool.shutdown(wait=True)  # the waiting work runs before it returns
    assert done == ["first", "second", "third"]
    with pytest.raises(exception.ServiceBusy):
        pool.submit(done.append, "after")
