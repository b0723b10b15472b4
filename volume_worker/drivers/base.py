"""The interface every volume driver implements, and the options every back end has.

A back end is one `[<name>]` section listed in `enabled_backends`; its driver gets that
section as ``self.configuration``. Later operations (snapshots, clones, extend, attach) are
methods here too, so the flows never care which driver they run."""

import abc

from oslo_config import cfg

backend_opts = [
    cfg.StrOpt("volume_driver", default="file", choices=["file", "rbd", "lvm"],
               help="Driver of this back end."),
    cfg.StrOpt("volume_backend_name",
               help="Name reported to the scheduler; volume types select back ends with the "
                    "volume_backend_name extra spec. Defaults to the section name."),
    cfg.IntOpt("reserved_percentage", default=0, min=0, max=100,
               help="Percentage of each pool's capacity never given to volumes."),
    cfg.FloatOpt("max_over_subscription_ratio", default=20.0, min=1.0,
                 help="For thin-provisioned pools: how many times the pool's capacity may be "
                      "promised to volumes in all (1.0 = no over-subscription)."),
]


def register_backend_opts(conf, backend, extra_opts=()):
    conf.register_opts(backend_opts + list(extra_opts), group=backend)
    return conf[backend]


def pool_of(volume_host):
    """'host@backend#pool' -> 'pool'."""
    return volume_host.split("#", 1)[1] if volume_host and "#" in volume_host else None


class VolumeDriver(abc.ABC):
    """What the volume flows ask of a back end. Each call either completes or raises."""

    def __init__(self, backend_name, configuration):
        self.backend_name = backend_name
        self.configuration = configuration

    @property
    def volume_backend_name(self):
        return self.configuration.volume_backend_name or self.backend_name

    def do_setup(self):
        """Prepare the back end (directories, connections). Called once at start."""

    @abc.abstractmethod
    def get_pools(self):
        """One dict per pool: pool_name, total_capacity_gb, free_capacity_gb,
        thin_provisioning_support, max_over_subscription_ratio, reserved_percentage,
        volume_backend_name and any further capabilities volume types may ask for."""

    @abc.abstractmethod
    def create_volume(self, volume):
        """Make the volume's storage in its pool. Returns a dict of fields to store on the
        volume row (e.g. provider_location)."""

    @abc.abstractmethod
    def delete_volume(self, volume):
        """Remove the volume's storage; succeeds when it is already gone."""

    @abc.abstractmethod
    def extend_volume(self, volume, new_size):
        """Grow the volume's storage to new_size GiB, keeping its data."""

    def base_capabilities(self):
        return {
            "volume_backend_name": self.volume_backend_name,
            "reserved_percentage": self.configuration.reserved_percentage,
            "max_over_subscription_ratio": self.configuration.max_over_subscription_ratio,
            "storage_protocol": self.storage_protocol,
            "driver_version": self.version,
            "vendor_name": "Lamina",
        }

    storage_protocol = "unknown"
    version = "1.0.0"
