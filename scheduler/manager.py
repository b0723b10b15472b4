"""RPC endpoint of the scheduler: picks a pool for each new volume and claims capacity on it.

For each request: filter the cached pools, weigh the survivors, then claim on the best one
with one conditional UPDATE. If another scheduler copy took the room first, the claim fails,
that pool is re-read, and the next candidate is tried. So any number of scheduler copies and
any burst of requests never overfill a pool."""

import collections
import copy
import datetime
import logging
import threading

import oslo_messaging as messaging
from oslo_config import cfg

from common import context as lamina_context
from common import exception, metrics, notifications, volume_status
from common.db import api as db
from common.db import models, types_api
from common.db import volume_actions_api as adb
from common.db.models import utcnow
from common.db.session import writer
from scheduler import filters, weighers
from scheduler.host_state import PoolCache
from volume_worker import rpcapi as volume_rpcapi

LOG = logging.getLogger(__name__)

scheduler_opts = [
    cfg.ListOpt("scheduler_default_filters",
                default=["BackendUpFilter", "AvailabilityZoneFilter", "CapacityFilter",
                         "CapabilitiesFilter"],
                help="Filters a pool must pass, in order. Choices: "
                     + ", ".join(sorted(filters.FILTERS))),
    cfg.ListOpt("scheduler_default_weighers", default=["CapacityWeigher"],
                help="Weighers that rank the pools that passed. Choices: "
                     + ", ".join(sorted(weighers.WEIGHERS))),
    cfg.IntOpt("scheduler_max_attempts", default=10, min=1,
               help="Candidates tried, best first, before a request fails for lack of room "
                    "when concurrent claims keep taking it."),
    cfg.IntOpt("scheduler_pool_reload_interval", default=30, min=1,
               help="Seconds between full reloads of the pool cache from the database."),
    cfg.IntOpt("scheduler_stuck_timeout", default=300, min=10,
               help="A volume waiting for a scheduler longer than this many seconds (its "
                    "request was lost, e.g. a scheduler died holding it) goes to error. "
                    "Checked every scheduler_stuck_timeout seconds (at most every minute)."),
    cfg.IntOpt("scheduler_decision_history", default=100, min=0,
               help="Placements each scheduler keeps in memory (the newest), for "
                    "`lamina-manage scheduler explain VOLUME`: the request, its cutoff, the "
                    "verdicts of the pools the placement looked at and the pool chosen; the "
                    "other pools' verdicts are computed when explain asks. A refused "
                    "placement keeps every pool's verdict. 0 keeps none (explain then "
                    "answers with a dry run of the volume's request)."),
]
CONF = cfg.CONF
CONF.register_opts(scheduler_opts)


def _source_backend(volume):
    """host@backend holding the snapshot or volume a new volume is made from, or the group it
    is made into, or None."""
    if volume.group_id:
        from common.db import groups_api

        group = groups_api.group_get_internal(volume.group_id)
        if group is None or group.deleted or not group.host or group.status not in (
                "available", "creating"):
            raise exception.NoValidBackend(reason="The group of the volume is gone or not "
                                                  "available.")
        return group.host
    source = None
    if volume.snapshot_id:
        snapshot = db.snapshot_get_internal(volume.snapshot_id)
        source = snapshot and db.volume_get_for_scheduling(snapshot.volume_id)
    elif volume.source_volid:
        source = db.volume_get_for_scheduling(volume.source_volid)
    else:
        return None
    if source is None or not source.host:
        raise exception.NoValidBackend(reason="The source snapshot or volume is gone.")
    return source.host.split("#")[0]


# The name a pool's verdict gives when it is left out because a new volume's source (snapshot,
# volume or group) lives on another back end: not a configurable filter, placement's own rule.
SOURCE_BACKEND = "SourceBackend"
LOST_CLAIM = "passed, but another placement's claim took the room first"


class _Withdrawn(Exception):
    """A placement's on_claim refused its claim: the transaction is rolled back."""


def _public_request(request):
    """The request as explain shows it (JSON: no datetimes, no internal keys)."""
    return {key: request.get(key) for key in ("volume_id", "size", "volume_type",
                                              "availability_zone", "extra_specs", "backend")}


class SchedulerManager:
    target = messaging.Target(version="1.4")

    def __init__(self, host):
        self.host = host
        self.pools = PoolCache()
        self._choose_lock = threading.Lock()
        self.volume_rpcapi = volume_rpcapi.VolumeAPI()
        # The newest placements, for explain: {"request", "pools", "chosen"} each.
        self._decisions = collections.deque(maxlen=CONF.scheduler_decision_history)
        self._decisions_lock = threading.Lock()

    def init_host(self):
        for name in CONF.scheduler_default_filters:
            if name not in filters.FILTERS:
                raise RuntimeError("unknown scheduler filter %s" % name)
        for name in CONF.scheduler_default_weighers:
            if name not in weighers.WEIGHERS:
                raise RuntimeError("unknown scheduler weigher %s" % name)
        self.pools.reload()

    def shutdown(self):
        pass

    def periodic_tasks(self):
        return [("reload_pools", CONF.scheduler_pool_reload_interval, self.pools.reload),
                # as often as the timeout (at most every minute): a lost request ends about
                # scheduler_stuck_timeout after it was sent, not a minute later
                ("fail_stuck_requests", min(60, CONF.scheduler_stuck_timeout),
                 self.fail_stuck_requests)]

    # --- RPC methods -------------------------------------------------------------------------

    def update_pool_capabilities(self, ctxt, host, pools):
        # The report is already in the database (the volume service wrote it before casting);
        # re-reading the rows keeps allocated figures claimed by other schedulers too.
        self.pools.refresh_host(host)

    def service_changed(self, ctxt, host):
        # A service's disabled or frozen flag is read with the pools: read them again now
        # rather than at the next scheduler_pool_reload_interval.
        LOG.info("Volume service %s changed: reloading the pools", host)
        self.pools.reload()

    def create_volume(self, ctxt, volume_id):
        try:
            self._schedule_create(ctxt, volume_id)
        except Exception as exc:
            # A cast is acknowledged on receipt: unless the volume is ended here, it would
            # wait in `creating` until fail_stuck_requests finds it.
            LOG.exception("Scheduling volume %s failed", volume_id)
            volume_status.fail_operation(ctxt, volume_id, "creating", "error",
                                         volume_status.EVENT_SCHEDULE,
                                         "schedule allocate volume",
                                         "internal error while scheduling (%s)" % exc,
                                         expected={"host": None})

    def _schedule_create(self, ctxt, volume_id):
        volume = db.volume_get_for_scheduling(volume_id)
        if volume is None or volume.status != "creating" or volume.host or volume.deleted:
            LOG.info("Volume %s no longer waits for scheduling", volume_id)
            return
        try:
            request = self._request_spec(volume)
        except exception.NoValidBackend as exc:
            # the source is gone: no pool was weighed, the decision is still one of this
            # scheduler's (counted and kept for explain)
            self._decided({"volume_id": volume.id, "size": volume.size}, [], [], (), None,
                          "no_valid_backend")
            self._fail(ctxt, volume, str(exc))
            return

        def take(session, pool):
            # In the claim's transaction: the volume gets the pool only while it still waits
            # for one; otherwise place() rolls the claim back with it.
            if not db.volume_set_scheduled_host(session, volume_id, pool):
                return False
            db.worker_set_host("volume", volume_id, pool.split("#")[0], session=session)
            return True

        try:
            pool = self.place(request, on_claim=take)
        except exception.NoValidBackend as exc:
            self._fail(ctxt, volume, str(exc))
            return
        if pool is None:
            LOG.info("Volume %s changed while being scheduled; its claim was rolled back",
                     volume_id)
            return
        LOG.info("Volume %s scheduled to %s", volume_id, pool)
        try:
            self.volume_rpcapi.create_volume(ctxt, pool, volume_id)
        except Exception as exc:  # the broker refused: nobody else will ever get this request
            volume_status.fail_operation(ctxt, volume_id, "creating", "error",
                                         volume_status.EVENT_SCHEDULE,
                                         "schedule allocate volume",
                                         "the volume service could not be reached (%s)" % exc,
                                         release=volume_status.release_volume_claim)

    def extend_volume(self, ctxt, volume_id, new_size):
        """Claim the extra capacity on the volume's own pool, then hand over to its service.
        No room: the volume goes back to `available` and the user is told why."""
        volume = db.volume_get_for_scheduling(volume_id)
        if volume is None or volume.status != "extending":
            LOG.info("Volume %s is no longer extending", volume_id)
            return
        delta = new_size - volume.size
        if db.pool_claim(volume.host, delta, new_volume=False):
            self.pools.record_claim(volume.host, delta, new_volume=False)
            self.volume_rpcapi.extend_volume(ctxt, volume.host, volume_id, new_size)
            return
        # As Cinder: no room is not a broken volume; it stays usable at its old size.
        volume_status.fail_operation(ctxt, volume_id, "extending", "available",
                                     volume_status.EVENT_EXTEND_NO_ROOM, "extend volume",
                                     "insufficient free space on %s for %d more GiB"
                                     % (volume.host, delta))

    # --- retype and migration (volume actions of issue 4) ---------------------------------------

    def retype(self, ctxt, volume_id, new_type_id, migration_policy):
        """The volume's own pool still matches the new type: only the type changes. Otherwise,
        with migration_policy on-demand, claim on a pool that matches and have the volume's
        service move the data there; with never, the volume stays as it was."""
        try:
            self._retype(ctxt, volume_id, new_type_id, migration_policy)
        except Exception as exc:
            LOG.exception("Retype of volume %s failed", volume_id)
            adb.fail_move(ctxt, volume_id, "retyping", volume_status.EVENT_RETYPE,
                          "retype volume", "internal error while scheduling (%s)" % exc)

    def _retype(self, ctxt, volume_id, new_type_id, migration_policy):
        volume = db.volume_get_internal(volume_id)
        if volume is None or volume.deleted or volume.status != "retyping":
            LOG.info("Volume %s is no longer retyping", volume_id)
            return
        vtype = db.volume_type_get(new_type_id)
        request = {"volume_id": volume_id, "size": volume.size, "volume_type": vtype.name,
                   "availability_zone": volume.availability_zone,
                   "extra_specs": {e.key: e.value for e in vtype.extra_specs}}
        here = [p for p in [self.pools.get(volume.host)] if p is not None]
        checks = [n for n in CONF.scheduler_default_filters
                  if n != "CapacityFilter"]  # the volume is already counted there
        if here and filters.passes(here[0], request, checks):
            with writer() as s:
                done = adb.volume_end_move(volume_id, "retyping",
                                           {"volume_type_id": vtype.id,
                                            "multiattach": types_api.multiattach(vtype),
                                            "migration_status": None}, session=s)
            LOG.info("Volume %s retyped to %s in place (%s)", volume_id, vtype.name, done)
            if done:  # Cinder's volume.retype, sent as the volume's own service would
                notifications.notify_volume(ctxt, volume_id, "retype",
                                            host=volume.host.split("#")[0])
            return
        def refuse(reason):
            adb.fail_move(ctxt, volume_id, "retyping", volume_status.EVENT_RETYPE,
                          "retype volume", reason)
        if migration_policy != "on-demand":
            return refuse("volume type %s needs another back end than %s and the "
                          "migration_policy is never" % (vtype.name, volume.host))
        if volume.previous_status != "available":
            return refuse("only an available volume can be migrated (an attached one needs a "
                          "compute service)")
        if adb.volume_snapshot_count(volume_id):
            return refuse("a volume with snapshots cannot be migrated")
        try:
            dest = self.place(request, on_claim=self._take_move(volume, "retyping"))
        except exception.NoValidBackend as exc:
            return refuse(str(exc))
        if dest is not None:  # None: the volume changed meanwhile, the claim rolled back
            self._send_move(ctxt, volume, "retyping", dest, vtype.id,
                            volume_status.EVENT_RETYPE, "retype volume")

    def migrate_volume_to_host(self, ctxt, volume_id, dest_pool):
        """Claim room for the volume on the pool the admin named, then have the volume's
        service move the data there."""
        volume = db.volume_get_internal(volume_id)
        if volume is None or volume.deleted or volume.status != "maintenance":
            LOG.info("Volume %s is no longer waiting to migrate", volume_id)
            return
        try:
            pool = [p for p in [self.pools.get(dest_pool)] if p is not None]
            request = {"size": volume.size, "availability_zone": None, "extra_specs": {}}
            if not pool or not filters.backend_up_filter(pool[0], dict(
                    request, reported_after=utcnow() - datetime.timedelta(
                        seconds=CONF.service_down_time))):
                raise exception.NoValidBackend(reason="pool %s is not up" % dest_pool)
            take = self._take_move(volume, "maintenance")
            try:
                # the claim and the move's ownership, one transaction
                with writer() as s:
                    if not db.pool_claim(dest_pool, volume.size, session=s):
                        raise exception.NoValidBackend(
                            reason="not enough free capacity on %s for %d GiB"
                            % (dest_pool, volume.size))
                    if not take(s, dest_pool):
                        raise _Withdrawn()
            except _Withdrawn:
                return  # the volume changed meanwhile: the claim is rolled back
            self.pools.record_claim(dest_pool, volume.size)
        except Exception as exc:
            adb.fail_move(ctxt, volume_id, "maintenance", volume_status.EVENT_MIGRATE,
                          "migrate volume", str(exc))
            return
        self._send_move(ctxt, volume, "maintenance", dest_pool, None,
                        volume_status.EVENT_MIGRATE, "migrate volume")

    @staticmethod
    def _take_move(volume, status):
        """on_claim of a move: in the destination claim's transaction, the source's service
        takes the operation over while the volume is still in `status` where it was."""
        def take(session, _dest_pool):
            if not db.conditional_update(models.Volume, volume.id, {},
                                         {"status": status, "deleted": False,
                                          "host": volume.host}, session=session):
                return False
            db.worker_set_host("volume", volume.id, volume.host.split("#")[0], session=session)
            return True
        return take

    def _send_move(self, ctxt, volume, status, dest_pool, new_type_id, event, action):
        """The destination's claim is taken: the source's service owns the operation now."""
        try:
            self.volume_rpcapi.migrate_volume(ctxt, volume.host, volume.id, dest_pool,
                                              new_type_id)
        except Exception as exc:
            adb.fail_move(ctxt, volume.id, status, event, action,
                          "the volume service could not be reached (%s)" % exc,
                          release_pool=dest_pool)

    # --- placement ---------------------------------------------------------------------------

    @staticmethod
    def _request_spec(volume):
        """The request of a volume read by db.volume_get_for_scheduling."""
        return {"volume_id": volume.id, "size": volume.size,
                "volume_type": volume.volume_type_name,
                "availability_zone": volume.availability_zone,
                "extra_specs": dict(volume.extra_specs), "backend": _source_backend(volume)}

    @staticmethod
    def _with_cutoff(request):
        # One cutoff for all pools, not one clock read per pool (a recorded placement's
        # request keeps its own).
        if request.get("reported_after") is not None:
            return request
        return dict(request, reported_after=utcnow() - datetime.timedelta(
            seconds=CONF.service_down_time))

    def candidates(self, request):
        """Pools that pass every filter, best first."""
        names = CONF.scheduler_default_filters
        request = self._with_cutoff(request)
        pools = self.pools.snapshot()
        if request.get("backend"):
            # The data of a snapshot or source volume is copied or cloned where it lives.
            pools = [p for p in pools if p.host == request["backend"]]
        passed = [p for p in pools if filters.passes(p, request, names)]
        return weighers.weigh(passed, CONF.scheduler_default_weighers)

    def best(self, request, exclude=()):
        """Placement's fast path: the pool candidates() would put first (None: no pool
        passes), from the cache's index for this kind of request, looking only at the pools
        ranked above it. Returns (pool, looked): looked is (name, filter, reason) of each pool
        looked at and rejected."""
        return self.pools.best(self._with_cutoff(request), CONF.scheduler_default_filters,
                               CONF.scheduler_default_weighers, exclude)

    def evaluate(self, request):
        """What candidates() decides, with its reasons: (ranked, rejected). ranked is the
        passing pools best first as (pool, weight); rejected is (pool name, filter, reason)
        for each other pool: the first filter that rejected it and why. Kept as tuples (a
        placement's record lives in the history; ``verdicts`` makes explain's dicts)."""
        names = CONF.scheduler_default_filters
        request = self._with_cutoff(request)
        backend = request.get("backend")
        passed, rejected = [], []
        for pool in self.pools.snapshot():
            if backend and pool.host != backend:
                rejected.append((pool.name, SOURCE_BACKEND, "the new volume's source is on "
                                 "%s, where its data is copied or cloned" % backend))
                continue
            rejection = filters.first_rejection(pool, request, names)
            if rejection is None:
                passed.append(pool)
            else:
                rejected.append((pool.name,) + rejection)
        return weighers.ranked(passed, CONF.scheduler_default_weighers), rejected

    @staticmethod
    def verdicts(weighed, rejected, lost=()):
        """explain's "pools": the passing ones best first ((name, weight) pairs), then the
        rejected ones by name; a passing pool in `lost` lost its claim to another placement."""
        found = [{"pool": name, "passed": True, "rejected_by": None,
                  "reason": LOST_CLAIM if name in lost else "", "weight": float(weight)}
                 for name, weight in weighed]
        found += [{"pool": name, "passed": False, "rejected_by": by, "reason": reason,
                   "weight": None} for name, by, reason in sorted(rejected)]
        return found

    def place(self, request, on_claim=None):
        """Claim capacity for the request on the best pool; returns the pool's name.

        on_claim(session, pool), when given, runs in the claim's own transaction once the
        claim is in: whatever it writes commits with the claim, and when it returns False
        the transaction is rolled back, the claim with it, and place() returns None (the
        request was withdrawn meanwhile: a volume deleted, say). One transaction, one commit.

        The choice and its note in the cache happen under one lock, so concurrent requests in
        this process each see the ones chosen before them (the volume number weigher spreads
        a burst instead of sending it all to one pool); the database claim, outside the lock,
        decides. The choice comes from the cache's index (``best``): its cost does not grow
        with the number of pools. The decision is kept for explain (the pools looked at; the
        rest is computed when explain asks) and counted in the metrics; a refusal evaluates
        and keeps every pool, as explain would."""
        request = self._with_cutoff(request)  # one cutoff for every attempt and the record
        tried = set()
        looked = {}  # pools looked at and rejected: name -> (filter, reason)
        chosen = None
        result = "error"  # unless placed or refused below: the database failed, say
        try:
            for _ in range(CONF.scheduler_max_attempts):
                with self._choose_lock:
                    pool, rejected = self.best(request, exclude=tried)
                    for name, by, reason in rejected:
                        if name not in looked and name not in tried:
                            looked[name] = (by, reason)
                            metrics.scheduler_rejections.labels(by).inc()
                    if pool is None:
                        break
                    best = pool.name
                    self.pools.note_choice(best, request["size"])
                claimed = False
                try:
                    claimed = self._claim(best, request["size"], on_claim)
                except _Withdrawn:
                    # rolled back: the claim is not in the database, nor in the cache
                    chosen, result = best, "placed"
                    return None
                finally:
                    self.pools.settle_choice(best, request["size"], claimed)
                if claimed:
                    chosen, result = best, "placed"
                    return best
                # Someone else took the room: learn the pool's real figures, try the next.
                metrics.scheduler_claims_lost.inc()
                tried.add(best)
                looked.pop(best, None)
                self.pools.refresh_pool(best)
            result = "no_valid_backend"
            raise exception.NoValidBackend(reason=self._explain(request))
        finally:
            if chosen is None:
                # refused (or failed): the cold path keeps every pool's verdict
                ranked, rejected = self.evaluate(request)
                for name, by, _reason in rejected:
                    if name not in looked:
                        metrics.scheduler_rejections.labels(by).inc()
                self._decided(request, [(p.name, w) for p, w in ranked], rejected, tried,
                              chosen, result)
            else:
                self._decided(request, None, looked, tried, chosen, result)

    @staticmethod
    def _claim(pool, size, on_claim):
        """The claim's conditional UPDATE and on_claim's writes, one transaction: True when
        committed, False when the pool had no room (nothing written); _Withdrawn when
        on_claim said no (rolled back)."""
        with writer() as s:
            if not db.pool_claim(pool, size, session=s, enabled_only=True):
                return False
            if on_claim is not None and not on_claim(s, pool):
                raise _Withdrawn()
        return True

    def _decided(self, request, weighed, rejected, lost, chosen, result):
        """Keep a decision for explain. weighed None: a placement of the fast path, whose
        `rejected` holds only the pools it looked at ({name: (filter, reason)}); explain
        computes the rest from the request (with its cutoff) kept here."""
        metrics.scheduler_decisions.labels(result).inc()
        kept_request = dict(request) if weighed is None else None
        decision = (_public_request(request), weighed, rejected, frozenset(lost), chosen,
                    kept_request)
        with self._decisions_lock:
            self._decisions.append(decision)

    def _recorded_verdicts(self, request, looked, lost, chosen):
        """explain's pools for a fast-path placement: the verdicts it looked at, the pools
        it chose or lost a claim on as passed, every other pool evaluated now against the
        same request and cutoff; the passing ones weighed together."""
        ranked, rejected = self.evaluate(request)
        passed_then = set(lost) | {chosen}
        by_name = {p.name: p for p, _w in ranked}
        for pool_name in passed_then - set(by_name):
            pool = self.pools.get(pool_name)
            if pool is not None:
                by_name[pool_name] = pool
        for pool_name in set(looked) - passed_then:
            by_name.pop(pool_name, None)
        verdicts = {name: (by, reason) for name, by, reason in rejected}
        verdicts.update(looked)
        weighed = [(p.name, w) for p, w in weighers.ranked(list(by_name.values()),
                                                           CONF.scheduler_default_weighers)]
        return weighed, [(name, by, reason) for name, (by, reason) in verdicts.items()
                         if name not in by_name]

    def explain(self, ctxt, volume_id=None, size=None, volume_type=None):
        """Why a volume went where it went (the decision kept in this scheduler's history),
        or where a request would go now (a dry run: filters and weighers, no claim): for a
        volume not in the history its request as the volume's row says, else a request of
        `size` GiB (1 by default) of `volume_type` (name or id; none: no extra specs).

        Returns {"request": {...}, "pools": [{"pool", "passed", "rejected_by", "reason",
        "weight"}], "chosen": pool or None, "recorded": bool}."""
        if volume_id:
            with self._decisions_lock:
                kept = [d for d in self._decisions if d[0]["volume_id"] == volume_id]
            if kept:
                request, weighed, rejected, lost, chosen, kept_request = kept[-1]
                if weighed is None:
                    weighed, rejected = self._recorded_verdicts(kept_request, rejected, lost,
                                                                chosen)
                return {"request": copy.deepcopy(request),
                        "pools": self.verdicts(weighed, rejected, lost), "chosen": chosen,
                        "recorded": True}
            volume = db.volume_get_for_scheduling(volume_id)
            if volume is None or volume.deleted:
                raise exception.VolumeNotFound(volume_id=volume_id)
            request = self._request_spec(volume)
        else:
            vtype = db.volume_type_get_by_name_or_id(volume_type) if volume_type else None
            request = {"volume_id": None, "size": int(size) if size else 1,
                       "volume_type": vtype.name if vtype is not None else None,
                       "availability_zone": None,
                       "extra_specs": {e.key: e.value for e in vtype.extra_specs}
                       if vtype is not None else {}}
        ranked, rejected = self.evaluate(request)
        return {"request": _public_request(request),
                "pools": self.verdicts([(p.name, w) for p, w in ranked], rejected),
                "chosen": ranked[0][0].name if ranked else None, "recorded": False}

    def _explain(self, request):
        pools = self.pools.snapshot()
        if request.get("backend"):
            pools = [p for p in pools if p.host == request["backend"]]
            if not [p for p in pools if p.is_up()]:
                return ("The back end %s that holds the source snapshot or volume is down."
                        % request["backend"])
        if not pools:
            return "No volume service has reported any pool."
        up = [p for p in pools if p.is_up()]
        if not up:
            return "No pool is up (no recent capacity report from a volume service)."
        zone = request.get("availability_zone")
        if zone and not [p for p in up if p.availability_zone == zone]:
            return "No pool is in availability zone %s." % zone
        if not [p for p in up if filters.capabilities_filter(p, request)]:
            return "No pool matches the volume type's extra specs %s." % request["extra_specs"]
        return "Not enough free capacity for a %d GiB volume in any matching pool." % (
            request["size"])

    @staticmethod
    def _fail(ctxt, volume, reason):
        volume_status.fail_operation(ctxt, volume.id, "creating", "error",
                                     volume_status.EVENT_SCHEDULE, "schedule allocate volume",
                                     reason, expected={"host": None})

    def fail_stuck_requests(self):
        """Volumes whose scheduling request was lost go to error instead of `creating`."""
        cutoff = utcnow() - datetime.timedelta(seconds=CONF.scheduler_stuck_timeout)
        ctxt = lamina_context.get_admin_context()
        for worker in db.worker_get_all(unscheduled_before=cutoff):
            volume = db.volume_get_internal(worker.resource_id)
            if volume is None or volume.deleted:
                db.worker_release(worker.resource_type, worker.resource_id)
                continue
            if volume.status == "creating" and volume.host is None:
                ctxt.project_id = volume.project_id
                self._fail(ctxt, volume, "The request was not scheduled within %d seconds."
                           % CONF.scheduler_stuck_timeout)
            elif volume.status in ("retyping", "maintenance") and \
                    volume.migration_status == "starting":
                ctxt.project_id = volume.project_id
                event = volume_status.EVENT_RETYPE if volume.status == "retyping" \
                    else volume_status.EVENT_MIGRATE
                adb.fail_move(ctxt, volume.id, volume.status, event,
                              "retype volume" if volume.status == "retyping"
                              else "migrate volume",
                              "The request was not scheduled within %d seconds."
                              % CONF.scheduler_stuck_timeout)
