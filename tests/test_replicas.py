"""Two replicas on one PostgreSQL, in process, against the sandbox and the local Slack: an
alert queued by one is delivered by the other, the recap is sent once when the leader
changes after the close, and the cluster shows on the status page, metrics and /readyz."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from support.slack_api import SlackApiServer
from test_recap_slack import SCENARIO, make_bot

from bot.app import Bot
from bot.calendar import TradingCalendar
from bot.cluster import Cluster
from bot.http import render_status
from bot.leader import PostgresLeadership
from bot.reports import due_reports
from bot.sim import Sandbox
from bot.status import readiness


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
    return make_bot(sandbox, slack, url)


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


def _gauge(bot: Bot, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of metric ``name`` as scraped from ``bot``'s registry (labels → value)."""
    text = generate_latest(bot.metrics.registry).decode()
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


async def test_the_cluster_is_visible_on_the_status_page_metrics_and_readyz(
    sandbox: Sandbox, slack: SlackApiServer, pg_url: str
) -> None:
    """Two replicas: the leader and the follower each say which they are (metrics), the
    status page lists both with their roles, a follower is ready while the leader's
    heartbeat is fresh, and says nothing polls once it is not; the follower then leads."""
    a, b = replica(sandbox, slack, pg_url), replica(sandbox, slack, pg_url)
    clock = {"now": datetime(2026, 6, 5, 14, 0, tzinfo=UTC)}
    clusters = {
        bot.replica: Cluster(
            bot,
            PostgresLeadership(bot.store.engine),
            AsyncIOScheduler(),
            clock=lambda: clock["now"],
        )
        for bot in (a, b)
    }
    clusters[a.replica].start()
    clusters[b.replica].start()
    assert a.leading and not b.leading
    assert _gauge(a, "flowbot_leader") == {(): 1.0} and _gauge(b, "flowbot_leader") == {(): 0.0}

    now = clock["now"]
    assert readiness(b, now, running=True) == []
    page = render_status(b, now, [])
    assert page.index(a.replica) < page.index(b.replica), "the leader is listed first"
    assert f'{b.replica} <span class="muted">(this one)</span>' in page
    assert "PostgreSQL flowbot@127.0.0.1:" in page and "://" not in page

    # a's host vanishes: no clean stop, no heartbeat for a minute.
    clock["now"] = now + timedelta(minutes=1)
    assert readiness(b, clock["now"], running=True) == [
        "no replica leads: the last leader was seen 1 min ago"
    ]
    clusters[a.replica].leadership.release()  # its connection ends, as a dead host's would
    clusters[b.replica].check()
    assert b.leading and _gauge(b, "flowbot_leader") == {(): 1.0}
    assert _gauge(b, "flowbot_leadership_changes_total") == {(("to", "leader"),): 1.0}
    for bot in (a, b):
        await bot.aclose()
