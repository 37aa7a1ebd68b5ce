"""`flowbot once` as a process against the sandbox: it sends its first cycle before it builds
the store and the engine (:meth:`FlashAlphaClient.prefetch`), so these check what that must
not change: each request is made once, a refusal or a config mistake makes none."""

from __future__ import annotations

import collections
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from bot.lock import StateLock
from bot.sim import Sandbox

SCENARIO = """
session_date = "2026-06-05"
seed = 5
quiet = true
symbols = ["SPY", "QQQ", "NVDA"]
"""


def _config(tmp_path: Path, sandbox: Sandbox) -> Path:
    path = tmp_path / "flowbot.toml"
    path.write_text(
        f'[flashalpha]\nbase_url = "{sandbox.base_url}"\nplan = "alpha"\n'
        '[watchlist]\nsymbols = ["SPY", "QQQ", "NVDA"]\n'
        '[rules.top_n]\nzero_dte_metrics = ["heat", "pin_risk"]\n'
        f'[state]\npath = "{tmp_path / "state.sqlite3"}"\n'
        f'[console]\njsonl_path = "{tmp_path / "messages.jsonl"}"\n'
    )
    return path


def _once(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FLASHALPHA_API_KEY": "sandbox-alpha"}
    return subprocess.run(
        [sys.executable, "-m", "bot", "once", "--config", str(config), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=config.parent,
        env=env,
    )


def test_each_request_of_the_cycle_is_made_once(tmp_path: Path) -> None:
    """Summary and anomaly per symbol, the options board and two 0DTE boards: 9 requests,
    none repeated by the poll that takes the early answers, and the snapshots are stored."""
    with Sandbox(scenario=SCENARIO, speed=0) as sandbox:
        config = _config(tmp_path, sandbox)
        done = _once(config)
        asked = collections.Counter((r.endpoint, r.symbol) for r in sandbox.requests())
    assert done.returncode == 0, done.stderr
    assert "9 response(s), 0 failure(s)" in done.stderr
    assert asked == {
        **{(e, s): 1 for e in ("summary", "anomaly") for s in ("SPY", "QQQ", "NVDA")},
        ("options_leaderboard", None): 1,
        ("zero_dte_leaderboard", None): 2,  # heat and pin_risk
    }
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        (stored,) = db.execute("select count(*) from snapshot").fetchone()
    assert stored >= 9


def test_a_refused_once_sends_nothing(tmp_path: Path) -> None:
    """While another process holds the state file's lock, `flowbot once` exits 1 before its
    first request (it would otherwise spend quota for nothing)."""
    with Sandbox(scenario=SCENARIO, speed=0) as sandbox:
        config = _config(tmp_path, sandbox)
        with StateLock(tmp_path / "state.sqlite3"):
            done = _once(config)
        assert sandbox.request_count() == 0
    assert done.returncode == 1 and "is in use by flowbot pid" in done.stderr


def test_a_state_file_that_does_not_open_costs_no_request(tmp_path: Path) -> None:
    """The state path is a directory: the store's error ends the run as before, and no request
    was sent ahead of it (on the Free plan 5 requests are the whole day)."""
    with Sandbox(scenario=SCENARIO, speed=0) as sandbox:
        config = _config(tmp_path, sandbox)
        (tmp_path / "state.sqlite3").mkdir()
        done = _once(config)
        assert sandbox.request_count() == 0
    assert done.returncode != 0
