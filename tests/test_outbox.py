"""The outbox worker with the real Slack destination against the local Slack Web API server:
order after an outage, Retry-After for every kind of send, dead letters, expiry, the delayed
marker, independence of destinations, threads, and the alert log written only on delivery.
Each test with a store runs on SQLite and on PostgreSQL (the ``store`` fixture)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.deliver.base import FileUpload
from bot.deliver.slack import SlackBotDestination
from bot.events import Event, Message, Severity
from bot.outbox import OutboxWorker, backoff, file_payload, message_payload
from bot.store import NewAlert, NewMessage, Store
from tests.support.slack_api import SlackApiServer

SESSION = "2026-06-05"
T0 = datetime(2026, 6, 5, 14, 32, tzinfo=UTC)  # 10:32 New York


@pytest.fixture
def slack() -> Iterator[SlackApiServer]:
    with SlackApiServer() as server:
        yield server


def destination(
    server: SlackApiServer, name: str = "slack", channel: str = "#desk"
) -> SlackBotDestination:
    return SlackBotDestination(
        server.token, channel, server.api_url, name=name, min_interval=0, fetch_permalink=False
    )


def alert(symbol: str, *, follow_up: bool = False, at: datetime = T0) -> Event:
    kind = "regime_flip_ended" if follow_up else "regime_flip"
    return Event(
        rule="regime_flip",
        kind=kind,
        symbol=symbol,
        state="ended" if follow_up else "regime_flip",
        occurred_at=at,
        severity=Severity.CRITICAL,
        thread_parent=f"regime_flip:-:{symbol}" if follow_up else None,
        follow_up=follow_up,
    )


def queue(
    store: Store,
    events: list[Event],
    *,
    destination: str = "slack",
    now: datetime = T0,
    expires_at: datetime | None = None,
) -> None:
    """Record each event as an alert with one outbox row, as the pipeline does."""
    store.commit_cycle(
        session=SESSION,
        now=now,
        snapshots=[],
        alerts=[NewAlert(e, "first_notification", f"{e.symbol} {e.kind}") for e in events],
        messages=[
            NewMessage(
                dedupe_key=f"{e.alert_key}:{e.state}:{now.isoformat()}:{destination}",
                destination=destination,
                category=e.category.value,
                payload=message_payload(
                    Message(e.kind, f"{e.symbol} {e.kind}", severity=e.severity)
                ),
                session=SESSION,
                alerts=(i,),
                thread_parent=e.thread_parent,
                expires_at=expires_at,
            )
            for i, e in enumerate(events)
        ],
    )


def worker(
    store: Store, *destinations: SlackBotDestination, clock_at: datetime = T0
) -> OutboxWorker:
    return OutboxWorker(
        store, {d.name: d for d in destinations}, clock=lambda: clock_at, max_backoff=0.3
    )


async def wait_for(predicate, what: str, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Poll until ``predicate()``; fail (never pass) when ``timeout`` runs out."""
    end = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_queue_keeps_its_order_through_an_outage(slack: SlackApiServer, store: Store) -> None:
    """Five alerts queued while Slack answers 500 four times arrive once each, in order."""
    symbols = ["SPY", "QQQ", "IWM", "NVDA", "AMD"]
    slack.fail_next("chat.postMessage", status=500, count=4)
    queue(store, [alert(s) for s in symbols])
    w = worker(store, destination(slack))
    w.start()
    try:
        posts = await asyncio.to_thread(slack.wait_for_posts, 5, 15.0)
    finally:
        await w.stop()
    assert [p.text.split()[0] for p in posts] == symbols
    statuses = [c.status for c in slack.calls_to("chat.postMessage")]
    # Each failure blocked the whole queue: only the head row was tried (the probe).
    assert statuses == [500, 500, 500, 500, 200, 200, 200, 200, 200]
    assert all(a.outcome == "sent" for a in store.alerts(SESSION))


async def test_retry_after_holds_every_kind_of_send(slack: SlackApiServer, store: Store) -> None:
    """After a 429 with Retry-After: 1, nothing (alert, recap, chart upload) reaches Slack
    before a second has passed, and then everything goes in queue order."""
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    queue(store, [alert("SPY")])
    recap = Message("recap", "Recap")
    store.enqueue(NewMessage("recap:x", "slack", "recap", message_payload(recap), SESSION), T0)
    chart = file_payload(FileUpload("flow.png", "Flow", b"\x89PNG"))
    store.enqueue(
        NewMessage("chart:x", "slack", "recap", chart, SESSION, thread_parent="row:recap:x"), T0
    )
    w = worker(store, destination(slack))
    w.start()
    try:
        await asyncio.to_thread(slack.wait_for_uploads, 1, 10.0)
    finally:
        await w.stop()
    calls = slack.calls
    limited = next(c for c in calls if c.status == 429)
    after = [c for c in calls if c.at > limited.at]
    assert after and min(c.at for c in after) - limited.at >= 1.0
    assert [p.text for p in slack.posts] == ["SPY regime_flip", "Recap"]
    assert slack.uploads[0].thread_ts == slack.posts[1].ts  # the chart sits under the recap


async def test_permanent_failure_goes_to_dead_letters_and_retry_requeues(
    slack: SlackApiServer, store: Store
) -> None:
    """invalid_blocks is not retried: the row is dead at once, the next row still goes, and
    `outbox retry` puts the dead row back."""
    slack.fail_next("chat.postMessage", status=200, error="invalid_blocks")
    queue(store, [alert("SPY"), alert("QQQ")])
    w = worker(store, destination(slack))
    assert await w.flush() == 1
    assert [p.text for p in slack.posts] == ["QQQ regime_flip"]
    (dead,) = store.outbox("dead")
    assert "invalid_blocks" in (dead.last_error or "") and dead.attempts == 1
    outcomes = {a.symbol: a.outcome for a in store.alerts(SESSION)}
    assert outcomes == {"SPY": "dead", "QQQ": "sent"}
    # a dead alert does not count for the cooldown: the flip may be alerted again
    assert store.last_alerted("regime_flip:-:SPY", "regime_flip") is None
    assert store.retry(dead.id) == 1
    assert await w.flush() == 1
    assert [p.text for p in slack.posts] == ["QQQ regime_flip", "SPY regime_flip"]


async def test_expired_alert_is_not_sent_and_counted(slack: SlackApiServer, store: Store) -> None:
    """An alert still queued after its expiry (the session's close) is recorded as expired."""
    queue(store, [alert("SPY")], expires_at=T0 + timedelta(hours=5))
    w = worker(store, destination(slack), clock_at=T0 + timedelta(hours=6))
    assert await w.flush() == 0
    assert slack.posts == []
    assert [a.outcome for a in store.alerts(SESSION)] == ["expired"]


async def test_late_alert_carries_the_delayed_marker(slack: SlackApiServer, store: Store) -> None:
    """An alert delivered 20 min after detection says when it was detected (New York time)."""
    queue(store, [alert("SPY")])
    w = worker(store, destination(slack), clock_at=T0 + timedelta(minutes=20))
    await w.flush()
    (post,) = slack.posts
    assert post.text.startswith("(⏱ delayed: detected 10:32 ET)")
    assert post.blocks and post.blocks[-1]["elements"][0]["text"] == "⏱ delayed: detected 10:32 ET"


async def test_a_down_destination_delays_no_other(store: Store) -> None:
    """One destination answering 500 for a while does not hold back another one's alerts."""
    with SlackApiServer() as down, SlackApiServer() as up:
        down.fail_next("chat.postMessage", status=500, count=1000)
        queue(store, [alert("SPY")], destination="down")
        queue(store, [alert("QQQ"), alert("IWM")], destination="up")
        w = worker(store, destination(down, "down"), destination(up, "up"))
        w.start()
        try:
            posts = await asyncio.to_thread(up.wait_for_posts, 2, 10.0)
        finally:
            await w.stop()
        assert [p.text.split()[0] for p in posts] == ["QQQ", "IWM"]
        assert down.posts == []
        assert [i.destination for i in store.pending()] == ["down"]


async def test_follow_up_replies_in_its_parents_thread(slack: SlackApiServer, store: Store) -> None:
    """The flip-ended reply goes into the thread of the flip alert at the same destination."""
    queue(store, [alert("SPY")])
    queue(store, [alert("SPY", follow_up=True)], now=T0 + timedelta(minutes=18))
    await worker(store, destination(slack)).flush()
    parent, reply = slack.posts
    assert parent.thread_ts is None and reply.thread_ts == parent.ts


async def test_alert_log_counts_an_alert_only_once_delivered(
    slack: SlackApiServer, store: Store
) -> None:
    """Queued: it blocks a second copy (has_alert) but has no sent_at; delivered: sent_at."""
    queue(store, [alert("SPY")])
    (record,) = store.alerts(SESSION)
    assert (record.sent_at, record.outcome) == (None, "pending")
    assert store.has_alert("regime_flip:-:SPY", SESSION)
    await worker(store, destination(slack)).flush()
    (record,) = store.alerts(SESSION)
    assert record.sent_at == T0 and record.ts == slack.posts[0].ts


@pytest.mark.parametrize(
    ("failures", "low", "high"),
    [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (20, 30.0, 60.0)],
    ids=["first", "second", "third", "capped"],
)
def test_backoff_doubles_with_jitter_up_to_the_cap(failures: int, low: float, high: float) -> None:
    """1 s, 2 s, 4 s … capped, each with jitter in [½, 1) of the step."""
    assert backoff(failures, 60.0, rand=lambda: 0.0) == low
    assert low <= backoff(failures, 60.0) < high


def named_channel(slack: SlackApiServer) -> SlackBotDestination:
    return SlackBotDestination(
        slack.token, "#desk", slack.api_url, min_interval=0, fetch_permalink=False
    )


async def test_chart_after_restart_goes_into_the_recap_thread(store_target: Path | str) -> None:
    """The recap went out, then the bot restarted: the chart still lands in the recap's
    thread and the alert queued after it is delivered."""
    recap = Message("recap", "Recap")
    chart = FileUpload("flow.png", "Flow", b"\x89PNG")
    with SlackApiServer() as slack:
        # The first process queues the recap, its chart and an alert, posts the recap and
        # stops before the upload.
        first = Store(store_target)
        first.enqueue(NewMessage("recap:x", "slack", "recap", message_payload(recap), SESSION), T0)
        first.enqueue(
            NewMessage(
                "chart:x",
                "slack",
                "recap",
                file_payload(chart),
                SESSION,
                thread_parent="row:recap:x",
            ),
            T0,
        )
        first.enqueue(
            NewMessage("late", "slack", "alert", message_payload(Message("a", "late")), SESSION), T0
        )
        (row,) = first.pending("slack", limit=1)
        got = await named_channel(slack).post(recap)
        first.mark_sent(row.id, now=T0, channel=got.channel, ts=got.ts, permalink=None)
        first.close()
        # The restarted process opens the same database with a fresh destination.
        store = Store(store_target)
        try:
            worker = OutboxWorker(store, {"slack": named_channel(slack)}, clock=lambda: T0)
            assert await worker.flush() == 2
        finally:
            store.close()
        (upload,) = slack.uploads
        assert (upload.channel_id, upload.thread_ts) == (got.channel, got.ts)
        assert [p.text for p in slack.posts] == ["Recap", "late"]
