"""Running a TaskFlow flow and reading why it failed: what the volume and backup services'
flows share (each service's flows/common.py re-exports these beside its own pieces)."""

from taskflow import engines


def run_flow(flow, store):
    """Run a flow serially in this thread. On failure TaskFlow reverts the tasks that ran
    (newest first) and re-raises the original exception."""
    engine = engines.load(flow, store=store, engine="serial")
    engine.run()
    return engine


def failure_reason(flow_failures):
    """The readable cause of a flow failure for user messages."""
    for failure in flow_failures.values():
        return str(failure.exception) or failure.exception_str
    return "unknown error"
