"""Quotas: per-project limits and usage that never drifts from the resources.

Limits: a project's own limit (os-quota-sets), else its quota class's (class `default`,
os-quota-class-sets), else the `quota_*` option. -1 means unlimited.

Usage: one row per (project, resource) in quota_usages, changed only by a conditional
``UPDATE ... SET in_use = in_use + d WHERE in_use + d <= limit`` in the same transaction as
the change to the resource itself, so N concurrent creates against room for M create exactly
M, and a failure that rolls the resource back rolls its charge back too. What counts:

- a volume counts (volumes, gigabytes, volumes_<type>, gigabytes_<type>) from its insert
  until its delete (or force delete, or unmanage) is accepted (status `deleting` or
  `unmanaging`); a delete that fails (`error_deleting`) charges it again. A create that
  fails leaves a volume in `error`, which counts until it is deleted, as in Cinder. Paths
  that change a volume's status or size otherwise (os-reset_status, force delete, unmanage,
  manage existing) call ``on_status_change`` / ``charge_size`` / ``release_size``; a retype
  moves its per-type usage to the new type (``on_type_change``) where the type changes.
- an extend charges the extra gigabytes when it is accepted, and keeps a reservation row while
  the volume is `extending`; any failure ending (common/volume_status.py) gives it back.
- a snapshot counts (snapshots, gigabytes, snapshots_<type>, gigabytes_<type>) while its row
  is not deleted: the snapshot code calls ``reserve_snapshot`` in the transaction that
  inserts it and ``release_snapshot`` in the one that marks it deleted.
- a volume transfer that is accepted moves the volume's (and its moving snapshots') usage
  from the giving project to the receiving one (``move_usage``, in the transaction that
  changes their owner; over the receiver's limits: 413 and nothing moves).

``lamina-manage quota check [--fix]`` recounts from the tables by exactly these rules.
"""

import logging

from oslo_config import cfg

from common import exception
from common.db import quota_api
from common.db.session import reader, writer

LOG = logging.getLogger(__name__)

quota_opts = [
    cfg.IntOpt("quota_volumes", default=10, min=-1,
               help="Volumes a project may have (-1: unlimited)."),
    cfg.IntOpt("quota_snapshots", default=10, min=-1,
               help="Snapshots a project may have (-1: unlimited)."),
    cfg.IntOpt("quota_gigabytes", default=1000, min=-1,
               help="GiB of volumes and snapshots a project may have (-1: unlimited)."),
    cfg.IntOpt("quota_backups", default=10, min=-1,
               help="Backups a project may have (-1: unlimited)."),
    cfg.IntOpt("quota_backup_gigabytes", default=1000, min=-1,
               help="GiB of backups a project may have (-1: unlimited)."),
    cfg.IntOpt("quota_groups", default=10, min=-1,
               help="Groups a project may have (-1: unlimited)."),
    cfg.IntOpt("per_volume_size_limit", default=-1, min=-1,
               help="Largest volume, in GiB, a project may create (-1: unlimited)."),
    cfg.BoolOpt("use_default_quota_class", default=True,
                help="Whether the limits of quota class `default` (os-quota-class-sets) "
                     "override the quota_* options."),
]
CONF = cfg.CONF
CONF.register_opts(quota_opts)

DEFAULT_CLASS = "default"
# resource -> its option
_OPTION = {
    "volumes": "quota_volumes",
    "snapshots": "quota_snapshots",
    "gigabytes": "quota_gigabytes",
    "backups": "quota_backups",
    "backup_gigabytes": "quota_backup_gigabytes",
    "groups": "quota_groups",
    "per_volume_gigabytes": "per_volume_size_limit",
}
PER_TYPE = ("volumes", "snapshots", "gigabytes")
# Limits that are not usage (nothing is ever counted for them).
NOT_COUNTED = ("per_volume_gigabytes",)


# --- errors (Cinder's QuotaError family: 413 overLimit) --------------------------------------

class VolumeSizeExceedsAvailableQuota(exception.OverLimit):
    message = ("Requested volume or snapshot exceeds allowed %(name)s quota. Requested "
               "%(requested)sG, quota is %(quota)sG and %(consumed)sG has been consumed.")


class VolumeLimitExceeded(exception.OverLimit):
    message = "Maximum number of volumes allowed (%(allowed)d) exceeded for quota '%(name)s'."


class SnapshotLimitExceeded(exception.OverLimit):
    message = "Maximum number of snapshots allowed (%(allowed)d) exceeded"


class BackupLimitExceeded(exception.OverLimit):
    message = "Maximum number of backups allowed (%(allowed)d) exceeded"


class VolumeBackupSizeExceedsAvailableQuota(exception.OverLimit):
    message = ("Requested backup exceeds allowed Backup gigabytes quota. Requested "
               "%(requested)sG, quota is %(quota)sG and %(consumed)sG has been consumed.")


class VolumeSizeExceedsLimit(exception.OverLimit):
    message = "Requested volume size %(size)dG is larger than maximum allowed limit %(limit)dG."


class InvalidQuotaValue(exception.BadRequest):
    message = "Invalid quota value: %(reason)s"


def _over(resource, requested, limit, consumed):
    if resource == "backup_gigabytes":
        return VolumeBackupSizeExceedsAvailableQuota(requested=requested, quota=limit,
                                                     consumed=consumed)
    if resource == "backups":
        return BackupLimitExceeded(allowed=limit)
    if resource.startswith("gigabytes"):
        return VolumeSizeExceedsAvailableQuota(name=resource, requested=requested,
                                               quota=limit, consumed=consumed)
    if resource.startswith("snapshots"):
        return SnapshotLimitExceeded(allowed=limit)
    return VolumeLimitExceeded(allowed=limit, name=resource)


# --- resources and limits --------------------------------------------------------------------

def resource_names(type_names=None):
    """Every quota resource: the fixed ones, then the per-type ones of the given types
    (all volume types when None)."""
    if type_names is None:
        from common.db import api as db

        type_names = [t.name for t in db.volume_type_get_all()]
    names = list(_OPTION)
    for type_name in type_names:
        names.extend("%s_%s" % (r, type_name) for r in PER_TYPE)
    return names


def _option_default(resource):
    option = _OPTION.get(resource)
    return getattr(CONF, option) if option else -1


def class_limits(class_name=DEFAULT_CLASS, resources=None, session=None):
    """The limits of a quota class: its rows over the options (class `default` only when
    use_default_quota_class)."""
    resources = resources or resource_names()
    rows = {}
    if class_name != DEFAULT_CLASS or CONF.use_default_quota_class:
        rows = quota_api.quota_class_get_all(class_name, session=session)
    if class_name != DEFAULT_CLASS:
        base = class_limits(DEFAULT_CLASS, resources, session=session)
    else:
        base = {r: _option_default(r) for r in resources}
    return {r: rows.get(r, base[r]) for r in resources}


def project_limits(project_id, resources=None, session=None):
    """A project's limits: its own over its class's (Cinder: class `default`)."""
    resources = resources or resource_names()
    defaults = class_limits(DEFAULT_CLASS, resources, session=session)
    own = quota_api.quota_get_all(project_id, session=session)
    return {r: own.get(r, defaults[r]) for r in resources}


def project_usage(project_id, resources=None):
    """{resource: in_use}: the usage rows, and the recounted figure where no row exists yet."""
    resources = resources or resource_names()
    with reader() as s:
        rows = quota_api.usage_get_all(project_id, session=s)
        counted = None
        usage = {}
        for r in resources:
            if r in NOT_COUNTED:
                usage[r] = 0
            elif r in rows:
                usage[r] = rows[r]
            else:
                if counted is None:
                    counted = quota_api.recount(s, project_id).get(project_id, {})
                usage[r] = counted.get(r, 0)
        return usage


def validate_limits(values, type_names=None):
    """{resource: int} from an update body; 400 on unknown keys or bad values."""
    known = set(resource_names(type_names))
    bad = [k for k in values if k not in known]
    if bad:
        raise exception.InvalidInput(reason="Bad key(s) in quota set: %s" % ",".join(sorted(bad)))
    result = {}
    for key, value in values.items():
        try:
            number = int(str(value))
        except ValueError:
            raise InvalidQuotaValue(reason="%s must be an integer, got %r" % (key, value))
        if isinstance(value, bool) or number < -1:
            raise InvalidQuotaValue(reason="%s must be an integer >= -1, got %r"
                                    % (key, value))
        if number > 2 ** 31 - 1:
            raise InvalidQuotaValue(reason="%s must be <= %d" % (key, 2 ** 31 - 1))
        result[key] = number
    return result


# --- charging and giving back ----------------------------------------------------------------

def reserve(project_id, deltas, session=None, force=False, limits=None):
    """Charge `deltas` ({resource: amount}) to the project, all or nothing.

    Each resource is one conditional UPDATE (in_use + amount <= limit); the first that does
    not fit raises the matching 413 OverLimit, and the transaction, with whatever else the
    caller wrote in it, rolls back. With `session`, the charge joins the caller's
    transaction (the one that inserts or changes the resource); without, it is its own.
    force=True charges without looking at the limits (giving back a release that turned out
    wrong, e.g. a failed delete), after the change it follows was written.

    A project's first charge creates its usage rows from a recount of the tables; release
    and forced charges are called after their change is written, plain charges before.
    limits: the project's limits when the caller has just read them (project_limits)."""
    resources = sorted(r for r, d in deltas.items() if d and r not in NOT_COUNTED)
    if not resources:
        return

    def _charge(s):
        known = {} if force else (limits or project_limits(project_id, resources, session=s))
        made_here = quota_api.usage_ensure(s, project_id, resources)
        # one conditional UPDATE per row, in resource order: every charge and release locks
        # a project's rows in the same order, so concurrent ones queue and never deadlock
        for r in resources:
            if force and r in made_here:
                continue  # (SQLite) a forced charge follows the change the recount just saw
            limit = None if force else known.get(r, -1)
            if not quota_api.usage_add(s, project_id, r, deltas[r], limit):
                raise _over(r, deltas[r], limit, quota_api.usage_get(s, project_id, r))
    if session is not None:
        _charge(session)
    else:
        with writer() as s:
            _charge(s)


def release(project_id, deltas, session=None):
    """Give back `deltas` ({resource: amount}) charged by reserve; never refused."""
    resources = sorted(r for r, d in deltas.items() if d and r not in NOT_COUNTED)
    if not resources:
        return

    def _give_back(s):
        made_here = quota_api.usage_ensure(s, project_id, resources)
        for r in resources:
            if r not in made_here:  # (SQLite) the recount already saw the change
                quota_api.usage_add(s, project_id, r, -deltas[r])
    if session is not None:
        _give_back(session)
    else:
        with writer() as s:
            _give_back(s)


def volume_deltas(size, type_name, count=1):
    deltas = {"volumes": count, "gigabytes": size}
    if type_name:
        deltas["volumes_" + type_name] = count
        deltas["gigabytes_" + type_name] = size
    return deltas


def snapshot_deltas(volume_size, type_name, count=1):
    deltas = {"snapshots": count, "gigabytes": volume_size}
    if type_name:
        deltas["snapshots_" + type_name] = count
        deltas["gigabytes_" + type_name] = volume_size
    return deltas


def check_volume_size(project_id, size, session=None):
    """413 when size is above the project's per_volume_gigabytes."""
    limit = project_limits(project_id, ["per_volume_gigabytes"],
                           session=session)["per_volume_gigabytes"]
    if 0 <= limit < size:
        raise VolumeSizeExceedsLimit(size=size, limit=limit)


# --- volumes (api/volume_requests.py, common/volume_status.py) --------------------------------

def charge_new_volume(session, values):
    """Charge a new volume (values of its row: project_id, size, volume_type_id) in the
    transaction that inserts it; over quota: 413, and the transaction must roll back."""
    project_id, size = values["project_id"], values["size"]
    type_name = quota_api.volume_type_name(session, values.get("volume_type_id"))
    deltas = volume_deltas(size, type_name)
    limits = project_limits(project_id, sorted(deltas) + ["per_volume_gigabytes"],
                            session=session)
    if 0 <= limits["per_volume_gigabytes"] < size:
        raise VolumeSizeExceedsLimit(size=size, limit=limits["per_volume_gigabytes"])
    reserve(project_id, deltas, session=session, limits=limits)


def create_volume(values, metadata):
    """Insert a volume row (and its workers row) charging its quota in the same
    transaction; over quota: 413 and nothing is written."""
    return quota_api.volume_create_reserved(values, metadata,
                                            lambda s: charge_new_volume(s, values))


def release_volume(session, volume):
    """A volume's delete was accepted (or it was deleted outright): give its quota back, in
    the transaction that moved it (the row is read again there, so a concurrent extend that
    settled meanwhile is seen)."""
    row = quota_api.volume_quota_row(session, volume.id)
    if row is None:
        return
    project_id, size, type_name = row
    release(project_id, volume_deltas(size, type_name), session=session)
    quota_api.reservation_pop(session, volume.id)


def reserve_extend(session, volume, new_size):
    """Charge the extra gigabytes of an extend, in the transaction that moved the volume to
    `extending`, and remember them until the extend ends."""
    check_volume_size(volume.project_id, new_size, session=session)
    delta = new_size - volume.size
    type_name = quota_api.volume_type_name(session, volume.volume_type_id)
    deltas = {"gigabytes": delta}
    if type_name:
        deltas["gigabytes_" + type_name] = delta
    quota_api.reservation_pop(session, volume.id)  # a settled earlier extend's row
    reserve(volume.project_id, deltas, session=session)
    quota_api.reservation_add(session, volume.project_id, volume.id, deltas)


# A volume in one of these statuses no longer counts: its quota was released when it entered
# it (delete accepted, force delete, unmanage); leaving it other than by being deleted charges
# the volume again.
RELEASED_STATUSES = ("deleting", "unmanaging")


def _recharge(session, volume_id):
    row = quota_api.volume_quota_row(session, volume_id)
    if row is not None:
        project_id, size, type_name = row
        reserve(project_id, volume_deltas(size, type_name), session=session, force=True)


def on_status_change(session, volume_id, old_status, new_status):
    """For a status change outside the usual paths (os-reset_status, force delete, unmanage):
    call it in the transaction that changes the status, with the status before and after.
    Entering `deleting`/`unmanaging` gives the volume's quota back; leaving it for a live
    status charges it again (never refused). Leaving `extending` gives back the extend's
    reservation (the row keeps its old size)."""
    if old_status == "extending" and new_status != "extending":
        # the extend is abandoned (reset, force delete) with the row at its old size: the
        # extra gigabytes charged when it was accepted go back
        deltas, project_id = quota_api.reservation_pop(session, volume_id)
        if deltas:
            release(project_id, deltas, session=session)
    elif new_status == "extending" and old_status != "extending":
        # reset into `extending`: nothing is reserved for it (a settled extend's row would
        # be counted again)
        quota_api.reservation_pop(session, volume_id)
    was, now = old_status in RELEASED_STATUSES, new_status in RELEASED_STATUSES
    if now and not was:
        row = quota_api.volume_quota_row(session, volume_id)
        if row is not None:
            project_id, size, type_name = row
            release(project_id, volume_deltas(size, type_name), session=session)
            quota_api.reservation_pop(session, volume_id)
    elif was and not now:
        _recharge(session, volume_id)


def charge_size(session, volume_id, size, force=False):
    """Charge `size` more gigabytes (and gigabytes_<type>) for a volume whose row grows
    outside create and extend (manage existing: the row is inserted with size 0, then gets
    the storage's size): in the transaction that sets the size, before the UPDATE (a usage
    row made here starts from a recount, which must not see the new size yet; force=True:
    after it, as reserve says); 413 when over quota."""
    row = quota_api.volume_quota_row(session, volume_id)
    if row is None:
        return
    project_id, _size, type_name = row
    deltas = {"gigabytes": size}
    if type_name:
        deltas["gigabytes_" + type_name] = size
    reserve(project_id, deltas, session=session, force=force)


def release_size(session, volume_id, size):
    """Give back what charge_size charged (in the transaction that shrinks the row again)."""
    row = quota_api.volume_quota_row(session, volume_id)
    if row is None:
        return
    project_id, _size, type_name = row
    deltas = {"gigabytes": size}
    if type_name:
        deltas["gigabytes_" + type_name] = size
    release(project_id, deltas, session=session)


def on_type_change(session, volume_id, old_type_id, new_type_id):
    """A retype changed the volume's type (in place, or at a migration's switch): move its
    volumes_<type> and gigabytes_<type> from the old type to the new one. Call it in the
    transaction that changes volume_type_id, after the UPDATE (as release and forced charges
    are: a usage row made here from a recount already sees the new type). The new type's
    limits are not looked at: the retype was accepted before it got here."""
    row = quota_api.volume_quota_row(session, volume_id)
    if row is None:
        return
    project_id, size, _type_name = row
    old_name = quota_api.volume_type_name(session, old_type_id)
    new_name = quota_api.volume_type_name(session, new_type_id)
    if old_name == new_name:
        return
    if old_name:
        release(project_id, {"volumes_" + old_name: 1, "gigabytes_" + old_name: size},
                session=session)
    if new_name:
        reserve(project_id, {"volumes_" + new_name: 1, "gigabytes_" + new_name: size},
                session=session, force=True)


def check_type_room(project_id, size, type_name):
    """Before a retype is accepted: 413 when the new type's volumes_<type> or
    gigabytes_<type> limit has no room for the volume (as Cinder refuses it at the API). The
    charge itself moves when the type changes (on_type_change)."""
    if not type_name:
        return
    deltas = {"volumes_" + type_name: 1, "gigabytes_" + type_name: size}
    limits = project_limits(project_id, list(deltas))
    usage = project_usage(project_id, list(deltas))
    for resource, amount in sorted(deltas.items()):
        if 0 <= limits[resource] < usage[resource] + amount:
            raise _over(resource, amount, limits[resource], usage[resource])


def on_operation_failed(session, volume, from_status, to_status):
    """Called by common.volume_status.fail_operation in the transaction of a won failure
    ending: a failed extend gives its extra gigabytes back; a failed delete charges the
    volume again (its quota was released when the delete was accepted). A failed create
    leaves a volume in `error` that keeps its charge until deleted."""
    if volume is None:
        return
    if from_status == "extending":
        deltas, project_id = quota_api.reservation_pop(session, volume.id)
        if deltas:
            release(project_id, deltas, session=session)
    elif from_status in RELEASED_STATUSES and to_status not in RELEASED_STATUSES:
        _recharge(session, volume.id)


# --- snapshots (for api/snapshot_requests.py and the snapshot flows) --------------------------

def reserve_snapshot(project_id, volume_size, type_name, session=None):
    """Charge one snapshot of a volume_size GiB volume of type type_name (name or None) to
    the project: snapshots, gigabytes, snapshots_<type>, gigabytes_<type>. Pass the session
    of the transaction that inserts the snapshot row; raises a 413 OverLimit
    (SnapshotLimitExceeded or VolumeSizeExceedsAvailableQuota) and the transaction must then
    roll back (let the exception out of the writer() block)."""
    reserve(project_id, snapshot_deltas(volume_size, type_name), session=session)


def release_snapshot(project_id, volume_size, type_name, session=None):
    """Give back what reserve_snapshot charged; call it in the transaction that marks the
    snapshot row deleted (or that removes a snapshot row whose create was refused)."""
    release(project_id, snapshot_deltas(volume_size, type_name), session=session)


# --- backups (api/backup_requests.py and the backup service's flows) --------------------------

def backup_deltas(size, count=1):
    return {"backups": count, "backup_gigabytes": size * count}


def reserve_backup(project_id, size, session=None):
    """Charge one backup of a size GiB volume (backups, backup_gigabytes), in the transaction
    that inserts the backup row; a 413 (BackupLimitExceeded or
    VolumeBackupSizeExceedsAvailableQuota) rolls it back. A backup counts while its row is
    not deleted, whatever its status (an `error` backup too, until it is deleted)."""
    reserve(project_id, backup_deltas(size), session=session)


def release_backup(project_id, size, session=None):
    """Give back what reserve_backup charged, in the transaction that marks the row deleted."""
    release(project_id, backup_deltas(size), session=session)


# --- volume transfers (common/db/transfers_api.py) ---------------------------------------------

def transfer_deltas(volume_size, volume_type_name, snapshots):
    """What a volume and the snapshots that move with it count: volume_deltas plus
    snapshot_deltas of each (snapshots: [(volume_size, type name)])."""
    deltas = volume_deltas(volume_size, volume_type_name)
    for size, type_name in snapshots:
        for resource, amount in snapshot_deltas(size, type_name).items():
            deltas[resource] = deltas.get(resource, 0) + amount
    return deltas


def move_usage(session, from_project, to_project, deltas):
    """Move `deltas` ({resource: amount}) of usage from one project to another, in the
    caller's transaction: the receiver is charged within its limits (over a limit: the 413
    of reserve, and the caller's transaction must roll back, so nothing moves), the giver is
    given the same amounts back.

    Call it before the resources change owner: both projects' usage rows are made first,
    from a recount that still sees the resources where they were, so each side then takes
    the whole delta. The rows are changed project by project in sorted order, so two
    transfers in opposite directions lock them in the same order (no deadlock)."""
    if from_project == to_project:
        return
    resources = sorted(r for r, d in deltas.items() if d and r not in NOT_COUNTED)
    if not resources:
        return
    for project_id in sorted((from_project, to_project)):
        quota_api.usage_ensure(session, project_id, resources)
    for project_id in sorted((from_project, to_project)):
        if project_id == to_project:
            reserve(to_project, deltas, session=session)
        else:
            release(from_project, deltas, session=session)


# --- the drift check ------------------------------------------------------------------------

def check(fix=False):
    """Compare every usage row with the recount (both read in one transaction). Returns
    [(project, resource, in_use, counted)] of the rows that differ. fix=True sets each to its
    counted figure, only if it still holds the figure that was compared (a request that
    changed it meanwhile is not overwritten), and purges reservations of extends that
    ended."""
    with reader() as s:
        counted = quota_api.recount(s)
        rows = quota_api.usage_get_everything(session=s)
    drift = []
    for project_id in sorted(rows):
        want = counted.get(project_id, {})
        for resource, in_use in sorted(rows[project_id].items()):
            # (resources without a row start from the recount when first charged)
            if in_use != want.get(resource, 0):
                drift.append((project_id, resource, in_use, want.get(resource, 0)))
    if fix:
        for project_id, resource, in_use, value in drift:
            if quota_api.usage_set(project_id, resource, value, expected=in_use):
                LOG.warning("Quota usage of %s %s set from %d to %d", project_id, resource,
                            in_use, value)
        quota_api.reservation_purge_settled()
    return drift
