"""migrate_volume: host-assisted copy of a volume to another pool (os-migrate_volume, and
os-retype with migration_policy on-demand), run by the source volume's service.

The scheduler has claimed the volume's size on the destination pool and handed the workers
row to this service; the volume is `maintenance` (migrate) or `retyping` (retype), with
migration_status `starting`. Tasks, in order (each has a revert):
  check_migrating   still ours and `starting` -> `migrating`; revert: back to previous_status
                    (the volume is where it was, untouched), migration_status `error`, the
                    destination claim and the workers row released, the user told why
  create_target     the destination's service makes the storage (`volume-<id>` in the
                    destination pool; RPC call, or the driver itself when the pool is on this
                    back end); revert: it removes it again
  copy_data         every non-zero 4 MiB chunk of the source written to the target (both
                    opened through their drivers' migration_connection: a local file or a
                    librbd image); revert: nothing (the target goes with create_target's
                    revert)
  switch_host       one transaction: host = destination, the new type if a retype, status
                    back to previous_status, migration_status `success`, the source pool's
                    claim and the workers row released; revert: nothing to undo
  delete_source     the source's storage removed; a failure here is logged and told to the
                    user but reverts nothing (the volume already lives on the destination;
                    the old copy shows in the source's manageable list)
Limits today: a `local` (file) connection opens a path, so a file back end at either end
needs both services on one host until iSCSI export exists; an rbd connection needs the
destination's ceph.conf and keyring at the same paths on the source host.
"""

import logging
import types

from taskflow import task
from taskflow.patterns import linear_flow

from common import connector, exception, fault, volume_status
from common.db import api as db
from common.db import models, types_api
from common.db import volume_actions_api as adb
from common.db.session import writer
from volume_worker import rpcapi as volume_rpcapi
from volume_worker.flows import common

LOG = logging.getLogger(__name__)
FLOW = "migrate_volume"
MOVING = ("retyping", "maintenance")


def _ending(status):
    if status == "retyping":
        return volume_status.EVENT_RETYPE, "retype volume"
    return volume_status.EVENT_MIGRATE, "migrate volume"


def fail(ctxt, volume_id, dest_pool, reason):
    """End the migration as not done (whichever of the two statuses it is in)."""
    for status in MOVING:
        event, action = _ending(status)
        if adb.fail_move(ctxt, volume_id, status, event, action, reason,
                         migration_status="error", release_pool=dest_pool):
            return True
    return False


def end_interrupted(ctxt, volume):
    """A migration interrupted by a restart or a lost request. The destination is not
    recorded, so its claim is corrected by the destination service's recount at its next
    start, and a half-made copy shows in its manageable list."""
    event, action = _ending(volume.status)
    adb.fail_move(ctxt, volume.id, volume.status, event, action,
                  "the operation was interrupted (volume service restart or lost request); "
                  "the volume stayed where it was", migration_status="error")


def placed(volume, pool):
    """The volume as it is (to be) on another pool."""
    return types.SimpleNamespace(id=volume.id, host=pool, size=volume.size,
                                 name_id=None, volume_type=None)


# --- tasks ----------------------------------------------------------------------------------------

class CheckMigrating(task.Task):
    default_provides = "volume"

    def execute(self, volume_id, host):
        fault.check(FLOW + ".check_migrating")
        volume = db.volume_get_internal(volume_id)
        if volume is None or volume.deleted or volume.status not in MOVING or \
                volume.migration_status != "starting":
            raise exception.InvalidVolume(reason="volume %s is not waiting to migrate"
                                          % volume_id)
        if not volume.host or volume.host.split("#")[0] != host:
            raise exception.InvalidVolume(reason="volume %s is not on %s" % (volume_id, host))
        if not db.conditional_update(models.Volume, volume_id,
                                     {"migration_status": "migrating"},
                                     {"status": volume.status, "migration_status": "starting",
                                      "deleted": False}):
            raise exception.InvalidVolume(reason="volume %s changed" % volume_id)
        return volume

    def revert(self, ctxt, volume_id, dest_pool, flow_failures, **kwargs):
        fault.check(FLOW + ".check_migrating.revert")
        fail(ctxt, volume_id, dest_pool, common.failure_reason(flow_failures))


class CreateTarget(task.Task):
    default_provides = "target"

    def __init__(self, manager):
        super().__init__(name="create_target")
        self.manager = manager

    def execute(self, ctxt, volume, dest_pool):
        fault.check(FLOW + ".create_target")
        return self.manager.migration_target(ctxt, volume, dest_pool, create=True)

    def revert(self, ctxt, volume, dest_pool, result, **kwargs):
        if result is None or not isinstance(result, dict):
            return  # the destination's driver raised: it cleaned up its own partial work
        try:
            self.manager.migration_target(ctxt, volume, dest_pool, create=False)
        except Exception:
            LOG.exception("Could not remove the migration copy of volume %s on %s",
                          volume.id, dest_pool)


class CopyData(task.Task):
    def __init__(self, driver):
        super().__init__(name="copy_data")
        self.driver = driver

    def execute(self, volume, target):
        fault.check(FLOW + ".copy_data")
        connector.copy_volume(self.driver.migration_connection(volume), target["connection"],
                              volume.size * 1024 ** 3)
        LOG.info("Copied volume %s (%d GiB) to its migration target", volume.id, volume.size)

    def revert(self, volume, **kwargs):
        LOG.debug("copy_data reverted for %s; the target goes with create_target", volume.id)


class SwitchHost(task.Task):
    def execute(self, volume, dest_pool, new_type_id, target):
        fault.check(FLOW + ".switch_host")
        values = {"host": dest_pool, "migration_status": "success",
                  "provider_location": target.get("provider_location")}
        if new_type_id:  # a retype: the volume takes the new type's multiattach too
            values["volume_type_id"] = new_type_id
            values["multiattach"] = types_api.multiattach(db.volume_type_get(new_type_id))
        with writer() as s:
            won = adb.volume_end_move(volume.id, volume.status, values, session=s)
            if not won:
                raise exception.InvalidVolume(reason="volume %s left %s during the copy"
                                              % (volume.id, volume.status))
            db.pool_release(volume.host, volume.size, session=s)
        LOG.info("Volume %s now lives on %s", volume.id, dest_pool)

    def revert(self, volume, **kwargs):
        LOG.debug("switch_host reverted for %s", volume.id)


class DeleteSource(task.Task):
    def __init__(self, driver):
        super().__init__(name="delete_source")
        self.driver = driver

    def execute(self, ctxt, volume):
        try:
            fault.check(FLOW + ".delete_source")
            self.driver.delete_volume(volume)  # the row as read: the source pool
        except Exception as exc:
            LOG.warning("The source copy of migrated volume %s stays on %s: %s",
                        volume.id, volume.host, exc)
            event, action = _ending(volume.status)
            volume_status.record_user_message(
                ctxt, volume.id, event, "%s: the volume moved, but its old copy on %s could "
                "not be removed (%s)" % (action, volume.host, exc))

    def revert(self, volume, **kwargs):
        LOG.debug("delete_source reverted for %s", volume.id)


def build(manager):
    return linear_flow.Flow(FLOW).add(
        CheckMigrating(name="check_migrating"),
        CreateTarget(manager),
        CopyData(manager.driver),
        SwitchHost(name="switch_host"),
        DeleteSource(manager.driver),
    )


def run(ctxt, manager, host, volume_id, dest_pool, new_type_id):
    common.run_flow(build(manager), {"ctxt": ctxt, "volume_id": volume_id, "host": host,
                                     "dest_pool": dest_pool, "new_type_id": new_type_id})


def target_rpc():
    return volume_rpcapi.VolumeAPI()
