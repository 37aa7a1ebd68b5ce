"""``flowbot replay`` over a session recorded by the real bot against the sandbox on 127.0.0.1:
the same config replays every recorded alert, a changed threshold shows what it adds or drops."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.app import build_bot
from bot.cli import app
from bot.deliver.base import BuildContext
from bot.render import Renderer
from bot.replay import Mark, replay, ticks
from bot.rules import RULES
from bot.settings import Secrets, Settings, load_settings
from bot.sim import Sandbox
from bot.store import SnapshotRow, Store

SCENARIO = """
session_date = "2026-06-05"
seed = 11
quiet = true
symbols = ["SPY", "NVDA"]

[[events]]
at = "10:32"
symbol = "SPY"
kind = "flow_direction"
value = "regime_flip"

[[events]]
at = "11:05"
symbol = "NVDA"
kind = "anomaly"
score = 78
bias = "bullish"
"""
SESSION = "2026-06-05"
TIMES = ["09:30", "10:30", "10:33", "10:34", "11:00", "11:06", "11:07"]


def _settings(base_url: str, state: Path, **rules: Any) -> Settings:
    return load_settings(
        None,
        flashalpha={"base_url": base_url, "plan": "alpha", "retries": 1},
        watchlist={"symbols": ["SPY", "NVDA"]},
        state={"path": state},
        rules={"top_n": {"zero_dte_metrics": [], "watchlist_only": True}, **rules},
    )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state file of a short session the bot really ran (console destination)."""
    state = tmp_path_factory.mktemp("replay") / "state.sqlite3"

    async def record() -> None:
        with Sandbox(scenario=SCENARIO, speed=0) as sandbox:
            bot = build_bot(
                _settings(sandbox.base_url, state),
                Secrets(flashalpha_api_key="sandbox-alpha"),
                context=BuildContext(environ={}),
                clock=sandbox.clock.now,
                close_of=lambda day: None,
            )
            try:
                for hhmm in TIMES:
                    sandbox.set_time_ny(hhmm)
                    now = sandbox.clock.now()
                    await bot.engine.poll_symbols(now)
                    await bot.engine.poll_leaderboards(now)
                    await bot.worker.flush()
            finally:
                await bot.aclose()

    asyncio.run(record())
    return state


def _replay(state: Path, settings: Settings) -> dict[str, list[tuple[str, str]]]:
    store = Store(state)
    try:
        result = replay(
            store.history(SESSION),
            store.alerts(SESSION),
            rules={name: settings.rule_config(name) for name in RULES},
            watchlist=settings.watchlist.symbols,
            renderer=Renderer(None),
        )
    finally:
        store.close()
    out: dict[str, list[tuple[str, str]]] = {}
    for line in result.lines:
        out.setdefault(line.mark, []).append((line.rule, line.symbol))
    return out


def test_same_config_replays_every_recorded_alert(recorded: Path) -> None:
    """Replayed with the config it ran with, the session raises exactly what it recorded."""
    marks = _replay(recorded, _settings("http://127.0.0.1:1", recorded))
    assert sorted(marks) == [Mark.SAME]
    assert ("regime_flip", "SPY") in marks[Mark.SAME]
    assert ("candidate", "NVDA") in marks[Mark.SAME]


def test_raised_min_score_marks_the_candidate_gone(recorded: Path) -> None:
    """candidate.min_score 80 over a score-78 candidate: that alert is gone, the flip stays."""
    settings = _settings("http://127.0.0.1:1", recorded, candidate={"min_score": 80})
    marks = _replay(recorded, settings)
    assert marks[Mark.GONE] == [("candidate", "NVDA")]
    assert ("regime_flip", "SPY") in marks[Mark.SAME]
    assert Mark.NEW not in marks


def test_disabled_rule_marks_its_alerts_gone(recorded: Path) -> None:
    """regime_flip off: its alerts are gone; nothing is invented for other rules."""
    settings = _settings("http://127.0.0.1:1", recorded, regime_flip={"enabled": False})
    marks = _replay(recorded, settings)
    assert {rule for rule, _ in marks[Mark.GONE]} == {"regime_flip"}
    assert marks[Mark.SAME] == [("candidate", "NVDA")]


def test_cli_prints_marks_and_per_rule_counts(recorded: Path, tmp_path: Path) -> None:
    """The command prints each alert marked and a count line per rule; nothing is sent."""
    config = tmp_path / "tuned.toml"
    config.write_text(
        '[watchlist]\nsymbols = ["SPY", "NVDA"]\n'
        "[rules.top_n]\nzero_dte_metrics = []\nwatchlist_only = true\n"
        "[rules.candidate]\nmin_score = 80\n"
    )
    before = Store(recorded).alerts(SESSION)
    result = CliRunner().invoke(
        app, ["replay", "--state", str(recorded), "--date", SESSION, "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    assert any(line.startswith("gone") and "NVDA" in line for line in result.output.splitlines())
    assert "candidate       recorded 1, replayed 0 (same 0, new 0, gone 1)" in result.output
    assert len(Store(recorded).alerts(SESSION)) == len(before), "replay records nothing"


def test_cli_rejects_a_bad_date_and_a_missing_file(tmp_path: Path) -> None:
    """A wrong --date or --state exits 2 and names it."""
    bad_date = CliRunner().invoke(app, ["replay", "--state", "x", "--date", "June 5"])
    assert bad_date.exit_code == 2 and "--date" in bad_date.output
    missing = CliRunner().invoke(
        app, ["replay", "--state", str(tmp_path / "none.sqlite3"), "--date", SESSION]
    )
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_ticks_follow_the_engine_job_order() -> None:
    """At one time: watchlist sources, then boards, then cumulative; state rows are skipped."""
    t = datetime(2026, 6, 5, 14, 0).astimezone()

    def row(source: str, key: str = "-") -> SnapshotRow:
        return SnapshotRow(source, key, SESSION, t, {})

    cycles = ticks(
        [row("cumulative", "SPY"), row("memory:top_n"), row("options_leaderboard"), row("summary")]
    )
    assert [[r.source for r in rows] for _, rows in cycles] == [
        ["summary"],
        ["options_leaderboard"],
        ["cumulative"],
    ]
