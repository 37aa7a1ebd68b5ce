"""Two replicas on one PostgreSQL, in process, against the sandbox and the local Slack: an
alert queued by one is delivered by the other, and the recap is sent once when the leader
changes after the close."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.slack_api import DEFAULT_TOKEN, SlackApiServer
from test_recap_slack import SCENARIO

from bot.app import Bot, build_bot
from bot.calendar import TradingCalendar
from bot.deliver.base import BuildContext
from bot.reports import due_reports
from bot.settings import Secrets, load_settings
from bot.sim import Sandbox


@pytest.fixture
def slack() -> Iterator[SlackApiServer]:
    with SlackApiServer() as server:
        yield server


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(scenario=SCENARIO, speed=0) as sb:
        yield sb


def replica(sandbox: Sandbox, slack: SlackApiServer, url: str) -> Bot:
    """One replica's bot on the shared database ``url``, posting to ``#desk``."""
    settings = load_settings(
        None,
        flashalpha={"base_url": sandbox.base_url, "plan": "alpha", "retries": 1},
        watchlist={"symbols": ["SPY", "NVDA"]},
        state={"url": url},
        rules={"top_n": {"zero_dte_metrics": [], "watchlist_only": True}},
        slack={"api_url": slack.api_url, "channel": "#desk", "max_posts_per_second": 50},
    )
    return build_bot(
        settings,
        Secrets(flashalpha_api_key="sandbox-alpha"),
        context=BuildContext(environ={"SLACK_BOT_TOKEN": DEFAULT_TOKEN}),
        clock=sandbox.clock.now,
        close_of=lambda day: None,
    )


async def test_follower_delivers_what_the_leader_queued_and_the_recap_goes_once(
    sandbox: Sandbox, slack: SlackApiServer, pg_url: str
) -> None:
    """a polls and queues the 10:32 flip; b's worker posts it (a never delivers). After the
    close a sends the recap; b, leading after a failover, finds it done: one recap, one
    chart."""
    a, b = replica(sandbox, slack, pg_url), replica(sandbox, slack, pg_url)
    assert a.replica != b.replica
    for hhmm in ("09:30", "10:33"):
        await a.engine.poll_symbols(sandbox.set_time_ny(hhmm))
    assert a.store.unsent_count() == 1
    assert await b.worker.flush() == 1
    (flip,) = slack.wait_for_posts(1)
    assert "SPY" in (flip.text or "")
    assert await a.worker.flush() == 0, "a row is sent once, by whichever replica claims it"

    calendar = TradingCalendar()
    await due_reports(a, calendar, sandbox.set_time_ny("16:10"))
    assert await a.worker.flush() == 2  # the recap and its chart
    b.engine.forget()  # b takes over, as after a failover
    await due_reports(b, calendar, sandbox.set_time_ny("16:11"))
    assert await b.worker.flush() == 0
    await a.aclose()
    await b.aclose()

    assert len(slack.posts) == 2 and len(slack.uploads) == 1
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [200, 200]
