"""common/flows.py run_flow (TaskFlow's serial engine built directly, nothing persisted) and
volume_worker/flows/common.py shared_flow (a flow built once, run by many threads)."""

import threading

import pytest
from taskflow import task
from taskflow.patterns import linear_flow

from common import flows, metrics
from volume_worker.flows import common


class Double(common.Task):
    default_provides = "doubled"

    def execute(self, value):
        return value * 2

    def revert(self, value, result, flow_failures, **kwargs):
        reverted.append((value, result, sorted(flow_failures)))


class FailOn(common.Task):
    """Raises when the run's value is the bad one; its own revert is recorded too."""

    def execute(self, value, bad, doubled):
        if value == bad:
            raise RuntimeError("bad value %s" % value)
        return doubled + 1

    def revert(self, value, **kwargs):
        reverted.append(("fail_on", value))


reverted = []


def build(driver, name="probe_flow"):
    return linear_flow.Flow(name).add(Double(name="double"), FailOn(name="fail_on",
                                                                    provides="out"))


class Driver:
    pass


def test_a_run_gives_its_results_and_a_failure_reverts_newest_first():
    del reverted[:]
    flow = build(None)
    engine = flows.run_flow(flow, {"value": 3, "bad": None})
    assert engine.storage.fetch("out") == 7
    before = metrics.flow_failures.labels("probe_flow", "fail_on")._value.get()
    with pytest.raises(RuntimeError, match="bad value 5"):
        flows.run_flow(flow, {"value": 5, "bad": 5})
    # the failed task's revert, then the one before it with its result and the failure
    assert reverted == [("fail_on", 5), (5, 10, ["fail_on"])]
    assert metrics.flow_failures.labels("probe_flow", "fail_on")._value.get() == before + 1


def test_one_flow_object_run_by_many_threads_keeps_each_run_apart():
    del reverted[:]
    flow = build(None)
    results, errors = {}, []

    def run(value):
        try:
            for _ in range(20):
                bad = value if value % 3 == 0 else None
                try:
                    engine = flows.run_flow(flow, {"value": value, "bad": bad})
                except RuntimeError as exc:
                    results[value] = str(exc)
                else:
                    results[value] = engine.storage.fetch("out")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(v,)) for v in range(1, 13)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for value in range(1, 13):
        assert results[value] == ("bad value %d" % value if value % 3 == 0
                                  else value * 2 + 1)
    # each failed run reverted its own tasks with its own values
    assert sorted(r for r in reverted if r[0] == "fail_on") == sorted(
        [("fail_on", v) for v in (3, 6, 9, 12)] * 20)
    assert sorted(r for r in reverted if r[0] != "fail_on") == sorted(
        [(v, v * 2, ["fail_on"]) for v in (3, 6, 9, 12)] * 20)


def test_shared_flow_is_built_once_per_driver_and_args():
    built = []

    def counting_build(driver, name="probe_flow"):
        built.append((driver, name))
        return build(driver, name)

    one, two = Driver(), Driver()
    first = common.shared_flow(counting_build, one)
    assert common.shared_flow(counting_build, one) is first
    assert common.shared_flow(counting_build, two) is not first
    assert common.shared_flow(counting_build, one, "other") is not first
    assert built == [(one, "probe_flow"), (two, "probe_flow"), (one, "other")]


def test_shared_flow_refuses_a_task_that_may_keep_per_run_state():
    class Plain(task.Task):
        def execute(self):
            return None

    def plain_build(driver):
        return linear_flow.Flow("plain").add(Plain(name="plain"))

    with pytest.raises(TypeError, match="plain of flow plain"):
        common.shared_flow(plain_build, Driver())


def test_shared_tasks_take_no_progress_listeners():
    # TaskFlow registers a run's progress callback on the task's own notifier only when
    # the task allows the event: a shared task must not, or runs would share callbacks
    assert not Double(name="d").notifier.can_be_registered(task.EVENT_UPDATE_PROGRESS)
