"""lamina-aio: the embedded all-in-one service.

API, scheduler, one volume service and a backup service in one process, an SQLite file, the
in-process fake:// message transport, the file driver and a posix backup repository, all
under one data directory. Any Cinder client can talk to it with noauth. lamina-manage
reaches its services through the control socket <data dir>/control.sock (owner-only), which
relays onto the in-process transport (common/control.py): `lamina-manage --aio-dir <data
dir> ...`. Composing every
service is this module's whole job, which is why it lives in common/ and imports the service
packages' entry points."""

import logging
import os
import sys
import threading

from oslo_config import cfg

from common import config, control, rpc, service
from common.db import migration

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

aio_cli_opts = [
    cfg.StrOpt("data-dir", default="lamina-data", dest="data_dir",
               help="Directory holding the database, volumes and logs of the embedded service."),
    cfg.PortOpt("port", default=8776, help="Port the embedded API listens on (127.0.0.1)."),
]


def configure(data_dir, port):
    """Defaults of the embedded run; a config file or CLI option given by the user wins."""
    data_dir = os.path.abspath(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    CONF.set_default("state_path", data_dir)
    CONF.set_default("connection", "sqlite:///" + os.path.join(data_dir, "lamina.sqlite"),
                     group="database")
    CONF.set_default("osapi_volume_listen_port", port)
    CONF.set_default("host", "aio")
    from backup_worker.chunkstore import posix  # noqa: F401 (registers [backup] options)

    CONF.set_default("backup_posix_path", os.path.join(data_dir, "backups"), group="backup")
    rpc.use_transport_url(getattr(CONF, "transport_url", None) or "fake://")


def start_services():
    """Start scheduler, volume and backup services in this process; returns them (for
    stop). The backup service starts last: its start-up cleanup may call the volume services."""
    from backup_worker import service as backup_service
    from scheduler import service as scheduler_service
    from volume_worker import service as volume_service

    services = [scheduler_service.build_service()] + volume_service.build_services() + \
        [backup_service.build_service()]
    for svc in services:
        svc.start()
    return services


def main(argv=None):
    from api import service as api_service
    from api.app import create_app
    from scheduler import service as scheduler_service  # noqa: F401 (registers options)
    from volume_worker import service as volume_service  # noqa: F401

    CONF.register_cli_opts(aio_cli_opts)
    config.parse_args(sys.argv[1:] if argv is None else argv)
    configure(CONF.data_dir, CONF.port)
    config.setup_logging()
    migration.db_sync()
    services = start_services()
    control_socket = control.ControlSocket(CONF.state_path)
    control_socket.start()
    server = api_service.make_server(create_app(), host="127.0.0.1")
    endpoint = "http://127.0.0.1:%s/v3" % server.effective_port
    service.freeze_startup_objects()
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    print("Lamina embedded service ready at %s (noauth: token user:project; data in %s)"
          % (endpoint, CONF.state_path), flush=True)
    service.wait_for_signal()
    api_service.stop_server(server)
    control_socket.stop()
    service.stop_all(services)
    rpc.cleanup()


if __name__ == "__main__":
    main()
