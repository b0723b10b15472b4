"""Process set-up shared by every entry point: parse config, set up logging."""

import logging
import warnings

from oslo_config import cfg
from oslo_log import log

CONF = cfg.CONF
_LOG_REGISTERED = False


def parse_args(argv, default_config_files=None):
    global _LOG_REGISTERED
    if not _LOG_REGISTERED:
        log.register_options(CONF)
        log.set_defaults(default_log_levels=log.get_default_log_levels() + [
            "taskflow=WARN", "stevedore=WARN", "oslo.messaging=INFO", "kombu=WARN",
            "amqp=WARN", "waitress=WARN", "alembic=WARN"])
        _LOG_REGISTERED = True
    CONF(argv, project="lamina", default_config_files=default_config_files)


def setup_logging():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    log.setup(CONF, "lamina")
    logging.captureWarnings(True)
