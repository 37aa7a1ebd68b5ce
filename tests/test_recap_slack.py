"""The Slack recap end to end against the local Slack Web API server: the recap post, then the
chart uploaded into its thread with the three-step external upload."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from slack_sdk.models.blocks import Block
from support.slack_api import SlackApiServer
from test_recap import black_friday, sample_recap

from bot.api.models import CumulativeFlow
from bot.chart import render_cumulative_chart
from bot.deliver.slack import SlackBotDestination
from bot.render import Renderer

CHANNEL = "C0RECAP01"


@pytest.fixture
def slack() -> Iterator[SlackApiServer]:
    """A local Slack Web API server on 127.0.0.1."""
    with SlackApiServer() as server:
        yield server


def chart_png() -> bytes:
    """A real chart PNG for the sample session (two symbols)."""
    s = black_friday()
    flows = {
        sym: CumulativeFlow(
            symbol=sym,
            points=[
                {"ts": s.open_utc + timedelta(minutes=m), "netVolume": sign * (m % 7)}
                for m in range(0, s.minutes, 5)
            ],
        )
        for sym, sign in (("SPY", 1), ("QQQ", -1))
    }
    return render_cumulative_chart(flows, s)


async def test_recap_post_then_chart_in_thread(slack):
    """The recap is posted with valid blocks, then the chart goes into its thread (3 steps)."""
    recap = sample_recap(watchlist_extra=40)
    message = Renderer().slack_template("recap", recap=recap)
    dest = SlackBotDestination(slack.token, CHANNEL, api_url=slack.api_url, max_posts_per_second=0)
    png = chart_png()

    delivered = await dest.post(message)
    await dest.upload_file(
        filename=f"flow-{recap.session.date}.png",
        content=png,
        title=f"Cumulative net option flow {recap.date_text}",
        thread_ts=delivered.ts,
    )

    (post,) = slack.wait_for_posts(1)
    assert post.channel == CHANNEL and post.thread_ts is None
    assert post.text == message.text and post.blocks == message.blocks
    assert len(post.blocks) <= 50
    assert all(Block.parse(b) is not None for b in post.blocks)

    (upload,) = slack.wait_for_uploads(1)
    assert upload.content == png and upload.content.startswith(b"\x89PNG")
    assert (upload.channel_id, upload.thread_ts) == (delivered.channel, delivered.ts)
    assert upload.filename == "flow-2026-11-27.png"
    # The three steps of files_upload_v2, in order.
    methods = [c.method for c in slack.calls if c.method != "chat.getPermalink"]
    assert methods == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
