"""State files written by older releases open in place: a schema-1 file (before routing) and a
schema-3 file (before Alembic) keep their alert log, threads and queued rows, and end at the
newest Alembic revision."""

from __future__ import annotations

import sqlite3
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from bot.store import SnapshotRow, Store
from bot.store.legacy import SCHEMA as V3_SCHEMA
from bot.store.migrate import HEAD, MIGRATIONS

# The schema-1 DDL exactly as the last release before routing (30e8c97) shipped it.
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshot (
    source TEXT NOT NULL, key TEXT NOT NULL, session TEXT NOT NULL,
    observed_at TEXT NOT NULL, payload TEXT NOT NULL,
    PRIMARY KEY (source, key)
);
CREATE TABLE IF NOT EXISTS snapshot_history (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, key TEXT NOT NULL, session TEXT NOT NULL,
    observed_at TEXT NOT NULL, payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshot_history_session ON snapshot_history (session, source, key);
CREATE TABLE IF NOT EXISTS alert (
    id INTEGER PRIMARY KEY, alert_key TEXT NOT NULL, rule TEXT NOT NULL, kind TEXT NOT NULL,
    symbol TEXT NOT NULL, board TEXT, state TEXT NOT NULL, session TEXT NOT NULL,
    occurred_at TEXT NOT NULL, created_at TEXT NOT NULL, reason TEXT NOT NULL,
    summary TEXT NOT NULL, thread_parent TEXT, follow_up INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS alert_key_state ON alert (alert_key, state, created_at);
CREATE INDEX IF NOT EXISTS alert_session ON alert (session);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, dedupe_key TEXT NOT NULL UNIQUE, alert_id INTEGER REFERENCES alert(id),
    destination TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
    thread_parent TEXT, session TEXT NOT NULL, created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT NOT NULL, last_error TEXT,
    sent_at TEXT, channel TEXT, ts TEXT, permalink TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (sent_at, next_attempt_at);
CREATE TABLE IF NOT EXISTS job_run (
    job TEXT NOT NULL, session TEXT NOT NULL, done_at TEXT NOT NULL, detail TEXT,
    PRIMARY KEY (job, session)
);
"""


def test_schema_1_file_migrates_in_place(tmp_path: Path) -> None:
    """Alerts, their Slack ts and a pending row of a schema-1 file work after the upgrade."""
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.executescript(
        """
        INSERT INTO alert VALUES (1, 'regime_flip:-:SPY', 'regime_flip', 'regime_flip', 'SPY',
            NULL, 'regime_flip', '2026-06-05', '2026-06-05T14:32:00+00:00',
            '2026-06-05T14:32:05+00:00', 'first_notification', 'SPY flip', NULL, 0);
        INSERT INTO alert VALUES (2, 'candidate:-:NVDA', 'candidate', 'candidate', 'NVDA',
            NULL, 'candidate:bullish', '2026-06-05', '2026-06-05T15:05:00+00:00',
            '2026-06-05T15:05:05+00:00', 'first_notification', 'NVDA candidate', NULL, 0);
        INSERT INTO outbox (id, dedupe_key, alert_id, destination, kind, payload, session,
            created_at, next_attempt_at, sent_at, channel, ts) VALUES
            (1, 'alert:1:slack', 1, 'slack', 'regime_flip',
             '{"kind": "regime_flip", "text": "SPY flip", "blocks": []}', '2026-06-05',
             '2026-06-05T14:32:05+00:00', '2026-06-05T14:32:05+00:00',
             '2026-06-05T14:32:06+00:00', 'C1', '111.000001'),
            (2, 'alert:2:slack', 2, 'slack', 'candidate',
             '{"kind": "candidate", "text": "NVDA candidate", "blocks": []}', '2026-06-05',
             '2026-06-05T15:05:05+00:00', '2026-06-05T15:05:05+00:00', NULL, NULL, NULL);
        """
    )
    db.commit()
    db.close()

    store = Store(path)
    records = {a.symbol: a for a in store.alerts("2026-06-05")}
    assert records["SPY"].outcome == "sent" and records["SPY"].ts == "111.000001"
    assert records["NVDA"].outcome == "pending" and records["NVDA"].sent_at is None
    assert store.thread_of("regime_flip:-:SPY", "2026-06-05", "slack") == (
        "sent",
        "111.000001",
        "C1",
    )
    (pending,) = store.pending("slack")
    assert pending.payload["message"]["text"] == "NVDA candidate"
    store.close()
    assert _revision(path) == HEAD
    Store(path).close()  # opening again is a no-op
    assert _revision(path) == HEAD


def _revision(path: Path) -> str:
    with create_engine(f"sqlite:///{path}").connect() as conn:
        return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


def test_schema_3_file_gets_claims_and_keeps_its_queue_and_history(tmp_path: Path) -> None:
    """The last file format before Alembic: a queued alert is still delivered (claimable),
    and its response history (plain and compressed rows) plays back, then grows."""
    path = tmp_path / "v3.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(V3_SCHEMA)
    db.executescript(
        """
        INSERT INTO outbox (id, dedupe_key, destination, category, payload, session, created_at)
        VALUES (7, 'alert:7:slack', 'slack', 'alert',
                '{"type": "message", "message": {"text": "SPY flip"}}', '2026-06-05',
                '2026-06-05T14:32:05+00:00');
        PRAGMA user_version = 3;
        """
    )
    # Two responses of SPY's summary: a plain-text row (schema 2) and, against it, a
    # zlib-compressed one (schema 3).
    first = b'{"flow_direction":"neutral"}'
    packer = zlib.compressobj(9, zdict=first)
    second = packer.compress(b'{"flow_direction":"regime_flip"}') + packer.flush()
    db.execute(
        "INSERT INTO snapshot_history (id, source, key, session, observed_at, payload, z, base)"
        " VALUES (1, 'summary', 'SPY', '2026-06-05', '2026-06-05T14:30:00+00:00', ?, NULL,"
        " NULL), (2, 'summary', 'SPY', '2026-06-05', '2026-06-05T14:32:00.500000+00:00', '',"
        " ?, 1)",
        (first.decode(), second),
    )
    db.execute(
        "INSERT INTO snapshot (source, key, session, observed_at, payload, hist_id, chain)"
        " VALUES ('summary', 'SPY', '2026-06-05', '2026-06-05T14:32:00.500000+00:00',"
        ' \'{"flow_direction":"regime_flip"}\', 2, 1)'
    )
    db.commit()
    db.close()
    store = Store(path)
    now = datetime(2026, 6, 5, 14, 33, tzinfo=UTC)
    item = store.claim("slack", owner="a", now=now, lease=timedelta(seconds=30))
    assert item is not None and item.id == 7 and item.payload["message"]["text"] == "SPY flip"
    played = [(r.observed_at, r.payload["flow_direction"]) for r in store.history("2026-06-05")]
    assert played == [
        (datetime(2026, 6, 5, 14, 30, tzinfo=UTC), "neutral"),
        (datetime(2026, 6, 5, 14, 32, 0, 500000, tzinfo=UTC), "regime_flip"),
    ]
    # The next response is stored against the migrated chain and reads back.
    later = datetime(2026, 6, 5, 14, 40, tzinfo=UTC)
    row = SnapshotRow("summary", "SPY", "2026-06-05", later, {"flow_direction": "neutral"})
    store.commit_cycle(session="2026-06-05", now=later, snapshots=[row])
    assert [r.payload["flow_direction"] for r in store.history("2026-06-05")] == [
        "neutral",
        "regime_flip",
        "neutral",
    ]
    store.close()
    assert _revision(path) == HEAD
    columns = {c["name"] for c in inspect(create_engine(f"sqlite:///{path}")).get_columns("outbox")}
    assert {"claimed_by", "claimed_until"} <= columns


def test_head_is_the_newest_revision_file() -> None:
    """A new revision file must move HEAD (the start-up fast path compares against it)."""
    revisions = sorted(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("*.py"))
    assert revisions[-1] == HEAD
