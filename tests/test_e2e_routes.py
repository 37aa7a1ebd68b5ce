"""End to end: the real ``flowbot run`` with three destinations and routes, against the sandbox
(``tests/scenarios/e2e.toml``), the local Slack Web API, a Discord receiver and a generic
webhook receiver that checks signatures.

Each alert arrives exactly once where its route sends it. The generic webhook is down (500)
for two minutes: Slack and Discord are not delayed by it, a restart during the outage loses
nothing, and when it answers again it gets its alerts once each, in the order raised.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bot.sim import Sandbox, load_scenario
from tests.support.slack_api import Post, SlackApiServer
from tests.support.webhook_receivers import DiscordReceiver, WebhookReceiver
from tests.test_e2e_run import (
    API_KEY,
    DEADLINE,
    SCENARIO,
    BotProcess,
    _env,
    _kind,
    _wait_boards,
    _wait_polls,
)

pytestmark = pytest.mark.e2e

OUTAGE_SECONDS = 120.0
SECRET = "whsec-e2e-0123456789"


def _config(tmp_path: Path, sb: Sandbox, slack: SlackApiServer) -> Path:
    cfg = tmp_path / "flowbot.toml"
    cfg.write_text(
        f"""
[flashalpha]
base_url = "{sb.base_url}"
plan = "alpha"
retries = 1
stale_after_seconds = 0

[watchlist]
symbols = ["SPY", "NVDA", "IWM", "AMD"]

[schedule]
poll_seconds = 0.3
leaderboard_seconds = 0.3
market_hours_only = false

[state]
path = "{tmp_path / "state.sqlite3"}"

[http]
listen = ""

[recap]
enabled = false

[digest]
enabled = false

[outbox]
max_backoff_seconds = 5

[[destinations]]
name = "desk"
kind = "slack"
channel = "#desk"
api_url = "{slack.api_url}"
max_posts_per_second = 20

[[destinations]]
name = "team"
kind = "discord"
max_posts_per_second = 20

[[destinations]]
name = "risk"
kind = "webhook"
secret_env = "WEBHOOK_SECRET"
max_posts_per_second = 20

[route]
destinations = ["desk"]

[[routes]]                       # flips (and their thread replies): the desk's #flips, and risk
match = {{ rule = "regime_flip" }}
destinations = ["desk", "risk"]
channel = "#flips"

[[routes]]                       # candidates: the desk and the team's Discord
match = {{ rule = "candidate" }}
destinations = ["desk", "team"]

[[routes]]                       # leaderboard moves: the risk system only
match = {{ rule = "top_n" }}
destinations = ["risk"]

[rules.flow_inflection]
enabled = false                  # not this test's subject (tests/test_rules_new.py)

[rules.top_n]
watchlist_only = true
options_n = 3
zero_dte_metrics = []
""",
        encoding="utf-8",
    )
    return cfg


def test_three_destinations_routes_and_a_two_minute_webhook_outage(tmp_path):
    """Every alert reaches exactly its routes' destinations once; the webhook outage delays
    nothing else, survives a restart, and drains in order."""
    with (
        Sandbox(scenario=load_scenario(SCENARIO), speed=0) as sb,
        SlackApiServer() as slack,
        DiscordReceiver() as discord,
        WebhookReceiver(secret=SECRET) as risk,
    ):
        urls = (risk.url, discord.url)
        env = _env(slack.token) | {
            "DISCORD_WEBHOOK_URL": discord.url,
            "WEBHOOK_URL": risk.url,
            "WEBHOOK_SECRET": SECRET,
        }
        cfg = _config(tmp_path, sb, slack)
        bots: list[BotProcess] = []

        def start() -> BotProcess:
            bots.append(BotProcess(tmp_path, cfg, env, f"run{len(bots) + 1}"))
            return bots[-1]

        try:
            bot = start()
            _wait_polls(sb)
            _wait_boards(sb)
            risk.fail_for(OUTAGE_SECONDS, status=500)
            outage_ends = time.monotonic() + OUTAGE_SECONDS

            sb.set_time_ny("10:33")  # SPY flipped at 10:32
            slack.wait_for_posts(1, timeout=DEADLINE)
            sb.set_time_ny("11:06")  # SPY's flip ended 10:50; NVDA a candidate at 11:05
            _wait_polls(sb)
            discord.wait_for(1, timeout=DEADLINE)
            slack.wait_for_posts(3, timeout=DEADLINE)

            # Restart while the webhook is still down: its queued alerts survive.
            assert bot.stop() == 0
            bot = start()
            sb.set_time_ny("12:04")  # IWM flipped at 12:01
            slack.wait_for_posts(4, timeout=DEADLINE)
            sb.set_time_ny("13:16")  # the 13:15 block puts AMD at #2 of the top buyers
            _wait_boards(sb)
            _wait_polls(sb)
            # All of that happened while the webhook was down: nothing got through to it.
            assert time.monotonic() < outage_ends, "the steps outlasted the outage: not a test"
            assert risk.accepted == []

            risk.wait_for(4, timeout=OUTAGE_SECONDS + DEADLINE)
            _wait_polls(sb)
            assert bot.stop() == 0
        except BaseException:
            for b in bots:
                if b.proc.poll() is None:
                    b.proc.kill()
                    b.proc.wait(5)
                print(f"----- {b.err.name}\n{b.output()}")
            raise

    slack_posts: list[Post] = slack.posts
    assert [_kind(p) for p in slack_posts] == [
        ("regime_flip", "SPY"),
        ("candidate", "NVDA"),
        ("regime_flip_ended", "SPY"),
        ("regime_flip", "IWM"),
    ]
    assert [p.channel for p in slack_posts] == ["#flips", "#desk", "#flips", "#flips"]
    assert slack_posts[2].thread_ts == slack_posts[0].ts  # the reply in the flip's thread
    # Slack's posts all arrived during the webhook's outage: it delayed nothing there.
    first_risk = min(c.at for c in risk.accepted)
    assert all(p.at < first_risk for p in slack_posts)

    (embed_post,) = discord.payloads
    assert "NVDA" in embed_post["embeds"][0]["title"]
    assert embed_post["allowed_mentions"] == {"parse": []}

    payloads = risk.payloads
    assert [(p["kind"], p["rule"], p["symbol"]) for p in payloads] == [
        ("alert", "regime_flip", "SPY"),
        ("follow_up", "regime_flip", "SPY"),
        ("alert", "regime_flip", "IWM"),
        ("alert", "top_n", "AMD"),
    ]
    assert risk.duplicates == 0  # once each, across the restart
    failed = [c for c in risk.calls if c.status == 500]
    assert failed, "the outage never turned a request away"
    # A request failed during the outage is the same message when it finally goes: same key.
    assert failed[0].headers["idempotency-key"] == risk.accepted[0].headers["idempotency-key"]
    for b in bots:
        text = b.output()
        for secret in (API_KEY, slack.token, SECRET, *urls):
            assert secret not in text, b.err.name
        assert "Traceback" not in text
    assert not any(SECRET in json.dumps(p) for p in payloads)
