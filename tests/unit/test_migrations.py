"""The Alembic migrations build exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from common.db import models
from tests.stack import parse_once


def test_models_match_migrations(tmp_path):
    from oslo_config import cfg

    from common.db import migration, session

    parse_once()
    url = "sqlite:///%s/m.sqlite" % tmp_path
    cfg.CONF.set_override("connection", url, group="database")
    try:
        session.dispose()
        migration.db_sync()
        assert migration.db_version() == migration.head_version()
        engine = create_engine(url)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
        assert diff == []
    finally:
        session.dispose()
        cfg.CONF.clear_override("connection", group="database")
