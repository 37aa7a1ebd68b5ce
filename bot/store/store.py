"""The state store: last snapshot per source and key, response history, the alert log, the
outbox with delivery claims, silences, once-per-session jobs, and the replicas of a cluster.

One query layer (SQLAlchemy Core) for SQLite, the single-host default, and PostgreSQL, which
several replicas share. An alert's outbox rows are written in the same transaction as the
snapshot change it came from, and marked sent only after the destination confirmed, so a
restart or a failover neither repeats an alert nor loses one. Times are UTC ISO-8601 text;
``session`` is the New York trading date (``YYYY-MM-DD``) a row belongs to.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    URL,
    ColumnElement,
    Connection,
    Insert,
    Row,
    Table,
    delete,
    exists,
    func,
    select,
    update,
)

from bot.events import AlertRecord, Event
from bot.silences import Silence
from bot.store import codec
from bot.store import db as _db
from bot.store.migrate import upgrade
from bot.store.schema import (
    alert,
    history,
    job_run,
    outbox,
    outbox_alert,
    replica,
    series,
    silence,
    snapshot,
)

__all__ = [
    "DEAD",
    "EXPIRED",
    "KEYFRAME_EVERY",
    "OUTBOX_STATES",
    "PENDING",
    "SENT",
    "NewAlert",
    "NewMessage",
    "NotLeader",
    "OutboxItem",
    "ReplicaRow",
    "SnapshotRow",
    "Store",
]

KEYFRAME_EVERY = 64
"""A history payload is stored compressed (:mod:`bot.store.codec`) against the previous
payload of the same (source, key), with a whole ("keyframe") payload every this many rows: a
response that differs from the last in a few numbers costs tens of bytes, and reading any row
decodes at most this many."""

PENDING, SENT, DEAD, EXPIRED = "pending", "sent", "dead", "expired"
RETRY_GRACE = timedelta(seconds=10)
"""On a shared database, how long after its backoff a replica that failed to send a row
leaves it to the other live replicas (one cut off from a destination must not hold its
queue); with no other replica alive it retries at once."""
REPLICA_ALIVE = timedelta(seconds=30)
"""A replica whose heartbeat is younger than this counts as alive."""
OUTBOX_STATES = (PENDING, SENT, DEAD, EXPIRED)


class NotLeader(RuntimeError):
    """A cycle's commit was refused: this replica no longer holds the polling leadership
    (another replica took over), so what it detected is dropped, not alerted twice."""


def _iso(moment: datetime) -> str:
    """UTC ISO-8601 with microseconds always: fixed width, so times compare as text under
    any collation (PostgreSQL databases need not use the C locale)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _ms(moment: datetime) -> int:
    """Unix milliseconds (UTC) of an aware ``moment``: how history rows are timed."""
    return int(moment.timestamp() * 1000)


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _live(alert_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """An alert delivered somewhere or still waiting to be: what cooldowns count."""
    return exists().where(
        outbox_alert.c.alert_id == alert_id,
        outbox.c.id == outbox_alert.c.outbox_id,
        outbox.c.state.in_((PENDING, SENT)),
    )


_HISTORY = select(
    history.c.id,
    history.c.observed,
    history.c.z,
    history.c.base,
    series.c.source,
    series.c.key,
    series.c.session,
).join(series, series.c.id == history.c.series)
"""History rows with their series' names."""


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
    claimed_by: str | None = None
    claimed_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReplicaRow:
    """One ``flowbot run`` of a cluster as its last heartbeat left it (times UTC)."""

    id: str
    host: str
    pid: int
    role: str
    started_at: datetime
    seen_at: datetime
    leader_since: datetime | None


class Store:
    """The bot's state database.

    ``target`` is a SQLite path (``":memory:"`` for a throwaway one), a ``sqlite:///path``
    or ``postgresql://user@host/db`` URL; ``password`` is PostgreSQL's (from ``PGPASSWORD`` or
    a secret), never part of the URL. The schema is migrated in place on open.

    Used from the bot's one event loop. ``fence`` (set by the polling leadership on
    PostgreSQL) runs inside each cycle's transaction and raises :class:`NotLeader` when this
    replica no longer leads. Raises ``sqlalchemy.exc.SQLAlchemyError`` on a broken or
    unreachable database.
    """

    def __init__(self, target: Path | str | URL, *, password: str | None = None) -> None:
        self.url = _db.to_url(target)
        self.engine = _db.connect(self.url, password=password)
        self.dialect = self.engine.dialect.name
        self.fence: Callable[[Connection], None] | None = None
        self._series_ids: dict[tuple[str, str, str], int] = {}
        upgrade(self.engine)

    @property
    def shared(self) -> bool:
        """True on PostgreSQL: several replicas may share this database."""
        return self.dialect == "postgresql"

    def describe(self) -> str:
        """Where the state lives, password hidden: for logs and the status page."""
        return _db.redacted(self.url)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A write transaction (committed on exit, rolled back on an error)."""
        with self.engine.connect().execution_options(**{_db.WRITE: True}) as conn, conn.begin():
            yield conn

    def _insert(self, table: Table) -> Any:
        """The dialect's ``INSERT`` (with ``on_conflict_do_*``); each dialect's module is
        imported only by a store that uses it (~25 ms of start-up for PostgreSQL's)."""
        if self.shared:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    # -- snapshots --------------------------------------------------------------------------

    def snapshots(self, session: str) -> list[SnapshotRow]:
        """The latest snapshot per (source, key) recorded during ``session``."""
        query = select(snapshot).where(snapshot.c.session == session)
        with self.engine.connect() as conn:
            return [_snapshot_row(r) for r in conn.execute(query)]

    def snapshots_as_of(self, session: str, until: datetime | None = None) -> list[SnapshotRow]:
        """The last snapshot per (source, key) of ``session`` observed at or before ``until``
        (UTC; ``None`` = end of session), from the history: works for past sessions too."""
        bound = _ms(until) if until else 2**62
        last = (
            select(func.max(history.c.id).label("id"))
            .join(series, series.c.id == history.c.series)
            .where(series.c.session == session, history.c.observed <= bound)
            .group_by(history.c.series)
            .subquery()
        )
        query = _HISTORY.join(last, history.c.id == last.c.id).order_by(history.c.id)
        with self.engine.connect() as conn:
            # A cache per row (one row per key here): a shared one would keep every key's
            # chain of decoded payloads, up to KEYFRAME_EVERY each, until the last row.
            return [self._history_row(conn, r, {}) for r in conn.execute(query)]

    def history(self, session: str) -> list[SnapshotRow]:
        """Every stored response of ``session`` (each distinct payload once, with the UTC time
        it was first observed), in observation order: what ``flowbot replay`` plays back."""
        query = _HISTORY.where(series.c.session == session).order_by(
            history.c.observed, history.c.id
        )
        with self.engine.connect() as conn:
            cache: dict[int, bytes] = {}  # in id order each base is decoded just before its use
            return [self._history_row(conn, r, cache) for r in conn.execute(query)]

    def _history_row(self, conn: Connection, r: Any, cache: dict[int, bytes]) -> SnapshotRow:
        return SnapshotRow(
            source=r.source,
            key=r.key,
            session=r.session,
            observed_at=datetime.fromtimestamp(r.observed / 1000, UTC),
            payload=json.loads(self._history_payload(conn, r.id, r.z, r.base, cache)),
        )

    def _history_payload(
        self, conn: Connection, row_id: int, z: bytes, base_id: int | None, cache: dict[int, bytes]
    ) -> bytes:
        """The JSON bytes of history row ``row_id`` (packed ``z``, whole or against its
        ``base_id`` row, decoded first through ``cache``)."""
        base = None
        if base_id is not None:
            base = cache.get(base_id)
            if base is None:
                row = conn.execute(
                    select(history.c.z, history.c.base).where(history.c.id == base_id)
                ).one()
                base = self._history_payload(conn, base_id, row.z, row.base, cache)
        data = codec.unpack(z, base)
        cache[int(row_id)] = data
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
        Raises :class:`NotLeader` (see ``fence``) or ``sqlalchemy.exc.SQLAlchemyError``;
        nothing is written then.
        """
        ids: list[int] = []
        with self._tx() as conn:
            if self.fence is not None:
                self.fence(conn)
            self._put_snapshots(conn, list(snapshots))
            for new in alerts:
                event = new.event
                ids.append(
                    conn.execute(
                        alert.insert().returning(alert.c.id),
                        {
                            "alert_key": event.alert_key,
                            "rule": event.rule,
                            "kind": event.kind,
                            "symbol": event.symbol,
                            "board": event.board,
                            "state": event.state,
                            "session": session,
                            "occurred_at": _iso(event.occurred_at),
                            "created_at": _iso(now),
                            "reason": new.reason,
                            "summary": new.summary,
                            "thread_parent": event.thread_parent,
                            "follow_up": int(event.follow_up),
                            "severity": event.severity.value,
                            "silence_id": new.silence_id,
                        },
                    ).scalar_one()
                )
            for message in messages:
                self._enqueue(conn, message, now, [ids[i] for i in message.alerts])
        return ids

    def _put_snapshots(self, conn: Connection, rows: list[SnapshotRow]) -> None:
        """Keep the latest payload per (source, key) as text, and a history row only when it
        changed: compressed against the previous one (see :data:`KEYFRAME_EVERY`)."""
        if not rows:
            return
        sources = sorted({r.source for r in rows})
        current = {
            (c.source, c.key): c
            for c in conn.execute(
                select(
                    snapshot.c.source,
                    snapshot.c.key,
                    snapshot.c.session,
                    snapshot.c.payload,
                    snapshot.c.hist_id,
                    snapshot.c.chain,
                ).where(snapshot.c.source.in_(sources))
            )
        }
        packed: list[dict[str, Any]] = []
        latest: list[dict[str, Any]] = []
        for row in rows:
            payload = json.dumps(row.payload, sort_keys=True, separators=(",", ":"), default=str)
            previous = current.get((row.source, row.key))
            if previous is not None and previous.session != row.session:
                previous = None  # a new session starts a new chain
            if previous is not None and previous.payload == payload:
                continue
            if previous is not None and (
                previous.hist_id is None or previous.chain >= KEYFRAME_EVERY
            ):
                previous = None  # a keyframe
            data = payload.encode()
            if previous is not None:
                z = codec.pack(data, str(previous.payload).encode())
                base, chain = previous.hist_id, previous.chain + 1
            else:
                z, base, chain = codec.pack(data, None), None, 0
            packed.append(
                {
                    "series": (row.source, row.key, row.session),
                    "observed": _ms(row.observed_at),
                    "z": z,
                    "base": base,
                }
            )
            latest.append(
                {
                    "source": row.source,
                    "key": row.key,
                    "session": row.session,
                    "observed_at": _iso(row.observed_at),
                    "payload": payload,
                    "chain": chain,
                }
            )
        if not packed:
            return
        ids = self._series(conn, {values["series"] for values in packed})
        for values in packed:
            values["series"] = ids[values["series"]]
        hist_ids = conn.execute(
            history.insert().returning(history.c.id, sort_by_parameter_order=True), packed
        ).scalars()
        for values, hist_id in zip(latest, hist_ids, strict=True):
            values["hist_id"] = hist_id
        upsert = self._insert(snapshot)
        conn.execute(
            upsert.on_conflict_do_update(
                index_elements=[snapshot.c.source, snapshot.c.key],
                set_={
                    name: upsert.excluded[name]
                    for name in ("session", "observed_at", "payload", "hist_id", "chain")
                },
            ),
            latest,
        )

    def _series(
        self, conn: Connection, names: set[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], int]:
        """The ids of series ``(source, key, session)``, made on first use: one query for
        those not remembered yet, one insert for those new to the database."""
        if len(self._series_ids) > 10_000:
            self._series_ids.clear()
        wanted = names - self._series_ids.keys()
        if wanted:
            query = select(series.c.source, series.c.key, series.c.session, series.c.id).where(
                series.c.session.in_(sorted({n[2] for n in wanted})),
                series.c.source.in_(sorted({n[0] for n in wanted})),
            )

            def stored() -> dict[tuple[str, str, str], int]:
                return {(r[0], r[1], r[2]): int(r[3]) for r in conn.execute(query)}

            found = stored()
            new = sorted(wanted - found.keys())
            if new:
                stmt = self._insert(series).on_conflict_do_nothing()
                conn.execute(stmt, [{"source": s, "key": k, "session": d} for s, k, d in new])
                found = stored()
            self._series_ids.update((n, found[n]) for n in wanted)
        return {n: self._series_ids[n] for n in names}

    # -- alert log ------------------------------------------------------------------------------

    def last_alerted(self, alert_key: str, state: str) -> datetime | None:
        """When ``alert_key`` was last alerted in ``state`` (UTC), or ``None``. Counts alerts
        delivered somewhere or still queued; dead, expired or silenced ones do not count."""
        query = select(func.max(alert.c.created_at)).where(
            alert.c.alert_key == alert_key, alert.c.state == state, _live(alert.c.id)
        )
        with self.engine.connect() as conn:
            return _dt(conn.execute(query).scalar())

    def has_alert(self, alert_key: str, session: str) -> bool:
        """True when a top-level alert for ``alert_key`` was delivered (or is queued) during
        ``session``."""
        query = (
            select(alert.c.id)
            .where(
                alert.c.alert_key == alert_key,
                alert.c.session == session,
                alert.c.follow_up == 0,
                _live(alert.c.id),
            )
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def alerts(self, session: str) -> list[AlertRecord]:
        """The session's alert log, oldest first. ``sent_at`` is the first confirmed delivery;
        ``channel`` / ``ts`` / ``permalink`` those of the first delivered row; ``outcome`` is
        ``sent``, ``pending``, ``expired`` or ``dead`` (best of its rows)."""
        logged = select(alert).where(alert.c.session == session)
        carried = (
            select(
                outbox_alert.c.alert_id,
                outbox.c.state,
                outbox.c.channel,
                outbox.c.ts,
                outbox.c.permalink,
            )
            .join(outbox, outbox.c.id == outbox_alert.c.outbox_id)
            .join(alert, alert.c.id == outbox_alert.c.alert_id)
            .where(alert.c.session == session)
            .order_by(outbox.c.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(logged.order_by(alert.c.occurred_at, alert.c.id)).all()
            states: dict[int, list[str]] = {}
            first_sent: dict[int, Any] = {}
            for o in conn.execute(carried):
                states.setdefault(o.alert_id, []).append(o.state)
                if o.state == SENT:
                    first_sent.setdefault(o.alert_id, o)
        records = []
        for r in rows:
            sent = first_sent.get(r.id)
            records.append(
                AlertRecord(
                    id=r.id,
                    alert_key=r.alert_key,
                    rule=r.rule,
                    kind=r.kind,
                    symbol=r.symbol,
                    board=r.board,
                    state=r.state,
                    occurred_at=datetime.fromisoformat(r.occurred_at),
                    sent_at=_dt(r.sent_at),
                    channel=sent.channel if sent else None,
                    ts=sent.ts if sent else None,
                    permalink=sent.permalink if sent else None,
                    summary=r.summary,
                    outcome="silenced" if r.silence_id else _outcome(states.get(r.id, [])),
                )
            )
        return records

    # -- outbox ---------------------------------------------------------------------------------

    def enqueue(self, message: NewMessage, now: datetime) -> bool:
        """Queue a message not tied to an alert (recap, chart, digest, notice). Returns
        ``False`` when its ``dedupe_key`` was queued before: that is how a recap is sent once
        per session and destination."""
        with self._tx() as conn:
            return self._enqueue(conn, message, now, [])

    def _enqueue(
        self, conn: Connection, message: NewMessage, now: datetime, alert_ids: Sequence[int]
    ) -> bool:
        stmt: Insert = self._insert(outbox).on_conflict_do_nothing(
            index_elements=[outbox.c.dedupe_key]
        )
        outbox_id = conn.execute(
            stmt.returning(outbox.c.id),
            {
                "dedupe_key": message.dedupe_key,
                "destination": message.destination,
                "category": message.category,
                "payload": json.dumps(message.payload, default=str),
                "meta": json.dumps(message.meta, default=str),
                "thread_parent": message.thread_parent,
                "session": message.session,
                "created_at": _iso(now),
                "expires_at": _iso(message.expires_at) if message.expires_at else None,
            },
        ).scalar()
        if outbox_id is None:
            return False
        if alert_ids:
            conn.execute(
                outbox_alert.insert(),
                [{"outbox_id": outbox_id, "alert_id": alert_id} for alert_id in alert_ids],
            )
        return True

    def pending(self, destination: str | None = None, limit: int = 100) -> list[OutboxItem]:
        """Rows waiting for delivery (to ``destination``, or any), oldest first."""
        query = select(outbox).where(outbox.c.state == PENDING)
        if destination is not None:
            query = query.where(outbox.c.destination == destination)
        with self.engine.connect() as conn:
            return [_outbox_item(r) for r in conn.execute(query.order_by(outbox.c.id).limit(limit))]

    def outbox(self, state: str | None = None, limit: int = 200) -> list[OutboxItem]:
        """Rows in ``state`` (any when ``None``), newest first: for ``flowbot outbox list``."""
        query = select(outbox)
        if state is not None:
            query = query.where(outbox.c.state == state)
        with self.engine.connect() as conn:
            return [
                _outbox_item(r)
                for r in conn.execute(query.order_by(outbox.c.id.desc()).limit(limit))
            ]

    def outbox_depth(self) -> dict[str, tuple[int, datetime | None]]:
        """Per destination: pending rows and the oldest pending row's ``created_at`` (UTC)."""
        query = (
            select(outbox.c.destination, func.count(), func.min(outbox.c.created_at))
            .where(outbox.c.state == PENDING)
            .group_by(outbox.c.destination)
        )
        with self.engine.connect() as conn:
            return {d: (int(n), _dt(oldest)) for d, n, oldest in conn.execute(query)}

    def unsent_count(self) -> int:
        """How many outbox rows still wait for delivery."""
        query = select(func.count()).select_from(outbox).where(outbox.c.state == PENDING)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def thread_of(
        self, thread_parent: str, session: str, destination: str
    ) -> tuple[str | None, str | None, str | None]:
        """Where a reply to ``thread_parent`` goes at ``destination``: ``(state, ts,
        channel)`` of the parent's outbox row there (the channel id the destination answered;
        all ``None`` when there is no such row).

        ``thread_parent`` is an ``alert_key`` (the session's latest top-level alert for it)
        or ``row:<dedupe_key>`` (that outbox row itself)."""
        columns = (outbox.c.state, outbox.c.ts, outbox.c.channel)
        if thread_parent.startswith("row:"):
            query = select(*columns).where(outbox.c.dedupe_key == thread_parent[4:])
        else:
            query = (
                select(*columns)
                .select_from(alert)
                .join(outbox_alert, outbox_alert.c.alert_id == alert.c.id)
                .join(
                    outbox,
                    (outbox.c.id == outbox_alert.c.outbox_id)
                    & (outbox.c.destination == destination),
                )
                .where(
                    alert.c.alert_key == thread_parent,
                    alert.c.session == session,
                    alert.c.follow_up == 0,
                )
                .order_by(alert.c.id.desc())
                .limit(1)
            )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return (row.state, row.ts, row.channel) if row else (None, None, None)

    # -- delivery claims (several replicas) -------------------------------------------------------

    def claim(
        self, destination: str, *, owner: str, now: datetime, lease: timedelta
    ) -> OutboxItem | None:
        """Claim the oldest pending row of ``destination`` for replica ``owner`` until
        ``now + lease`` (UTC), or return ``None`` when there is none or it is not free.

        Only the head of a destination's queue is ever claimed, so rows leave in order even
        with several replicas delivering. It is free when unclaimed, claimed by ``owner``,
        or its claim has lapsed (a replica that died mid-send). On PostgreSQL the head is read
        ``FOR UPDATE SKIP LOCKED``: a replica never waits on another's claim."""
        pending = (outbox.c.destination == destination) & (outbox.c.state == PENDING)
        head = (
            select(outbox)
            .where(pending)
            .order_by(outbox.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        with self._tx() as conn:
            row = conn.execute(head).first()
            if row is None:
                return None
            first = conn.execute(select(func.min(outbox.c.id)).where(pending)).scalar()
            if first != row.id:
                return None  # the head is being claimed by another replica right now
            held_until = row.claimed_until or ""
            if row.claimed_by not in (None, owner) and held_until > _iso(now):
                return None
            # This replica failed to send it: another live replica gets the first retry (it
            # may reach the destination), this one only after a grace period.
            failed_here = row.claimed_by == owner and row.attempts and self.shared
            if failed_here and held_until > _iso(now - RETRY_GRACE):
                others = select(replica.c.id).where(
                    replica.c.id != owner, replica.c.seen_at > _iso(now - REPLICA_ALIVE)
                )
                if conn.execute(others.limit(1)).first() is not None:
                    return None
            until = _iso(now + lease)
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row.id)
                .values(claimed_by=owner, claimed_until=until)
            )
        return replace(
            _outbox_item(row), claimed_by=owner, claimed_until=datetime.fromisoformat(until)
        )

    def extend_claim(self, item_id: int, *, owner: str, until: datetime) -> bool:
        """Move ``owner``'s claim on pending row ``item_id`` to ``until`` (UTC): a long send
        keeps its row, a failed one holds it through its backoff. False when the claim is
        not ``owner``'s any more."""
        with self._tx() as conn:
            return (
                conn.execute(
                    update(outbox)
                    .where(
                        outbox.c.id == item_id,
                        outbox.c.claimed_by == owner,
                        outbox.c.state == PENDING,
                    )
                    .values(claimed_until=_iso(until))
                ).rowcount
                == 1
            )

    def release_claims(self, owner: str) -> int:
        """Give up every pending row ``owner`` holds (a replica stopping cleanly), so another
        replica delivers them at once. Returns how many."""
        with self._tx() as conn:
            return conn.execute(
                update(outbox)
                .where(outbox.c.claimed_by == owner, outbox.c.state == PENDING)
                .values(claimed_by=None, claimed_until=None)
            ).rowcount

    def claims(self, now: datetime) -> dict[str, int]:
        """Claims in flight at ``now`` (UTC): pending rows per replica with a live lease."""
        query = (
            select(outbox.c.claimed_by, func.count())
            .where(outbox.c.state == PENDING, outbox.c.claimed_until > _iso(now))
            .group_by(outbox.c.claimed_by)
        )
        with self.engine.connect() as conn:
            return {str(owner): int(n) for owner, n in conn.execute(query)}

    # -- settling a row ------------------------------------------------------------------------

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
        with self._tx() as conn:
            payload = conn.execute(select(outbox.c.payload).where(outbox.c.id == item_id)).scalar()
            kind = json.loads(payload or "{}").get("type")
            values: dict[str, Any] = {
                "state": SENT,
                "sent_at": _iso(now),
                "channel": channel,
                "ts": ts,
                "permalink": permalink,
                "last_error": None,
                "claimed_until": None,
            }
            if kind in ("file", "email"):
                values["payload"] = json.dumps({"type": kind, "delivered": 1})
            done = conn.execute(
                update(outbox)
                .where(outbox.c.id == item_id, outbox.c.state == PENDING)
                .values(**values)
            ).rowcount
            if not done:
                return  # settled already (another replica's lease took it over)
            conn.execute(
                update(alert)
                .where(
                    alert.c.sent_at.is_(None),
                    alert.c.id.in_(
                        select(outbox_alert.c.alert_id).where(outbox_alert.c.outbox_id == item_id)
                    ),
                )
                .values(sent_at=_iso(now))
            )

    def mark_failed(
        self,
        item_id: int,
        *,
        error: str,
        hold_until: datetime | None = None,
        owner: str | None = None,
    ) -> bool:
        """Count a failed try (the row stays pending; the worker decides when to retry).
        ``hold_until`` (UTC) keeps the row claimed through the backoff, so no other replica
        retries it sooner; ``None`` releases the claim. With ``owner``, only while that
        replica still holds the claim; returns whether the row was changed."""
        values: dict[str, Any] = {"attempts": outbox.c.attempts + 1, "last_error": error[:500]}
        values["claimed_until"] = _iso(hold_until) if hold_until else None
        if hold_until is None:
            values["claimed_by"] = None
        return self._update(item_id, values, owner)

    def mark_dead(self, item_id: int, *, error: str, owner: str | None = None) -> bool:
        """Move a row to the dead letters after a permanent failure (retry by hand). With
        ``owner``, only while that replica holds the claim; returns whether it moved."""
        values = {
            "state": DEAD,
            "attempts": outbox.c.attempts + 1,
            "last_error": error[:500],
            "claimed_until": None,
        }
        return self._update(item_id, values, owner)

    def mark_expired(self, item_id: int, *, owner: str | None = None) -> bool:
        """Give up on a row that waited past its ``expires_at``: it is never delivered.
        With ``owner``, only while that replica holds the claim; returns whether it did."""
        return self._update(item_id, {"state": EXPIRED, "claimed_until": None}, owner)

    def _update(self, item_id: int, values: dict[str, Any], owner: str | None = None) -> bool:
        """Settle a row that is still pending (and, with ``owner``, still claimed by that
        replica): a replica whose claim lapsed cannot turn a row another replica took over,
        or delivered, into a dead letter."""
        stmt = update(outbox).where(outbox.c.id == item_id, outbox.c.state == PENDING)
        if owner is not None:
            stmt = stmt.where(outbox.c.claimed_by == owner)
        with self._tx() as conn:
            return conn.execute(stmt.values(**values)).rowcount == 1

    def retry(self, item_id: int | None = None) -> int:
        """Put dead or expired rows back in the queue (one by id, or all with ``None``):
        attempts reset, expiry cleared. Returns how many rows were re-queued."""
        stmt = (
            update(outbox)
            .where(outbox.c.state.in_((DEAD, EXPIRED)))
            .values(state=PENDING, attempts=0, expires_at=None, claimed_by=None)
        )
        if item_id is not None:
            stmt = stmt.where(outbox.c.id == item_id)
        with self._tx() as conn:
            return conn.execute(stmt).rowcount

    def purge(self, before: datetime) -> int:
        """Delete sent, dead and expired rows created before ``before`` (UTC). Returns the
        number deleted; pending rows are never deleted."""
        stmt = delete(outbox).where(outbox.c.state != PENDING, outbox.c.created_at < _iso(before))
        with self._tx() as conn:
            return conn.execute(stmt).rowcount

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
        with self._tx() as conn:
            return int(
                conn.execute(
                    silence.insert().returning(silence.c.id),
                    {
                        "matchers": json.dumps(matchers),
                        "starts_at": _iso(starts_at),
                        "ends_at": _iso(ends_at),
                        "comment": comment,
                        "created_by": created_by,
                    },
                ).scalar_one()
            )

    def silences(self, now: datetime | None = None) -> list[Silence]:
        """Stored silences not over at ``now`` (UTC; every one when ``None``), oldest first."""
        query = select(silence)
        if now is not None:
            query = query.where(silence.c.ends_at > _iso(now))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(silence.c.id)).all()
        return [
            Silence(
                id=str(r.id),
                matchers=json.loads(r.matchers),
                starts_at=datetime.fromisoformat(r.starts_at),
                ends_at=datetime.fromisoformat(r.ends_at),
                comment=r.comment,
                created_by=r.created_by,
            )
            for r in rows
        ]

    def expire_silence(self, silence_id: int, now: datetime) -> bool:
        """End silence ``silence_id`` at ``now`` (UTC). False when there is no such silence
        still in force."""
        stmt = (
            update(silence)
            .where(silence.c.id == silence_id, silence.c.ends_at > _iso(now))
            .values(ends_at=_iso(now))
        )
        with self._tx() as conn:
            return conn.execute(stmt).rowcount == 1

    # -- once-per-session jobs --------------------------------------------------------------------

    def job_done(self, job: str, session: str) -> bool:
        """True when ``job`` (``recap``, ``digest``) already ran for ``session``."""
        query = select(job_run.c.job).where(job_run.c.job == job, job_run.c.session == session)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def mark_job_done(self, job: str, session: str, now: datetime, detail: str = "") -> None:
        """Record that ``job`` ran for ``session`` (idempotent)."""
        stmt = self._insert(job_run).on_conflict_do_nothing()
        with self._tx() as conn:
            conn.execute(
                stmt, {"job": job, "session": session, "done_at": _iso(now), "detail": detail}
            )

    # -- replicas ---------------------------------------------------------------------------------

    def heartbeat(
        self,
        replica_id: str,
        *,
        host: str,
        pid: int,
        role: str,
        started_at: datetime,
        now: datetime,
        leader_since: datetime | None,
    ) -> None:
        """Record that replica ``replica_id`` is alive at ``now`` (UTC) in ``role``."""
        values = {
            "id": replica_id,
            "host": host,
            "pid": pid,
            "role": role,
            "started_at": _iso(started_at),
            "seen_at": _iso(now),
            "leader_since": _iso(leader_since) if leader_since else None,
        }
        stmt = self._insert(replica)
        stmt = stmt.on_conflict_do_update(
            index_elements=[replica.c.id],
            set_={k: stmt.excluded[k] for k in ("role", "seen_at", "leader_since")},
        )
        with self._tx() as conn:
            conn.execute(stmt, values)

    def replicas(self) -> list[ReplicaRow]:
        """Every replica that sent a heartbeat, leader first, then the most recently seen."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(replica)).all()
        found = [
            ReplicaRow(
                id=r.id,
                host=r.host,
                pid=r.pid,
                role=r.role,
                started_at=datetime.fromisoformat(r.started_at),
                seen_at=datetime.fromisoformat(r.seen_at),
                leader_since=_dt(r.leader_since),
            )
            for r in rows
        ]
        return sorted(found, key=lambda r: (r.role != "leader", -r.seen_at.timestamp()))

    def forget_replica(self, replica_id: str) -> None:
        """Remove a replica that stopped cleanly from the cluster view."""
        with self._tx() as conn:
            conn.execute(delete(replica).where(replica.c.id == replica_id))

    def prune(self, now: datetime, keep_days: int) -> int:
        """Drop what is older than ``keep_days`` before ``now`` (UTC): response history,
        finished outbox rows, their alerts, once-per-session job marks, silences long over
        and replicas not seen for a day. Pending outbox rows (and the alerts they carry) are
        never dropped. Returns the number of rows deleted."""
        cutoff = (now - timedelta(days=keep_days)).date().isoformat()
        deleted = 0
        with self._tx() as conn:
            for stmt in (
                delete(history).where(
                    history.c.series.in_(select(series.c.id).where(series.c.session < cutoff))
                ),
                delete(series).where(series.c.session < cutoff),
                delete(outbox).where(outbox.c.session < cutoff, outbox.c.state != PENDING),
                delete(alert).where(
                    alert.c.session < cutoff,
                    alert.c.id.not_in(select(outbox_alert.c.alert_id)),
                ),
                delete(job_run).where(job_run.c.session < cutoff),
                delete(silence).where(silence.c.ends_at < cutoff),
                delete(replica).where(replica.c.seen_at < _iso(now - timedelta(days=1))),
            ):
                deleted += conn.execute(stmt).rowcount
        return deleted


def _outcome(states: list[str]) -> str:
    for state in (SENT, PENDING, EXPIRED, DEAD):
        if state in states:
            return state
    return "held"


def _outbox_item(r: Row[Any]) -> OutboxItem:
    return OutboxItem(
        id=r.id,
        dedupe_key=r.dedupe_key,
        destination=r.destination,
        category=r.category,
        payload=json.loads(r.payload),
        meta=json.loads(r.meta or "{}"),
        thread_parent=r.thread_parent,
        session=r.session,
        created_at=datetime.fromisoformat(r.created_at),
        expires_at=_dt(r.expires_at),
        state=r.state,
        attempts=r.attempts,
        last_error=r.last_error,
        claimed_by=r.claimed_by,
        claimed_until=_dt(r.claimed_until),
    )


def _snapshot_row(r: Row[Any]) -> SnapshotRow:
    return SnapshotRow(
        source=r.source,
        key=r.key,
        session=r.session,
        observed_at=datetime.fromisoformat(r.observed_at),
        payload=json.loads(r.payload),
    )
