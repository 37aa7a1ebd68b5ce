"""An empty database is created straight from ``bot.store.schema`` (no Alembic); the Alembic
revisions must build exactly the same schema, on SQLite and PostgreSQL alike.

A table, column, type, default, key, index or constraint added to ``schema.py`` without its
revision (or the other way round) fails :func:`test_schema_created_equals_schema_migrated`;
Alembic's autogenerate comparison runs too, though it misses a few of those (a dropped
``unique`` on SQLite, column order).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text

from bot.store import Store
from bot.store.db import connect, to_url
from bot.store.migrate import HEAD, MIGRATIONS, upgrade
from bot.store.schema import metadata

ROOT = Path(__file__).resolve().parents[1]
SQLITE_PRAGMAS = ("auto_vacuum", "journal_mode", "user_version", "encoding", "foreign_keys")


@pytest.fixture
def other_target(store_target: Path | str, request: pytest.FixtureRequest) -> Path | str:
    """A second new, empty database on ``store_target``'s backend."""
    if isinstance(store_target, Path):
        return store_target.with_name("other.sqlite3")
    return str(request.getfixturevalue("postgres").create_database())


def _built(target: Path | str, *, fast: bool) -> Engine:
    engine = connect(to_url(target))
    upgrade(engine, fast=fast)
    return engine


def _schema(engine: Engine) -> dict[str, Any]:
    """Everything a schema is made of, as the database reports it (types compiled by its
    dialect; columns in their order), plus Alembic's version row and, on SQLite, the
    file-level pragmas: one entry per table and aspect, so a difference names its place."""
    with engine.connect() as conn:
        found = inspect(conn)
        dialect = conn.dialect
        described: dict[str, Any] = {
            "tables": sorted(found.get_table_names()),
            "views": sorted(found.get_view_names()),
            "alembic_version rows": conn.execute(
                text("SELECT version_num FROM alembic_version")
            ).all(),
        }
        for name in described["tables"]:
            described[f"{name}: columns"] = [
                (
                    c["name"],
                    c["type"].compile(dialect=dialect),
                    "NULL" if c["nullable"] else "NOT NULL",
                    c["default"],
                    c.get("autoincrement"),
                )
                for c in found.get_columns(name)
            ]
            described[f"{name}: primary key"] = found.get_pk_constraint(name)
            described[f"{name}: indexes"] = sorted(
                (i["name"], tuple(i["column_names"]), i["unique"]) for i in found.get_indexes(name)
            )
            described[f"{name}: unique constraints"] = sorted(
                (u["name"] or "", tuple(u["column_names"]))
                for u in found.get_unique_constraints(name)
            )
            described[f"{name}: foreign keys"] = sorted(
                (
                    fk["name"] or "",
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    sorted(fk["options"].items()),
                )
                for fk in found.get_foreign_keys(name)
            )
            described[f"{name}: checks"] = sorted(
                (c["name"] or "", c["sqltext"]) for c in found.get_check_constraints(name)
            )
        if dialect.name == "postgresql":
            described["sequences"] = sorted(found.get_sequence_names())
        else:
            described["sqlite_master"] = conn.execute(
                text("SELECT type, name, tbl_name FROM sqlite_master ORDER BY type, name")
            ).all()
            for pragma in SQLITE_PRAGMAS:
                described[f"PRAGMA {pragma}"] = conn.exec_driver_sql(f"PRAGMA {pragma}").scalar()
    return described


def test_schema_created_equals_schema_migrated(
    store_target: Path | str, other_target: Path | str
) -> None:
    """Created from ``schema.py`` or by every revision: the same tables, columns (in the same
    order: a revision's new column goes last in ``schema.py`` too), keys, indexes,
    constraints, version row, and on SQLite the same pragmas (``auto_vacuum=FULL``)."""
    created, migrated = _built(store_target, fast=True), _built(other_target, fast=False)
    try:
        fast, slow = _schema(created), _schema(migrated)
    finally:
        created.dispose()
        migrated.dispose()
    drift = [
        f"{aspect}:\n  schema.py  {fast.get(aspect)!r}\n  revisions  {slow.get(aspect)!r}"
        for aspect in sorted(fast.keys() | slow.keys())
        if fast.get(aspect) != slow.get(aspect)
    ]
    heading = "schema.py and the revisions differ (a change without its revision?)"
    assert not drift, "\n".join([heading, *drift])
    assert fast["alembic_version rows"] == [(HEAD,)]
    if created.dialect.name == "sqlite":
        assert fast["PRAGMA auto_vacuum"] == 1  # FULL


def test_revisions_leave_nothing_for_autogenerate(store_target: Path | str) -> None:
    """Alembic's own comparison of ``schema.py`` with a migrated database finds nothing to
    do (types and server defaults compared too)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = _built(store_target, fast=False)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("before", "message"),
    [
        # Nothing at all: the fast path.
        ("", f"schema created at {HEAD}"),
        # Another program's table: not ours to judge, the revisions run beside it.
        ("CREATE TABLE notes (body TEXT)", f"schema migrated from empty to {HEAD}"),
        # A view is something too.
        ("CREATE VIEW answer AS SELECT 42 AS n", f"schema migrated from empty to {HEAD}"),
        # A version table without its row (an interrupted stamp): the revisions run.
        (
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)",
            f"schema migrated from empty to {HEAD}",
        ),
    ],
    ids=["empty", "foreign-table", "view", "empty-version-table"],
)
def test_only_an_empty_database_takes_the_fast_path(
    store_target: Path | str, before: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Only a database with no table at all is created from ``schema.py``; it ends at HEAD
    either way."""
    if before:
        engine = connect(to_url(store_target))
        with engine.begin() as conn:
            conn.execute(text(before))
        engine.dispose()
    caplog.set_level(logging.INFO, logger="flowbot.store")
    Store(store_target).close()
    assert f"state: {message}" in caplog.messages
    engine = connect(to_url(store_target))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [(HEAD,)]
    engine.dispose()


def test_replicas_opening_a_new_database_together_create_it_once(
    store_target: Path | str, caplog: pytest.LogCaptureFixture
) -> None:
    """Four stores opening one empty database at the same moment: one creates the schema,
    the others wait (PostgreSQL's advisory lock, SQLite's write lock) and find it current."""
    caplog.set_level(logging.INFO, logger="flowbot.store")
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: Store(store_target), range(4)))
    for store in stores:
        store.close()
    assert [m for m in caplog.messages if m.startswith("state: schema")] == [
        f"state: schema created at {HEAD}"
    ]


def test_a_later_revision_upgrades_a_created_database(
    store_target: Path | str, tmp_path: Path
) -> None:
    """A future revision after HEAD runs on a database the fast path made: Alembic reads
    its version row and runs only what comes after."""
    from alembic import command
    from alembic.config import Config

    engine = _built(store_target, fast=True)
    scripts = tmp_path / "migrations"
    (scripts / "versions").mkdir(parents=True)
    (scripts / "env.py").write_text((MIGRATIONS / "env.py").read_text())
    for revision in (MIGRATIONS / "versions").glob("*.py"):
        (scripts / "versions" / revision.name).write_text(revision.read_text())
    (scripts / "versions" / "9999_later.py").write_text(
        "import sqlalchemy as sa\nfrom alembic import op\n"
        f"revision = '9999'\ndown_revision = {HEAD!r}\n"
        "branch_labels = depends_on = None\n\n\n"
        "def upgrade() -> None:\n    op.add_column('outbox', sa.Column('later', sa.Text))\n"
    )
    try:
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(scripts))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
                ("9999",)
            ]
            assert "later" in {c["name"] for c in inspect(conn).get_columns("outbox")}
    finally:
        engine.dispose()


def test_opening_a_new_store_does_not_import_alembic(tmp_path: Path) -> None:
    """A new store (in memory as ``--dry-run`` uses, or a first file) and a current one are
    opened without importing Alembic: ~0.2 s of start-up and ~10 MB that would stay."""
    script = (
        "import sys\n"
        "from bot.store import Store\n"
        "Store(':memory:').close()\n"
        f"Store({str(tmp_path / 'new.sqlite3')!r}).close()\n"
        f"Store({str(tmp_path / 'new.sqlite3')!r}).close()\n"
        "print('alembic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "False"
