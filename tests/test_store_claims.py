"""Delivery claims and the cluster view, as two replicas sharing one database see them: a row
claimed by one replica is not delivered by the other until its lease lapses, is released or
is sent; only the head of a destination's queue is ever claimed, so rows leave in order; a
failed row stays with its replica through its backoff; heartbeats list the replicas, leader
first. Each test runs on SQLite and on PostgreSQL; the threaded one on PostgreSQL only."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.events import Message
from bot.outbox import message_payload
from bot.store import PENDING, SENT, NewMessage, OutboxItem, Store
from bot.store.schema import outbox

SESSION = "2026-06-05"
T0 = datetime(2026, 6, 5, 14, 32, tzinfo=UTC)
LEASE = timedelta(seconds=30)
KEYS = itertools.count()  # dedupe keys unique across the module


@pytest.fixture
def replicas(store_target: Path | str) -> Iterator[tuple[Store, Store]]:
    """Two handles on one database, as replicas "a" and "b" of a cluster each have."""
    a, b = Store(store_target), Store(store_target)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def queue(store: Store, *destinations: str) -> list[int]:
    """One new outbox row per destination given, in that order; returns their ids."""
    for destination in destinations:
        key = f"row-{next(KEYS)}"
        payload = message_payload(Message("alert", f"{key} for {destination}"))
        assert store.enqueue(NewMessage(key, destination, "alert", payload, SESSION), T0)
    newest_first = store.outbox(limit=len(destinations))
    assert [i.destination for i in reversed(newest_first)] == list(destinations)
    return [i.id for i in reversed(newest_first)]


def claim(store: Store, owner: str, at: datetime, destination: str = "slack") -> int | None:
    """The id of the row ``owner`` claims for ``destination`` at ``at``, or ``None``."""
    item = store.claim(destination, owner=owner, now=at, lease=LEASE)
    return item.id if item else None


def sent(store: Store, item_id: int, at: datetime = T0) -> None:
    store.mark_sent(item_id, now=at, channel="C1", ts="1.0", permalink=None)


def pending(store: Store, item_id: int) -> OutboxItem:
    (item,) = [i for i in store.pending() if i.id == item_id]
    return item


# -- two replicas, one row -------------------------------------------------------------------


def test_a_claimed_row_waits_for_its_lease_to_lapse(replicas: tuple[Store, Store]) -> None:
    """a's claim holds for the lease: b gets nothing until it lapses, then b gets that same
    row, and a can neither take it back nor extend its old claim."""
    a, b = replicas
    (row,) = queue(a, "slack")
    item = a.claim("slack", owner="a", now=T0, lease=LEASE)
    assert item is not None
    assert (item.id, item.state, item.claimed_by, item.claimed_until) == (
        row,
        PENDING,
        "a",
        T0 + LEASE,
    )
    stored = pending(b, row)
    assert (stored.claimed_by, stored.claimed_until) == ("a", T0 + LEASE)
    assert claim(b, "b", T0) is None
    assert claim(b, "b", T0 + LEASE - timedelta(seconds=1)) is None
    assert claim(a, "a", T0 + timedelta(seconds=10)) == row  # its own claim: still a's
    assert claim(b, "b", T0 + timedelta(seconds=39)) is None  # ... renewed to 10 s + lease
    assert claim(b, "b", T0 + timedelta(seconds=41)) == row
    assert pending(a, row).claimed_by == "b"
    assert claim(a, "a", T0 + timedelta(seconds=42)) is None
    assert not a.extend_claim(row, owner="a", until=T0 + timedelta(minutes=5))


def test_extend_claim_keeps_the_row_past_its_first_lease(replicas: tuple[Store, Store]) -> None:
    """A long send renews a's claim: b still cannot take the row after the first lease, only
    after the renewed one; b cannot extend a claim it does not hold."""
    a, b = replicas
    (row,) = queue(a, "slack")
    assert claim(a, "a", T0) == row
    assert a.extend_claim(row, owner="a", until=T0 + timedelta(seconds=90))
    assert not b.extend_claim(row, owner="b", until=T0 + timedelta(hours=1))
    assert pending(b, row).claimed_until == T0 + timedelta(seconds=90)
    assert claim(b, "b", T0 + timedelta(seconds=60)) is None
    assert claim(b, "b", T0 + timedelta(seconds=91)) == row


def test_release_claims_frees_the_rows_at_once(replicas: tuple[Store, Store]) -> None:
    """A replica stopping cleanly gives its rows up: b delivers them without waiting out the
    lease. Releasing another owner's rows releases nothing of a's."""
    a, b = replicas
    slack, mail = queue(a, "slack", "mail")
    assert claim(a, "a", T0) == slack
    assert claim(a, "a", T0, "mail") == mail
    assert claim(b, "b", T0 + timedelta(seconds=1)) is None
    assert b.release_claims("b") == 0
    assert claim(b, "b", T0 + timedelta(seconds=1)) is None
    assert a.release_claims("a") == 2
    assert claim(b, "b", T0 + timedelta(seconds=1)) == slack
    assert claim(b, "b", T0 + timedelta(seconds=1), "mail") == mail
    assert a.release_claims("a") == 0


# -- order ---------------------------------------------------------------------------------------


def test_only_the_head_of_a_queue_is_claimed(replicas: tuple[Store, Store]) -> None:
    """Rows 1, 2, 3 for slack: while a holds row 1, b gets nothing (not row 2), though
    another destination's row is b's at once; once row 1 is sent, b claims row 2, and a
    then gets nothing until row 2 is sent."""
    a, b = replicas
    one, mail, two, three = queue(a, "slack", "mail", "slack", "slack")
    assert claim(a, "a", T0) == one
    assert claim(b, "b", T0) is None
    assert claim(b, "b", T0, "mail") == mail
    assert claim(b, "b", T0 + LEASE - timedelta(seconds=1)) is None
    sent(a, one)
    assert claim(b, "b", T0 + timedelta(seconds=2)) == two
    assert claim(a, "a", T0 + timedelta(seconds=2)) is None
    sent(b, two)
    assert claim(a, "a", T0 + timedelta(seconds=3)) == three
    sent(a, three)
    assert claim(b, "b", T0 + timedelta(seconds=4)) is None
    assert [i.id for i in a.pending()] == [mail]
    assert {i.id: i.state for i in b.outbox()} == {one: SENT, two: SENT, three: SENT, mail: PENDING}


def test_a_held_failed_row_stays_with_its_replica(replicas: tuple[Store, Store]) -> None:
    """mark_failed(hold_until=t): the row stays a's through the backoff, past the lease, so
    b does not retry it sooner (nor the rows behind it); after t, b takes it. Without a
    hold the failed row is free at once."""
    a, b = replicas
    row, _behind = queue(a, "slack", "slack")
    assert claim(a, "a", T0) == row
    hold = T0 + timedelta(seconds=120)
    a.mark_failed(row, error="slack: HTTP 500", hold_until=hold)
    failed = pending(b, row)
    assert (failed.attempts, failed.last_error) == (1, "slack: HTTP 500")
    assert (failed.claimed_by, failed.claimed_until) == ("a", hold)
    assert claim(b, "b", T0 + LEASE + timedelta(seconds=1)) is None
    assert claim(b, "b", hold - timedelta(seconds=1)) is None
    assert claim(b, "b", hold + timedelta(seconds=1)) == row
    b.mark_failed(row, error="slack: HTTP 502")
    freed = pending(a, row)
    assert (freed.attempts, freed.claimed_by, freed.claimed_until) == (2, None, None)
    assert claim(a, "a", hold + timedelta(seconds=2)) == row


def test_claims_counts_live_claims_per_replica(replicas: tuple[Store, Store]) -> None:
    """The status page's claims in flight: live leases per replica; a sent row and a lapsed
    lease are not counted."""
    a, b = replicas
    slack, mail, hook = queue(a, "slack", "mail", "hook")
    assert a.claims(T0) == {}
    assert claim(a, "a", T0) == slack
    assert claim(a, "a", T0, "mail") == mail
    assert claim(b, "b", T0, "hook") == hook
    assert a.claims(T0) == b.claims(T0) == {"a": 2, "b": 1}
    sent(a, slack)
    assert b.claims(T0 + timedelta(seconds=1)) == {"a": 1, "b": 1}
    assert b.extend_claim(hook, owner="b", until=T0 + timedelta(minutes=2))
    assert a.claims(T0 + LEASE + timedelta(seconds=1)) == {"b": 1}
    assert a.claims(T0 + timedelta(minutes=3)) == {}


# -- PostgreSQL: replicas racing for one queue ------------------------------------------------


@pytest.mark.parametrize("store_target", ["postgresql"], indirect=True)
def test_racing_replicas_send_every_row_once_in_order(store_target: str) -> None:
    """4 replicas (threads, each with its own Store and owner) claim the head of one queue
    and mark it sent, as fast as they can, until 60 rows are gone: every row was sent
    exactly once, and the rows were taken in id order overall."""
    rows, threads = 60, 4
    setup = Store(store_target)
    try:
        ids = queue(setup, *["slack"] * rows)
    finally:
        setup.close()
    lock = threading.Lock()
    taken: list[tuple[int, str]] = []  # (row id, owner) in the order the claims returned
    start = threading.Barrier(threads)
    deadline = time.monotonic() + 60

    def replica(owner: str) -> int:
        store = Store(store_target)
        try:
            start.wait()
            mine = 0
            while time.monotonic() < deadline:
                item = store.claim("slack", owner=owner, now=datetime.now(UTC), lease=LEASE)
                if item is None:
                    if not store.pending("slack", limit=1):
                        return mine
                    time.sleep(0.001)
                    continue
                with lock:
                    taken.append((item.id, owner))
                store.mark_sent(
                    item.id, now=datetime.now(UTC), channel=None, ts=None, permalink=None
                )
                mine += 1
            raise AssertionError(f"{owner}: queue not empty after 60 s")
        finally:
            store.close()

    with ThreadPoolExecutor(threads) as pool:
        counts = list(pool.map(replica, [f"r{i}" for i in range(threads)]))
    sequence = [row for row, _ in taken]
    assert sorted(sequence) == ids, "every row claimed exactly once"
    assert sequence == ids, "rows taken in id order"
    assert sum(counts) == rows
    assert len({owner for _, owner in taken}) > 1, "the replicas shared the queue"
    check = Store(store_target)
    try:
        assert check.pending() == []
        assert sorted(i.id for i in check.outbox(SENT, limit=rows + 1)) == ids
    finally:
        check.close()


# -- the cluster view ----------------------------------------------------------------------------


STARTED = T0 - timedelta(hours=1)


def beat(store: Store, replica_id: str, role: str, at: datetime) -> None:
    """Replica ``replica_id`` (on host-<id>, pid 4242) says it is alive at ``at`` as ``role``."""
    store.heartbeat(
        replica_id,
        host=f"host-{replica_id}",
        pid=4242,
        role=role,
        started_at=STARTED,
        now=at,
        leader_since=STARTED if role == "leader" else None,
    )


def test_heartbeats_list_the_replicas_leader_first(replicas: tuple[Store, Store]) -> None:
    """Each replica's heartbeat shows in the other's view, the leader first even when the
    follower was seen later; a later heartbeat updates the row (a failover swaps them)."""
    a, b = replicas
    beat(a, "a", "leader", T0)
    beat(b, "b", "follower", T0 + timedelta(seconds=5))
    listed = b.replicas()
    assert [(r.id, r.role) for r in listed] == [("a", "leader"), ("b", "follower")]
    leader, follower = listed
    assert (leader.host, leader.pid, leader.started_at) == ("host-a", 4242, STARTED)
    assert (leader.seen_at, leader.leader_since) == (T0, STARTED)
    assert (follower.seen_at, follower.leader_since) == (T0 + timedelta(seconds=5), None)
    beat(b, "b", "leader", T0 + timedelta(seconds=20))
    beat(a, "a", "follower", T0 + timedelta(seconds=21))
    assert [(r.id, r.role) for r in a.replicas()] == [("b", "leader"), ("a", "follower")]
    assert a.replicas()[1].seen_at == T0 + timedelta(seconds=21)


def test_forget_and_prune_replicas(replicas: tuple[Store, Store]) -> None:
    """forget_replica removes a replica that stopped cleanly; prune drops one not seen for
    a day and keeps one seen within it."""
    a, b = replicas
    beat(a, "a", "leader", T0)
    beat(b, "b", "follower", T0)
    beat(b, "c", "follower", T0 - timedelta(hours=23))
    beat(b, "d", "follower", T0 - timedelta(hours=25))
    a.forget_replica("b")
    assert [r.id for r in b.replicas()] == ["a", "c", "d"]
    assert a.prune(T0, keep_days=30) == 1
    assert [r.id for r in b.replicas()] == ["a", "c"]


def test_a_replica_whose_lease_lapsed_cannot_settle_the_row_it_lost(replicas) -> None:
    """a stalls past its lease, b takes the row over: a's late "dead" or "expired" verdict
    changes nothing, and b's delivery is what the row records."""
    a, b = replicas
    (row,) = queue(a, "slack")
    assert claim(a, "a", T0) == row
    later = T0 + LEASE + timedelta(seconds=1)
    assert claim(b, "b", later) == row
    assert not a.mark_dead(row, error="channel_not_found", owner="a")
    assert not a.mark_expired(row, owner="a")
    assert not a.mark_failed(row, error="timeout", hold_until=later, owner="a")
    (item,) = b.pending("slack")
    assert (item.claimed_by, item.attempts) == ("b", 0)
    sent(b, row, later)
    assert [i.state for i in b.outbox()] == [SENT]


@pytest.mark.parametrize("store_target", ["postgresql"], indirect=True)
def test_a_replica_that_cannot_reach_the_destination_leaves_the_retry_to_another(
    replicas,
) -> None:
    """a fails to send (its Slack is unreachable) while b is alive: after a's backoff b gets
    the row, and a does not take it back within the grace period. Alone, a retries at once."""
    a, b = replicas
    first, second = queue(a, "slack", "slack")
    for name, store in (("a", a), ("b", b)):
        store.heartbeat(
            name, host="h", pid=1, role="follower", started_at=T0, now=T0, leader_since=None
        )
    assert claim(a, "a", T0) == first
    hold = T0 + timedelta(seconds=2)
    assert a.mark_failed(first, error="HTTP 503", hold_until=hold, owner="a")
    after = hold + timedelta(seconds=1)
    assert claim(a, "a", after) is None, "a waits: another replica may reach Slack"
    assert claim(b, "b", after) == first
    sent(b, first, after)

    b.forget_replica("b")  # b is gone: a alone retries its own failures at once
    assert claim(a, "a", after) == second
    assert a.mark_failed(second, error="HTTP 503", hold_until=hold, owner="a")
    assert claim(a, "a", after) == second


def test_a_long_read_does_not_hold_the_writers(store_target: Path | str) -> None:
    """A reader (``flowbot outbox list`` or replay on the live file) keeps a transaction
    open; the bot's commits and claims still go through (SQLite readers begin deferred)."""
    reader, writer = Store(store_target), Store(store_target)
    try:
        with reader.engine.connect() as conn:
            conn.execute(select(outbox)).all()  # a read transaction stays open
            (row,) = queue(writer, "slack")
            assert claim(writer, "a", T0) == row
    finally:
        reader.close()
        writer.close()
