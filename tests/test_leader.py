"""Polling leadership on a real PostgreSQL: one holder at a time, takeover when the holder's
connection ends, and a fence that stops a cut-off leader from committing a cycle."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from bot.leader import PostgresLeadership
from bot.store import NewMessage, NotLeader, SnapshotRow, Store

NOW = datetime(2026, 6, 5, 14, 33, tzinfo=UTC)
SESSION = "2026-06-05"


@pytest.fixture
def stores(pg_url):
    """Two replicas' stores on one database."""
    a, b = Store(pg_url), Store(pg_url)
    yield a, b
    a.close()
    b.close()


def cut_off(leadership: PostgresLeadership, store: Store) -> None:
    """End ``leadership``'s lock session from outside, as a vanished host's would be."""
    with store.engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": leadership._backend_pid})


def acquires(leadership: PostgresLeadership, within: float = 5.0) -> bool:
    """Whether ``leadership`` gets the lock within ``within`` s (a terminated backend frees
    it a moment after ``pg_terminate_backend`` returns)."""
    deadline = time.monotonic() + within
    while not leadership.try_acquire():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _snapshot(direction: str) -> SnapshotRow:
    return SnapshotRow("summary", "SPY", SESSION, NOW, {"flow_direction": direction})


def test_one_replica_leads_and_another_takes_over_when_its_connection_ends(stores):
    """While a holds the lock b cannot take it; a's backend terminated (a host gone) frees
    it for b, and a then finds out it no longer leads."""
    a_store, b_store = stores
    a, b = PostgresLeadership(a_store.engine), PostgresLeadership(b_store.engine)
    assert a.try_acquire() and a.check()
    assert not b.try_acquire()
    assert b.refusal == "another replica holds the polling leadership"

    cut_off(a, b_store)
    assert acquires(b)
    assert not a.check() and not a.try_acquire()
    b.release()
    assert a.try_acquire()
    a.release()


def test_a_fenced_leader_commits_nothing_once_another_leads(stores):
    """The old leader's cycle (a flip and its Slack message) is refused whole after b took
    over; b's cycle commits. What a detected is b's to alert, once."""
    a_store, b_store = stores
    a, b = PostgresLeadership(a_store.engine), PostgresLeadership(b_store.engine)
    a_store.fence, b_store.fence = a.fence, b.fence
    assert a.try_acquire()
    message = NewMessage("alert:1:slack", "slack", "alert", {"type": "message"}, SESSION)
    a_store.commit_cycle(session=SESSION, now=NOW, snapshots=[_snapshot("neutral")])

    cut_off(a, b_store)
    assert acquires(b)
    with pytest.raises(NotLeader):
        a_store.commit_cycle(
            session=SESSION, now=NOW, snapshots=[_snapshot("regime_flip")], messages=[message]
        )
    assert b_store.unsent_count() == 0
    assert b_store.snapshots(SESSION)[0].payload == {"flow_direction": "neutral"}

    b_store.commit_cycle(
        session=SESSION, now=NOW, snapshots=[_snapshot("regime_flip")], messages=[message]
    )
    assert b_store.unsent_count() == 1
    b.release()


def test_migrations_run_once_when_replicas_open_one_new_database_together(pg_url):
    """Two stores opened on an empty database (as two replicas starting at once) leave one
    schema at the newest revision."""
    import threading

    from bot.store.migrate import HEAD

    errors: list[BaseException] = []
    opened: list[Store] = []

    def open_store() -> None:
        try:
            opened.append(Store(pg_url))
        except BaseException as exc:  # pragma: no cover - the failure is the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with opened[0].engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD
    for store in opened:
        store.close()


def test_a_takeover_waits_for_the_old_leaders_commit_in_flight(stores):
    """a's cycle is past its fence check when its lock connection dies: b's takeover waits
    for that commit, then reads what a wrote (so b does not alert the same change again)."""
    import threading

    a_store, b_store = stores
    a, b = PostgresLeadership(a_store.engine), PostgresLeadership(b_store.engine)
    assert a.try_acquire()
    took_over = threading.Event()
    with a_store.engine.begin() as conn:
        a.fence(conn)  # a's commit_cycle is here: checked, writing
        cut_off(a, b_store)
        thread = threading.Thread(target=lambda: acquires(b) and took_over.set())
        thread.start()
        assert not took_over.wait(1.0), "b must not lead while a's fenced commit is open"
        conn.execute(
            text("INSERT INTO job_run (job, session, done_at) VALUES ('recap', :s, 'x')"),
            {"s": SESSION},
        )
    thread.join(10)
    assert took_over.is_set()
    assert b_store.job_done("recap", SESSION), "b sees a's last commit when it takes over"
    b.release()
