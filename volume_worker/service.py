"""lamina-volume: one volume service per enabled back end (host@backend) in this process."""

import sys

from oslo_config import cfg

from common import service
from volume_worker import drivers
from volume_worker import rpcapi as volume_rpcapi
from volume_worker.manager import VolumeManager

volume_service_opts = [
    cfg.ListOpt("enabled_backends", default=["file"],
                help="Back ends this volume service runs, each a config section of that name "
                     "with its volume_driver and driver options."),
]
CONF = cfg.CONF
CONF.register_opts(volume_service_opts)


def build_services():
    services = []
    for backend in CONF.enabled_backends:
        driver = drivers.load_driver(backend)
        host = "%s@%s" % (CONF.host, backend)
        services.append(service.Service("lamina-volume", volume_rpcapi.TOPIC, host,
                                        VolumeManager(host, driver),
                                        volume_rpcapi.VolumeAPI.VERSION))
    return services


def main(argv=None):
    service.serve(build_services, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
