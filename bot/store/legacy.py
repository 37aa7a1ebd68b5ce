"""SQLite state files written before SQLAlchemy and Alembic (``PRAGMA user_version`` 1 to 3).

:func:`to_v3` brings a version 1 or 2 file to version 3 in place, in one transaction; version
3 is Alembic's baseline revision ``0001`` (:mod:`bot.store.migrate` stamps it). Kept as the
SQL those versions shipped with: it runs on old files only.
"""

from __future__ import annotations

import sqlite3

__all__ = ["LEGACY_VERSION", "to_v3"]

LEGACY_VERSION = 3
"""The last ``PRAGMA user_version`` before Alembic."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshot (
    source TEXT NOT NULL, key TEXT NOT NULL, session TEXT NOT NULL,
    observed_at TEXT NOT NULL, payload TEXT NOT NULL, hist_id INTEGER,
    chain INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (source, key)
);
CREATE TABLE IF NOT EXISTS snapshot_history (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, key TEXT NOT NULL, session TEXT NOT NULL,
    observed_at TEXT NOT NULL, payload TEXT NOT NULL, z BLOB, base INTEGER
);
CREATE INDEX IF NOT EXISTS snapshot_history_session ON snapshot_history (session);
CREATE TABLE IF NOT EXISTS alert (
    id INTEGER PRIMARY KEY, alert_key TEXT NOT NULL, rule TEXT NOT NULL, kind TEXT NOT NULL,
    symbol TEXT NOT NULL, board TEXT, state TEXT NOT NULL, session TEXT NOT NULL,
    occurred_at TEXT NOT NULL, created_at TEXT NOT NULL, reason TEXT NOT NULL,
    summary TEXT NOT NULL, thread_parent TEXT, follow_up INTEGER NOT NULL DEFAULT 0,
    severity TEXT, sent_at TEXT, silence_id TEXT
);
CREATE INDEX IF NOT EXISTS alert_key_state ON alert (alert_key, state, created_at);
CREATE INDEX IF NOT EXISTS alert_session ON alert (session);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, dedupe_key TEXT NOT NULL UNIQUE, destination TEXT NOT NULL,
    category TEXT NOT NULL, payload TEXT NOT NULL, meta TEXT NOT NULL DEFAULT '{}',
    thread_parent TEXT, session TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT,
    state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, sent_at TEXT, channel TEXT, ts TEXT, permalink TEXT
);
CREATE INDEX IF NOT EXISTS outbox_queue ON outbox (destination, state, id);
CREATE TABLE IF NOT EXISTS outbox_alert (
    outbox_id INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    alert_id INTEGER NOT NULL REFERENCES alert(id) ON DELETE CASCADE,
    PRIMARY KEY (outbox_id, alert_id)
);
CREATE INDEX IF NOT EXISTS outbox_alert_alert ON outbox_alert (alert_id);
CREATE TABLE IF NOT EXISTS silence (
    id INTEGER PRIMARY KEY, matchers TEXT NOT NULL, starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL, comment TEXT NOT NULL, created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS job_run (
    job TEXT NOT NULL, session TEXT NOT NULL, done_at TEXT NOT NULL, detail TEXT,
    PRIMARY KEY (job, session)
);
"""

MIGRATE_1_TO_2 = (
    """
ALTER TABLE outbox RENAME TO outbox_v1;
DROP INDEX IF EXISTS outbox_pending;
ALTER TABLE alert ADD COLUMN severity TEXT;
ALTER TABLE alert ADD COLUMN sent_at TEXT;
ALTER TABLE alert ADD COLUMN silence_id TEXT;
"""
    + SCHEMA
    + """
INSERT INTO outbox (id, dedupe_key, destination, category, payload, thread_parent, session,
    created_at, state, attempts, last_error, sent_at, channel, ts, permalink)
SELECT id, dedupe_key, destination,
    CASE WHEN alert_id IS NULL THEN 'recap' ELSE 'alert' END,
    json_object('type', 'message', 'message', json(payload)), thread_parent, session,
    created_at, CASE WHEN sent_at IS NULL THEN 'pending' ELSE 'sent' END, attempts, last_error,
    sent_at, channel, ts, permalink
FROM outbox_v1;
INSERT INTO outbox_alert (outbox_id, alert_id)
    SELECT id, alert_id FROM outbox_v1 WHERE alert_id IS NOT NULL;
UPDATE alert SET sent_at = (SELECT o.sent_at FROM outbox_v1 o WHERE o.alert_id = alert.id);
DROP TABLE outbox_v1;
"""
)
"""Version 1 (before routing): one outbox row per alert, ``alert_id`` on the row."""

MIGRATE_2_TO_3 = """
DROP INDEX IF EXISTS snapshot_history_session;
CREATE INDEX snapshot_history_session ON snapshot_history (session);
ALTER TABLE snapshot ADD COLUMN hist_id INTEGER;
ALTER TABLE snapshot ADD COLUMN chain INTEGER NOT NULL DEFAULT 0;
ALTER TABLE snapshot_history ADD COLUMN z BLOB;
ALTER TABLE snapshot_history ADD COLUMN base INTEGER;
"""
"""Version 2 stored history payloads as plain JSON text; those rows stay readable as they are."""


def to_v3(db: sqlite3.Connection) -> bool:
    """Bring a pre-Alembic SQLite file (``db``, a raw sqlite3 connection) to version 3.

    Returns ``True`` when the file holds Flowbot tables from before Alembic (then Alembic's
    baseline should be stamped), ``False`` for an empty file. Raises ``sqlite3.Error`` on a
    broken file (nothing is changed then)."""
    has_outbox = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'"
    ).fetchone()
    has_alembic = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ).fetchone()
    if not has_outbox or has_alembic:
        return False
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version < LEGACY_VERSION:
        script = MIGRATE_1_TO_2 + MIGRATE_2_TO_3 if version < 2 else MIGRATE_2_TO_3
        db.executescript(
            f"BEGIN IMMEDIATE; {script}; PRAGMA user_version = {LEGACY_VERSION}; COMMIT;"
        )
    return True
