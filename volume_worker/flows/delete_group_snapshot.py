"""delete_group_snapshot: remove each member snapshot from storage, then the rows.

Tasks, in order (each has a revert):
  check_deleting          the group snapshot is `deleting` on this host; revert: it and its
                          members still `deleting` go `error_deleting`, workers row
                          released, user told why (the delete can be asked again)
  delete_member_storage   the driver removes each member snapshot (one already gone is
                          fine); revert: only logs (nothing comes back)
  mark_deleted            the members' rows and the group snapshot's soft-deleted, their
                          snapshots quota given back, workers row released, in one
                          transaction; revert: nothing to undo
"""

import logging

from taskflow import task
from taskflow.patterns import linear_flow

from common import fault, quota
from common.db import api as db
from common.db import groups_api as gdb
from common.db import models, quota_api
from common.db.models import utcnow
from common.db.session import reader, writer
from volume_worker.flows import common
from volume_worker.flows.create_group_snapshot import fail_group_snapshot

LOG = logging.getLogger(__name__)
FLOW = "delete_group_snapshot"


class CheckDeleting(task.Task):
    default_provides = "members"

    def execute(self, group_snapshot_id, host):
        fault.check(FLOW + ".check_deleting")
        with reader() as s:
            gs = s.get(models.GroupSnapshot, group_snapshot_id)
            if gs is None or gs.deleted or gs.status != "deleting":
                raise gdb.InvalidGroupSnapshot(reason="group snapshot %s is not deleting"
                                                      % group_snapshot_id)
            group = gdb.group_get_internal(gs.group_id, session=s)
            if group is None or group.host != host:
                raise gdb.InvalidGroupSnapshot(reason="the group of group snapshot %s is "
                                                      "not on %s" % (group_snapshot_id, host))
            return [(snap, s.get(models.Volume, snap.volume_id))
                    for snap in gdb.group_snapshot_members(group_snapshot_id, session=s)]

    def revert(self, ctxt, group_snapshot_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_deleting.revert")
        fail_group_snapshot(ctxt, group_snapshot_id, "deleting", "error_deleting",
                            "delete group snapshot", common.failure_reason(flow_failures))


class DeleteMemberStorage(task.Task):
    def __init__(self, driver):
        super().__init__(name="delete_member_storage")
        self.driver = driver

    def execute(self, members):
        fault.check(FLOW + ".delete_member_storage")
        for snapshot, volume in members:
            self.driver.delete_snapshot(snapshot, volume)

    def revert(self, group_snapshot_id, **kwargs):
        LOG.warning("The delete of group snapshot %s failed at its storage step",
                    group_snapshot_id)


class MarkDeleted(task.Task):
    def execute(self, group_snapshot_id):
        fault.check(FLOW + ".mark_deleted")
        with writer() as s:
            won = db.conditional_update(models.GroupSnapshot, group_snapshot_id,
                                        {"status": "deleted", "deleted": True,
                                         "deleted_at": utcnow()},
                                        {"status": "deleting", "deleted": False}, session=s)
            if not won:
                raise gdb.InvalidGroupSnapshot(reason="group snapshot %s left `deleting`"
                                                      % group_snapshot_id)
            for snapshot in gdb.group_snapshot_members(group_snapshot_id, session=s):
                db.snapshot_mark_deleted(snapshot.id, session=s)
                quota.release_snapshot(snapshot.project_id, snapshot.volume_size,
                                       quota_api.volume_type_name(s, snapshot.volume_type_id),
                                       session=s)
            db.worker_release("group_snapshot", group_snapshot_id, session=s)
        LOG.info("Group snapshot %s deleted", group_snapshot_id)

    def revert(self, group_snapshot_id, **kwargs):
        LOG.debug("mark_deleted reverted for group snapshot %s", group_snapshot_id)


def build(driver):
    return linear_flow.Flow(FLOW).add(
        CheckDeleting(name="check_deleting"),
        DeleteMemberStorage(driver),
        MarkDeleted(name="mark_deleted"),
    )


def run(ctxt, driver, host, group_snapshot_id):
    common.run_flow(build(driver), {"ctxt": ctxt, "group_snapshot_id": group_snapshot_id,
                                    "host": host})


def end_failed(ctxt, driver, group_snapshot_id, reason):
    return fail_group_snapshot(ctxt, group_snapshot_id, "deleting", "error_deleting",
                               "delete group snapshot", reason)


def end_interrupted(ctxt, manager, group_snapshot_id):
    """An interrupted delete is finished (a member already gone is fine)."""
    from volume_worker.flows import delete_group_snapshot, group_common

    with manager._in_flight_lock:
        manager._in_flight.add(group_snapshot_id)
    group_common._run(manager, delete_group_snapshot, ctxt, group_snapshot_id)
