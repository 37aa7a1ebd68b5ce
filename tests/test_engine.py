"""The engine over real HTTP: the sandbox on 127.0.0.1, the store in a temp dir, Slack on a local
Web API server. Each test drives the simulated clock and passes it as the tick's ``now``; a tick
only queues, and ``bot.worker.flush()`` delivers what it queued (the worker judges expiry and
the delayed marker on the same simulated clock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import stamina

from bot.app import build_bot
from bot.deliver.base import BuildContext
from bot.settings import Secrets, load_settings
from bot.sim import Sandbox
from tests.support.slack_api import DEFAULT_TOKEN, SlackApiServer

QUIET = """
session_date = "2026-06-05"
seed = 11
quiet = true
symbols = ["SPY", "NVDA", "AMD", "QQQ"]

[[events]]
at = "10:32"
symbol = "SPY"
kind = "flow_direction"
value = "regime_flip"

[[events]]
at = "10:50"
symbol = "SPY"
kind = "flow_direction"
value = "amplifying"

[[events]]
at = "11:05"
symbol = "NVDA"
kind = "anomaly"
score = 78
bias = "bullish"
"""


SESSION = "2026-06-05"


@pytest.fixture(autouse=True)
def fast_retries():
    stamina.set_testing(True, attempts=2)
    yield
    stamina.set_testing(False)


@pytest.fixture
def sandbox():
    with Sandbox(scenario=QUIET, speed=0) as sb:
        yield sb


@pytest.fixture
def slack():
    with SlackApiServer() as server:
        yield server


def make_bot(
    sandbox, slack, state: Path, *, key="sandbox-alpha", plan="alpha", symbols=None, close_of=None
):
    settings = load_settings(
        None,
        flashalpha={"base_url": sandbox.base_url, "plan": plan, "retries": 1},
        watchlist={"symbols": symbols or ["SPY", "NVDA"]},
        state={"path": state},
        rules={"top_n": {"zero_dte_metrics": [], "watchlist_only": True}},
        slack={"api_url": slack.api_url, "channel": "#desk", "max_posts_per_second": 50},
    )
    # The implicit "slack" destination, built from SLACK_BOT_TOKEN as for a real user.
    return build_bot(
        settings,
        Secrets(flashalpha_api_key=key),
        context=BuildContext(environ={"SLACK_BOT_TOKEN": DEFAULT_TOKEN}),
        clock=sandbox.clock.now,
        close_of=close_of or (lambda day: None),
    )


def at(sandbox, hhmm: str) -> datetime:
    sandbox.set_time_ny(hhmm)
    return sandbox.clock.now()


async def tick(bot, now: datetime) -> None:
    """One poll of everything at ``now``, then one delivery pass of what it queued."""
    await bot.engine.poll_symbols(now)
    await bot.engine.poll_leaderboards(now)
    await bot.worker.flush()


def texts(slack) -> list[str]:
    return [p.text for p in slack.posts]


async def test_flip_alerts_once_survives_restart_and_follows_up_in_thread(sandbox, slack, tmp_path):
    """A flip is posted once, not repeated after a restart, and its end is replied in-thread."""
    state = tmp_path / "state.sqlite3"
    bot = make_bot(sandbox, slack, state)
    await tick(bot, at(sandbox, "09:30"))
    assert slack.posts == []  # the quiet open: nothing to say
    await tick(bot, at(sandbox, "10:33"))
    await tick(bot, at(sandbox, "10:34"))
    await bot.aclose()
    assert len(slack.posts) == 1 and "SPY" in texts(slack)[0]
    flip_ts = slack.posts[0].ts

    restarted = make_bot(sandbox, slack, state)
    await tick(restarted, at(sandbox, "10:40"))
    assert len(slack.posts) == 1, "a restart must not repeat an alert already sent"
    await tick(restarted, at(sandbox, "10:51"))
    assert len(slack.posts) == 1, "the end is told once the new label held min_hold_polls (2)"
    await tick(restarted, at(sandbox, "10:52"))
    await restarted.aclose()
    assert len(slack.posts) == 2
    assert slack.posts[1].thread_ts == flip_ts
    assert "lasted 18 min" in texts(slack)[1]  # 10:33 (first seen) → 10:51 (first seen over)


async def test_transition_while_down_is_alerted_after_restart(sandbox, slack, tmp_path):
    """A candidate that appeared while the bot was stopped is alerted when it starts again."""
    state = tmp_path / "state.sqlite3"
    bot = make_bot(sandbox, slack, state, symbols=["NVDA"])
    await tick(bot, at(sandbox, "10:00"))
    await bot.aclose()
    bot = make_bot(sandbox, slack, state, symbols=["NVDA"])
    await tick(bot, at(sandbox, "11:10"))
    await bot.aclose()
    assert len(slack.posts) == 1 and "NVDA" in texts(slack)[0]


async def test_slack_outage_keeps_the_alert_until_delivered_once(sandbox, slack, tmp_path):
    """A post Slack refuses stays in the outbox (the alert log says pending) and is delivered
    exactly once when Slack is back, marked as late since it waited past the alert max age."""
    bot = make_bot(sandbox, slack, tmp_path / "s.sqlite3")
    await tick(bot, at(sandbox, "09:30"))
    slack.fail_next("chat.postMessage", status=500, count=50)
    await tick(bot, at(sandbox, "10:33"))
    assert slack.posts == [] and bot.store.unsent_count() == 1
    (flip,) = bot.store.alerts(SESSION)
    assert (flip.outcome, flip.sent_at) == ("pending", None)

    slack.reset()  # Slack is back 17 minutes later; the worker retries on its own
    back = at(sandbox, "10:50")
    bot.worker.start()
    try:
        (post,) = await asyncio.to_thread(slack.wait_for_posts, 1, 10.0)
    finally:
        await bot.worker.stop()
    assert await bot.worker.flush() == 0, "nothing is left to send"
    (flip,) = bot.store.alerts(SESSION)
    await bot.aclose()
    assert len(slack.posts) == 1 and "SPY" in post.text
    assert post.text.startswith("(⏱ delayed: detected 10:33 ET)")
    assert (flip.outcome, flip.sent_at) == ("sent", back)


async def test_summary_outage_keeps_previous_snapshot_and_alerts_after(sandbox, slack, tmp_path):
    """While the summary endpoint answers 502 nothing is alerted; the flip arrives after it."""
    bot = make_bot(sandbox, slack, tmp_path / "s.sqlite3")
    await tick(bot, at(sandbox, "10:00"))
    rule = sandbox.faults.add(kind="outage", endpoint="summary", status=502)
    report = await bot.engine.poll_symbols(at(sandbox, "10:33"))
    await bot.worker.flush()
    assert report.failed == 2 and slack.posts == []
    sandbox.faults.remove(rule)
    await tick(bot, at(sandbox, "10:34"))
    await bot.aclose()
    assert len(slack.posts) == 1 and "SPY" in slack.posts[0].text


@pytest.mark.parametrize("mode", ["unknown_label", "truncated", "missing_field"])
async def test_malformed_responses_are_skipped_and_the_loop_goes_on(sandbox, slack, tmp_path, mode):
    """A body the bot does not understand is skipped; the other sources keep working."""
    bot = make_bot(sandbox, slack, tmp_path / "s.sqlite3")
    await tick(bot, at(sandbox, "10:00"))
    sandbox.faults.add(kind="malformed", endpoint="summary", symbol="NVDA", mode=mode)
    report = await bot.engine.poll_symbols(at(sandbox, "10:33"))
    await bot.worker.flush()
    await bot.aclose()
    assert [p for p in slack.posts if "SPY" in p.text], "SPY's flip still arrives"
    if mode == "unknown_label":
        assert bot.engine._market.summaries["NVDA"].flow_direction == "turbulent"
    else:
        assert report.failed >= 1


async def test_growth_key_disables_leaderboards_and_keeps_symbols(sandbox, slack, tmp_path, caplog):
    """A 403 tier_restricted disables that source once, with one notice to the desk naming
    the plan it needs; summary/anomaly keep polling."""
    bot = make_bot(sandbox, slack, tmp_path / "s.sqlite3", key="sandbox-growth", plan="alpha")
    await tick(bot, at(sandbox, "10:00"))
    before = sandbox.request_count("/v1/flow/options/leaderboard")
    await tick(bot, at(sandbox, "10:33"))
    await bot.aclose()
    assert sandbox.request_count("/v1/flow/options/leaderboard") == before == 1
    assert bot.engine.health.disabled["options_leaderboard"] == "Alpha"
    assert any("needs the Alpha plan" in r.getMessage() for r in caplog.records)
    notice, flip = slack.posts  # the notice came with the first tick, the flip at 10:33
    assert "Flowbot options_leaderboard needs the Alpha plan" in (notice.text or "")
    assert "The key's plan is Growth" in str(notice.blocks)
    assert "regime flip" in (flip.text or "")


async def test_bad_key_stops_polling_and_unknown_symbol_is_dropped(
    sandbox, slack, tmp_path, caplog
):
    """A 401 stops all polling after one cycle; a 404 symbol is skipped from then on."""
    bad = make_bot(sandbox, slack, tmp_path / "a.sqlite3", key="wrong-key")
    await tick(bad, at(sandbox, "10:00"))
    served = sandbox.request_count()
    await tick(bad, at(sandbox, "10:01"))
    await bad.aclose()
    assert bad.engine.health.auth_failed and sandbox.request_count() == served
    assert "wrong-key" not in caplog.text

    bot = make_bot(sandbox, slack, tmp_path / "b.sqlite3", symbols=["SPY", "ZZZZ"])
    await tick(bot, at(sandbox, "10:02"))
    first = sandbox.request_count("/v1/flow/summary/ZZZZ")
    await tick(bot, at(sandbox, "10:03"))
    await bot.aclose()
    assert first == 1 and sandbox.request_count("/v1/flow/summary/ZZZZ") == 1


async def test_cumulative_series_are_not_kept_between_ticks(sandbox, slack, tmp_path):
    """Only the tick that fetched the cumulative series reads them: the engine keeps none
    afterwards (50 symbols x 390 minutes of points would stay all day), and the ticks after it
    raise no flow_inflection event from them."""
    bot = make_bot(sandbox, slack, tmp_path / "state.sqlite3")
    report = await bot.engine.poll_cumulative(at(sandbox, "15:30"))
    assert report.fetched == 2
    assert bot.engine._market.cumulative == {}
    later = await bot.engine.poll_symbols(at(sandbox, "15:31"))
    await bot.aclose()
    assert not [e for e in later.events if e.rule == "flow_inflection"]


async def test_the_calendar_is_asked_only_when_an_alert_is_queued(sandbox, slack, tmp_path):
    """A quiet poll never needs the session's close (the exchange calendar costs a child
    process); the poll that queues the flip asks once, and the flip expires at that close."""
    asked: list[date] = []
    close = datetime(2026, 6, 5, 20, 0, tzinfo=UTC)

    def close_of(day: date) -> datetime:
        asked.append(day)
        return close

    bot = make_bot(sandbox, slack, tmp_path / "state.sqlite3", close_of=close_of)
    await bot.engine.poll_symbols(at(sandbox, "09:30"))
    await bot.engine.poll_symbols(at(sandbox, "10:00"))
    assert asked == []
    await bot.engine.poll_symbols(at(sandbox, "10:33"))
    assert asked == [date(2026, 6, 5)]
    (queued,) = bot.store.pending()
    await bot.aclose()
    assert queued.expires_at == close


def test_an_alert_still_expires_when_the_calendar_cannot_be_built(monkeypatch, caplog):
    """exchange_calendars failing in its child process must not stop alerts from being
    queued: the expiry falls back to midnight New York, with a warning."""
    from bot import app
    from bot.settings import load_settings as load

    def broken(today: date) -> object:
        raise RuntimeError("XNYS calendar: child process failed: boom")

    monkeypatch.setattr(app, "_trading_calendar", broken)
    expires_at = app.expiry_for(load(None), app._calendar_close)
    now = datetime(2026, 6, 5, 14, 33, tzinfo=UTC)  # 10:33 New York
    assert expires_at("2026-06-05", now) == datetime(2026, 6, 6, 4, 0, tzinfo=UTC)
    assert "no exchange calendar" in caplog.text
