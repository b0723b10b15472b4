"""The scheduler's cache of pools: filled from the database, kept fresh by the volume
services' fanout reports and a periodic reload, and updated at once by this scheduler's own
claims. The cache only ranks candidates; the claim in the database decides."""

import json
import threading

from oslo_config import cfg

from common import service
from common.db import api as db

CONF = cfg.CONF


class PoolState:
    __slots__ = ("name", "host", "pool_name", "availability_zone", "total_capacity_gb",
                 "free_capacity_gb", "db_allocated_gb", "usable_capacity_gb",
                 "db_volume_count", "capabilities", "reported_at", "backend_state",
                 "service_disabled", "service_frozen", "pending_gb", "pending_count")

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
        self.capabilities = json.loads(row.capabilities or "{}")
        self.reported_at = row.reported_at
        self.backend_state = self.capabilities.get("backend_state", "up")

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


class PoolCache:
    def __init__(self):
        self._lock = threading.Lock()
        self._pools = {}

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
                else:
                    state.update_from_row(row)
                state.service_disabled = row.host in disabled
                state.service_frozen = row.host in frozen
                fresh[row.name] = state
            self._pools = fresh

    def refresh_pool(self, name):
        row = db.pool_get(name)
        with self._lock:
            if row is None:
                self._pools.pop(name, None)
            elif name in self._pools:
                self._pools[name].update_from_row(row)
            else:
                self._pools[name] = PoolState(row)

    def refresh_host(self, host):
        rows = db.pool_get_all(host=host)
        reported = {r.name for r in rows}
        with self._lock:
            for name in [n for n, p in self._pools.items() if p.host == host]:
                if name not in reported:
                    del self._pools[name]
            for row in rows:
                state = self._pools.get(row.name)
                if state is None:
                    self._pools[row.name] = PoolState(row)
                else:
                    state.update_from_row(row)

    def note_choice(self, name, size):
        """A pool was chosen; its database claim is on its way."""
        with self._lock:
            pool = self._pools.get(name)
            if pool is not None:
                pool.pending_gb += size
                pool.pending_count += 1

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

    def record_claim(self, name, size, new_volume=True):
        with self._lock:
            pool = self._pools.get(name)
            if pool is not None:
                pool.db_allocated_gb += size
                pool.db_volume_count += 1 if new_volume else 0

    def snapshot(self):
        with self._lock:
            return list(self._pools.values())
