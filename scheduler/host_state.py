"""The scheduler's cache of pools: filled from the database, kept fresh by the volume
services' fanout reports and a periodic reload, and updated at once by this scheduler's own
claims. The cache only ranks candidates; the claim in the database decides.

Placement's fast path does not look at every pool: the cache keeps, per request signature
(the filters asked, the zone, the capability-scoped extra specs, the source back end, the
weighers and their multipliers), an index of the pools that pass the filters' static parts
(back end up and enabled, zone, capabilities), sorted best first by the weigher. Every change
of a pool (a fanout report, a reload, this scheduler's own choices and claims) moves it in
each index at once; a decision walks an index from its best end and stops at the first pool
that passes every filter in full, so its cost does not grow with the number of pools."""

import bisect
import collections
import json
import threading

from oslo_config import cfg

from common import service
from common.db import api as db
from scheduler import filters, weighers

CONF = cfg.CONF


class PoolState:
    __slots__ = ("name", "host", "pool_name", "availability_zone", "total_capacity_gb",
                 "free_capacity_gb", "db_allocated_gb", "usable_capacity_gb",
                 "db_volume_count", "capabilities", "reported_at", "backend_state",
                 "service_disabled", "service_frozen", "pending_gb", "pending_count",
                 "raw_capabilities")

    def __init__(self, row):
        self.name = row.name
        self.host = row.host
        self.pool_name = row.pool_name
        self.service_disabled = False
        self.service_frozen = False
        # Choices this scheduler made whose database claim has not returned yet: a reload
        # from the database must not forget them, or a burst piles onto one pool.
        self.pending_gb = 0
        self.pending_count = 0
        self.raw_capabilities = None
        self.update_from_row(row)

    @property
    def allocated_capacity_gb(self):
        return self.db_allocated_gb + self.pending_gb

    @property
    def volume_count(self):
        return self.db_volume_count + self.pending_count

    def update_from_row(self, row):
        self.availability_zone = row.availability_zone
        self.total_capacity_gb = row.total_capacity_gb
        self.free_capacity_gb = row.free_capacity_gb
        self.db_allocated_gb = row.allocated_capacity_gb
        self.usable_capacity_gb = row.usable_capacity_gb
        self.db_volume_count = row.volume_count
        if row.capabilities != self.raw_capabilities:  # a reload parses only what changed
            self.raw_capabilities = row.capabilities
            self.capabilities = json.loads(row.capabilities or "{}")
        self.reported_at = row.reported_at
        self.backend_state = self.capabilities.get("backend_state", "up")

    def fingerprint(self):
        """What the indexes depend on: unchanged, a pool stays where it is."""
        return (self.availability_zone, self.raw_capabilities, self.reported_at,
                self.usable_capacity_gb, self.db_allocated_gb, self.db_volume_count,
                self.pending_gb, self.pending_count, self.service_disabled,
                self.service_frozen)

    @property
    def free_virtual_gb(self):
        return self.usable_capacity_gb - self.allocated_capacity_gb

    def is_up(self, reported_after=None):
        """Up: reporting, enabled, not frozen (os-services/freeze: Cinder's scheduler skips
        a frozen back end), and (when the caller computed the cutoff once for many pools)
        reported after `reported_after`."""
        if self.backend_state != "up" or self.service_disabled or self.service_frozen:
            return False
        if reported_after is not None:
            return self.reported_at is not None and self.reported_at >= reported_after
        return service.is_up(self.reported_at)


# Request signatures whose index is kept (least recently used dropped): one per volume type,
# zone and source back end in use, roughly.
MAX_INDEXES = 64


class _Index:
    """The pools that pass a signature's static checks, as a sorted list of (key, name)."""

    def __init__(self, signature, request, names, weigher_names, multipliers):
        self.signature = signature
        self.request = request
        self.names = names
        self.backend = request.get("backend")
        self.weigher = weigher_names[0] if len(weigher_names) == 1 else None
        self.multiplier = multipliers[0] if self.weigher else 0.0
        self.entries = []   # sorted [(key, name)]
        self.members = {}   # name -> key

    def key(self, pool):
        """Best first. One weigher: its figure (normalised or not, the order is the same;
        ties by name, as weighers.ranked). Several weighers: by name only (the normalisation
        across the candidates decides, so those indexes are scanned in full)."""
        if self.weigher is None or self.multiplier == 0:
            return (pool.name,)
        value = weighers.WEIGHERS[self.weigher](pool)[0]
        return (-value if self.multiplier > 0 else value, pool.name)

    def admits(self, pool):
        """The filters' parts that change only with a report or a service flag (capacity and
        the report's age are checked when a decision looks at the pool)."""
        if self.backend and pool.host != self.backend:
            return False
        names = self.names
        if "BackendUpFilter" in names and (pool.backend_state != "up" or
                                           pool.service_disabled or pool.service_frozen):
            return False
        if "AvailabilityZoneFilter" in names and \
                filters.availability_zone(pool, self.request) is not None:
            return False
        if "CapabilitiesFilter" in names and filters.capabilities(pool, self.request) is not None:
            return False
        return True

    def discard(self, name):
        key = self.members.pop(name, None)
        if key is not None:
            i = bisect.bisect_left(self.entries, (key, name))
            del self.entries[i]

    def place(self, pool):
        self.discard(pool.name)
        if self.admits(pool):
            key = self.key(pool)
            self.members[pool.name] = key
            bisect.insort(self.entries, (key, pool.name))


class PoolCache:
    def __init__(self):
        self._lock = threading.Lock()
        self._pools = {}
        self._indexes = collections.OrderedDict()  # signature -> _Index, most recent last
        # Pools a decision found with a report too old (stale until their next report):
        # name -> the reported_at found. Out of every index until that report comes.
        self._stale = {}

    # --- the indexes (callers hold self._lock) ---------------------------------------------

    def _reindex(self, pool):
        stale_at = self._stale.get(pool.name)
        if stale_at is not None:
            if stale_at == pool.reported_at:
                return
            del self._stale[pool.name]
        for index in self._indexes.values():
            index.place(pool)

    def _unindex(self, name):
        self._stale.pop(name, None)
        for index in self._indexes.values():
            index.discard(name)

    def _index_for(self, request, names, weigher_names):
        multipliers = tuple(weighers.WEIGHERS[w](_NoPool)[1] for w in weigher_names)
        specs = request.get("extra_specs") or {}
        if "CapabilitiesFilter" in names:
            specs = tuple(sorted((k, str(v)) for k, v in specs.items()
                                 if k.rpartition(":")[0] in ("", "capabilities")))
        else:
            specs = ()
        zone = request.get("availability_zone") if "AvailabilityZoneFilter" in names else None
        signature = (tuple(names), zone or None, specs, request.get("backend"),
                     tuple(weigher_names), multipliers)
        index = self._indexes.get(signature)
        if index is not None:
            self._indexes.move_to_end(signature)
            return index
        # First request of its kind: one pass over the pools, then kept up to date.
        index = _Index(signature, {"availability_zone": zone,
                                   "extra_specs": dict(request.get("extra_specs") or {}),
                                   "backend": request.get("backend")},
                       tuple(names), tuple(weigher_names), multipliers)
        for pool in self._pools.values():
            if pool.name not in self._stale:
                index.place(pool)
        self._indexes[signature] = index
        while len(self._indexes) > MAX_INDEXES:
            self._indexes.popitem(last=False)
        return index

    def best(self, request, names, weigher_names, exclude=()):
        """The pool a placement takes, best first as weighers.ranked would put it among the
        pools passing every filter, without looking at the others: (pool or None, looked),
        looked being (name, filter, reason) of each pool looked at and rejected on the way.
        `request` carries its `reported_after` cutoff."""
        with self._lock:
            index = self._index_for(request, names, weigher_names)
            looked = []
            if len(weigher_names) > 1:
                # several weighers normalise across all candidates: weigh every member
                passed = []
                for _key, name in index.entries:
                    pool = self._pools[name]
                    rejection = filters.first_rejection(pool, request, names)
                    if rejection is None:
                        if name not in exclude:
                            passed.append(pool)
                    else:
                        looked.append((name,) + rejection)
                ranked = weighers.ranked(passed, weigher_names)
                return (ranked[0][0] if ranked else None), looked
            stale = []
            chosen = None
            by_free = index.weigher == "CapacityWeigher" and index.multiplier > 0
            for _key, name in index.entries:
                if name in exclude:
                    continue
                pool = self._pools[name]
                rejection = filters.first_rejection(pool, request, names)
                if rejection is None:
                    chosen = pool
                    break
                looked.append((name,) + rejection)
                if rejection[0] == "BackendUpFilter":
                    # in the index, so up and enabled: its report is too old, and stays so
                    # (the cutoff only moves on) until its next report
                    stale.append(pool)
                elif rejection[0] == "CapacityFilter" and by_free:
                    break  # the most free capacity first: no pool after it has room
            for pool in stale:
                self._stale[pool.name] = pool.reported_at
                for other in self._indexes.values():
                    other.discard(pool.name)
            return chosen, looked

    # --- filling and updating --------------------------------------------------------------

    def reload(self):
        """Read every pool (and which services are disabled or frozen) from the database."""
        rows = db.pool_get_all()
        volume_services = db.service_get_all(binary="lamina-volume")
        disabled = {s.host for s in volume_services if s.disabled}
        frozen = {s.host for s in volume_services if s.frozen}
        with self._lock:
            fresh = {}
            for row in rows:
                state = self._pools.get(row.name)
                if state is None:
                    state = PoolState(row)
                    before = None
                else:
                    before = state.fingerprint()
                    state.update_from_row(row)
                state.service_disabled = row.host in disabled
                state.service_frozen = row.host in frozen
                fresh[row.name] = state
                if state.fingerprint() != before:  # most pools did not change since
                    self._reindex(state)
            for name in self._pools:
                if name not in fresh:
                    self._unindex(name)
            self._pools = fresh

    def refresh_pool(self, name):
        row = db.pool_get(name)
        with self._lock:
            if row is None:
                self._pools.pop(name, None)
                self._unindex(name)
                return
            if name in self._pools:
                self._pools[name].update_from_row(row)
            else:
                self._pools[name] = PoolState(row)
            self._reindex(self._pools[name])

    def refresh_host(self, host):
        rows = db.pool_get_all(host=host)
        reported = {r.name for r in rows}
        with self._lock:
            for name in [n for n, p in self._pools.items() if p.host == host]:
                if name not in reported:
                    del self._pools[name]
                    self._unindex(name)
            for row in rows:
                state = self._pools.get(row.name)
                if state is None:
                    state = self._pools[row.name] = PoolState(row)
                else:
                    state.update_from_row(row)
                self._reindex(state)

    def note_choice(self, name, size):
        """A pool was chosen; its database claim is on its way."""
        with self._lock:
            pool = self._pools.get(name)
            if pool is not None:
                pool.pending_gb += size
                pool.pending_count += 1
                self._reindex(pool)

    def settle_choice(self, name, size, claimed):
        """The database claim returned: a won claim now counts as the database's own."""
        with self._lock:
            pool = self._pools.get(name)
            if pool is not None:
                pool.pending_gb -= size
                pool.pending_count -= 1
                if claimed:
                    pool.db_allocated_gb += size
                    pool.db_volume_count += 1
                self._reindex(pool)

    def record_claim(self, name, size, new_volume=True):
        with self._lock:
            pool = self._pools.get(name)
            if pool is not None:
                pool.db_allocated_gb += size
                pool.db_volume_count += 1 if new_volume else 0
                self._reindex(pool)

    def get(self, name):
        with self._lock:
            return self._pools.get(name)

    def snapshot(self):
        with self._lock:
            return list(self._pools.values())


class _NoPool:
    """What a weigher is asked for its multiplier only."""
    free_virtual_gb = allocated_capacity_gb = volume_count = 0
