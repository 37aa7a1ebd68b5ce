"""Compact response history.

``series`` (source, key, session) and ``history`` rows of (series id, Unix-ms time, packed
payload, base row). Each stored response loses about 60 bytes of repeated text (source, key,
session and an ISO time) and the session index shrinks to an integer one. Rows are copied
with their ids (the ``base`` chains and ``snapshot.hist_id`` keep pointing at them); old
plain-text payloads become zlib keyframes, which :mod:`bot.store.codec` reads like any older
row.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import zlib
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BATCH = 5000


def upgrade() -> None:
    series = op.create_table(
        "series",
        sa.Column("id", ID, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("session", sa.Text, nullable=False),
        sa.UniqueConstraint("session", "source", "key", name="series_session_source_key"),
    )
    history = op.create_table(
        "history",
        sa.Column("id", ID, primary_key=True),
        sa.Column("series", ID, nullable=False),
        sa.Column("observed", sa.BigInteger, nullable=False),
        sa.Column("z", sa.LargeBinary, nullable=False),
        sa.Column("base", ID),
    )
    op.create_index("history_series", "history", ["series"])
    assert series is not None and history is not None
    _copy(op.get_bind(), series, history)
    op.drop_index("snapshot_history_session", "snapshot_history")
    op.drop_table("snapshot_history")


def _copy(conn: sa.Connection, series: sa.Table, history: sa.Table) -> None:
    old = sa.table(
        "snapshot_history",
        *(sa.column(c) for c in ("id", "source", "key", "session", "observed_at", "payload")),
        sa.column("z", sa.LargeBinary),
        sa.column("base", sa.Integer),
    )
    ids: dict[tuple[str, str, str], int] = {}
    last = 0
    while True:
        rows = conn.execute(
            sa.select(old).where(old.c.id > last).order_by(old.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        batch = []
        for r in rows:
            name = (r.source, r.key, r.session)
            if name not in ids:
                ids[name] = conn.execute(
                    series.insert().returning(series.c.id),
                    {"source": r.source, "key": r.key, "session": r.session},
                ).scalar_one()
            plain = r.z is None
            batch.append(
                {
                    "id": r.id,
                    "series": ids[name],
                    "observed": int(datetime.fromisoformat(r.observed_at).timestamp() * 1000),
                    "z": zlib.compress(str(r.payload).encode(), 9) if plain else r.z,
                    "base": None if plain else r.base,
                }
            )
        conn.execute(history.insert(), batch)
        last = rows[-1].id
    if conn.dialect.name == "postgresql" and last:
        conn.execute(
            sa.text("SELECT setval(pg_get_serial_sequence('history', 'id'), :n)"), {"n": last}
        )


def downgrade() -> None:
    raise NotImplementedError("the compact history is not converted back")
