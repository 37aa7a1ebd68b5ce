"""Alembic environment: migrations run on the connection :func:`bot.store.migrate.upgrade`
hands over (``config.attributes["connection"]``); there is no ``alembic.ini``."""

from __future__ import annotations

from alembic import context

from bot.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
