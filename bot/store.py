"""SQLite state: last snapshot per source and key, snapshot history, the alert log and the outbox.

The only module that speaks SQL. An alert's outbox row is written in the same transaction as
the snapshot change it came from, and marked sent only after the destination confirmed, so a
restart neither repeats an alert nor loses one. Times are stored as UTC ISO-8601 text;
``session`` is the New York trading date (``YYYY-MM-DD``) a row belongs to.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.events import AlertRecord, Event
from bot.silences import Silence

__all__ = [
    "DEAD",
    "EXPIRED",
    "OUTBOX_STATES",
    "PENDING",
    "SENT",
    "NewAlert",
    "NewMessage",
    "OutboxItem",
    "SnapshotRow",
    "Store",
]

SCHEMA_VERSION = 3
KEYFRAME_EVERY = 64
"""A history payload is stored zlib-compressed against the previous payload of the same
(source, key), with a whole ("keyframe") payload every this many rows: a response that differs
from the last in a few numbers costs tens of bytes, and reading any row decodes at most this
many."""

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

PENDING, SENT, DEAD, EXPIRED = "pending", "sent", "dead", "expired"
OUTBOX_STATES = (PENDING, SENT, DEAD, EXPIRED)
_LIVE = f"""EXISTS (SELECT 1 FROM outbox_alert oa JOIN outbox o ON o.id = oa.outbox_id
            WHERE oa.alert_id = a.id AND o.state IN ('{PENDING}', '{SENT}'))"""
"""An alert that was delivered somewhere or still waits to be: what cooldowns count."""


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
class NewAlert:
    """An alert to record in :meth:`Store.commit_cycle`: the event, the policy's reason, the
    plain one-line ``summary`` (for the recap and digest lists) and, for a silenced event,
    the ``silence_id`` that held it (then it gets no outbox row)."""

    event: Event
    reason: str
    summary: str
    silence_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewMessage:
    """An outbox row to queue: one message (or file, or mail) for one ``destination``.

    - ``dedupe_key``: unique; queuing the same key twice is a no-op (a recap is sent once).
    - ``payload``: ``{"type": "message", "message": {...}}``, ``{"type": "file", ...}`` or
      ``{"type": "email", ...}`` (see :mod:`bot.outbox`).
    - ``alerts``: indices into the same call's ``alerts`` that this message carries.
    - ``meta``: routing facts the destination needs (mention, channel, alert refs).
    - ``thread_parent``: an ``alert_key`` (reply in that alert's thread) or
      ``row:<dedupe_key>`` (reply under that outbox row, e.g. the recap's chart).
    - ``expires_at``: UTC after which it is not delivered; ``None`` = never.
    """

    dedupe_key: str
    destination: str
    category: str
    payload: dict[str, Any]
    session: str
    alerts: tuple[int, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    thread_parent: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An outbox row as the delivery worker and ``flowbot outbox`` see it. Times are UTC;
    ``state`` is ``pending``, ``sent``, ``dead`` or ``expired``; ``attempts`` failed tries."""

    id: int
    dedupe_key: str
    destination: str
    category: str
    payload: dict[str, Any]
    meta: dict[str, Any]
    thread_parent: str | None
    session: str
    created_at: datetime
    expires_at: datetime | None
    state: str
    attempts: int
    last_error: str | None


class Store:
    """The bot's SQLite database at ``path`` (``":memory:"`` for a throwaway one).

    Single-threaded by design: the bot's event loop owns it. Raises ``sqlite3.Error`` on a
    broken file; a new file gets the schema on open, an older one is migrated in place.
    """

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()
        self._db.execute("PRAGMA foreign_keys=ON")

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version >= SCHEMA_VERSION:
            return
        has_tables = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'"
        ).fetchone()
        if not has_tables:
            script = SCHEMA
        elif version < 2:
            script = MIGRATE_1_TO_2 + MIGRATE_2_TO_3
        else:
            script = MIGRATE_2_TO_3
        self._db.executescript(
            f"BEGIN IMMEDIATE; {script}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        )

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
            """SELECT h.id, h.source, h.key, h.session, h.observed_at, h.payload, h.z, h.base
               FROM snapshot_history h
               JOIN (SELECT source, key, MAX(id) AS id FROM snapshot_history
                     WHERE session = ? AND observed_at <= ? GROUP BY source, key) last
               ON h.id = last.id""",
            (session, bound),
        ).fetchall()
        cache: dict[int, bytes] = {}
        return [self._history_row(r, cache) for r in rows]

    def history(self, session: str) -> list[SnapshotRow]:
        """Every stored response of ``session`` (each distinct payload once, with the UTC time
        it was first observed), in observation order: what ``flowbot replay`` plays back."""
        rows = self._db.execute(
            """SELECT id, source, key, session, observed_at, payload, z, base
               FROM snapshot_history WHERE session = ? ORDER BY observed_at, id""",
            (session,),
        ).fetchall()
        cache: dict[int, bytes] = {}  # in id order each base is decoded just before its use
        return [self._history_row(r, cache) for r in rows]

    def _history_row(self, r: sqlite3.Row, cache: dict[int, bytes]) -> SnapshotRow:
        return SnapshotRow(
            source=r["source"],
            key=r["key"],
            session=r["session"],
            observed_at=datetime.fromisoformat(r["observed_at"]),
            payload=json.loads(self._history_payload(r, cache)),
        )

    def _history_payload(self, r: sqlite3.Row, cache: dict[int, bytes]) -> bytes:
        """The JSON bytes of history row ``r`` (plain text, a keyframe, or compressed against
        its ``base`` row, decoded first through ``cache``)."""
        if r["z"] is None:
            data = str(r["payload"]).encode()
        elif r["base"] is None:
            data = zlib.decompress(r["z"])
        else:
            base = cache.get(r["base"])
            if base is None:
                row = self._db.execute(
                    "SELECT id, payload, z, base FROM snapshot_history WHERE id = ?", (r["base"],)
                ).fetchone()
                base = self._history_payload(row, cache)
            data = zlib.decompressobj(zdict=base).decompress(r["z"])
        cache[int(r["id"])] = data
        return data

    # -- the cycle's one transaction -----------------------------------------------------------

    def commit_cycle(
        self,
        *,
        session: str,
        now: datetime,
        snapshots: Iterable[SnapshotRow],
        alerts: Sequence[NewAlert] = (),
        messages: Sequence[NewMessage] = (),
    ) -> list[int]:
        """Record new snapshots, the alerts they caused and their outbox rows, atomically.

        A snapshot's history row is added only when its payload changed. Each message links
        the alerts it carries (by index into ``alerts``). Returns the new alert ids.
        Raises ``sqlite3.Error`` (nothing is written then).
        """
        ids: list[int] = []
        with self._tx() as db:
            for row in snapshots:
                self._put_snapshot(db, row)
            for alert in alerts:
                event = alert.event
                cur = db.execute(
                    """INSERT INTO alert (alert_key, rule, kind, symbol, board, state, session,
                       occurred_at, created_at, reason, summary, thread_parent, follow_up,
                       severity, silence_id)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
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
                        alert.reason,
                        alert.summary,
                        event.thread_parent,
                        int(event.follow_up),
                        event.severity.value,
                        alert.silence_id,
                    ),
                )
                ids.append(int(cur.lastrowid or 0))
            for message in messages:
                self._enqueue(db, message, now, [ids[i] for i in message.alerts])
        return ids

    @staticmethod
    def _put_snapshot(db: sqlite3.Connection, row: SnapshotRow) -> None:
        """Keep the latest payload per (source, key) as text, and a history row only when it
        changed: compressed against the previous one (see :data:`KEYFRAME_EVERY`)."""
        payload = json.dumps(row.payload, sort_keys=True, separators=(",", ":"), default=str)
        current = db.execute(
            "SELECT payload, session, hist_id, chain FROM snapshot WHERE source = ? AND key = ?",
            (row.source, row.key),
        ).fetchone()
        same_session = current is not None and current["session"] == row.session
        if same_session and current["payload"] == payload:
            return
        data = payload.encode()
        if same_session and current["hist_id"] is not None and current["chain"] < KEYFRAME_EVERY:
            packer = zlib.compressobj(9, zdict=str(current["payload"]).encode())
            z, base, chain = (
                packer.compress(data) + packer.flush(),
                current["hist_id"],
                (current["chain"] + 1),
            )
        else:
            z, base, chain = zlib.compress(data, 9), None, 0
        cur = db.execute(
            """INSERT INTO snapshot_history (source, key, session, observed_at, payload, z, base)
               VALUES (?, ?, ?, ?, '', ?, ?)""",
            (row.source, row.key, row.session, _iso(row.observed_at), z, base),
        )
        db.execute(
            """INSERT INTO snapshot (source, key, session, observed_at, payload, hist_id, chain)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (source, key) DO UPDATE SET session = excluded.session,
               observed_at = excluded.observed_at, payload = excluded.payload,
               hist_id = excluded.hist_id, chain = excluded.chain""",
            (
                row.source,
                row.key,
                row.session,
                _iso(row.observed_at),
                payload,
                cur.lastrowid,
                chain,
            ),
        )

    # -- alert log ------------------------------------------------------------------------------

    def last_alerted(self, alert_key: str, state: str) -> datetime | None:
        """When ``alert_key`` was last alerted in ``state`` (UTC), or ``None``. Counts alerts
        delivered somewhere or still queued; dead, expired or silenced ones do not count."""
        row = self._db.execute(
            f"SELECT MAX(a.created_at) AS at FROM alert a "
            f"WHERE a.alert_key = ? AND a.state = ? AND {_LIVE}",
            (alert_key, state),
        ).fetchone()
        return _dt(row["at"])

    def has_alert(self, alert_key: str, session: str) -> bool:
        """True when a top-level alert for ``alert_key`` was delivered (or is queued) during
        ``session``."""
        row = self._db.execute(
            f"SELECT 1 FROM alert a WHERE a.alert_key = ? AND a.session = ? "
            f"AND a.follow_up = 0 AND {_LIVE} LIMIT 1",
            (alert_key, session),
        ).fetchone()
        return row is not None

    def alerts(self, session: str) -> list[AlertRecord]:
        """The session's alert log, oldest first. ``sent_at`` is the first confirmed delivery;
        ``channel`` / ``ts`` / ``permalink`` those of the first delivered row; ``outcome`` is
        ``sent``, ``pending``, ``expired`` or ``dead`` (best of its rows)."""
        rows = self._db.execute(
            """SELECT a.*,
                 (SELECT o.channel FROM outbox_alert oa JOIN outbox o ON o.id = oa.outbox_id
                  WHERE oa.alert_id = a.id AND o.state = 'sent' ORDER BY o.id LIMIT 1) AS channel,
                 (SELECT o.ts FROM outbox_alert oa JOIN outbox o ON o.id = oa.outbox_id
                  WHERE oa.alert_id = a.id AND o.state = 'sent' ORDER BY o.id LIMIT 1) AS ts,
                 (SELECT o.permalink FROM outbox_alert oa JOIN outbox o ON o.id = oa.outbox_id
                  WHERE oa.alert_id = a.id AND o.state = 'sent' ORDER BY o.id LIMIT 1)
                  AS permalink,
                 (SELECT group_concat(o.state) FROM outbox_alert oa
                  JOIN outbox o ON o.id = oa.outbox_id WHERE oa.alert_id = a.id) AS states
               FROM alert a WHERE a.session = ? ORDER BY a.occurred_at, a.id""",
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
                outcome="silenced" if r["silence_id"] else _outcome((r["states"] or "").split(",")),
            )
            for r in rows
        ]

    # -- outbox ---------------------------------------------------------------------------------

    def enqueue(self, message: NewMessage, now: datetime) -> bool:
        """Queue a message not tied to an alert (recap, chart, digest, notice). Returns
        ``False`` when its ``dedupe_key`` was queued before: that is how a recap is sent once
        per session and destination."""
        with self._tx() as db:
            return self._enqueue(db, message, now, [])

    @staticmethod
    def _enqueue(
        db: sqlite3.Connection, message: NewMessage, now: datetime, alert_ids: Sequence[int]
    ) -> bool:
        cur = db.execute(
            """INSERT OR IGNORE INTO outbox (dedupe_key, destination, category, payload, meta,
               thread_parent, session, created_at, expires_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                message.dedupe_key,
                message.destination,
                message.category,
                json.dumps(message.payload, default=str),
                json.dumps(message.meta, default=str),
                message.thread_parent,
                message.session,
                _iso(now),
                _iso(message.expires_at) if message.expires_at else None,
            ),
        )
        if cur.rowcount != 1:
            return False
        db.executemany(
            "INSERT INTO outbox_alert (outbox_id, alert_id) VALUES (?, ?)",
            [(cur.lastrowid, alert_id) for alert_id in alert_ids],
        )
        return True

    def pending(self, destination: str | None = None, limit: int = 100) -> list[OutboxItem]:
        """Rows waiting for delivery (to ``destination``, or any), oldest first."""
        sql = "SELECT * FROM outbox WHERE state = ?"
        args: list[Any] = [PENDING]
        if destination is not None:
            sql += " AND destination = ?"
            args.append(destination)
        rows = self._db.execute(sql + " ORDER BY id LIMIT ?", [*args, limit]).fetchall()
        return [_outbox_item(r) for r in rows]

    def outbox(self, state: str | None = None, limit: int = 200) -> list[OutboxItem]:
        """Rows in ``state`` (any when ``None``), newest first: for ``flowbot outbox list``."""
        sql, args = "SELECT * FROM outbox", []
        if state is not None:
            sql += " WHERE state = ?"
            args.append(state)
        rows = self._db.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit]).fetchall()
        return [_outbox_item(r) for r in rows]

    def outbox_depth(self) -> dict[str, tuple[int, datetime | None]]:
        """Per destination: pending rows and the oldest pending row's ``created_at`` (UTC)."""
        rows = self._db.execute(
            "SELECT destination, COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox "
            "WHERE state = ? GROUP BY destination",
            (PENDING,),
        ).fetchall()
        return {r["destination"]: (int(r["n"]), _dt(r["oldest"])) for r in rows}

    def unsent_count(self) -> int:
        """How many outbox rows still wait for delivery."""
        row = self._db.execute("SELECT COUNT(*) FROM outbox WHERE state = ?", (PENDING,))
        return int(row.fetchone()[0])

    def thread_of(
        self, thread_parent: str, session: str, destination: str
    ) -> tuple[str | None, str | None, str | None]:
        """Where a reply to ``thread_parent`` goes at ``destination``: ``(state, ts,
        channel)`` of the parent's outbox row there (the channel id the destination answered;
        all ``None`` when there is no such row).

        ``thread_parent`` is an ``alert_key`` (the session's latest top-level alert for it)
        or ``row:<dedupe_key>`` (that outbox row itself)."""
        if thread_parent.startswith("row:"):
            row = self._db.execute(
                "SELECT state, ts, channel FROM outbox WHERE dedupe_key = ?",
                (thread_parent[4:],),
            ).fetchone()
        else:
            row = self._db.execute(
                """SELECT o.state, o.ts, o.channel FROM alert a
                   JOIN outbox_alert oa ON oa.alert_id = a.id
                   JOIN outbox o ON o.id = oa.outbox_id AND o.destination = ?
                   WHERE a.alert_key = ? AND a.session = ? AND a.follow_up = 0
                   ORDER BY a.id DESC LIMIT 1""",
                (destination, thread_parent, session),
            ).fetchone()
        return (row["state"], row["ts"], row["channel"]) if row else (None, None, None)

    def mark_sent(
        self,
        item_id: int,
        *,
        now: datetime,
        channel: str | None,
        ts: str | None,
        permalink: str | None,
    ) -> None:
        """Record the destination's confirmation: the row is done, and the alerts it carries
        count as delivered (the alert log is written here, after success). A delivered file
        or mail keeps only its kind: its bytes (the chart, the digest) are not kept twice."""
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET state = ?, sent_at = ?, channel = ?, ts = ?, permalink = ?, "
                "last_error = NULL, payload = CASE WHEN json_extract(payload, '$.type') "
                "IN ('file', 'email') THEN json_object('type', json_extract(payload, '$.type'), "
                "'delivered', 1) ELSE payload END WHERE id = ?",
                (SENT, _iso(now), channel, ts, permalink, item_id),
            )
            db.execute(
                "UPDATE alert SET sent_at = ? WHERE sent_at IS NULL AND id IN "
                "(SELECT alert_id FROM outbox_alert WHERE outbox_id = ?)",
                (_iso(now), item_id),
            )

    def mark_failed(self, item_id: int, *, error: str) -> None:
        """Count a failed try (the row stays pending; the worker decides when to retry)."""
        self._db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
            (error[:500], item_id),
        )

    def mark_dead(self, item_id: int, *, error: str) -> None:
        """Move a row to the dead letters after a permanent failure (retry by hand)."""
        self._db.execute(
            "UPDATE outbox SET state = ?, attempts = attempts + 1, last_error = ? WHERE id = ?",
            (DEAD, error[:500], item_id),
        )

    def mark_expired(self, item_id: int) -> None:
        """Give up on a row that waited past its ``expires_at``: it is never delivered."""
        self._db.execute("UPDATE outbox SET state = ? WHERE id = ?", (EXPIRED, item_id))

    def retry(self, item_id: int | None = None) -> int:
        """Put dead or expired rows back in the queue (one by id, or all with ``None``):
        attempts reset, expiry cleared. Returns how many rows were re-queued."""
        sql = "UPDATE outbox SET state = ?, attempts = 0, expires_at = NULL WHERE state IN (?, ?)"
        args: list[Any] = [PENDING, DEAD, EXPIRED]
        if item_id is not None:
            sql += " AND id = ?"
            args.append(item_id)
        return self._db.execute(sql, args).rowcount

    def purge(self, before: datetime) -> int:
        """Delete sent, dead and expired rows created before ``before`` (UTC). Returns the
        number deleted; pending rows are never deleted."""
        return self._db.execute(
            "DELETE FROM outbox WHERE state != ? AND created_at < ?", (PENDING, _iso(before))
        ).rowcount

    # -- silences -------------------------------------------------------------------------------

    def add_silence(
        self,
        matchers: dict[str, Any],
        *,
        starts_at: datetime,
        ends_at: datetime,
        comment: str,
        created_by: str,
    ) -> int:
        """Store a silence (route match keys → values, UTC window); returns its id."""
        cur = self._db.execute(
            "INSERT INTO silence (matchers, starts_at, ends_at, comment, created_by) "
            "VALUES (?, ?, ?, ?, ?)",
            (json.dumps(matchers), _iso(starts_at), _iso(ends_at), comment, created_by),
        )
        return int(cur.lastrowid or 0)

    def silences(self, now: datetime | None = None) -> list[Silence]:
        """Stored silences not over at ``now`` (UTC; every one when ``None``), oldest first."""
        sql, args = "SELECT * FROM silence", []
        if now is not None:
            sql += " WHERE ends_at > ?"
            args.append(_iso(now))
        rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [
            Silence(
                id=str(r["id"]),
                matchers=json.loads(r["matchers"]),
                starts_at=datetime.fromisoformat(r["starts_at"]),
                ends_at=datetime.fromisoformat(r["ends_at"]),
                comment=r["comment"],
                created_by=r["created_by"],
            )
            for r in rows
        ]

    def expire_silence(self, silence_id: int, now: datetime) -> bool:
        """End silence ``silence_id`` at ``now`` (UTC). False when there is no such silence
        still in force."""
        cur = self._db.execute(
            "UPDATE silence SET ends_at = ? WHERE id = ? AND ends_at > ?",
            (_iso(now), silence_id, _iso(now)),
        )
        return cur.rowcount == 1

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

    def prune(self, now: datetime, keep_days: int) -> int:
        """Drop what is older than ``keep_days`` before ``now`` (UTC): response history,
        finished outbox rows, their alerts, once-per-session job marks and silences long
        over. Pending outbox rows (and the alerts they carry) are never dropped. Returns the
        number of rows deleted."""
        cutoff = (now - timedelta(days=keep_days)).date().isoformat()
        deleted = 0
        with self._tx() as db:
            for sql, args in (
                ("DELETE FROM snapshot_history WHERE session < ?", (cutoff,)),
                ("DELETE FROM outbox WHERE session < ? AND state != ?", (cutoff, PENDING)),
                (
                    "DELETE FROM alert WHERE session < ? AND id NOT IN "
                    "(SELECT alert_id FROM outbox_alert)",
                    (cutoff,),
                ),
                ("DELETE FROM job_run WHERE session < ?", (cutoff,)),
                ("DELETE FROM silence WHERE ends_at < ?", (cutoff,)),
            ):
                deleted += db.execute(sql, args).rowcount
        return deleted


def _outcome(states: list[str]) -> str:
    for state in (SENT, PENDING, EXPIRED, DEAD):
        if state in states:
            return state
    return "held"


def _outbox_item(r: sqlite3.Row) -> OutboxItem:
    return OutboxItem(
        id=r["id"],
        dedupe_key=r["dedupe_key"],
        destination=r["destination"],
        category=r["category"],
        payload=json.loads(r["payload"]),
        meta=json.loads(r["meta"] or "{}"),
        thread_parent=r["thread_parent"],
        session=r["session"],
        created_at=datetime.fromisoformat(r["created_at"]),
        expires_at=_dt(r["expires_at"]),
        state=r["state"],
        attempts=r["attempts"],
        last_error=r["last_error"],
    )


def _snapshot_row(r: sqlite3.Row) -> SnapshotRow:
    return SnapshotRow(
        source=r["source"],
        key=r["key"],
        session=r["session"],
        observed_at=datetime.fromisoformat(r["observed_at"]),
        payload=json.loads(r["payload"]),
    )
