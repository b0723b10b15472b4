"""Running the group flows on a volume service: submit to its work pool, end an operation
whose flow could not run or whose reverts did not finish, and finish or revert what was
interrupted (workers rows of resource type `group` and `group_snapshot`)."""

import logging

from common import exception

LOG = logging.getLogger(__name__)
RESOURCE_TYPES = ("group", "group_snapshot")


def submit(manager, flow, ctxt, resource_id, *args):
    with manager._in_flight_lock:
        manager._in_flight.add(resource_id)
    try:
        manager.pool.submit(_run, manager, flow, ctxt, resource_id, *args)
    except exception.ServiceBusy as exc:
        with manager._in_flight_lock:
            manager._in_flight.discard(resource_id)
        flow.end_failed(ctxt, manager.driver, resource_id, str(exc))


def _run(manager, flow, ctxt, resource_id, *args):
    ctxt.update_store()
    try:
        flow.run(ctxt, manager.driver, manager.host, resource_id, *args)
    except Exception as exc:
        LOG.warning("%s flow for %s ended in failure: %s", flow.FLOW, resource_id, exc)
        try:
            # A no-op when the reverts ended it (the conditional update no longer matches).
            flow.end_failed(ctxt, manager.driver, resource_id,
                            "%s (and its rollback did not complete)" % exc)
        except Exception:
            LOG.exception("Could not settle the failed %s of %s", flow.FLOW, resource_id)
    finally:
        with manager._in_flight_lock:
            manager._in_flight.discard(resource_id)


def clean_up(manager, ctxt, worker):
    from volume_worker.flows import create_group, delete_group

    flows = {("group", "create"): create_group, ("group", "delete"): delete_group}
    from volume_worker.flows import create_group_snapshot, delete_group_snapshot

    flows[("group_snapshot", "create")] = create_group_snapshot
    flows[("group_snapshot", "delete")] = delete_group_snapshot
    flow = flows.get((worker.resource_type, worker.operation))
    if flow is create_group:
        from common.db import groups_api
        from volume_worker.flows import create_group_from_src

        group = groups_api.group_get_internal(worker.resource_id)
        if group is not None and (group.group_snapshot_id or group.source_group_id):
            flow = create_group_from_src
    if flow is None:
        from common.db import api as db
        db.worker_release(worker.resource_type, worker.resource_id)
        return
    LOG.warning("Cleaning up interrupted %s of %s %s", worker.operation, worker.resource_type,
                worker.resource_id)
    flow.end_interrupted(ctxt, manager, worker.resource_id)
