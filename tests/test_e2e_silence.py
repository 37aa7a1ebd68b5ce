"""End to end: a silence added with the CLI while ``flowbot run`` is running mutes the matching
alert from the next tick (recorded, not sent); expiring it lets the next one through."""

from __future__ import annotations

import subprocess

import pytest

from bot.engine import session_of, utcnow
from bot.sim import Sandbox, load_scenario
from bot.store import Store
from tests.support.slack_api import SlackApiServer
from tests.test_e2e_run import (
    DEADLINE,
    SCENARIO,
    BotProcess,
    _env,
    _flowbot,
    _kind,
    _wait_boards,
    _wait_polls,
    _write_config,
)

pytestmark = pytest.mark.e2e


def test_cli_silence_mutes_a_running_bot_and_expire_lifts_it(tmp_path):
    """SPY's flip is silenced (logged as silenced, not posted); after `silence expire`, the
    next alerts (NVDA's candidate, IWM's flip) are posted."""
    with Sandbox(scenario=load_scenario(SCENARIO), speed=0) as sb, SlackApiServer() as slack:
        cfg = _write_config(tmp_path, sb, slack)
        env = _env(slack.token)

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*_flowbot(), *args, "--config", str(cfg)],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
            )

        bot = BotProcess(tmp_path, cfg, env, "run")
        try:
            _wait_polls(sb)
            _wait_boards(sb)
            added = cli(
                "silence",
                "add",
                "--rule",
                "regime_flip",
                "--symbol",
                "spy",
                "--for",
                "1h",
                "--comment",
                "desk knows",
            )
            assert added.returncode == 0, added.stderr
            silence_id = added.stdout.strip()
            sb.set_time_ny("10:33")  # SPY flipped at 10:32: silenced
            _wait_polls(sb, 4)
            assert slack.posts == []
            expired = cli("silence", "expire", silence_id)
            assert expired.returncode == 0, expired.stderr
            sb.set_time_ny("12:04")  # NVDA a candidate at 11:05, IWM flipped at 12:01
            slack.wait_for_posts(2, timeout=DEADLINE)
            _wait_polls(sb)
            assert bot.stop() == 0
        except BaseException:
            if bot.proc.poll() is None:
                bot.proc.kill()
                bot.proc.wait(5)
            print(bot.output())
            raise

    # SPY's flip never posted, nor its end (a reply to an alert nobody saw).
    assert sorted(_kind(p) for p in slack.posts) == [("candidate", "NVDA"), ("regime_flip", "IWM")]
    store = Store(tmp_path / "state.sqlite3")
    logged = {(a.symbol, a.kind): a.outcome for a in store.alerts(session_of(utcnow()))}
    store.close()
    assert logged[("SPY", "regime_flip")] == "silenced"
    assert logged[("IWM", "regime_flip")] == "sent"
