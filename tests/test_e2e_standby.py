"""End to end: two ``flowbot run`` processes on one SQLite state file. The second waits as a
standby (it never polls or posts while the first runs); when the first is killed (kill -9) it
takes over, and every scripted alert is posted exactly once. ``flowbot once`` refuses to run
beside them."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from bot.sim import Sandbox, load_scenario
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
    _wait_until,
    _write_config,
)

pytestmark = pytest.mark.e2e


def test_second_process_stands_by_and_takes_over_after_kill_9(tmp_path):
    """No double post while both run; after kill -9 of the first, the standby alerts what
    came next, once; `flowbot once` on the same file exits 1."""
    with Sandbox(scenario=load_scenario(SCENARIO), speed=0) as sb, SlackApiServer() as slack:
        cfg = _write_config(tmp_path, sb, slack)
        env = _env(slack.token)
        first = BotProcess(tmp_path, cfg, env, "first")
        second = None
        try:
            _wait_polls(sb)
            _wait_boards(sb)
            second = BotProcess(tmp_path, cfg, env, "second")
            _wait_until(lambda: "standby:" in second.output(), "the second process to stand by")

            sb.set_time_ny("10:33")  # SPY flipped at 10:32
            slack.wait_for_posts(1, timeout=DEADLINE)
            _wait_polls(sb)
            assert len(slack.posts) == 1

            once = subprocess.run(
                [*_flowbot(), "once", "--config", str(cfg)],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert once.returncode == 1 and "is in use by flowbot pid" in once.stderr

            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(10)
            killed = time.monotonic()
            _wait_until(
                lambda: "state file is free now" in second.output(), "the standby to take over"
            )
            took_over = time.monotonic() - killed
            sb.set_time_ny("11:06")  # SPY's flip ended at 10:50; NVDA a candidate at 11:05
            slack.wait_for_posts(3, timeout=DEADLINE)
            _wait_polls(sb)
            assert second.stop() == 0
        except BaseException:
            for b in (first, second):
                if b is not None and b.proc.poll() is None:
                    b.proc.kill()
                    b.proc.wait(5)
                if b is not None:
                    print(f"----- {b.err.name}\n{b.output()}")
            raise

    assert [_kind(p) for p in slack.posts] == [
        ("regime_flip", "SPY"),
        ("candidate", "NVDA"),
        ("regime_flip_ended", "SPY"),
    ]
    assert slack.posts[2].thread_ts == slack.posts[0].ts
    print(f"standby took over {took_over:.1f} s after kill -9")
