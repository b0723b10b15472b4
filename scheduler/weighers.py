"""Weighers: which of the remaining pools is best. Higher weight wins.

Each weigher gives a raw figure per pool; the figures are normalised to 0..1 across the
candidates and multiplied by the weigher's multiplier, as Cinder does, so weighers combine."""

from oslo_config import cfg

weigher_opts = [
    cfg.FloatOpt("capacity_weight_multiplier", default=1.0,
                 help="Multiplier of the capacity weigher: positive spreads volumes to the "
                      "pool with the most free virtual capacity, negative stacks them."),
    cfg.FloatOpt("allocated_capacity_weight_multiplier", default=-1.0,
                 help="Multiplier of the allocated capacity weigher: negative prefers the "
                      "pool with the least capacity allocated."),
    cfg.FloatOpt("volume_number_multiplier", default=-1.0,
                 help="Multiplier of the volume number weigher: negative prefers the pool "
                      "holding the fewest volumes."),
]
CONF = cfg.CONF
CONF.register_opts(weigher_opts)


def capacity(pool):
    return pool.free_virtual_gb, CONF.capacity_weight_multiplier


def allocated_capacity(pool):
    return pool.allocated_capacity_gb, CONF.allocated_capacity_weight_multiplier


def volume_number(pool):
    return pool.volume_count, CONF.volume_number_multiplier


WEIGHERS = {
    "CapacityWeigher": capacity,
    "AllocatedCapacityWeigher": allocated_capacity,
    "VolumeNumberWeigher": volume_number,
}


def weights(pools, weigher_names):
    """Each pool's combined weight (the same order as `pools`): the sum over the weighers of
    multiplier x the pool's figure normalised to 0..1 across the pools. One pool, or pools
    whose figures are all equal, weigh 0."""
    totals = [0.0] * len(pools)
    if len(pools) <= 1:
        return totals
    for name in weigher_names:
        fn = WEIGHERS[name]
        raw = [fn(p) for p in pools]
        values = [r[0] for r in raw]
        multiplier = raw[0][1]
        low, high = min(values), max(values)
        span = high - low
        if span == 0:
            continue
        for i, value in enumerate(values):
            totals[i] += multiplier * (value - low) / span
    return totals


def ranked(pools, weigher_names):
    """(pool, weight) pairs, best first (ties by pool name)."""
    totals = weights(pools, weigher_names)
    order = sorted(range(len(pools)), key=lambda i: (-totals[i], pools[i].name))
    return [(pools[i], totals[i]) for i in order]


def weigh(pools, weigher_names):
    """Return the pools sorted best first."""
    return [pool for pool, _weight in ranked(pools, weigher_names)]
