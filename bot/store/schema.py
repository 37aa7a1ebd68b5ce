"""The state database's tables, as SQLAlchemy Core ``Table`` objects (both dialects).

Times are UTC ISO-8601 text (they sort as text on SQLite and PostgreSQL alike, and SQLite
files written before SQLAlchemy keep working); ``session`` is the New York trading date
(``YYYY-MM-DD``). Migrations (:mod:`bot.store.migrations`) create and change these tables;
an empty database is created from this module at once (:func:`bot.store.migrate.upgrade`). A
change here therefore needs its revision too: ``tests/test_store_schema.py`` fails when the
two schemas differ.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "ID",
    "alert",
    "history",
    "job_run",
    "metadata",
    "outbox",
    "outbox_alert",
    "replica",
    "series",
    "silence",
    "snapshot",
]

ID = BigInteger().with_variant(Integer(), "sqlite")
"""Row ids: ``BIGSERIAL`` on PostgreSQL, SQLite's ``INTEGER PRIMARY KEY`` (its rowid)."""

metadata = MetaData()

snapshot = Table(
    "snapshot",
    metadata,
    Column("source", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("session", Text, nullable=False),
    Column("observed_at", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("hist_id", ID),
    Column("chain", Integer, nullable=False, server_default="0"),
)
"""The latest response per (source, key): ``payload`` is its canonical JSON text."""

series = Table(
    "series",
    metadata,
    Column("id", ID, primary_key=True),
    Column("source", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("session", Text, nullable=False),
    UniqueConstraint("session", "source", "key", name="series_session_source_key"),
)
"""One (source, key) during one session: what a history row belongs to."""

history = Table(
    "history",
    metadata,
    Column("id", ID, primary_key=True),
    Column("series", ID, nullable=False),
    Column("observed", BigInteger, nullable=False),
    Column("z", LargeBinary, nullable=False),
    Column("base", ID),
    Index("history_series", "series"),
)
"""Each distinct response of a series once, in the order observed: ``observed`` is Unix
milliseconds (UTC); ``z`` the payload packed by :mod:`bot.store.codec` against row ``base``
(whole when ``base`` is null)."""

alert = Table(
    "alert",
    metadata,
    Column("id", ID, primary_key=True),
    Column("alert_key", Text, nullable=False),
    Column("rule", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("symbol", Text, nullable=False),
    Column("board", Text),
    Column("state", Text, nullable=False),
    Column("session", Text, nullable=False),
    Column("occurred_at", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("thread_parent", Text),
    Column("follow_up", Integer, nullable=False, server_default="0"),
    Column("severity", Text),
    Column("sent_at", Text),
    Column("silence_id", Text),
    Index("alert_key_state", "alert_key", "state", "created_at"),
    Index("alert_session", "session"),
)
"""The alert log: every alert the policy let through or a silence held."""

outbox = Table(
    "outbox",
    metadata,
    Column("id", ID, primary_key=True),
    Column("dedupe_key", Text, nullable=False, unique=True),
    Column("destination", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("meta", Text, nullable=False, server_default="{}"),
    Column("thread_parent", Text),
    Column("session", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("sent_at", Text),
    Column("channel", Text),
    Column("ts", Text),
    Column("permalink", Text),
    Column("claimed_by", Text),
    Column("claimed_until", Text),
    Index("outbox_queue", "destination", "state", "id"),
)
"""One row per (message, destination). ``claimed_by`` / ``claimed_until`` (UTC) is the
replica delivering the row and its lease (see :meth:`bot.store.Store.claim`)."""

outbox_alert = Table(
    "outbox_alert",
    metadata,
    Column("outbox_id", ID, ForeignKey("outbox.id", ondelete="CASCADE"), primary_key=True),
    Column("alert_id", ID, ForeignKey("alert.id", ondelete="CASCADE"), primary_key=True),
    Index("outbox_alert_alert", "alert_id"),
)
"""Which alerts an outbox row carries (a grouped message carries several)."""

silence = Table(
    "silence",
    metadata,
    Column("id", ID, primary_key=True),
    Column("matchers", Text, nullable=False),
    Column("starts_at", Text, nullable=False),
    Column("ends_at", Text, nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_by", Text, nullable=False),
)

job_run = Table(
    "job_run",
    metadata,
    Column("job", Text, primary_key=True),
    Column("session", Text, primary_key=True),
    Column("done_at", Text, nullable=False),
    Column("detail", Text),
)
"""Once-per-session jobs done (recap, digest)."""

replica = Table(
    "replica",
    metadata,
    Column("id", Text, primary_key=True),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("role", Text, nullable=False),
    Column("started_at", Text, nullable=False),
    Column("seen_at", Text, nullable=False),
    Column("leader_since", Text),
)
"""Each running ``flowbot run`` and its last heartbeat (UTC): the status page's cluster view.
``role`` is ``leader`` or ``follower``."""
