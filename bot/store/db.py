"""The state database's connection: a SQLAlchemy ``Engine`` for SQLite or PostgreSQL.

- ``sqlite:///path`` (or a bare path, or ``":memory:"``): WAL journal, foreign keys on, and
  every transaction ``BEGIN IMMEDIATE`` so two writers queue instead of failing mid-way.
- ``postgresql://…`` (driver psycopg 3): the password comes from ``PGPASSWORD`` (or the
  password the caller read from a secret), never from the URL in the config; TCP keepalives
  and a user timeout so a vanished server or peer is noticed in seconds, not hours.

:func:`redacted` is the only form of a URL that may be logged or shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.pool import StaticPool

__all__ = ["WRITE", "connect", "redacted", "to_url"]

KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
    "connect_timeout": 5,
}
"""libpq settings: a dead server (or a network gone) is noticed within about 11 s."""
SERVER_OPTIONS = " ".join(
    f"-c {name}={value}"
    for name, value in (
        ("statement_timeout", 15_000),
        ("lock_timeout", 10_000),
        ("idle_in_transaction_session_timeout", 60_000),
        ("tcp_keepalives_idle", 5),
        ("tcp_keepalives_interval", 2),
        ("tcp_keepalives_count", 3),
    )
)
"""The server's side of every connection (PostgreSQL 12+): no query or lock wait holds the
bot's event loop for more than 15 s, and a replica whose host vanished mid-transaction has
its transaction (and its row locks) ended within about 11 s instead of hours."""
WRITE = "flowbot_write"
"""Execution option marking a connection that writes: SQLite begins it ``IMMEDIATE``."""


def to_url(target: Path | str | URL) -> URL:
    """``target`` as a SQLAlchemy URL: a URL string or object as given (``postgresql://``
    gets the psycopg driver), anything else a SQLite file path. Raises ``ValueError`` for a
    URL of another database."""
    if isinstance(target, URL):
        url = target
    elif isinstance(target, str) and "://" in target:
        url = make_url(target)
    elif str(target) == ":memory:":
        return make_url("sqlite://")
    else:
        return URL.create("sqlite", database=str(target))
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() != "sqlite":
        raise ValueError(f"unsupported database {url.get_backend_name()!r}: sqlite or postgresql")
    return url


def redacted(url: URL) -> str:
    """Where ``url`` points, for people: ``SQLite /path/state.sqlite3`` or ``PostgreSQL
    user@host:5432/db``. Never the password; the only form fit for logs, messages and the
    status page."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite {url.database or 'in memory'}"
    user = f"{url.username}@" if url.username else ""
    return f"PostgreSQL {user}{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def connect(url: URL, *, password: str | None = None) -> Engine:
    """An engine for ``url`` (see :func:`to_url`); ``password`` (PostgreSQL) overrides the
    environment's ``PGPASSWORD``. Creates a SQLite file's directory. Connecting is lazy:
    errors come with the first query (``sqlalchemy.exc.OperationalError``)."""
    if url.get_backend_name() == "postgresql":
        args: dict[str, Any] = {**KEEPALIVE, "options": SERVER_OPTIONS}
        if password:
            args["password"] = password
        return create_engine(
            url,
            connect_args=args,
            pool_pre_ping=True,
            pool_size=4,
            max_overflow=4,
            pool_timeout=10,
        )
    path = url.database or ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
    else:  # one in-memory database shared by every use of this engine
        engine = create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # transactions are ours (see _sqlite_begin)
    # A new file gives freed pages back at each commit (a delivered chart's bytes, a
    # response superseded); it takes effect only before the first table is made.
    dbapi_connection.execute("PRAGMA auto_vacuum=FULL")
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "busy_timeout=5000",
        "foreign_keys=ON",
    ):
        dbapi_connection.execute(f"PRAGMA {pragma}")


def _sqlite_begin(conn: Any) -> None:
    """Writers take SQLite's write lock up front (``BEGIN IMMEDIATE``: two writers queue on
    ``busy_timeout`` instead of failing mid-way); readers begin deferred and never hold it."""
    write = conn.get_execution_options().get(WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
