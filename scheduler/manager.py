"""RPC endpoint of the scheduler: picks a pool for each new volume and claims capacity on it.

For each request: filter the cached pools, weigh the survivors, then claim on the best one
with one conditional UPDATE. If another scheduler copy took the room first, the claim fails,
that pool is re-read, and the next candidate is tried. So any number of scheduler copies and
any burst of requests never overfill a pool."""

import datetime
import logging
import threading

import oslo_messaging as messaging
from oslo_config import cfg

from common import context as lamina_context
from common import exception, volume_status
from common.db import api as db
from common.db import models
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
                    "request was lost, e.g. a scheduler died holding it) goes to error."),
]
CONF = cfg.CONF
CONF.register_opts(scheduler_opts)


def _source_backend(volume):
    """host@backend holding the snapshot or volume a new volume is made from, or None."""
    source = None
    if volume.snapshot_id:
        snapshot = db.snapshot_get_internal(volume.snapshot_id)
        source = snapshot and db.volume_get_internal(snapshot.volume_id)
    elif volume.source_volid:
        source = db.volume_get_internal(volume.source_volid)
    else:
        return None
    if source is None or not source.host:
        raise exception.NoValidBackend(reason="The source snapshot or volume is gone.")
    return source.host.split("#")[0]


class SchedulerManager:
    target = messaging.Target(version="1.1")

    def __init__(self, host):
        self.host = host
        self.pools = PoolCache()
        self._choose_lock = threading.Lock()
        self.volume_rpcapi = volume_rpcapi.VolumeAPI()

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
                ("fail_stuck_requests", 60, self.fail_stuck_requests)]

    # --- RPC methods -------------------------------------------------------------------------

    def update_pool_capabilities(self, ctxt, host, pools):
        # The report is already in the database (the volume service wrote it before casting);
        # re-reading the rows keeps allocated figures claimed by other schedulers too.
        self.pools.refresh_host(host)

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
        volume = db.volume_get_internal(volume_id)
        if volume is None or volume.status != "creating" or volume.host:
            LOG.info("Volume %s no longer waits for scheduling", volume_id)
            return
        try:
            pool = self.place(self._request_spec(volume))
        except exception.NoValidBackend as exc:
            self._fail(ctxt, volume, str(exc))
            return
        try:
            with writer() as s:
                won = db.conditional_update(models.Volume, volume_id, {"host": pool},
                                            {"status": "creating", "host": None,
                                             "deleted": False}, session=s)
                if won:
                    db.worker_set_host("volume", volume_id, pool.split("#")[0], session=s)
                else:
                    db.pool_release(pool, volume.size, session=s)
        except Exception:
            db.pool_release(pool, volume.size)  # the volume never got this pool
            raise
        if not won:
            LOG.info("Volume %s changed while being scheduled; claim on %s released",
                     volume_id, pool)
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
        volume = db.volume_get_internal(volume_id)
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

    # --- placement ---------------------------------------------------------------------------

    @staticmethod
    def _request_spec(volume):
        specs = {}
        if volume.volume_type is not None:
            specs = {e.key: e.value for e in volume.volume_type.extra_specs}
        return {"size": volume.size, "availability_zone": volume.availability_zone,
                "extra_specs": specs, "backend": _source_backend(volume)}

    def candidates(self, request):
        """Pools that pass every filter, best first."""
        chosen = [filters.FILTERS[name] for name in CONF.scheduler_default_filters]
        # One cutoff for all pools, not one clock read per pool.
        request = dict(request, reported_after=utcnow() - datetime.timedelta(
            seconds=CONF.service_down_time))
        pools = self.pools.snapshot()
        if request.get("backend"):
            # The data of a snapshot or source volume is copied or cloned where it lives.
            pools = [p for p in pools if p.host == request["backend"]]
        passed = [p for p in pools if all(f(p, request) for f in chosen)]
        return weighers.weigh(passed, CONF.scheduler_default_weighers)

    def place(self, request):
        """Claim capacity for the request on the best pool; returns the pool's name.

        The choice and its note in the cache happen under one lock, so concurrent requests in
        this process each see the ones chosen before them (the volume number weigher spreads
        a burst instead of sending it all to one pool); the database claim, outside the lock,
        decides."""
        tried = set()
        for _ in range(CONF.scheduler_max_attempts):
            with self._choose_lock:
                ranked = [p for p in self.candidates(request) if p.name not in tried]
                if not ranked:
                    break
                best = ranked[0].name
                self.pools.note_choice(best, request["size"])
            claimed = False
            try:
                claimed = db.pool_claim(best, request["size"])
            finally:
                self.pools.settle_choice(best, request["size"], claimed)
            if claimed:
                return best
            # Someone else took the room: learn the pool's real figures, try the next.
            tried.add(best)
            self.pools.refresh_pool(best)
        raise exception.NoValidBackend(reason=self._explain(request))

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
