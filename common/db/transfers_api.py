"""Volume transfer queries (os-volume-transfer, volume-transfers): every state change is a
conditional UPDATE in one transaction with what goes with it.

- create: volume `available` -> `awaiting-transfer` and the transfer row, together;
- delete: the transfer row soft-deleted (only if still live) and the volume back to
  `available`;
- accept: the transfer row claimed first (soft-deleted, only if still live: of two accepts,
  or an accept and a delete, exactly one gets it), then the volume, and its snapshots unless
  no_snapshots, change project and user, and their quota usage moves from the giving project
  to the receiving one (common.quota.move_usage). Anything refused (over quota, the volume no
  longer `awaiting-transfer`) rolls the whole transaction back, the claim with it.

Lock order, the same in every transaction here: transfer row, volume row, snapshot rows,
quota usage rows (as the snapshot and volume requests lock volume before usage)."""

from sqlalchemy import false, select, update

from common import exception, quota
from common.db import api as db
from common.db import models, quota_api
from common.db.models import utcnow
from common.db.session import reader, writer


class TransferNotFound(exception.NotFound):
    message = "Transfer %(transfer_id)s could not be found."


class InvalidAuthKey(exception.BadRequest):
    message = "Invalid auth key: %(reason)s"


# A transfer is live while its row is not deleted and its volume exists (a volume force
# deleted while awaiting transfer takes its offer with it).
def _live(stmt):
    v = models.Volume
    return stmt.join(v, v.id == models.Transfer.volume_id).where(
        models.Transfer.deleted == false(), v.deleted == false())


def _scoped(ctx, stmt, any_project=False):
    stmt = _live(stmt)
    if not (ctx.is_admin or any_project):
        stmt = stmt.where(models.Transfer.source_project_id == ctx.project_id)
    return stmt


def transfer_get(ctx, transfer_id, any_project=False):
    """A live transfer the caller may see: its own project's (any for admins); with
    any_project, whichever project offers it (an accept names the transfer by id)."""
    with reader() as s:
        transfer = s.scalars(_scoped(ctx, select(models.Transfer).where(
            models.Transfer.id == transfer_id), any_project=any_project)).first()
        if transfer is None:
            raise TransferNotFound(transfer_id=transfer_id)
        return transfer


def transfer_get_all(ctx, all_projects=False, filters=None, marker=None, limit=None,
                     offset=None, sort_keys=("created_at",), sort_dirs=("desc",)):
    """Live transfers of the caller's project (of every project: admins with all_projects),
    filters {column: value}, marker pagination over sort_keys, then offset and limit."""
    t = models.Transfer
    with reader() as s:
        scope = (lambda stmt: _live(stmt)) if (all_projects and ctx.is_admin) else (
            lambda stmt: _scoped(ctx, stmt))
        stmt = scope(select(t))
        for key, value in (filters or {}).items():
            stmt = stmt.where(getattr(t, key) == value)
        marker_row = None
        if marker is not None:
            marker_row = s.scalars(scope(select(t).where(t.id == marker))).first()
            if marker_row is None:
                raise exception.MarkerNotFound(marker=marker)
        stmt = db.paginate(stmt, t, sort_keys, sort_dirs, marker_row, None)
        if offset:
            stmt = stmt.offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list(s.scalars(stmt))


def transfer_create(volume_id, values, no_snapshots):
    """Offer the volume: `available` -> `awaiting-transfer` and the transfer row in one
    transaction. The volume row is locked first, so a snapshot being created of it (which
    locks it too) is either seen here (and refused unless no_snapshots) or sees the volume
    no longer `available`. 400 when the volume or one of its snapshots is not available."""
    with writer() as s:
        volume = db.volume_get_locked(s, volume_id)
        if volume is None:
            raise exception.VolumeNotFound(volume_id=volume_id)
        if volume.status != "available":
            raise exception.InvalidVolume(
                reason="Volume %s status must be available, currently %s."
                       % (volume_id, volume.status))
        if not no_snapshots:
            for snap_id, status in s.execute(
                    select(models.Snapshot.id, models.Snapshot.status).where(
                        models.Snapshot.volume_id == volume_id,
                        models.Snapshot.project_id == volume.project_id,
                        models.Snapshot.deleted == false()).order_by(models.Snapshot.id)):
                if status != "available":
                    raise exception.InvalidSnapshot(
                        reason="snapshot %s of the volume is %s; every snapshot must be "
                               "available to transfer them with the volume (or transfer "
                               "it with no_snapshots)" % (snap_id, status))
        won = db.conditional_update(models.Volume, volume_id, {"status": "awaiting-transfer"},
                                    {"status": "available", "deleted": False}, session=s)
        if not won:  # the row is locked: only if the lock is not what it should be
            raise exception.InvalidVolume(reason="Volume %s status must be available."
                                                 % volume_id)
        transfer = models.Transfer(id=db.new_id(), volume_id=volume_id,
                                   no_snapshots=bool(no_snapshots),
                                   source_project_id=volume.project_id, accepted=False,
                                   deleted=False, **values)
        s.add(transfer)
        s.flush()
        s.refresh(transfer)
        return transfer


def _claim(session, transfer_id, values):
    """Soft-delete the transfer row only if it is still live: the one conditional UPDATE that
    decides which of two concurrent accepts (or an accept and a delete) wins."""
    now = utcnow()
    return session.execute(
        update(models.Transfer)
        .where(models.Transfer.id == transfer_id, models.Transfer.deleted == false())
        .values(deleted=True, deleted_at=now, updated_at=now, **values)
        .execution_options(synchronize_session=False)).rowcount == 1


def transfer_delete(ctx, transfer_id):
    """Withdraw the offer: the row soft-deleted and the volume back to `available` (a volume
    that left `awaiting-transfer` another way, os-reset_status, is left as it is). 404 when
    the transfer is not live (deleted or accepted meanwhile)."""
    transfer = transfer_get(ctx, transfer_id)
    with writer() as s:
        if not _claim(s, transfer.id, {}):
            raise TransferNotFound(transfer_id=transfer_id)
        db.conditional_update(models.Volume, transfer.volume_id, {"status": "available"},
                              {"status": "awaiting-transfer", "deleted": False}, session=s)


def transfer_accept(transfer, user_id, project_id):
    """Move the offered volume (and its snapshots unless no_snapshots) to project_id and
    user_id with their quota usage; see the module docstring. The caller checked the key.
    Raises 404 when another request took the transfer first, 413 (common.quota) when the
    receiver is over a limit, 400 when the volume is no longer `awaiting-transfer`; in every
    refusal nothing changed. Returns the ids of the snapshots that moved."""
    with writer() as s:
        if not _claim(s, transfer.id, {"accepted": True,
                                       "destination_project_id": project_id}):
            raise TransferNotFound(transfer_id=transfer.id)
        volume = db.volume_get_locked(s, transfer.volume_id)
        if volume is None or volume.status != "awaiting-transfer" \
                or volume.project_id != transfer.source_project_id:
            raise exception.InvalidVolume(
                reason="Transfer %s: volume %s is %s, expected awaiting-transfer"
                       % (transfer.id, transfer.volume_id,
                          volume.status if volume is not None else "deleted"))
        snapshots = []
        if not transfer.no_snapshots:
            snapshots = list(s.execute(
                select(models.Snapshot.id, models.Snapshot.volume_size,
                       models.Snapshot.volume_type_id)
                .where(models.Snapshot.volume_id == volume.id,
                       models.Snapshot.project_id == volume.project_id,
                       models.Snapshot.deleted == false())
                .order_by(models.Snapshot.id).with_for_update()))
        deltas = quota.transfer_deltas(
            volume.size, quota_api.volume_type_name(s, volume.volume_type_id),
            [(size, quota_api.volume_type_name(s, type_id)) for _id, size, type_id in snapshots])
        # before the rows change owner (see move_usage); 413 here rolls back the claim too
        quota.move_usage(s, volume.project_id, project_id, deltas)
        won = db.conditional_update(
            models.Volume, volume.id,
            {"status": "available", "project_id": project_id, "user_id": user_id},
            {"status": "awaiting-transfer", "deleted": False,
             "project_id": transfer.source_project_id}, session=s)
        if not won:  # the row is locked: cannot happen, but never move half a transfer
            raise exception.InvalidVolume(reason="volume %s changed during the transfer"
                                                 % volume.id)
        moved = [snap_id for snap_id, _size, _type in snapshots]
        if moved:
            s.execute(update(models.Snapshot)
                      .where(models.Snapshot.id.in_(moved), models.Snapshot.deleted == false())
                      .values(project_id=project_id, user_id=user_id, updated_at=utcnow())
                      .execution_options(synchronize_session=False))
        return moved
