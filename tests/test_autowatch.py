"""Auto-watch: symbols entering the chosen boards are polled like watchlist symbols until the
close, survive a restart, are counted in the request budget and listed in the recap. End to end
against the sandbox on 127.0.0.1, state in a temp dir."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import stamina

import bot.budget
from bot.app import build_bot
from bot.autowatch import AutoWatch, AutoWatchlist
from bot.budget import plan_budget
from bot.calendar import TradingCalendar
from bot.deliver.base import BuildContext
from bot.reports import build_session_recap
from bot.rules.top_n import TopNConfig
from bot.settings import ConfigError, Secrets, isolated_settings, load_settings
from bot.sim import Sandbox


@pytest.fixture(autouse=True)
def fast_retries():
    stamina.set_testing(True, attempts=1)
    yield
    stamina.set_testing(False)


def _bot(sandbox: Sandbox, state: Path, **watchlist: Any):
    settings = load_settings(
        None,
        flashalpha={"base_url": sandbox.base_url, "plan": "alpha", "retries": 0},
        watchlist={"symbols": ["SPY"], "auto_from": ["options:buyers"], "auto_max": 2, **watchlist},
        state={"path": state},
        rules={"top_n": {"zero_dte_metrics": [], "watchlist_only": True}},
    )
    return build_bot(
        settings,
        Secrets(flashalpha_api_key="sandbox-alpha"),
        context=BuildContext(environ={}),
        clock=sandbox.clock.now,
        close_of=lambda day: None,
    )


def _summaries(sandbox: Sandbox, symbol: str) -> int:
    return sandbox.request_count(f"/v1/flow/summary/{symbol}")


async def test_board_entries_are_polled_and_kept_across_a_restart(tmp_path: Path) -> None:
    """Two buyers join (auto_max 2), get summary polls, and are still polled after a restart;
    the recap says which and why."""
    state = tmp_path / "state.sqlite3"
    with Sandbox(speed=0) as sandbox:
        bot = _bot(sandbox, state)
        try:
            sandbox.set_time_ny("11:00")
            now = sandbox.clock.now()
            await bot.engine.poll_leaderboards(now)
            board = bot.engine._market.options_board
            assert board is not None
            buyers = [r.symbol for r in board.buyers if r.symbol != "SPY"][:2]
            assert bot.engine.watched() == ["SPY", *buyers]
            await bot.engine.poll_symbols(now)
            assert all(_summaries(sandbox, s) == 1 for s in buyers)
        finally:
            await bot.aclose()

        restarted = _bot(sandbox, state)
        try:
            sandbox.set_time_ny("11:01")
            await restarted.engine.poll_symbols(sandbox.clock.now())
            assert all(_summaries(sandbox, s) == 2 for s in buyers), "kept after the restart"
            session = TradingCalendar().session_for(date(2026, 6, 5))
            assert session is not None
            recap, _ = await build_session_recap(restarted, session)
        finally:
            await restarted.aclose()
    assert [(a.symbol, a.board, a.time_ny) for a in recap.auto_watched] == [
        (s, "Options buyers", "11:00") for s in buyers
    ]
    blocks = str(restarted.renderer.slack_template("recap", recap=recap).blocks)
    assert f"*{buyers[0]}* entered Options buyers at #" in blocks


async def test_a_new_session_starts_without_auto_symbols(tmp_path: Path) -> None:
    """The auto list lasts until the close: the next session polls the watchlist only."""
    with Sandbox(speed=0) as sandbox:
        bot = _bot(sandbox, tmp_path / "state.sqlite3")
        try:
            sandbox.set_time_ny("11:00")
            await bot.engine.poll_leaderboards(sandbox.clock.now())
            assert len(bot.engine.watched()) == 3
            await bot.engine.poll_symbols(datetime(2026, 6, 8, 14, 0, tzinfo=UTC))  # Monday
            assert bot.engine.watched() == ["SPY"]
        finally:
            await bot.aclose()


def _list(**kwargs: Any) -> AutoWatchlist:
    return AutoWatchlist(
        ["options:buyers"],
        auto_max=kwargs.get("auto_max", 10),
        polled=kwargs.get("polled", 10),
        top_n=TopNConfig(),
        watchlist=["SPY"],
    )


def test_lowest_ranked_auto_symbols_are_polled_last() -> None:
    """With room for 2 of 3, the two best-ranked are polled, in joining order."""
    watch = _list(polled=2)
    at = datetime(2026, 6, 5, 15, 0, tzinfo=UTC)
    watch.entries = [
        AutoWatch("AMD", "options:buyers", 5, at),
        AutoWatch("NVDA", "options:buyers", 1, at),
        AutoWatch("TSLA", "options:buyers", 3, at),
    ]
    assert watch.symbols() == ["NVDA", "TSLA"]


def _settings(plan: str = "alpha", **watchlist: Any):
    return isolated_settings(
        flashalpha={"plan": plan},
        watchlist={"symbols": ["SPY", "QQQ"], **watchlist},
        schedule={"poll_seconds": 30, "leaderboard_seconds": 60},
    )


def test_budget_counts_auto_symbols_and_drops_them_before_slowing(monkeypatch) -> None:
    """The estimate includes auto_max symbols; a short quota drops auto symbols first."""
    plain = plan_budget(_settings())
    auto = plan_budget(_settings(auto_from=["options:buyers"], auto_max=4))
    per_symbol = 780 * 2  # 390 min of 30 s polls × summary and anomaly
    assert auto.auto_symbols == 4
    assert auto.estimate == plain.estimate + 4 * per_symbol
    # A quota with room for the watchlist and one auto symbol, not four: cadence unchanged.
    monkeypatch.setitem(
        bot.budget.PLAN_QUOTAS,
        "alpha",
        int((plain.estimate + 1.5 * per_symbol) / 0.9),
    )
    short = plan_budget(_settings(auto_from=["options:buyers"], auto_max=4))
    assert short.auto_symbols == 1 and not short.stretched
    assert short.poll_seconds == 30


def test_unknown_auto_board_is_a_config_error() -> None:
    """``auto_from`` naming a board that does not exist names the key and the known boards."""
    with pytest.raises(ConfigError, match=r"watchlist\.auto_from.*options:buyers"):
        _settings(auto_from=["options:whales"])
