"""Alembic environment: runs against the engine of common.db.session (the configured
[database] connection) unless the caller hands one in through config.attributes."""

from alembic import context

from common.db import models, session

config = context.config


def run_migrations_online():
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    with session.get_engine().connect() as connection:
        _run(connection)
        connection.commit()


def _run(connection):
    context.configure(connection=connection, target_metadata=models.Base.metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
