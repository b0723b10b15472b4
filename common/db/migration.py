"""Schema migrations (Alembic), run by `lamina-manage db sync` and by the embedded service."""

import os

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from common.db import session

_HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")


def _config():
    cfg = Config(os.path.join(_HERE, "alembic.ini"))
    cfg.set_main_option("script_location", _HERE)
    return cfg


def db_sync(revision="head"):
    command.upgrade(_config(), revision)


def db_version():
    with session.get_engine().connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_version():
    return ScriptDirectory.from_config(_config()).get_current_head()
