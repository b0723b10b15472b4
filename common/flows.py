"""Running a TaskFlow flow and reading why it failed: what the volume and backup services'
flows share (each service's flows/common.py re-exports these beside its own pieces)."""

from taskflow import engines, states

from common import metrics


def run_flow(flow, store):
    """Run a flow serially in this thread. On failure TaskFlow reverts the tasks that ran
    (newest first) and re-raises the original exception.

    Each run is counted in this process's metrics (common/metrics.py): by flow and result,
    and a failure by the task whose execute raised (a revert that raises counts as
    "<task>.revert", the name of its fail point)."""
    engine = engines.load(flow, store=store, engine="serial")
    flow_name = flow.name

    def task_failed(state, details):
        task = details.get("task_name", "unknown")
        if state == states.REVERT_FAILURE:
            task += ".revert"
        metrics.flow_failures.labels(flow_name, task).inc()

    engine.atom_notifier.register(states.FAILURE, task_failed)
    engine.atom_notifier.register(states.REVERT_FAILURE, task_failed)
    try:
        engine.run()
    except BaseException:
        metrics.flow_runs.labels(flow_name, "failed").inc()
        raise
    metrics.flow_runs.labels(flow_name, "succeeded").inc()
    return engine


def failure_reason(flow_failures):
    """The readable cause of a flow failure for user messages."""
    for failure in flow_failures.values():
        return str(failure.exception) or failure.exception_str
    return "unknown error"
