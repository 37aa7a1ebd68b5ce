"""The Slack recap end to end: ``send_recap`` queues the recap and its chart in the outbox, and
the outbox worker posts the recap to the local Slack Web API server, then uploads the chart into
the same channel right after it with the three-step external upload. The session's data comes
from the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from slack_sdk.models.blocks import Block
from support.slack_api import DEFAULT_TOKEN, SlackApiServer
from test_recap import sample_recap

from bot.app import Bot, build_bot
from bot.calendar import TradingCalendar
from bot.deliver.base import BuildContext
from bot.deliver.slack import SlackBotDestination
from bot.render import Renderer
from bot.reports import send_recap
from bot.settings import Secrets, load_settings
from bot.sim import Sandbox

SCENARIO = """
session_date = "2026-06-05"
seed = 11
quiet = true
symbols = ["SPY", "NVDA"]

[[events]]
at = "10:32"
symbol = "SPY"
kind = "flow_direction"
value = "regime_flip"
"""


@pytest.fixture
def slack() -> Iterator[SlackApiServer]:
    """A local Slack Web API server on 127.0.0.1."""
    with SlackApiServer() as server:
        yield server


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """The FlashAlpha sandbox on 127.0.0.1, its clock moved only by the test."""
    with Sandbox(scenario=SCENARIO, speed=0) as sb:
        yield sb


def make_bot(sandbox: Sandbox, slack: SlackApiServer, state: Path | str) -> Bot:
    """An Alpha-plan bot (the chart needs the cumulative endpoint) posting to ``#desk``;
    ``state`` is a SQLite path or a database URL (a replica on PostgreSQL)."""
    settings = load_settings(
        None,
        flashalpha={"base_url": sandbox.base_url, "plan": "alpha", "retries": 1},
        watchlist={"symbols": ["SPY", "NVDA"]},
        state={"url": state} if isinstance(state, str) else {"path": state},
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


async def test_recap_post_then_chart_in_thread(
    sandbox: Sandbox, slack: SlackApiServer, tmp_path: Path
) -> None:
    """After the session, the recap is posted once with valid blocks linking the day's flip
    alert, then the chart PNG goes into the recap's thread (3 steps); asking again sends
    nothing more."""
    session = TradingCalendar().session_for(date(2026, 6, 5))
    assert session is not None
    bot = make_bot(sandbox, slack, tmp_path / "s.sqlite3")
    for hhmm in ("09:30", "10:33"):
        await bot.engine.poll_symbols(sandbox.set_time_ny(hhmm))
        await bot.worker.flush()
    (flip,) = slack.wait_for_posts(1)
    (alert,) = bot.store.alerts("2026-06-05")
    assert alert.permalink and flip.ts.replace(".", "") in alert.permalink

    now = sandbox.set_time_ny("16:10")
    assert await send_recap(bot, session, now) is True
    assert await bot.worker.flush() == 2
    assert await send_recap(bot, session, now) is False, "a session's recap is queued once"
    assert await bot.worker.flush() == 0
    await bot.aclose()

    flip, recap = slack.wait_for_posts(2)
    assert recap.channel == "#desk" and recap.thread_ts is None
    assert recap.blocks and len(recap.blocks) <= 50
    assert all(Block.parse(b) is not None for b in recap.blocks)
    assert alert.permalink in str(recap.blocks), "the recap links the alert it lists"

    (upload,) = slack.wait_for_uploads(1)
    assert upload.content.startswith(b"\x89PNG") and len(upload.content) > 1000
    # In the channel right after the recap (not hidden in its thread), where the desk sees it.
    assert (upload.channel_id, upload.thread_ts) == (recap.channel_id, None)
    assert upload.filename == "flow-2026-06-05.png"
    assert len(slack.posts) == 2 and len(slack.uploads) == 1
    # After the recap post, the three steps of files_upload_v2, in order.
    methods = [c.method for c in slack.calls if c.method != "chat.getPermalink"]
    assert methods[-4:] == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]


async def test_long_recap_fits_one_slack_message(slack: SlackApiServer) -> None:
    """A recap with a long watchlist, unknown labels and hostile text is accepted by Slack:
    at most 50 blocks, each a valid Block Kit block."""
    recap = sample_recap(watchlist_extra=40)
    message = Renderer().slack_template("recap", recap=recap)
    dest = SlackBotDestination(slack.token, "C0RECAP01", slack.api_url, min_interval=0)
    delivered = await dest.post(message)
    (post,) = slack.wait_for_posts(1)
    assert delivered.ts == post.ts
    assert post.text == message.text and post.blocks == message.blocks
    assert post.blocks and len(post.blocks) <= 50
    assert all(Block.parse(b) is not None for b in post.blocks)
