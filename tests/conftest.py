"""Fixtures shared by the whole suite.

``postgres`` is one real PostgreSQL server for the session (see ``tests/support/postgres.py``),
started the first time a test asks for it, so tests that do not need it do not pay for it.
``pg_url`` is a fresh, empty database on it for each test.

``store_target`` is what :class:`bot.store.Store` opens, once per backend: a new SQLite file
(id ``sqlite``) or a new PostgreSQL database (id ``postgresql``); ``store`` is a ``Store``
open on it. A test that takes either runs on both; ``-k sqlite`` never starts PostgreSQL.

Every test runs with ``XDG_CACHE_HOME`` set to a temporary directory of the session (and so do
the processes the tests start, which inherit it), so the calendar cache of ``bot.calendar``
never writes into the user's ``~/.cache``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store import Store
from tests.support.postgres import PostgresServer

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session", autouse=True)
def _xdg_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``XDG_CACHE_HOME`` for the whole session: a temporary directory, not ``~/.cache``."""
    path = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(path))
        yield path


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server on 127.0.0.1; stopped and deleted after the last test."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """SQLAlchemy URL of a new empty database, ``postgresql+psycopg://flowbot@127.0.0.1:PORT/…``."""
    return postgres.create_database()


@pytest.fixture(params=BACKENDS, ids=BACKENDS)
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A new, empty state database: a SQLite file path, or a PostgreSQL URL (the server is
    started only when a ``postgresql`` case runs). Open it as many times as a test needs."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    if request.param == "sqlite":
        return tmp_path / "state.sqlite3"
    raise ValueError(f"unknown backend {request.param!r}: one of {', '.join(BACKENDS)}")


@pytest.fixture
def store(store_target: Path | str) -> Iterator[Store]:
    """A :class:`Store` open (and migrated) on ``store_target``; closed after the test."""
    opened = Store(store_target)
    try:
        yield opened
    finally:
        opened.close()
