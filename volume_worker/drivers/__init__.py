"""Volume drivers behind one interface (base.VolumeDriver), chosen by `volume_driver`."""

from oslo_config import cfg

from volume_worker.drivers import base


def _driver_classes():
    from volume_worker.drivers.file import FileDriver
    from volume_worker.drivers.lvm import LVMDriver
    from volume_worker.drivers.rbd import RBDDriver

    return {"file": FileDriver, "rbd": RBDDriver, "lvm": LVMDriver}


def load_driver(backend_name, conf=cfg.CONF):
    """Register the back end's options in its section and build its driver."""
    section = base.register_backend_opts(conf, backend_name)
    classes = _driver_classes()
    driver_name = section.volume_driver
    if driver_name not in classes:
        raise RuntimeError("volume_driver %r of back end %s is not available in this release"
                           % (driver_name, backend_name))
    cls = classes[driver_name]
    section = base.register_backend_opts(conf, backend_name, cls.extra_opts)
    return cls(backend_name, section)
