"""Notices about the bot itself: once per episode, a recovered reply in the notice's thread,
aggregated stale feeds; and through the engine against the sandbox and the local Slack API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.events import Category, Dialect, Severity
from bot.notices import Condition, notices, source_conditions, stale_condition
from bot.render import Renderer
from bot.sim import Sandbox
from tests.support.slack_api import SlackApiServer
from tests.test_engine import QUIET, at, make_bot, tick

NOW = datetime(2026, 6, 5, 14, 32, tzinfo=UTC)
DOWN = Condition("source_down", "summary", "summary failing for 3+ polls", "SPY, QQQ")
AUTH = Condition("api_key_rejected", "-", "key rejected", "fix it", Severity.CRITICAL)
DEAD = Condition("dead_letters", "slack", "2 message(s) to slack failed for good", "x")


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ([], [DOWN], [("source_down", "open", False)]),  # a new episode: one notice
        ([DOWN], [DOWN], []),  # still going: nothing more
        ([DOWN], [], [("source_down", "recovered", True)]),  # over: the reply
        ([DOWN], [AUTH], [("api_key_rejected", "open", False), ("source_down", "recovered", True)]),
        ([DEAD], [], []),  # dead letters are an event, not a state: no "recovered"
    ],
    ids=["opens", "continues", "recovers", "one-opens-one-recovers", "dead-letters-no-recovery"],
)
def test_once_per_episode(
    before: list[Condition], after: list[Condition], expected: list[tuple[str, str, bool]]
) -> None:
    """A condition is told when it opens and, in its thread, when it closes: never twice."""
    events = notices({c.key: c for c in before}, after, NOW)
    assert [(e.rule, e.state, e.follow_up) for e in events] == expected
    for event in events:
        assert event.category is Category.NOTICE
        if event.follow_up:
            assert event.thread_parent == event.alert_key and event.severity is Severity.INFO


def test_source_conditions_group_failing_keys_by_source() -> None:
    """Keys failing three polls in a row make one condition per source; two polls do not."""
    conditions = source_conditions(
        auth_failed=False,
        disabled={"options_leaderboard": ("Alpha", "Growth")},
        failures={("summary", "SPY"): 3, ("summary", "QQQ"): 5, ("anomaly", "SPY"): 2},
        failing_after=3,
        paused_until=NOW + timedelta(hours=2),
        now=NOW,
    )
    assert [(c.name, c.scope) for c in conditions] == [
        ("plan_lacks_source", "options_leaderboard"),
        ("source_down", "summary"),
        ("quota_exhausted", "-"),
    ]
    assert conditions[0].detail.startswith("The key's plan is Growth")
    assert conditions[1].detail.startswith("QQQ, SPY:")
    assert "(2 h)" in conditions[2].detail


def test_stale_feeds_are_one_notice_with_a_human_duration() -> None:
    """Twelve stale symbols are one notice: how many, and the worst lag in words."""
    lags = {f"S{i:02d}": 300.0 + i for i in range(12)} | {"FRESH": 10.0}  # worst: 311 s
    condition = stale_condition(lags, limit=120)
    assert condition is not None
    assert condition.title == "Flow feed stale: 12 symbols, 5 min 11 s behind"
    assert condition.detail.startswith("S00, S01") and "and 4 more" in condition.detail
    assert stale_condition({"SPY": 10.0}, limit=120) is None


@pytest.mark.parametrize("dialect", list(Dialect), ids=str)
def test_notice_renders_in_every_dialect(dialect: Dialect) -> None:
    """The notice and its recovered reply read well wherever they are routed."""
    opened, recovered = notices({}, [DOWN], NOW) + notices({DOWN.key: DOWN}, [], NOW)
    first = Renderer().slack(opened, None, dialect)
    assert first.text.startswith("⚠️ Flowbot summary failing for 3+ polls")
    assert "SPY, QQQ" in first.text
    reply = Renderer().slack(recovered, None, dialect)
    assert reply.text.startswith("✅ Flowbot recovered: summary failing for 3+ polls")


OUTAGE = (
    QUIET
    + """
[[faults]]
endpoint = "summary"
kind = "outage"
status = 502
start = "10:00"
end = "10:05"
"""
)


async def test_source_outage_notice_and_recovery_in_its_thread(tmp_path) -> None:
    """Three failed summary polls: one notice; the first good poll after: its reply."""
    with Sandbox(scenario=OUTAGE, speed=0) as sandbox, SlackApiServer() as slack:
        bot = make_bot(sandbox, slack, tmp_path / "s.sqlite3")
        for minute in ("09:55", "10:01", "10:02", "10:03", "10:04", "10:06"):
            await tick(bot, at(sandbox, minute))
        await bot.aclose()
    notice, reply = slack.posts
    assert "Flowbot summary failing for 3+ polls" in (notice.text or "")
    assert "SPY, NVDA" in (notice.text or "") or "NVDA, SPY" in (notice.text or "")
    assert reply.thread_ts == notice.ts and "recovered" in (reply.text or "")


async def test_rejected_key_is_one_critical_notice(tmp_path) -> None:
    """A key the API rejects (401) is told once, critical, however many ticks follow."""
    with Sandbox(scenario=QUIET, speed=0) as sandbox, SlackApiServer() as slack:
        bot = make_bot(sandbox, slack, tmp_path / "s.sqlite3", key="not-a-key")
        for minute in ("10:00", "10:01", "10:02"):
            await tick(bot, at(sandbox, minute))
        await bot.aclose()
    (post,) = slack.posts
    assert "🚨 Flowbot FlashAlpha rejected the API key (HTTP 401)" in (post.text or "")
    assert post.colours == ("#E01E5A",)
    assert "not-a-key" not in str(post.params)


async def test_dead_letters_raise_a_notice(tmp_path) -> None:
    """An alert Slack refuses for good (channel_not_found) goes to the dead letters, and the
    next tick raises a dead_letters notice naming the destination and the error."""
    with (
        Sandbox(scenario=QUIET, speed=0) as sandbox,
        SlackApiServer(missing_channels=frozenset({"#desk"})) as slack,
    ):
        bot = make_bot(sandbox, slack, tmp_path / "s.sqlite3")
        await tick(bot, at(sandbox, "10:00"))
        await tick(bot, at(sandbox, "10:33"))  # SPY's flip: refused for good
        await tick(bot, at(sandbox, "10:34"))
        records = bot.store.alerts(sandbox.scenario.session_date.isoformat())
        await bot.aclose()
    outcome = {r.rule: r.outcome for r in records}
    assert outcome["regime_flip"] == "dead"
    notice = next(r for r in records if r.rule == "dead_letters")
    assert "message(s) to slack failed for good" in notice.summary
    assert "channel_not_found" in notice.summary


async def test_spent_quota_is_one_notice_and_its_reset_a_recovered_reply(tmp_path) -> None:
    """The sandbox answers 429 once the Growth key's daily quota is spent: one critical
    notice however many ticks follow; after the quota resets (UTC midnight, 20:00 New York)
    the next poll answers and the notice gets its "recovered" reply in its thread."""
    with Sandbox(scenario=QUIET, speed=0) as sandbox, SlackApiServer() as slack:
        bot = make_bot(sandbox, slack, tmp_path / "s.sqlite3", key="sandbox-growth", plan="growth")
        await tick(bot, at(sandbox, "10:00"))
        sandbox.spend_quota("sandbox-growth")
        for minute in ("10:01", "10:02", "10:03"):
            await tick(bot, at(sandbox, minute))
        assert bot.engine.health.paused_until is not None
        assert len(slack.posts) == 1
        await tick(bot, at(sandbox, "20:01"))  # 00:01 UTC: a new quota day
        await bot.aclose()
    # 20:01 is after the close, so the sandbox's flow feed is hours old: a stale-feed notice
    # comes too. The quota's episode is one notice and one reply in its thread.
    quota = [p for p in slack.posts if "Daily API quota spent" in (p.text or "")]
    (notice,) = [p for p in quota if p.thread_ts is None]
    assert notice.colours == ("#E01E5A",)
    (reply,) = [p for p in slack.posts if p.thread_ts == notice.ts]
    assert "recovered" in (reply.text or "")
    quota_calls = [r for r in sandbox.requests() if r.status == 429]
    assert quota_calls, "the sandbox refused for quota"
