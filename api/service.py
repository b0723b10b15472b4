"""lamina-api: the API process, served by waitress (a production WSGI server)."""

import logging
import sys

import waitress
from oslo_config import cfg

from api.app import create_app
from common import config, service

LOG = logging.getLogger(__name__)

api_service_opts = [
    cfg.HostAddressOpt("osapi_volume_listen", default="127.0.0.1",
                       help="Address the API listens on."),
    cfg.PortOpt("osapi_volume_listen_port", default=8776, help="Port the API listens on."),
    cfg.IntOpt("osapi_volume_threads", default=16, min=1,
               help="Threads serving API requests in one API process."),
    cfg.IntOpt("osapi_volume_backlog", default=1024, min=1,
               help="Connections waiting to be accepted (listen backlog)."),
]
CONF = cfg.CONF
CONF.register_opts(api_service_opts)


def make_server(app, host=None, port=None):
    return waitress.create_server(
        app, host=host or CONF.osapi_volume_listen,
        port=CONF.osapi_volume_listen_port if port is None else port,
        threads=CONF.osapi_volume_threads, backlog=CONF.osapi_volume_backlog,
        connection_limit=max(100, CONF.osapi_volume_threads * 8), ident="lamina",
        clear_untrusted_proxy_headers=True, channel_timeout=120)


def stop_server(server):
    """Stop a waitress server running in another thread: the close happens in the server's
    own loop (through its trigger), so its select() never sees a closed socket."""
    from waitress import wasyncore

    server.task_dispatcher.shutdown(timeout=5)
    try:
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
    except OSError:
        # The loop has already ended and closed its trigger: nothing is left to stop.
        LOG.debug("API server loop already stopped")


def main(argv=None):
    config.parse_args(sys.argv[1:] if argv is None else argv)
    config.setup_logging()
    server = make_server(create_app())
    service.freeze_startup_objects()
    LOG.info("lamina-api listening on http://%s:%s", server.effective_host,
             server.effective_port)
    server.run()


if __name__ == "__main__":
    main()
