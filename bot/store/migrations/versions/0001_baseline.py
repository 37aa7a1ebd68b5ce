"""Baseline.

The schema of SQLite state files version 3 (before SQLAlchemy).

A SQLite file written by an older Flowbot is first brought to version 3 by
:mod:`bot.store.legacy`, then stamped with this revision.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "snapshot",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("session", sa.Text, nullable=False),
        sa.Column("observed_at", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("hist_id", ID),
        sa.Column("chain", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "snapshot_history",
        sa.Column("id", ID, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("session", sa.Text, nullable=False),
        sa.Column("observed_at", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("z", sa.LargeBinary),
        sa.Column("base", ID),
    )
    op.create_index("snapshot_history_session", "snapshot_history", ["session"])
    op.create_table(
        "alert",
        sa.Column("id", ID, primary_key=True),
        *(
            sa.Column(name, sa.Text, nullable=False)
            for name in ("alert_key", "rule", "kind", "symbol")
        ),
        sa.Column("board", sa.Text),
        *(
            sa.Column(name, sa.Text, nullable=False)
            for name in ("state", "session", "occurred_at", "created_at", "reason", "summary")
        ),
        sa.Column("thread_parent", sa.Text),
        sa.Column("follow_up", sa.Integer, nullable=False, server_default="0"),
        *(sa.Column(name, sa.Text) for name in ("severity", "sent_at", "silence_id")),
    )
    op.create_index("alert_key_state", "alert", ["alert_key", "state", "created_at"])
    op.create_index("alert_session", "alert", ["session"])
    op.create_table(
        "outbox",
        sa.Column("id", ID, primary_key=True),
        sa.Column("dedupe_key", sa.Text, nullable=False, unique=True),
        *(
            sa.Column(name, sa.Text, nullable=False)
            for name in ("destination", "category", "payload")
        ),
        sa.Column("meta", sa.Text, nullable=False, server_default="{}"),
        sa.Column("thread_parent", sa.Text),
        sa.Column("session", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Text),
        sa.Column("state", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        *(
            sa.Column(name, sa.Text)
            for name in ("last_error", "sent_at", "channel", "ts", "permalink")
        ),
    )
    op.create_index("outbox_queue", "outbox", ["destination", "state", "id"])
    op.create_table(
        "outbox_alert",
        sa.Column(
            "outbox_id", ID, sa.ForeignKey("outbox.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("alert_id", ID, sa.ForeignKey("alert.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("outbox_alert_alert", "outbox_alert", ["alert_id"])
    op.create_table(
        "silence",
        sa.Column("id", ID, primary_key=True),
        *(
            sa.Column(name, sa.Text, nullable=False)
            for name in ("matchers", "starts_at", "ends_at", "comment", "created_by")
        ),
    )
    op.create_table(
        "job_run",
        sa.Column("job", sa.Text, primary_key=True),
        sa.Column("session", sa.Text, primary_key=True),
        sa.Column("done_at", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
    )


def downgrade() -> None:
    for table in ("job_run", "silence", "outbox_alert", "outbox", "alert", "snapshot_history"):
        op.drop_table(table)
    op.drop_table("snapshot")
