"""Running a TaskFlow flow and reading why it failed: what the volume and backup services'
flows share (each service's flows/common.py re-exports these beside its own pieces)."""

import uuid

from taskflow import states
from taskflow.engines.action_engine.engine import SerialActionEngine
from taskflow.persistence import base as persistence_base
from taskflow.persistence import models as persistence_models

from common import metrics


class _Unpersisted(persistence_base.Backend, persistence_base.Connection):
    """A persistence backend that keeps nothing: a flow's state lives in its engine's
    Storage (its flow and atom details) for the one run, as with TaskFlow's default
    in-memory backend, minus that backend's own copy of every detail (a connection made,
    its paths ensured and the detail merged into its tree on each of the ~30 state changes
    of a run). Nothing here resumes a flow from persisted state: a service that restarts
    ends interrupted operations from the database (the workers table), not from TaskFlow."""

    def __init__(self):
        persistence_base.Backend.__init__(self, {})

    # Backend
    def get_connection(self):
        return self

    # Connection
    @property
    def backend(self):
        return self

    def close(self):
        pass

    def upgrade(self):
        pass

    def clear_all(self):
        pass

    def validate(self):
        pass

    def update_atom_details(self, atom_detail):
        return atom_detail

    def update_flow_details(self, flow_detail):
        return flow_detail

    def save_logbook(self, book):
        return book

    def destroy_logbook(self, book_uuid):
        pass

    def _nothing(self, *args, **kwargs):
        raise NotImplementedError("flows run here are not persisted")

    get_logbook = get_logbooks = get_flows_for_book = get_flow_details = _nothing
    get_atom_details = get_atoms_for_flow = _nothing


_BACKEND = _Unpersisted()
# No engine statistics (a stop watch and counters per atom): nothing reads them.
_ENGINE_OPTIONS = {"gather_statistics": False}


def run_flow(flow, store):
    """Run a flow serially in this thread. On failure TaskFlow reverts the tasks that ran
    (newest first) and re-raises the original exception.

    The engine is TaskFlow's serial action engine (what engines.load(engine="serial")
    builds, without stevedore's entry-point look-up per run), its flow and atom details
    unpersisted (_Unpersisted), the store given to it as transient values (the tasks'
    arguments; nothing persists them). A flow object may be reused across runs and threads
    when its tasks keep no per-run state (volume_worker/flows/common.py shared_flow).

    Each run is counted in this process's metrics (common/metrics.py): by flow and result,
    and a failure by the task whose execute raised (a revert that raises counts as
    "<task>.revert", the name of its fail point)."""
    flow_name = flow.name
    flow_detail = persistence_models.FlowDetail(flow_name, str(uuid.uuid4()))
    engine = SerialActionEngine(flow, flow_detail, _BACKEND, _ENGINE_OPTIONS)
    if store:
        engine.storage.inject(store, transient=True)

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
