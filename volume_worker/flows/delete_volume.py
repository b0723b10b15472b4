"""delete_volume: remove a volume's storage and its row.

Tasks, in order (each has a revert):
  check_deleting   the row is `deleting` on this host; revert: `error_deleting`, release the
                   workers row, tell the user why (the volume can be deleted again)
  delete_snapshots (cascade) each of the volume's snapshots marked `deleting` with it is
                   removed from storage and its row deleted; revert: those still `deleting`
                   go to `error_deleting` (the volume's own revert says why)
  remove_exports   (a forced delete of a reserved or attaching volume) the export of each of
                   its attachments removed and the attachment deleted; revert: nothing to
                   put back, it only logs
  delete_storage   the driver removes the storage; revert: nothing can bring data back, so it
                   only logs; the first task's revert sets `error_deleting`
  mark_deleted     soft-delete the row, release the pool claim and the workers row in one
                   transaction; revert: nothing to undo (the transaction rolled back)
"""

import logging

from taskflow.patterns import linear_flow

from common import exception, fault, volume_status
from common.db import api as db
from common.db import attachments_api as attachments
from common.db import models
from common.db.session import write_once_more_if_lost, writer
from volume_worker.flows import common
from volume_worker.flows.delete_snapshot import finish_snapshot_delete

LOG = logging.getLogger(__name__)
FLOW = "delete_volume"


class CheckDeleting(common.Task):
    default_provides = "volume"

    def execute(self, volume_id, host):
        fault.check(FLOW + ".check_deleting")
        # the row's own columns and whether it has live snapshots and attachments, in one
        # SELECT (db.volume_row): a `deleting` volume gets no new snapshot (the API makes one
        # only of an available or in-use volume, under its row lock) nor attachment (they
        # need an attachable status), so the later tasks read theirs only when there are
        volume = db.volume_row(volume_id, with_dependents=True)
        if volume is None or volume.deleted or volume.status != "deleting":
            raise exception.InvalidVolume(reason="volume %s is not deleting" % volume_id)
        if not volume.host or volume.host.split("#")[0] != host:
            raise exception.InvalidVolume(reason="volume %s is not on %s" % (volume_id, host))
        return volume

    def revert(self, ctxt, volume_id, flow_failures, **kwargs):
        fault.check(FLOW + ".check_deleting.revert")
        volume_status.fail_operation(ctxt, volume_id, "deleting", "error_deleting",
                                     volume_status.EVENT_DELETE, "delete volume",
                                     common.failure_reason(flow_failures))
        # a cascade that failed before delete_snapshots ran: its snapshots end too (else
        # they stayed `deleting` for ever)
        end_cascaded_snapshots(volume_id)


def end_cascaded_snapshots(volume_id):
    """The snapshots a cascade delete marked `deleting` -> error_deleting, their workers rows
    released (each its own conditional UPDATE: one a flow finished meanwhile is left)."""
    for snapshot in db.snapshot_get_all_for_volume(volume_id):
        with writer() as s:
            if db.conditional_update(models.Snapshot, snapshot.id,
                                     {"status": "error_deleting"},
                                     {"status": "deleting", "deleted": False}, session=s):
                db.worker_release("snapshot", snapshot.id, session=s)


class DeleteSnapshots(common.Task):
    """A cascade delete: the API marked the volume's snapshots `deleting` with the volume."""

    def __init__(self, driver):
        super().__init__(name="delete_snapshots")
        self.driver = driver

    def execute(self, volume):
        fault.check(FLOW + ".delete_snapshots")
        if not volume.has_snapshots:
            return
        for snapshot in db.snapshot_get_all_for_volume(volume.id):
            if snapshot.status != "deleting":
                raise exception.InvalidVolume(reason="volume %s still has snapshot %s (%s)"
                                              % (volume.id, snapshot.id, snapshot.status))
            self.driver.delete_snapshot(snapshot, volume)
            with writer() as s:
                finish_snapshot_delete(snapshot.id, s)
            LOG.info("Snapshot %s deleted with its volume %s", snapshot.id, volume.id)

    def revert(self, volume, **kwargs):
        end_cascaded_snapshots(volume.id)


class RemoveExports(common.Task):
    def __init__(self, driver):
        super().__init__(name="remove_exports")
        self.driver = driver

    def execute(self, volume):
        fault.check(FLOW + ".remove_exports")
        if not volume.has_attachments:
            return
        for attachment in attachments.attachments_of_volume(volume.id):
            if attachment.connection_info:
                self.driver.terminate_connection(volume, attachments.connector_of(attachment),
                                                 attachment.id)
            attachments.attachment_fail(attachment.id)
            LOG.info("Attachment %s deleted with its volume %s", attachment.id, volume.id)

    def revert(self, volume, **kwargs):
        LOG.warning("Exports of volume %s may be partly removed", volume.id)


class DeleteStorage(common.Task):
    def __init__(self, driver):
        super().__init__(name="delete_storage")
        self.driver = driver

    def execute(self, volume):
        fault.check(FLOW + ".delete_storage")
        self.driver.delete_volume(volume)

    def revert(self, volume, **kwargs):
        LOG.warning("Storage of volume %s may be partly deleted; its status says so", volume.id)


class MarkDeleted(common.Task):
    def execute(self, volume):
        fault.check(FLOW + ".mark_deleted")

        def mark_deleted():
            with writer() as s:
                # soft-deleted, its pool claim and workers row released, in one transaction
                if not db.volume_delete_finish(volume.id, volume.host, volume.size, s):
                    raise exception.InvalidVolume(reason="volume %s left `deleting`"
                                                  % volume.id)

        def landed(s):
            row = s.get(models.Volume, volume.id)
            return row is not None and row.deleted

        # the storage is gone: a lost connection here is retried, not an error_deleting
        write_once_more_if_lost(mark_deleted, landed)
        LOG.info("Volume %s deleted", volume.id)

    def revert(self, volume, **kwargs):
        LOG.debug("mark_deleted reverted for %s", volume.id)


def build(driver):
    return linear_flow.Flow(FLOW).add(
        CheckDeleting(name="check_deleting"),
        DeleteSnapshots(driver),
        RemoveExports(driver),
        DeleteStorage(driver),
        MarkDeleted(name="mark_deleted"),
    )


def run(ctxt, driver, host, volume_id):
    flow = common.shared_flow(build, driver)
    common.run_flow(flow, {"ctxt": ctxt, "volume_id": volume_id, "host": host})
