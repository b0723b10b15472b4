"""create_group_from_src: make a group's member volumes from a group snapshot's member
snapshots (or clone them from another group's volumes), then the group `available`.

The API inserted the group and its member volumes (`creating`, each in its source's pool,
capacity claimed and quota charged).

Tasks, in order (each has a revert):
  check_still_creating  the group is `creating` on this host; revert: the group and its
                        members still `creating` go `error` (the members' pool claims given
                        back), workers rows released, user told why
  create_members        the driver makes each member from its snapshot or source volume;
                        revert: the members made are removed from storage
  mark_available        members and group `available` in one transaction; revert: nothing
"""

import logging

from taskflow import task
from taskflow.patterns import linear_flow

from common import exception, fault, volume_status
from common.db import api as db
from common.db import groups_api as gdb
from common.db import models
from common.db.session import writer
from volume_worker.flows import common
from volume_worker.flows.create_group import EVENT, fail_group

LOG = logging.getLogger(__name__)
FLOW = "create_group_from_src"


class CheckStillCreating(task.Task):
    default_provides = "members"

    def execute(self, group_id, host):
        fault.check(FLOW + ".check_still_creating")
        group = gdb.group_get_internal(group_id)
        if group is None or group.deleted or group.status != "creating":
            raise gdb.InvalidGroup(reason="group %s is no longer creating" % group_id)
        if group.host != host:
            raise gdb.InvalidGroup(reason="group %s is not on %s" % (group_id, host))
        members = []
        for volume in gdb.group_volumes(group_id):
            if volume.snapshot_id:
                snapshot = db.snapshot_get_internal(volume.snapshot_id)
                source = ("snapshot", snapshot, db.volume_get_internal(snapshot.volume_id))
            else:
                source = ("volume", None, db.volume_get_internal(volume.source_volid))
            members.append((volume, source))
        return members

    def revert(self, ctxt, group_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_still_creating.revert")
        end_failed(ctxt, None, group_id, common.failure_reason(flow_failures))


class CreateMembers(task.Task):
    default_provides = "model_updates"

    def __init__(self, driver):
        super().__init__(name="create_members")
        self.driver = driver

    def execute(self, members):
        fault.check(FLOW + ".create_members")
        made, updates = [], {}
        try:
            for volume, (kind, snapshot, source_volume) in members:
                if kind == "snapshot":
                    update = self.driver.create_volume_from_snapshot(volume, snapshot,
                                                                     source_volume)
                else:
                    update = self.driver.create_cloned_volume(volume, source_volume)
                made.append(volume)
                updates[volume.id] = update or {}
                fault.check(FLOW + ".create_members.member")
        except Exception:
            self._remove(made)
            raise
        return updates

    def _remove(self, volumes):
        for volume in volumes:
            try:
                self.driver.delete_volume(volume)
            except Exception:
                LOG.exception("Could not remove member volume %s", volume.id)

    def revert(self, members, result, **kwargs):
        if not isinstance(result, dict):
            return  # execute removed what it made
        self._remove([volume for volume, _ in members])


class MarkAvailable(task.Task):
    def execute(self, group_id, model_updates):
        fault.check(FLOW + ".mark_available")
        with writer() as s:
            for volume_id, update in model_updates.items():
                values = dict(update, status="available", launched_at=models.utcnow())
                if not db.conditional_update(models.Volume, volume_id, values,
                                             {"status": "creating", "deleted": False},
                                             session=s):
                    raise exception.InvalidVolume(reason="member volume %s left `creating`"
                                                         % volume_id)
            if not db.conditional_update(models.Group, group_id, {"status": "available"},
                                         {"status": "creating", "deleted": False}, session=s):
                raise gdb.InvalidGroup(reason="group %s left `creating`" % group_id)
            db.worker_release("group", group_id, session=s)
        LOG.info("Group %s is available with %d members", group_id, len(model_updates))

    def revert(self, group_id, **kwargs):
        LOG.debug("mark_available reverted for group %s", group_id)


def build(driver):
    return linear_flow.Flow(FLOW).add(
        CheckStillCreating(name="check_still_creating"),
        CreateMembers(driver),
        MarkAvailable(name="mark_available"),
    )


def run(ctxt, driver, host, group_id):
    common.run_flow(build(driver), {"ctxt": ctxt, "group_id": group_id, "host": host})


def end_failed(ctxt, driver, group_id, reason):
    for volume in gdb.group_volumes(group_id):
        if volume.status != "creating":
            continue
        if driver is not None:
            try:
                driver.delete_volume(volume)
            except Exception:
                LOG.exception("Could not remove member volume %s", volume.id)
        volume_status.fail_operation(ctxt, volume.id, "creating", "error",
                                     volume_status.EVENT_CREATE, "create volume",
                                     "the creation of its group %s failed" % group_id,
                                     release=volume_status.release_volume_claim)
    return fail_group(ctxt, group_id, "creating", "error", EVENT, "create group from source",
                      reason)


def end_interrupted(ctxt, manager, group_id):
    end_failed(ctxt, manager.driver, group_id,
               "the creation was interrupted (volume service restart or lost request); "
               "delete the group and create it again")
