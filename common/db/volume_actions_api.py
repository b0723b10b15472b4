"""Queries of the volume actions (reset status, force delete, flags, image metadata) and of
manage/unmanage. Same rules as common.db.api: plain values in, detached rows out, every status
change a conditional UPDATE."""

from sqlalchemy import delete, false, func, select, update

from common import exception, quota
from common.db import api as db
from common.db import models
from common.db.models import utcnow
from common.db.session import reader, writer

# --- reset status ------------------------------------------------------------------------------


def volume_reset_status(volume_id, values):
    """Set status / attach_status / migration_status of a live volume as an admin asked.

    The operation in flight (its workers row) is released in the same transaction: its flow,
    if it still runs, ends at its next conditional UPDATE (the status is no longer the one it
    expects) and its revert changes nothing, and no cleanup or reaper comes back to flip the
    status the admin set. Returns the row as it was before, or raises VolumeNotFound."""
    with writer() as s:
        before = s.scalars(select(models.Volume).where(
            models.Volume.id == volume_id, models.Volume.deleted == false())).first()
        if before is None:
            raise exception.VolumeNotFound(volume_id=volume_id)
        old = {k: getattr(before, k) for k in ("status", "attach_status", "migration_status")}
        s.execute(update(models.Volume).where(models.Volume.id == volume_id)
                  .values(updated_at=utcnow(), **values))
        db.worker_release("volume", volume_id, session=s)
        if "status" in values:
            # out of `deleting` charges the volume again, into it gives its quota back
            quota.on_status_change(s, volume_id, old["status"], values["status"])
        return old


# --- snapshots (read only here: the snapshot API owns them) -------------------------------------

def volume_snapshot_count(volume_id, session=None):
    stmt = select(func.count(models.Snapshot.id)).where(
        models.Snapshot.volume_id == volume_id, models.Snapshot.deleted == false())
    if session is not None:
        return session.scalar(stmt)
    with reader() as s:
        return s.scalar(stmt)


# --- force delete and unmanage -----------------------------------------------------------------

# Cinder: a volume may be deleted while its migration_status is one of these.
DELETABLE_MIGRATION_STATUSES = (None, "deleting", "error", "success")


def volume_begin_removal(volume, to_status, operation, expected_status=None):
    """Move a volume into `deleting` / `unmanaging` and own the operation, in one
    transaction: conditional on the status (any, when expected_status is None: force delete),
    not attached, not migrating, no snapshots, and the host read before (so a scheduler that
    placed it meanwhile is noticed). A volume never placed goes at once (no storage, no
    claim). Returns 'cast', 'gone' or None (refused)."""
    expected = {"deleted": False, "host": volume.host, "attach_status": "detached"}
    with writer() as s:
        if volume_snapshot_count(volume.id, session=s):
            return None
        # The status the quota change below starts from is the one this transaction moves
        # it from (read under the row lock, and the UPDATE conditional on it): a force
        # delete racing an extend's end must not give back an extend that settled.
        current = s.scalars(select(models.Volume.status).where(
            models.Volume.id == volume.id).with_for_update()).first()
        allowed = expected_status if isinstance(expected_status, (list, tuple)) \
            else (expected_status,)
        if current is None or (expected_status is not None and current not in allowed):
            return None
        expected["status"] = current
        pk = models.Volume.id
        stmt = (update(models.Volume)
                .where(pk == volume.id, *db._expected_clauses(models.Volume, expected),
                       (models.Volume.migration_status.is_(None))
                       | models.Volume.migration_status.in_(
                           [m for m in DELETABLE_MIGRATION_STATUSES if m]))
                .values(status=to_status, previous_status=current, updated_at=utcnow())
                .execution_options(synchronize_session=False))
        if s.execute(stmt).rowcount != 1:
            return None
        db.worker_release("volume", volume.id, session=s)
        # accepted: the volume's quota is given back now, as for a plain delete
        quota.on_status_change(s, volume.id, current, to_status)
        if not volume.host:
            db.volume_mark_deleted(volume.id, session=s)
            return "gone"
        db.worker_claim("volume", volume.id, operation, host=volume.host.split("#")[0],
                        session=s)
        return "cast"


def volume_mark_unmanaged(volume_id, session):
    """The row goes (soft delete) and its claim with it; the storage stays. Caller checks
    the status in the same transaction."""
    volume = session.scalars(select(models.Volume).where(models.Volume.id == volume_id)).first()
    db.volume_mark_deleted(volume_id, session=session)
    if volume.host:
        db.pool_release(volume.host, volume.size, session=session)
    db.worker_release("volume", volume_id, session=session)


# --- flags -------------------------------------------------------------------------------------

def volume_set_bootable(volume_id, bootable):
    """bootable on a live volume not in maintenance; False when the volume is in
    maintenance."""
    return db.conditional_update(models.Volume, volume_id, {"bootable": bool(bootable)},
                                 {"deleted": False,
                                  "status": _all_but("maintenance")})


def _all_but(*statuses):
    return [s for s in ALL_VOLUME_STATUSES if s not in statuses]


# Cinder's VolumeStatus.ALL (the values os-reset_status accepts).
ALL_VOLUME_STATUSES = (
    "creating", "available", "deleting", "error", "error_deleting", "error_managing",
    "managing", "attaching", "in-use", "detaching", "maintenance", "restoring-backup",
    "error_restoring", "reserved", "awaiting-transfer", "backing-up", "error_backing-up",
    "error_extending", "downloading", "uploading", "retyping", "extending",
)


def admin_metadata_set(volume_id, key, value, expected_status=None):
    """Set one admin metadata key; with expected_status, only while the volume has that
    status (checked under the write lock of the same transaction). False when refused."""
    with writer() as s:
        # Lock the row (and check its state) by a no-op conditional UPDATE first.
        expected = {"deleted": False}
        if expected_status is not None:
            expected["status"] = expected_status
        if not db.conditional_update(models.Volume, volume_id, {}, expected, session=s):
            return False
        row = s.scalars(select(models.VolumeAdminMetadata).where(
            models.VolumeAdminMetadata.volume_id == volume_id,
            models.VolumeAdminMetadata.key == key)).first()
        if row is None:
            s.add(models.VolumeAdminMetadata(volume_id=volume_id, key=key, value=value))
        else:
            row.value = value
        return True


def admin_metadata_get(volume_id):
    with reader() as s:
        return {m.key: m.value for m in s.scalars(select(models.VolumeAdminMetadata).where(
            models.VolumeAdminMetadata.volume_id == volume_id))}


# --- image (glance) metadata -------------------------------------------------------------------

def glance_metadata_get(volume_id):
    with reader() as s:
        rows = s.scalars(select(models.VolumeGlanceMetadata).where(
            models.VolumeGlanceMetadata.volume_id == volume_id)
            .order_by(models.VolumeGlanceMetadata.id))
        return {r.key: r.value for r in rows}


def glance_metadata_get_many(volume_ids):
    """{volume_id: {key: value}} for the volumes that have any (one query for a list)."""
    found = {}
    ids = list(volume_ids)
    with reader() as s:
        for start in range(0, len(ids), 500):
            rows = s.scalars(select(models.VolumeGlanceMetadata).where(
                models.VolumeGlanceMetadata.volume_id.in_(ids[start:start + 500]))
                .order_by(models.VolumeGlanceMetadata.id))
            for r in rows:
                found.setdefault(r.volume_id, {})[r.key] = r.value
    return found


def glance_metadata_update(volume_id, metadata, refused_statuses=("maintenance",)):
    """Merge metadata into the volume's image metadata; returns all of it, or None when the
    volume's status refuses it (checked under the write lock)."""
    with writer() as s:
        if not db.conditional_update(models.Volume, volume_id, {},
                                     {"deleted": False,
                                      "status": _all_but(*refused_statuses)}, session=s):
            return None
        existing = {r.key: r for r in s.scalars(select(models.VolumeGlanceMetadata).where(
            models.VolumeGlanceMetadata.volume_id == volume_id))}
        for key, value in metadata.items():
            if key in existing:
                existing[key].value = value
            else:
                s.add(models.VolumeGlanceMetadata(volume_id=volume_id, key=key, value=value))
        s.flush()
        rows = s.scalars(select(models.VolumeGlanceMetadata).where(
            models.VolumeGlanceMetadata.volume_id == volume_id)
            .order_by(models.VolumeGlanceMetadata.id))
        return {r.key: r.value for r in rows}


def glance_metadata_delete(volume_id, key, refused_statuses=("maintenance",)):
    """Remove one key; 'refused' when the status forbids, 'missing' when there is no such
    key, 'done' otherwise."""
    with writer() as s:
        if not db.conditional_update(models.Volume, volume_id, {},
                                     {"deleted": False,
                                      "status": _all_but(*refused_statuses)}, session=s):
            return "refused"
        done = s.execute(delete(models.VolumeGlanceMetadata).where(
            models.VolumeGlanceMetadata.volume_id == volume_id,
            models.VolumeGlanceMetadata.key == key)).rowcount
        return "done" if done else "missing"


# --- manage existing ---------------------------------------------------------------------------

def volume_create_managing(values, metadata, backend_host):
    """The row of a volume being brought under management: `managing`, no pool yet (the
    manage flow sets it with the capacity claim), and its workers row owned by the back end's
    service. size stays 0 until the back end says how large the storage is."""
    values = dict(values, status="managing", size=0, host=None, attach_status="detached")
    values.setdefault("id", db.new_id())
    with writer() as s:
        # the volume counts from now (413, nothing written, when over); its gigabytes once
        # the back end says how many (volume_claim_managed)
        quota.charge_new_volume(s, values)
        volume = models.Volume(**values)
        volume.volume_metadata = [models.VolumeMetadata(key=k, value=v)
                                  for k, v in (metadata or {}).items()]
        s.add(volume)
        s.add(models.Worker(resource_type="volume", resource_id=values["id"],
                            operation="manage", host=backend_host))
        s.flush()
        s.refresh(volume)
        return volume


def volume_claim_managed(volume_id, pool, size):
    """Set the managed volume's pool and size, claim that much on the pool and charge it to
    the project's gigabytes, in one transaction. False when the pool has no room or the
    volume is no longer `managing`; over quota: OverQuota, and nothing changes."""
    try:
        with writer() as s:
            # charged before the row grows: a gigabytes row this project never had is made
            # from a recount that must not see the new size yet (else it is counted twice)
            quota.charge_size(s, volume_id, size)
            if not db.conditional_update(models.Volume, volume_id,
                                         {"host": pool, "size": size},
                                         {"status": "managing", "deleted": False,
                                          "host": None}, session=s):
                raise _Refused()  # rolls the charge back too
            if not db.pool_claim(pool, size, session=s):
                raise _Refused()
        return True
    except _Refused:
        return False


class _Refused(Exception):
    pass


def volume_unclaim_managed(volume_id, pool, size):
    """Undo volume_claim_managed while the volume is still `managing`."""
    with writer() as s:
        won = db.conditional_update(models.Volume, volume_id, {"host": None, "size": 0},
                                    {"status": "managing", "deleted": False, "host": pool},
                                    session=s)
        if won:
            db.pool_release(pool, size, session=s)
            quota.release_size(s, volume_id, size)
        return won


def volumes_on_backend(backend_host):
    """ids of the live volumes placed on host@backend (for the manageable list)."""
    with reader() as s:
        rows = s.execute(select(models.Volume.id).where(
            models.Volume.host.like(backend_host + "#%"),
            models.Volume.deleted == false()))
        return [r[0] for r in rows]


def volume_ids_alive(volume_ids):
    ids = list(volume_ids)
    alive = set()
    with reader() as s:
        for start in range(0, len(ids), 500):
            rows = s.execute(select(models.Volume.id).where(
                models.Volume.id.in_(ids[start:start + 500]),
                models.Volume.deleted == false()))
            alive.update(r[0] for r in rows)
    return alive


def glance_metadata_exists():
    """Whether any volume has image metadata at all."""
    with reader() as s:
        return s.scalars(select(models.VolumeGlanceMetadata.id).where(
            models.VolumeGlanceMetadata.volume_id.is_not(None)).limit(1)).first() is not None


# --- retype and migrate ------------------------------------------------------------------------

MIGRATION_BUSY = ("migrating", "starting", "completing")


def volume_begin_move(volume, to_status, operation, from_statuses):
    """Move the volume into `retyping` / `maintenance` (previous_status kept, migration
    status `starting`) and give the operation to the schedulers, in one transaction. False
    when its status, its host or a migration in progress refuse it."""
    with writer() as s:
        stmt = (update(models.Volume)
                .where(models.Volume.id == volume.id, models.Volume.deleted == false(),
                       models.Volume.status.in_(list(from_statuses)),
                       models.Volume.host == volume.host,
                       (models.Volume.migration_status.is_(None))
                       | models.Volume.migration_status.not_in(list(MIGRATION_BUSY)))
                # previous_status first: MariaDB assigns SET items left to right, so the
                # status read there must still be the old one
                .ordered_values((models.Volume.previous_status, models.Volume.status),
                                (models.Volume.status, to_status),
                                (models.Volume.migration_status, "starting"),
                                (models.Volume.updated_at, utcnow()))
                .execution_options(synchronize_session=False))
        if s.execute(stmt).rowcount != 1:
            return False
        db.worker_release("volume", volume.id, session=s)
        db.worker_claim("volume", volume.id, operation, host=None, session=s)
        return True


def volume_end_move(volume_id, from_status, values, session):
    """Leave `retyping` / `maintenance` for previous_status with `values`, conditional on the
    status, and release the workers row; returns whether this call did."""
    volume = session.scalars(select(models.Volume).where(models.Volume.id == volume_id)).first()
    if volume is None or volume.deleted or volume.status != from_status:
        return False
    done = session.execute(
        update(models.Volume).where(models.Volume.id == volume_id,
                                    models.Volume.status == from_status,
                                    models.Volume.deleted == false())
        .values(status=volume.previous_status or "available", updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)).rowcount == 1
    if done:
        db.worker_release("volume", volume_id, session=session)
        if "volume_type_id" in values and values["volume_type_id"] != volume.volume_type_id:
            # a retype: the per-type usage follows the type, in this transaction
            quota.on_type_change(session, volume_id, volume.volume_type_id,
                                 values["volume_type_id"])
    return done


def fail_move(ctxt, volume_id, from_status, event_id, action, reason, migration_status=None,
              release_pool=None):
    """End a retype or migration that did not happen: back to previous_status (the volume is
    where it was), migration_status as given (None: refused before moving; "error": a move
    failed), the claim taken on the destination released, a user message. A no-op when the
    volume already left from_status."""
    from common import volume_status

    with writer() as s:
        volume = s.scalars(select(models.Volume).where(models.Volume.id == volume_id)).first()
        won = volume_end_move(volume_id, from_status,
                              {"migration_status": migration_status}, session=s)
        if won and release_pool:
            db.pool_release(release_pool, volume.size, session=s)
    if won:
        volume_status.record_user_message(ctxt, volume_id, event_id, "%s: %s"
                                          % (action, reason))
    return won
