"""`flowbot check` tells the key's real plan against the config's; a plan that serves nothing
the config polls stops `run` / `once` with exit 2 before any request."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from bot.check import run_check
from bot.settings import isolated_secrets, isolated_settings
from bot.sim import Sandbox


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(speed=0) as sb:
        yield sb


@pytest.mark.parametrize(
    ("key", "configured", "status", "words"),
    [
        ("sandbox-alpha", "alpha", 0, "as configured"),
        ("sandbox-growth", "alpha", 1, "key's plan is growth"),
        ("sandbox-growth", "growth", 0, "key's plan: growth"),
        ("sandbox-alpha", "growth", 1, "key's plan is alpha"),
        ("sandbox-basic", "growth", 1, "key's plan is basic"),
    ],
    ids=["alpha-ok", "growth-said-alpha", "growth-ok", "alpha-said-growth", "basic-said-growth"],
)
async def test_check_reads_the_keys_real_plan(sandbox, key, configured, status, words):
    """The key's plan comes from the API (rate-limit header, a 403 body, or an Alpha answer)
    and a mismatch with [flashalpha] plan is said and fails the check."""
    settings = isolated_settings(
        flashalpha={"base_url": sandbox.base_url, "plan": configured},
        watchlist={"symbols": ["SPY"]},
    )
    out = io.StringIO()
    secrets = isolated_secrets(flashalpha_api_key=key)
    code = await run_check(settings, secrets, Console(file=out, width=200))
    text = out.getvalue()
    assert code == status, text
    assert words in text
    assert key not in text


def test_plan_that_serves_nothing_exits_2_before_any_request(tmp_path: Path, sandbox) -> None:
    """A Basic plan with only Growth and Alpha sources configured: exit 2, each source's plan
    named, and no request made."""
    before = sandbox.request_count()
    cfg = tmp_path / "flowbot.toml"
    cfg.write_text(
        f'[flashalpha]\nbase_url = "{sandbox.base_url}"\nplan = "basic"\n'
        f'[state]\npath = "{tmp_path / "s.sqlite3"}"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "once", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "FLASHALPHA_API_KEY": "sandbox-basic"},
    )
    assert done.returncode == 2, done.stderr
    assert "serves nothing this config polls" in done.stderr
    assert "summary needs growth" in done.stderr
    assert "options_leaderboard needs alpha" in done.stderr
    assert sandbox.request_count() == before
