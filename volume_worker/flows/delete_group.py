"""delete_group: delete a group's member volumes (those the API marked `deleting` with it)
and then the group.

Tasks, in order (each has a revert):
  check_deleting       the group is `deleting` on this host; revert: `error_deleting`, the
                       workers row released, the user told why (the delete can be asked again)
  delete_members       each member still `deleting` goes through the delete_volume flow (its
                       storage and row removed, or the volume `error_deleting` with its quota
                       charged again by that flow's revert); a member that failed fails the
                       group's delete; revert: members still `deleting` go `error_deleting`
  delete_group_storage the driver's delete_group; revert: only logs (nothing comes back)
  mark_deleted         soft-delete the group, give back the groups quota and release the
                       workers row in one transaction; revert: nothing to undo
"""

import logging

from taskflow import task
from taskflow.patterns import linear_flow

from common import exception, fault, quota, volume_status
from common.db import api as db
from common.db import groups_api as gdb
from common.db import models
from common.db.session import writer
from volume_worker.flows import common
from volume_worker.flows import delete_volume as delete_volume_flow
from volume_worker.flows.create_group import driver_call, fail_group

LOG = logging.getLogger(__name__)
FLOW = "delete_group"
EVENT = "VOLUME_GROUP_003_004"


class CheckDeleting(task.Task):
    default_provides = "group"

    def execute(self, group_id, host):
        fault.check(FLOW + ".check_deleting")
        group = gdb.group_get_internal(group_id)
        if group is None or group.deleted or group.status != "deleting":
            raise gdb.InvalidGroup(reason="group %s is not deleting" % group_id)
        if group.host != host:
            raise gdb.InvalidGroup(reason="group %s is not on %s" % (group_id, host))
        return group

    def revert(self, ctxt, group_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_deleting.revert")
        end_failed(ctxt, None, group_id, common.failure_reason(flow_failures))


class DeleteMembers(task.Task):
    def __init__(self, driver):
        super().__init__(name="delete_members")
        self.driver = driver

    def execute(self, ctxt, group_id, host):
        fault.check(FLOW + ".delete_members")
        failed = []
        for volume in gdb.group_volumes(group_id):
            if volume.status != "deleting":
                continue
            try:
                delete_volume_flow.run(ctxt, self.driver, host, volume.id)
            except Exception as exc:
                LOG.error("Member %s of group %s could not be deleted: %s", volume.id,
                          group_id, exc)
                failed.append(volume.id)
        if failed:
            raise exception.DriverError(reason="member volumes %s could not be deleted"
                                               % ", ".join(failed))

    def revert(self, ctxt, group_id, **kwargs):
        fault.check(FLOW + ".delete_members.revert")
        for volume in gdb.group_volumes(group_id):
            if volume.status == "deleting":
                volume_status.fail_operation(
                    ctxt, volume.id, "deleting", "error_deleting", volume_status.EVENT_DELETE,
                    "delete volume", "the delete of its group %s failed" % group_id)


class DeleteGroupStorage(task.Task):
    def __init__(self, driver):
        super().__init__(name="delete_group_storage")
        self.driver = driver

    def execute(self, group):
        fault.check(FLOW + ".delete_group_storage")
        driver_call(self.driver, "delete_group", group)

    def revert(self, group, **kwargs):
        LOG.warning("The delete of group %s failed after its storage step", group.id)


class MarkDeleted(task.Task):
    def execute(self, group_id):
        fault.check(FLOW + ".mark_deleted")
        with writer() as s:
            group = gdb.group_get_internal(group_id, session=s)
            if gdb.group_volumes(group_id, session=s):
                raise gdb.InvalidGroup(reason="group %s still has volumes" % group_id)
            won = db.conditional_update(models.Group, group_id,
                                        {"status": "deleted", "deleted": True,
                                         "deleted_at": models.utcnow()},
                                        {"status": "deleting", "deleted": False}, session=s)
            if not won:
                raise gdb.InvalidGroup(reason="group %s left `deleting`" % group_id)
            quota.release(group.project_id, {"groups": 1}, session=s)
            db.worker_release("group", group_id, session=s)
        LOG.info("Group %s deleted", group_id)

    def revert(self, group_id, **kwargs):
        LOG.debug("mark_deleted reverted for group %s", group_id)


def build(driver):
    return linear_flow.Flow(FLOW).add(
        CheckDeleting(name="check_deleting"),
        DeleteMembers(driver),
        DeleteGroupStorage(driver),
        MarkDeleted(name="mark_deleted"),
    )


def run(ctxt, driver, host, group_id):
    common.run_flow(build(driver), {"ctxt": ctxt, "group_id": group_id, "host": host})


def end_failed(ctxt, driver, group_id, reason):
    for volume in gdb.group_volumes(group_id):
        if volume.status == "deleting":
            volume_status.fail_operation(ctxt, volume.id, "deleting", "error_deleting",
                                         volume_status.EVENT_DELETE, "delete volume",
                                         "the delete of its group %s failed" % group_id)
    return fail_group(ctxt, group_id, "deleting", "error_deleting", EVENT, "delete group",
                      reason)


def end_interrupted(ctxt, manager, group_id):
    """An interrupted delete is finished (its members' deletes are idempotent). In this
    thread: the start-up cleanup then meets the members' own workers rows only after the
    group's flow has dealt with them, not while it does."""
    from volume_worker.flows import delete_group, group_common

    with manager._in_flight_lock:
        manager._in_flight.add(group_id)
    group_common._run(manager, delete_group, ctxt, group_id)
