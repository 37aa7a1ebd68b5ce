"""End to end: delivery faults against the real ``flowbot run`` process, the sandbox and the local
Slack Web API (scenario ``tests/scenarios/e2e.toml``, the same as ``test_e2e_run.py``).

Three faults found by a fault-injection run, each fixed by the outbox worker:
- a slow Slack must not hold back polling (delivery never runs inside a poll);
- after a 429, nothing is sent before its Retry-After has passed;
- after an outage, the queued alerts go out once each, in the order they were raised.
"""

from __future__ import annotations

import time

import pytest

from bot.sim import Sandbox, load_scenario
from tests.support.slack_api import SlackApiServer
from tests.test_e2e_run import (
    DEADLINE,
    SCENARIO,
    BotProcess,
    _env,
    _kind,
    _summary_counts,
    _wait_boards,
    _wait_polls,
    _write_config,
)

pytestmark = pytest.mark.e2e


def test_slow_slack_429_and_outage_neither_block_polling_nor_reorder_alerts(tmp_path):
    """Polls go on while a post hangs; a 429's Retry-After is honoured; after a 500 outage the
    queued alerts arrive once each, in the order raised, the reply in its thread."""
    with Sandbox(scenario=load_scenario(SCENARIO), speed=0) as sb, SlackApiServer() as slack:
        cfg = _write_config(tmp_path, sb, slack)
        bot = BotProcess(tmp_path, cfg, _env(slack.token), "run")
        try:
            _wait_polls(sb)
            _wait_boards(sb)

            # 1. Slack takes 8 s to answer: the flip's post hangs, polling goes on.
            slack.slow_down("chat.postMessage", 8.0)
            sb.set_time_ny("10:33")
            _wait_held(slack)
            before = _summary_counts(sb)
            _wait_polls(sb, 3)  # three whole poll cycles while the post is still in flight
            assert slack.posts == [], "the post answered before three polls: not a test"
            assert all(n >= before[s] + 3 for s, n in _summary_counts(sb).items())
            slack.slow_down("chat.postMessage", 0.0)
            slack.wait_for_posts(1, timeout=DEADLINE)

            # 2. Slack rate-limits for 3 s: one 429, then nothing until Retry-After passed.
            slack.fail_for("chat.postMessage", 3.0, status=429)
            sb.set_time_ny("11:06")  # SPY's flip ended at 10:50; NVDA a candidate at 11:05
            slack.wait_for_posts(3, timeout=DEADLINE)
            calls = slack.calls_to("chat.postMessage")
            limited = [c for c in calls if c.status == 429]
            assert len(limited) == 1
            after = [c for c in calls if c.at > limited[0].at]
            assert after[0].at - limited[0].at >= 3.0

            # 3. Slack down (500) for 5 s while two alerts are raised: both wait, then go
            # in the order they were raised, once each.
            slack.fail_for("chat.postMessage", 5.0, status=500)
            sb.set_time_ny("12:04")  # IWM flipped at 12:01
            _wait_polls(sb)
            sb.set_time_ny("13:16")  # the 13:15 block puts AMD in the top buyers
            _wait_boards(sb)
            posts = slack.wait_for_posts(5, timeout=DEADLINE + 10)
            _wait_polls(sb)
            assert bot.stop() == 0
        except BaseException:
            if bot.proc.poll() is None:
                bot.proc.kill()
                bot.proc.wait(5)
            print(bot.output(), *[p.text for p in slack.posts], sep="\n")
            raise

    assert [_kind(p) for p in posts] == [
        ("regime_flip", "SPY"),
        ("candidate", "NVDA"),
        ("regime_flip_ended", "SPY"),  # told once the new label held two polls
        ("regime_flip", "IWM"),
        ("leaderboard_entry", "AMD"),
    ]
    assert posts[2].thread_ts == posts[0].ts
    assert "Traceback" not in bot.output()


def _wait_held(slack: SlackApiServer) -> None:
    """Wait until a chat.postMessage call arrived and is being held by ``slow_down``."""
    end = time.monotonic() + DEADLINE
    while slack.held < 1:
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for a chat.postMessage call")
        time.sleep(0.02)
