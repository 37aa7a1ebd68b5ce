"""``flowbot outbox list | retry | purge`` on a real state database: a SQLite file, and a
PostgreSQL database named by ``[state] url``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.events import Message
from bot.outbox import message_payload
from bot.store import NewMessage, Store

RUNNER = CliRunner()


@pytest.fixture
def state(tmp_path: Path, store_target: Path | str) -> Iterator[tuple[Path, Store]]:
    """A config pointing at a state database (a SQLite file, or PostgreSQL by ``[state] url``)
    holding one sent, one dead and one pending row; the test's own handle on it beside."""
    cfg = tmp_path / "flowbot.toml"
    setting = (
        f'path = "{store_target}"' if isinstance(store_target, Path) else f'url = "{store_target}"'
    )
    cfg.write_text(f"[state]\n{setting}\n", encoding="utf-8")
    store = Store(store_target)
    old = datetime.now(UTC) - timedelta(days=10)
    for key in ("sent", "dead", "pending"):
        payload = message_payload(Message("recap", f"{key} message"))
        store.enqueue(NewMessage(key, "slack", "recap", payload, "2026-06-05"), old)
    items = {i.dedupe_key: i.id for i in store.outbox()}
    store.mark_sent(items["sent"], now=old, channel=None, ts=None, permalink=None)
    store.mark_dead(items["dead"], error="slack chat.postMessage failed: invalid_auth (HTTP 200)")
    try:
        yield cfg, store
    finally:
        store.close()


def test_list_shows_dead_rows_with_their_error(state: tuple[Path, Store]) -> None:
    """`outbox list --state dead` shows the dead row and why, and nothing else."""
    cfg, _ = state
    result = RUNNER.invoke(app, ["outbox", "list", "--state", "dead", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "invalid_auth" in result.output and "dead" in result.output
    assert "pending" not in result.output


def test_list_rejects_an_unknown_state(state: tuple[Path, Store]) -> None:
    """A typo in --state exits 2 naming the known states."""
    cfg, _ = state
    result = RUNNER.invoke(app, ["outbox", "list", "--state", "deadd", "--config", str(cfg)])
    assert result.exit_code == 2 and "pending, sent, dead, expired" in result.output


def test_retry_all_requeues_the_dead_row(state: tuple[Path, Store]) -> None:
    """`outbox retry --all` puts dead rows back in the queue with their tries reset."""
    cfg, store = state
    result = RUNNER.invoke(app, ["outbox", "retry", "--all", "--config", str(cfg)])
    assert result.exit_code == 0 and "1 row(s) queued again" in result.output
    assert sorted(i.dedupe_key for i in store.pending()) == ["dead", "pending"]
    assert all(i.attempts == 0 for i in store.pending())


def test_retry_needs_an_id_or_all(state: tuple[Path, Store]) -> None:
    """`outbox retry` with neither an id nor --all exits 2."""
    cfg, _ = state
    assert RUNNER.invoke(app, ["outbox", "retry", "--config", str(cfg)]).exit_code == 2


def test_purge_deletes_finished_rows_and_keeps_pending(state: tuple[Path, Store]) -> None:
    """`outbox purge --older-than 7d` deletes the old sent and dead rows, never pending."""
    cfg, store = state
    result = RUNNER.invoke(app, ["outbox", "purge", "--older-than", "7d", "--config", str(cfg)])
    assert result.exit_code == 0 and "2 row(s) purged" in result.output
    assert [i.dedupe_key for i in store.outbox()] == ["pending"]
    bad = RUNNER.invoke(app, ["outbox", "purge", "--older-than", "week", "--config", str(cfg)])
    assert bad.exit_code == 2
