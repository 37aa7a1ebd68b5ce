"""SQLite state: last snapshot per source and key, snapshot history, the alert log and the outbox.

The only module that speaks SQL. An alert's outbox row is written in the same transaction as
the snapshot change it came from, and marked sent only after the destination confirmed, so a
restart neither repeats an alert nor loses one. Times are stored as UTC ISO-8601 text;
``session`` is the New York trading date (``YYYY-MM-DD``) a row belongs to.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.events import AlertRecord, Event, SlackMessage

__all__ = ["OutboxItem", "SnapshotRow", "Store"]

SCHEMA = """
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


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """One source's latest response for one key: ``source`` (``summary``, ``anomaly``,
    ``options_leaderboard``, ``zero_dte_leaderboard``), ``key`` (a symbol, a metric or ``-``),
    ``observed_at`` UTC, ``payload`` the response as JSON-ready dict (wire field names)."""

    source: str
    key: str
    session: str
    observed_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A message waiting for (or done with) delivery to ``destination``.

    ``message`` is the rendered post; ``thread_parent`` the ``alert_key`` whose thread it
    belongs in; ``attempts`` failed tries so far."""

    id: int
    dedupe_key: str
    alert_id: int | None
    destination: str
    message: SlackMessage
    thread_parent: str | None
    session: str
    attempts: int


class Store:
    """The bot's SQLite database at ``path`` (``":memory:"`` for a throwaway one).

    Single-threaded by design: the bot's event loop owns it. Raises ``sqlite3.Error`` on a
    broken file; a new file gets the schema on open.
    """

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the database file."""
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- snapshots --------------------------------------------------------------------------

    def snapshots(self, session: str) -> list[SnapshotRow]:
        """The latest snapshot per (source, key) recorded during ``session``."""
        rows = self._db.execute(
            "SELECT source, key, session, observed_at, payload FROM snapshot WHERE session = ?",
            (session,),
        ).fetchall()
        return [_snapshot_row(r) for r in rows]

    def snapshots_as_of(self, session: str, until: datetime | None = None) -> list[SnapshotRow]:
        """The last snapshot per (source, key) of ``session`` observed at or before ``until``
        (UTC; ``None`` = end of session), from the history: works for past sessions too."""
        bound = _iso(until) if until else "9999"
        rows = self._db.execute(
            """SELECT h.source, h.key, h.session, h.observed_at, h.payload
               FROM snapshot_history h
               JOIN (SELECT source, key, MAX(id) AS id FROM snapshot_history
                     WHERE session = ? AND observed_at <= ? GROUP BY source, key) last
               ON h.id = last.id""",
            (session, bound),
        ).fetchall()
        return [_snapshot_row(r) for r in rows]

    # -- the cycle's one transaction -----------------------------------------------------------

    def commit_cycle(
        self,
        *,
        session: str,
        now: datetime,
        snapshots: Iterable[SnapshotRow],
        alerts: Sequence[tuple[Event, str, SlackMessage, str]],
    ) -> list[int]:
        """Record new snapshots and the alerts they caused, atomically.

        ``alerts`` holds ``(event, reason, message, destination)``; each gets an alert-log row
        and an outbox row. A snapshot's history row is added only when its payload changed.
        Returns the new alert ids. Raises ``sqlite3.Error`` (nothing is written then).
        """
        ids: list[int] = []
        with self._tx() as db:
            for row in snapshots:
                payload = json.dumps(row.payload, sort_keys=True, default=str)
                current = db.execute(
                    "SELECT payload, session FROM snapshot WHERE source = ? AND key = ?",
                    (row.source, row.key),
                ).fetchone()
                if (
                    current is not None
                    and current["payload"] == payload
                    and (current["session"] == row.session)
                ):
                    continue
                db.execute(
                    """INSERT INTO snapshot (source, key, session, observed_at, payload)
                       VALUES (?, ?, ?, ?, ?)
                       ON CONFLICT (source, key) DO UPDATE SET session = excluded.session,
                       observed_at = excluded.observed_at, payload = excluded.payload""",
                    (row.source, row.key, row.session, _iso(row.observed_at), payload),
                )
                db.execute(
                    """INSERT INTO snapshot_history (source, key, session, observed_at, payload)
                       VALUES (?, ?, ?, ?, ?)""",
                    (row.source, row.key, row.session, _iso(row.observed_at), payload),
                )
            for event, reason, message, destination in alerts:
                cur = db.execute(
                    """INSERT INTO alert (alert_key, rule, kind, symbol, board, state, session,
                       occurred_at, created_at, reason, summary, thread_parent, follow_up)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        event.alert_key,
                        event.rule,
                        event.kind,
                        event.symbol,
                        event.board,
                        event.state,
                        session,
                        _iso(event.occurred_at),
                        _iso(now),
                        reason,
                        message.text,
                        event.thread_parent,
                        int(event.follow_up),
                    ),
                )
                alert_id = int(cur.lastrowid or 0)
                ids.append(alert_id)
                self._enqueue(
                    db,
                    dedupe_key=f"alert:{alert_id}:{destination}",
                    alert_id=alert_id,
                    destination=destination,
                    message=message,
                    thread_parent=event.thread_parent,
                    session=session,
                    now=now,
                )
        return ids

    # -- alert log ------------------------------------------------------------------------------

    def last_alerted(self, alert_key: str, state: str) -> datetime | None:
        """When ``alert_key`` was last alerted in ``state`` (UTC), or ``None``."""
        row = self._db.execute(
            "SELECT MAX(created_at) AS at FROM alert WHERE alert_key = ? AND state = ?",
            (alert_key, state),
        ).fetchone()
        return _dt(row["at"])

    def has_alert(self, alert_key: str, session: str) -> bool:
        """True when a top-level alert for ``alert_key`` was raised during ``session``."""
        row = self._db.execute(
            "SELECT 1 FROM alert WHERE alert_key = ? AND session = ? AND follow_up = 0 LIMIT 1",
            (alert_key, session),
        ).fetchone()
        return row is not None

    def alerts(self, session: str) -> list[AlertRecord]:
        """The session's alert log, oldest first, with Slack's channel / ts when delivered."""
        rows = self._db.execute(
            """SELECT a.*, o.sent_at, o.channel, o.ts, o.permalink FROM alert a
               LEFT JOIN outbox o ON o.alert_id = a.id
               WHERE a.session = ? ORDER BY a.occurred_at, a.id""",
            (session,),
        ).fetchall()
        return [
            AlertRecord(
                id=r["id"],
                alert_key=r["alert_key"],
                rule=r["rule"],
                kind=r["kind"],
                symbol=r["symbol"],
                board=r["board"],
                state=r["state"],
                occurred_at=datetime.fromisoformat(r["occurred_at"]),
                sent_at=_dt(r["sent_at"]),
                channel=r["channel"],
                ts=r["ts"],
                permalink=r["permalink"],
                summary=r["summary"],
            )
            for r in rows
        ]

    # -- outbox ---------------------------------------------------------------------------------

    def enqueue(
        self,
        *,
        dedupe_key: str,
        destination: str,
        message: SlackMessage,
        session: str,
        now: datetime,
        thread_parent: str | None = None,
    ) -> bool:
        """Queue a message not tied to an alert (the recap). Returns ``False`` when
        ``dedupe_key`` was queued before: that is how a recap is sent once per session."""
        with self._tx() as db:
            return self._enqueue(
                db,
                dedupe_key=dedupe_key,
                alert_id=None,
                destination=destination,
                message=message,
                thread_parent=thread_parent,
                session=session,
                now=now,
            )

    @staticmethod
    def _enqueue(
        db: sqlite3.Connection,
        *,
        dedupe_key: str,
        alert_id: int | None,
        destination: str,
        message: SlackMessage,
        thread_parent: str | None,
        session: str,
        now: datetime,
    ) -> bool:
        payload = json.dumps({"kind": message.kind, "text": message.text, "blocks": message.blocks})
        cur = db.execute(
            """INSERT OR IGNORE INTO outbox (dedupe_key, alert_id, destination, kind, payload,
               thread_parent, session, created_at, next_attempt_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                dedupe_key,
                alert_id,
                destination,
                message.kind,
                payload,
                thread_parent,
                session,
                _iso(now),
                _iso(now),
            ),
        )
        return cur.rowcount == 1

    def pending(self, now: datetime, destination: str | None = None) -> list[OutboxItem]:
        """Unsent outbox rows due at ``now`` (UTC), oldest first."""
        sql = "SELECT * FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= ?"
        args: list[Any] = [_iso(now)]
        if destination is not None:
            sql += " AND destination = ?"
            args.append(destination)
        rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        out = []
        for r in rows:
            body = json.loads(r["payload"])
            out.append(
                OutboxItem(
                    id=r["id"],
                    dedupe_key=r["dedupe_key"],
                    alert_id=r["alert_id"],
                    destination=r["destination"],
                    message=SlackMessage(
                        kind=body["kind"], text=body["text"], blocks=body["blocks"]
                    ),
                    thread_parent=r["thread_parent"],
                    session=r["session"],
                    attempts=r["attempts"],
                )
            )
        return out

    def unsent_count(self) -> int:
        """How many outbox rows still wait for delivery."""
        return int(
            self._db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]
        )

    def thread_ts(self, alert_key: str, session: str) -> tuple[bool, str | None]:
        """For a follow-up: ``(parent_sent, ts)`` of the latest top-level alert for
        ``alert_key`` in ``session``. ``(False, None)`` while the parent waits for delivery."""
        row = self._db.execute(
            """SELECT o.sent_at, o.ts FROM alert a JOIN outbox o ON o.alert_id = a.id
               WHERE a.alert_key = ? AND a.session = ? AND a.follow_up = 0
               ORDER BY a.id DESC LIMIT 1""",
            (alert_key, session),
        ).fetchone()
        if row is None:
            return True, None  # no parent at all: post as a top-level message
        return row["sent_at"] is not None, row["ts"]

    def outbox_ts(self, dedupe_key: str) -> str | None:
        """Slack's ``ts`` for the delivered outbox row ``dedupe_key`` (threads under a recap)."""
        row = self._db.execute(
            "SELECT ts FROM outbox WHERE dedupe_key = ? AND sent_at IS NOT NULL", (dedupe_key,)
        ).fetchone()
        return row["ts"] if row else None

    def mark_sent(
        self,
        item_id: int,
        *,
        now: datetime,
        channel: str | None,
        ts: str | None,
        permalink: str | None,
    ) -> None:
        """Record the destination's confirmation: the row is done."""
        self._db.execute(
            "UPDATE outbox SET sent_at = ?, channel = ?, ts = ?, permalink = ?, last_error = NULL "
            "WHERE id = ?",
            (_iso(now), channel, ts, permalink, item_id),
        )

    def mark_failed(self, item_id: int, *, error: str, retry_at: datetime) -> None:
        """Count a failed try and schedule the next at ``retry_at`` (UTC)."""
        self._db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
            "WHERE id = ?",
            (error[:500], _iso(retry_at), item_id),
        )

    # -- once-per-session jobs --------------------------------------------------------------------

    def job_done(self, job: str, session: str) -> bool:
        """True when ``job`` (``recap``, ``digest``) already ran for ``session``."""
        row = self._db.execute(
            "SELECT 1 FROM job_run WHERE job = ? AND session = ?", (job, session)
        ).fetchone()
        return row is not None

    def mark_job_done(self, job: str, session: str, now: datetime, detail: str = "") -> None:
        """Record that ``job`` ran for ``session`` (idempotent)."""
        self._db.execute(
            "INSERT OR IGNORE INTO job_run (job, session, done_at, detail) VALUES (?, ?, ?, ?)",
            (job, session, _iso(now), detail),
        )

    def prune(self, now: datetime, keep_days: int) -> None:
        """Drop history and delivered alerts older than ``keep_days``."""
        cutoff = (now - timedelta(days=keep_days)).date().isoformat()
        with self._tx() as db:
            db.execute("DELETE FROM snapshot_history WHERE session < ?", (cutoff,))
            db.execute("DELETE FROM outbox WHERE session < ? AND sent_at IS NOT NULL", (cutoff,))
            db.execute(
                "DELETE FROM alert WHERE session < ? AND id NOT IN "
                "(SELECT alert_id FROM outbox WHERE alert_id IS NOT NULL)",
                (cutoff,),
            )


def _snapshot_row(r: sqlite3.Row) -> SnapshotRow:
    return SnapshotRow(
        source=r["source"],
        key=r["key"],
        session=r["session"],
        observed_at=datetime.fromisoformat(r["observed_at"]),
        payload=json.loads(r["payload"]),
    )
