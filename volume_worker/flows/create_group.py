"""create_group: make a generic volume group `available` on this back end.

Tasks, in order (each has a revert):
  check_still_creating  the group is still `creating` and lives on this host; revert: group
                        `error`, workers row released, user told why (the groups quota stays
                        charged until the group is deleted, as Cinder)
  create_group_storage  the driver's create_group (file and rbd keep nothing for a group
                        apart from its members); revert: the driver's delete_group
  mark_available        `creating` -> `available` and the workers row released (one
                        transaction); revert: nothing of its own to undo
"""

import logging

from taskflow import task
from taskflow.patterns import linear_flow

from common import exception, fault
from common.db import api as db
from common.db import groups_api as gdb
from common.db import models
from common.db.session import writer
from volume_worker.flows import common

LOG = logging.getLogger(__name__)
FLOW = "create_group"
EVENT = "VOLUME_GROUP_002_003"


def fail_group(ctxt, group_id, from_status, to_status, event, action, reason):
    """`from_status` -> `to_status` and the workers row released; the user is told why.
    Returns whether this call moved it."""
    with writer() as s:
        won = db.conditional_update(models.Group, group_id, {"status": to_status},
                                    {"status": from_status, "deleted": False}, session=s)
        if won:
            db.worker_release("group", group_id, session=s)
    if won:
        LOG.error("%s of group %s failed: %s", action, group_id, reason)
        try:
            db.message_create(ctxt, "GROUP", group_id, event, "%s: %s" % (action, reason))
        except Exception:
            LOG.exception("Could not record the user message of group %s", group_id)
    return won


def driver_call(driver, method, group):
    """A driver's group hook, where it has one: the file and rbd drivers keep nothing for a
    group apart from its members' storage."""
    hook = getattr(driver, method, None)
    return hook(group) if hook is not None else None


class CheckStillCreating(task.Task):
    default_provides = "group"

    def execute(self, group_id, host):
        fault.check(FLOW + ".check_still_creating")
        group = gdb.group_get_internal(group_id)
        if group is None or group.deleted or group.status != "creating":
            raise gdb.InvalidGroup(reason="group %s is no longer creating" % group_id)
        if group.host != host:
            raise gdb.InvalidGroup(reason="group %s is not on %s" % (group_id, host))
        return group

    def revert(self, ctxt, group_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_still_creating.revert")
        fail_group(ctxt, group_id, "creating", "error", EVENT, "create group",
                   common.failure_reason(flow_failures))


class CreateGroupStorage(task.Task):
    default_provides = "model_update"

    def __init__(self, driver):
        super().__init__(name="create_group_storage")
        self.driver = driver

    def execute(self, group):
        fault.check(FLOW + ".create_group_storage")
        return driver_call(self.driver, "create_group", group) or {}

    def revert(self, group, result, **kwargs):
        if not isinstance(result, dict):
            return  # the driver raised and cleaned up its own partial work
        LOG.warning("Removing group %s from storage after a later step failed", group.id)
        driver_call(self.driver, "delete_group", group)


class MarkAvailable(task.Task):
    def execute(self, group_id, model_update):
        fault.check(FLOW + ".mark_available")
        with writer() as s:
            won = db.conditional_update(models.Group, group_id,
                                        dict(model_update, status="available"),
                                        {"status": "creating", "deleted": False}, session=s)
            if won:
                db.worker_release("group", group_id, session=s)
        if not won:
            raise exception.InvalidInput(reason="group %s left `creating` while it was being "
                                                "made" % group_id)
        LOG.info("Group %s is available", group_id)

    def revert(self, group_id, **kwargs):
        LOG.debug("mark_available reverted for group %s", group_id)


def build(driver):
    return linear_flow.Flow(FLOW).add(
        CheckStillCreating(name="check_still_creating"),
        CreateGroupStorage(driver),
        MarkAvailable(name="mark_available"),
    )


def run(ctxt, driver, host, group_id):
    common.run_flow(build(driver), {"ctxt": ctxt, "group_id": group_id, "host": host})


def end_failed(ctxt, driver, group_id, reason):
    group = gdb.group_get_internal(group_id)
    if group is not None and group.status == "creating":
        try:
            driver_call(driver, "delete_group", group)
        except Exception:
            LOG.exception("Could not remove group %s from storage", group_id)
    return fail_group(ctxt, group_id, "creating", "error", EVENT, "create group", reason)


def end_interrupted(ctxt, manager, group_id):
    """At start or when its request was lost: a create is reverted (the group `error`)."""
    end_failed(ctxt, manager.driver, group_id,
               "the creation was interrupted (volume service restart or lost request); "
               "delete the group and create it again")
