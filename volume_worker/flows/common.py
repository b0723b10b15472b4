"""Pieces the volume flows share: running a flow (with its notifications,
common/notifications.py), reading why it failed (common/flows.py), and the flows built once
per driver (shared_flow) with the tasks they are made of (Task)."""

import threading

from taskflow import task

from common.flows import failure_reason
from common.notifications import run_flow

__all__ = ["Task", "failure_reason", "run_flow", "shared_flow"]

_lock = threading.Lock()


class Task(task.Task):
    """A task of a flow that shared_flow builds once: many engines (threads) may run the
    same task object at the same time, so it keeps nothing of a run on itself (every value
    of a run is an argument or a result, in the run's engine), and it takes no progress
    listeners (TASK_EVENTS empty: TaskFlow registers each run's progress callback on the
    task's own notifier, which engines running the task at once would share; none of these
    tasks reports progress)."""

    TASK_EVENTS = ()


def shared_flow(build, driver, *args):
    """build(driver, *args), built once per driver (and args) and reused by every run:
    building a flow's tasks anew per operation costs more than most of its tasks' work
    (TaskFlow maps each task's execute and revert arguments when it is made). Only for flows
    whose tasks are all Task (no per-run state). Kept on the driver, so a driver that goes
    takes its flows with it."""
    key = (build.__module__, args)
    flows = driver.__dict__.get("_lamina_shared_flows")
    flow = flows.get(key) if flows is not None else None
    if flow is None:
        with _lock:
            flows = driver.__dict__.setdefault("_lamina_shared_flows", {})
            flow = flows.get(key)
            if flow is None:
                flow = build(driver, *args)
                for atom in flow:
                    if not isinstance(atom, Task):
                        raise TypeError("%s of flow %s is not a shareable Task"
                                        % (atom.name, flow.name))
                flows[key] = flow
    return flow
