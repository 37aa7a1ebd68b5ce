"""Schema migrations on start: Alembic revisions in ``bot/store/migrations/versions``.

:func:`upgrade` runs at every :class:`bot.store.Store` open. A database already at
:data:`HEAD` costs one query (Alembic itself is imported only when there is work to do). An
empty database (every ``--dry-run``, every first start, every test) is created at once from
:data:`bot.store.schema.metadata` and stamped :data:`HEAD`, without Alembic (about 0.2 s of
start-up and 10 MB that would stay imported); a test checks that this schema and the one the
revisions build are the same. Any other database gets the revisions it lacks; a SQLite file
from before Alembic is first brought to the baseline by :mod:`bot.store.legacy` and stamped,
so it migrates in place. Several replicas starting at once on PostgreSQL take a
transaction-scoped advisory lock, so one creates or migrates and the others then find the
schema current.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    inspect,
    text,
)
from sqlalchemy.exc import DBAPIError

from bot.store.schema import metadata

__all__ = ["HEAD", "current_revision", "upgrade"]

HEAD = "0003"
"""The newest revision; a test checks it matches the versions directory."""
BASELINE = "0001"
MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 0x666C6F77_6D696772  # "flowmigr": serialises replicas migrating one database

log = logging.getLogger("flowbot.store")

VERSION = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
"""Alembic's own version table, as ``alembic.ddl.impl.DefaultImpl.version_table_impl``
makes it: the fast path writes it so that Alembic later finds the database at :data:`HEAD`."""


def current_revision(conn: Connection) -> str | None:
    """The database's Alembic revision, or ``None`` when it has none yet."""
    try:
        with conn.begin_nested():
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except DBAPIError:
        return None
    return str(row[0]) if row else None


def upgrade(engine: Engine, *, fast: bool = True) -> None:
    """Bring the database behind ``engine`` to :data:`HEAD` in place.

    An empty database (no table or view at all) is created from the schema's ``MetaData``
    and stamped :data:`HEAD` in one transaction, unless ``fast`` is false: then every
    revision runs, as on a database older than :data:`HEAD` (the test that both ways build
    the same schema). A later revision (``0004``) upgrades a database made either way alike:
    Alembic reads the version row and runs what comes after it.

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
        created = fast and before is None and not legacy and _empty(conn)
        if created:
            _create(conn)
        else:
            before = _revisions(conn, before, legacy=legacy)
    if created:
        log.info("state: schema created at %s", HEAD)
    else:
        log.info("state: schema migrated from %s to %s", before or "empty", HEAD)


def _empty(conn: Connection) -> bool:
    """True when the database has no table and no view at all (in PostgreSQL's current
    schema): not even an ``alembic_version`` without a row. Anything else, a legacy SQLite
    file or another program's tables, goes through the revisions as before."""
    found = inspect(conn)
    return not found.get_table_names() and not found.get_view_names()


def _create(conn: Connection) -> None:
    """Create every table of the schema and stamp :data:`HEAD`, on ``conn`` in its
    transaction. ``checkfirst=False``: a table that appeared meanwhile is an error, not a
    table silently kept as it is."""
    metadata.create_all(conn, checkfirst=False)
    VERSION.create(conn, checkfirst=False)
    conn.execute(VERSION.insert().values(version_num=HEAD))


def _revisions(conn: Connection, before: str | None, *, legacy: bool) -> str | None:
    """Alembic's upgrade from ``before`` to :data:`HEAD` on ``conn``; a ``legacy`` SQLite
    file (already at version 3) is stamped at the baseline first. Returns the revision the
    upgrade started from."""
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
    return before


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
