"""Schema migrations on start: Alembic revisions in ``bot/store/migrations/versions``.

:func:`upgrade` runs at every :class:`bot.store.Store` open. A database already at
:data:`HEAD` costs one query (Alembic itself is imported only when there is work to do). A new
database gets every revision; a SQLite file from before Alembic is first brought to the
baseline by :mod:`bot.store.legacy` and stamped, so it migrates in place. Several replicas
starting at once on PostgreSQL take a transaction-scoped advisory lock, so one migrates and
the others then find the schema current.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

__all__ = ["HEAD", "current_revision", "upgrade"]

HEAD = "0003"
"""The newest revision; a test checks it matches the versions directory."""
BASELINE = "0001"
MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 0x666C6F77_6D696772  # "flowmigr": serialises replicas migrating one database

log = logging.getLogger("flowbot.store")


def current_revision(conn: Connection) -> str | None:
    """The database's Alembic revision, or ``None`` when it has none yet."""
    try:
        with conn.begin_nested():
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except DBAPIError:
        return None
    return str(row[0]) if row else None


def upgrade(engine: Engine) -> None:
    """Bring the database behind ``engine`` to :data:`HEAD` in place.

    Raises ``sqlalchemy.exc.SQLAlchemyError`` (or ``sqlite3.Error`` from a legacy file) when
    the database cannot be migrated; a failed revision leaves the previous one in place
    (PostgreSQL and SQLite both run DDL in the transaction)."""
    legacy = engine.dialect.name == "sqlite" and _legacy_sqlite(engine.url.database)
    with engine.connect().execution_options(flowbot_write=True) as conn, conn.begin():
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL statement_timeout = 0"))  # a copy may take long
            conn.execute(text("SET LOCAL lock_timeout = 0"))
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        before = current_revision(conn)
        if before == HEAD:
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        if before is None and legacy:
            log.info("state: a file from before Alembic; stamped at the baseline revision")
            command.stamp(config, BASELINE)
            before = BASELINE
        command.upgrade(config, "head")
    log.info("state: schema migrated from %s to %s", before or "empty", HEAD)


def _legacy_sqlite(path: str | None) -> bool:
    """Bring a SQLite file from before Alembic to the baseline (version 3); ``True`` when
    it was one (it then needs the baseline stamped)."""
    if not path or path == ":memory:" or not Path(path).is_file():
        return False
    import sqlite3

    from bot.store.legacy import to_v3

    db = sqlite3.connect(path, isolation_level=None)
    try:
        return to_v3(db)
    finally:
        db.close()
