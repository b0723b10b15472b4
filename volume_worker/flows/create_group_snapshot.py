"""create_group_snapshot: a snapshot of each member volume of a group, taken together.

Consistency: the member snapshots are taken one after another in one tight loop with no
other work of this service in between. On rbd each is an RBD snapshot, crash-consistent for
its own image; across images they are as consistent as the I/O allows: only quiesced I/O
(the guest's filesystems frozen) makes the set consistent across volumes. On the file
driver each member file is copied, all under this one operation.

Tasks, in order (each has a revert):
  check_still_creating     the group snapshot is `creating` on this host; revert: it and its
                           member snapshots still `creating` go `error` (their quota stays
                           charged until they are deleted, as a failed snapshot's), workers
                           row released, user told why
  create_member_snapshots  the driver snapshots each member; revert: the ones made are
                           removed from storage
  mark_available           the group snapshot and every member `available` in one
                           transaction, workers row released; revert: nothing to undo
"""

import logging

from taskflow import task
from taskflow.patterns import linear_flow

from common import exception, fault
from common.db import api as db
from common.db import groups_api as gdb
from common.db import models
from common.db.session import reader, writer
from volume_worker.flows import common

LOG = logging.getLogger(__name__)
FLOW = "create_group_snapshot"
EVENT = "VOLUME_GROUP_SNAPSHOT_004_005"


def fail_group_snapshot(ctxt, gs_id, from_status, to_status, action, reason,
                        member_to_status=None):
    with writer() as s:
        won = db.conditional_update(models.GroupSnapshot, gs_id, {"status": to_status},
                                    {"status": from_status, "deleted": False}, session=s)
        if won:
            for snapshot in gdb.group_snapshot_members(gs_id, session=s):
                db.conditional_update(models.Snapshot, snapshot.id,
                                      {"status": member_to_status or to_status},
                                      {"status": from_status, "deleted": False}, session=s)
            db.worker_release("group_snapshot", gs_id, session=s)
    if won:
        LOG.error("%s of group snapshot %s failed: %s", action, gs_id, reason)
        try:
            db.message_create(ctxt, "GROUP_SNAPSHOT", gs_id, EVENT, "%s: %s" % (action, reason))
        except Exception:
            LOG.exception("Could not record the user message of group snapshot %s", gs_id)
    return won


class CheckStillCreating(task.Task):
    default_provides = "members"

    def execute(self, group_snapshot_id, host):
        fault.check(FLOW + ".check_still_creating")
        with reader() as s:
            gs = s.get(models.GroupSnapshot, group_snapshot_id)
            if gs is None or gs.deleted or gs.status != "creating":
                raise gdb.InvalidGroupSnapshot(reason="group snapshot %s is no longer "
                                                      "creating" % group_snapshot_id)
            group = gdb.group_get_internal(gs.group_id, session=s)
            if group is None or group.host != host:
                raise gdb.InvalidGroupSnapshot(reason="the group of group snapshot %s is "
                                                      "not on %s" % (group_snapshot_id, host))
            members = [(snap, s.get(models.Volume, snap.volume_id))
                       for snap in gdb.group_snapshot_members(group_snapshot_id, session=s)]
        return members

    def revert(self, ctxt, group_snapshot_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_still_creating.revert")
        fail_group_snapshot(ctxt, group_snapshot_id, "creating", "error",
                            "create group snapshot", common.failure_reason(flow_failures))


class CreateMemberSnapshots(task.Task):
    default_provides = "model_updates"

    def __init__(self, driver):
        super().__init__(name="create_member_snapshots")
        self.driver = driver
        self.made = []

    def execute(self, members):
        fault.check(FLOW + ".create_member_snapshots")
        self.made = []
        updates = {}
        try:
            for snapshot, volume in members:
                updates[snapshot.id] = self.driver.create_snapshot(snapshot, volume) or {}
                self.made.append((snapshot, volume))
                fault.check(FLOW + ".create_member_snapshots.member")
        except Exception:
            self._remove(self.made)
            raise
        return updates

    def _remove(self, made):
        for snapshot, volume in made:
            try:
                self.driver.delete_snapshot(snapshot, volume)
            except Exception:
                LOG.exception("Could not remove member snapshot %s", snapshot.id)

    def revert(self, members, result, **kwargs):
        if not isinstance(result, dict):
            return  # execute removed what it made
        LOG.warning("Removing %d member snapshots after a later step failed", len(members))
        self._remove(members)


class MarkAvailable(task.Task):
    def execute(self, group_snapshot_id, model_updates):
        fault.check(FLOW + ".mark_available")
        with writer() as s:
            won = db.conditional_update(models.GroupSnapshot, group_snapshot_id,
                                        {"status": "available"},
                                        {"status": "creating", "deleted": False}, session=s)
            if not won:
                raise gdb.InvalidGroupSnapshot(reason="group snapshot %s left `creating`"
                                                      % group_snapshot_id)
            for snapshot_id, update in model_updates.items():
                if not db.conditional_update(models.Snapshot, snapshot_id,
                                             dict(update, status="available", progress="100%"),
                                             {"status": "creating", "deleted": False},
                                             session=s):
                    raise exception.InvalidSnapshot(reason="member snapshot %s left `creating`"
                                                           % snapshot_id)
            db.worker_release("group_snapshot", group_snapshot_id, session=s)
        LOG.info("Group snapshot %s is available", group_snapshot_id)

    def revert(self, group_snapshot_id, **kwargs):
        LOG.debug("mark_available reverted for group snapshot %s", group_snapshot_id)


def build(driver):
    return linear_flow.Flow(FLOW).add(
        CheckStillCreating(name="check_still_creating"),
        CreateMemberSnapshots(driver),
        MarkAvailable(name="mark_available"),
    )


def run(ctxt, driver, host, group_snapshot_id):
    common.run_flow(build(driver), {"ctxt": ctxt, "group_snapshot_id": group_snapshot_id,
                                    "host": host})


def end_failed(ctxt, driver, group_snapshot_id, reason):
    if driver is not None:
        for snapshot in gdb.group_snapshot_members(group_snapshot_id):
            if snapshot.status == "creating":
                try:
                    driver.delete_snapshot(snapshot, db.volume_get_internal(snapshot.volume_id))
                except Exception:
                    LOG.exception("Could not remove member snapshot %s", snapshot.id)
    return fail_group_snapshot(ctxt, group_snapshot_id, "creating", "error",
                               "create group snapshot", reason)


def end_interrupted(ctxt, manager, group_snapshot_id):
    end_failed(ctxt, manager.driver, group_snapshot_id,
               "the creation was interrupted (volume service restart or lost request); "
               "delete the group snapshot and create it again")
