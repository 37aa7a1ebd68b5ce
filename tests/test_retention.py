"""Retention and compact history: old sessions go, pending rows stay, and compressed history
reads back exactly what was stored. Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.events import Event, Message, Severity
from bot.outbox import message_payload
from bot.store import KEYFRAME_EVERY, NewAlert, NewMessage, SnapshotRow, Store

NOW = datetime(2026, 6, 30, 20, 0, tzinfo=UTC)


def put(store: Store, session: str, state: str) -> None:
    """A response, an alert and its outbox row in ``session``; the row ends in ``state``."""
    at = datetime.fromisoformat(f"{session}T15:00:00+00:00")
    event = Event(
        "regime_flip", "regime_flip", "SPY", "regime_flip", at, severity=Severity.CRITICAL
    )
    store.commit_cycle(
        session=session,
        now=at,
        snapshots=[SnapshotRow("summary", "SPY", session, at, {"flow_direction": session})],
        alerts=[NewAlert(event, "first_notification", "SPY flip")],
        messages=[
            NewMessage(
                f"k-{session}", "slack", "alert", message_payload(Message("x", "x")), session, (0,)
            )
        ],
    )
    (item,) = store.outbox()[:1]
    if state == "sent":
        store.mark_sent(item.id, now=at, channel=None, ts=None, permalink=None)


def test_prune_drops_old_sessions_and_keeps_pending_and_recent(store: Store) -> None:
    """With keep_days 30 on 30 June: May's delivered session goes whole; May's undelivered
    alert stays (it can still be retried); June stays."""
    put(store, "2026-05-01", "sent")
    put(store, "2026-05-02", "pending")
    put(store, "2026-06-29", "sent")
    deleted = store.prune(NOW, keep_days=30)
    assert deleted >= 3
    assert store.history("2026-05-01") == [] and store.alerts("2026-05-01") == []
    assert [a.outcome for a in store.alerts("2026-05-02")] == ["pending"]
    assert [i.dedupe_key for i in store.pending()] == ["k-2026-05-02"]
    assert len(store.history("2026-06-29")) == 1 and len(store.alerts("2026-06-29")) == 1
    assert store.prune(NOW, keep_days=30) == 0


def test_compressed_history_reads_back_every_payload(store: Store) -> None:
    """Past several keyframes, every stored response (and the last one as of any time)
    comes back exactly."""
    session = "2026-06-05"
    t0 = datetime(2026, 6, 5, 13, 30, tzinfo=UTC)
    sent = []
    for i in range(KEYFRAME_EVERY * 2 + 5):
        at = t0 + timedelta(seconds=30 * i)
        payload = {"symbol": "SPY", "live_gex": 3.1e9 + i * 1e6, "as_of": at.isoformat(), "i": i}
        sent.append(payload)
        store.commit_cycle(
            session=session, now=at, snapshots=[SnapshotRow("summary", "SPY", session, at, payload)]
        )
    assert [r.payload for r in store.history(session)] == sent
    middle = t0 + timedelta(seconds=30 * (KEYFRAME_EVERY + 3))
    (row,) = store.snapshots_as_of(session, until=middle)
    assert row.payload == sent[KEYFRAME_EVERY + 3]
