"""The suite's own PostgreSQL server (``tests/support/postgres.py``): reachable through
SQLAlchemy, one isolated database per test, gone after ``close()``, and a clear error when
PostgreSQL is not installed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support import postgres as postgres_module
from tests.support.postgres import PostgresServer, PostgresServerError


def test_the_fixture_server_answers_through_sqlalchemy(pg_url: str) -> None:
    assert pg_url.startswith("postgresql+psycopg://flowbot@127.0.0.1:")
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("select version()")).scalar_one()
            encoding = conn.execute(sa.text("show server_encoding")).scalar_one()
    finally:
        engine.dispose()
    assert version.startswith("PostgreSQL ")
    assert encoding == "UTF8"


def test_each_pg_url_is_its_own_database(postgres: PostgresServer, pg_url: str) -> None:
    other_url = postgres.create_database()
    assert other_url != pg_url
    first, other = sa.create_engine(pg_url), sa.create_engine(other_url)
    try:
        with first.begin() as conn:
            conn.execute(sa.text("create table alerts (id integer primary key)"))
            conn.execute(sa.text("insert into alerts values (1)"))
        assert sa.inspect(first).has_table("alerts")
        assert not sa.inspect(other).has_table("alerts")
    finally:
        first.dispose()
        other.dispose()


def _accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def _running(pid: int) -> bool:
    """Whether ``pid`` is alive: a zombie (exited, not yet reaped by PID 1, as the daemonised
    postmaster is in containers whose init does not reap) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_close_stops_the_server_and_deletes_its_directory() -> None:
    server = PostgresServer().start()
    port, directory = server.port, server.directory
    postmaster = int((directory / "data" / "postmaster.pid").read_text().split()[0])
    assert _running(postmaster)
    engine = sa.create_engine(server.create_database())
    with engine.connect() as conn:
        assert conn.execute(sa.text("select 1")).scalar_one() == 1
    engine.dispose()

    server.close()
    server.close()  # idempotent

    assert not _accepts_connections(port)
    assert not _running(postmaster)
    assert not directory.exists()
    with pytest.raises(PostgresServerError, match="not running"):
        server.create_database()


def test_missing_postgresql_fails_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(postgres_module, "DEBIAN_BIN_DIRS", f"{tmp_path}/*/bin")
    with pytest.raises(PostgresServerError, match="apt-get install postgresql"):
        PostgresServer()
