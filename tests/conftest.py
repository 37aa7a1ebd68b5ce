"""Fixtures shared by the whole suite.

``postgres`` is one real PostgreSQL server for the session (see ``tests/support/postgres.py``),
started the first time a test asks for it, so tests that do not need it do not pay for it.
``pg_url`` is a fresh, empty database on it for each test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.postgres import PostgresServer


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server on 127.0.0.1; stopped and deleted after the last test."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """SQLAlchemy URL of a new empty database, ``postgresql+psycopg://flowbot@127.0.0.1:PORT/…``."""
    return postgres.create_database()
