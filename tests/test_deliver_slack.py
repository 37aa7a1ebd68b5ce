"""Slack delivery: the real slack_sdk clients against the local Slack Web API server.

Covers posting and threads, slack_sdk's retries (429 with Retry-After, 500), error
classification without leaking the token or webhook URL, the three-step file upload and pacing.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest

from bot.deliver.base import Delivered, DeliveryError, Destination
from bot.deliver.slack import SlackBotDestination, SlackWebhookDestination
from bot.events import SlackMessage
from tests.support.slack_api import SlackApiServer

MESSAGE = SlackMessage(
    kind="regime_flip",
    text="SPY regime flip &lt;!channel&gt;",
    blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*SPY* flip"}}],
)


@pytest.fixture
def server() -> Iterator[SlackApiServer]:
    with SlackApiServer() as srv:
        yield srv


def bot(server: SlackApiServer, **kwargs: object) -> SlackBotDestination:
    options: dict[str, object] = {"max_posts_per_second": 0, **kwargs}
    return SlackBotDestination(server.token, "#alerts", api_url=server.api_url, **options)  # type: ignore[arg-type]


def free_port_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_destinations_satisfy_the_protocol(server: SlackApiServer) -> None:
    """Both Slack destinations are Destinations."""
    assert isinstance(bot(server), Destination)
    assert isinstance(SlackWebhookDestination(server.webhook_url), Destination)


async def test_post_and_thread_reply(server: SlackApiServer) -> None:
    """A post returns channel id, ts and permalink; a reply lands in its thread."""
    dest = bot(server)
    parent = await dest.post(MESSAGE)
    reply = await dest.post(MESSAGE, thread_ts=parent.ts)
    first, second = server.wait_for_posts(2)
    assert parent == Delivered(first.channel_id, first.ts, parent.permalink)
    assert parent.permalink and first.ts.replace(".", "") in parent.permalink
    assert (first.text, first.blocks, first.thread_ts) == (MESSAGE.text, MESSAGE.blocks, None)
    assert second.thread_ts == parent.ts and reply.ts == second.ts
    assert first.params["unfurl_links"] is False and first.params["unfurl_media"] is False
    await dest.close()


async def test_rate_limit_is_retried_after_retry_after(server: SlackApiServer) -> None:
    """A 429 with Retry-After: 1 is retried by slack_sdk after ≥1 s; one message lands."""
    server.fail_next("chat.postMessage", status=429, retry_after=1)
    started = time.monotonic()
    delivered = await bot(server, fetch_permalink=False).post(MESSAGE)
    assert time.monotonic() - started >= 1.0
    calls = server.calls_to("chat.postMessage")
    assert [c.status for c in calls] == [429, 200]
    assert len(server.posts) == 1 and delivered.ts == server.posts[0].ts


async def test_server_error_is_retried(server: SlackApiServer) -> None:
    """A 500 is retried by slack_sdk and the message is delivered once."""
    server.fail_next("chat.postMessage", status=500)
    await bot(server, fetch_permalink=False).post(MESSAGE)
    assert [c.status for c in server.calls_to("chat.postMessage")] == [500, 200]
    assert len(server.posts) == 1


@pytest.mark.parametrize(
    ("fault", "code", "recoverable"),
    [
        # persistent rate limiting outlasts the retries: try again later
        ({"status": 429, "retry_after": 0, "count": 10}, "ratelimited", True),
        # persistent 503
        ({"status": 503, "count": 10}, "internal_error", True),
        # API-level errors that will not heal by retrying
        ({"status": 200, "error": "not_in_channel"}, "not_in_channel", False),
        ({"status": 200, "error": "invalid_blocks"}, "invalid_blocks", False),
    ],
    ids=["429-persistent", "503-persistent", "not_in_channel", "invalid_blocks"],
)
async def test_api_errors_are_classified(
    server: SlackApiServer, fault: dict[str, object], code: str, recoverable: bool
) -> None:
    """Failures after slack_sdk's retries become DeliveryErrors naming the Slack code."""
    server.fail_next("chat.postMessage", **fault)  # type: ignore[arg-type]
    with pytest.raises(DeliveryError) as info:
        await bot(server, fetch_permalink=False, max_retries=1).post(MESSAGE)
    assert code in str(info.value) and info.value.recoverable is recoverable
    assert server.token not in str(info.value) and server.token not in repr(info.value)


async def test_invalid_token_is_fatal_and_not_leaked(server: SlackApiServer) -> None:
    """A wrong token is non-recoverable invalid_auth; the token is in no error text."""
    token = "xoxb-secret-wrong-token"
    dest = SlackBotDestination(token, "#alerts", api_url=server.api_url, max_posts_per_second=0)
    with pytest.raises(DeliveryError) as info:
        await dest.post(MESSAGE)
    assert info.value.recoverable is False and "invalid_auth" in str(info.value)
    assert token not in str(info.value) and token not in repr(info.value)
    assert server.posts == []


async def test_unknown_channel_is_fatal() -> None:
    """channel_not_found is non-recoverable."""
    with SlackApiServer(missing_channels=frozenset({"#gone"})) as server:
        dest = SlackBotDestination(server.token, "#gone", api_url=server.api_url)
        with pytest.raises(DeliveryError) as info:
            await dest.post(MESSAGE)
    assert info.value.recoverable is False and "channel_not_found" in str(info.value)


async def test_connection_refused_is_recoverable() -> None:
    """No server listening: a recoverable connection error."""
    dest = SlackBotDestination("xoxb-t", "#a", api_url=free_port_url(), max_retries=0)
    with pytest.raises(DeliveryError) as info:
        await dest.post(MESSAGE)
    assert info.value.recoverable is True and "connection error" in str(info.value)


async def test_file_upload_lands_in_thread(server: SlackApiServer) -> None:
    """files_upload_v2's three steps deliver the bytes into the thread, with the channel id."""
    dest = bot(server)
    parent = await dest.post(MESSAGE)
    content = bytes(range(256)) * 40
    await dest.upload_file(
        filename="recap.png",
        content=content,
        title="Session chart",
        thread_ts=parent.ts,
        initial_comment="Cumulative flow",
    )
    (upload,) = server.wait_for_uploads(1)
    assert upload.content == content and upload.filename == "recap.png"
    assert upload.thread_ts == parent.ts and upload.channel_id == parent.channel
    assert (upload.title, upload.initial_comment) == ("Session chart", "Cumulative flow")
    methods = [c.method for c in server.calls]
    assert methods[-3:] == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]


async def test_upload_failure_is_classified(server: SlackApiServer) -> None:
    """A failing completeUploadExternal becomes a DeliveryError without the token."""
    server.fail_next("files.completeUploadExternal", status=200, error="invalid_arguments")
    with pytest.raises(DeliveryError) as info:
        await bot(server).upload_file(
            filename="a.png", content=b"x", title="t", thread_ts=None, initial_comment=None
        )
    assert "invalid_arguments" in str(info.value) and not info.value.recoverable
    assert server.token not in str(info.value)


async def test_posts_are_paced_per_channel(server: SlackApiServer) -> None:
    """At 1 post/s, two posts arrive at least ~1 s apart (server-side arrival times)."""
    dest = bot(server, max_posts_per_second=1.0, fetch_permalink=False)
    await dest.post(MESSAGE)
    await dest.post(MESSAGE)
    first, second = server.wait_for_posts(2)
    assert second.at - first.at >= 0.9


async def test_webhook_post(server: SlackApiServer) -> None:
    """A webhook post sends text + blocks and returns no ts (threads become plain posts)."""
    dest = SlackWebhookDestination(server.webhook_url, max_posts_per_second=0)
    assert await dest.post(MESSAGE, thread_ts="123.456") == Delivered(None, None, None)
    (body,) = server.wait_for_webhook_posts(1)
    assert body["text"] == MESSAGE.text and body["blocks"] == MESSAGE.blocks
    assert "thread_ts" not in body
    await dest.close()


async def test_webhook_retries_rate_limit(server: SlackApiServer) -> None:
    """slack_sdk's retry handlers also cover the webhook client."""
    server.fail_next("webhook", status=429, retry_after=0)
    await SlackWebhookDestination(server.webhook_url).post(MESSAGE)
    assert [c.status for c in server.calls_to("webhook")] == [429, 200]


@pytest.mark.parametrize(
    ("fault", "code", "recoverable"),
    [
        ({"status": 500, "count": 10}, "internal_error", True),
        ({"status": 404, "error": "no_service"}, "no_service", False),
    ],
    ids=["500", "404"],
)
async def test_webhook_errors_never_show_the_url(
    server: SlackApiServer, fault: dict[str, object], code: str, recoverable: bool
) -> None:
    """Webhook failures are classified and their text contains no part of the URL."""
    server.fail_next("webhook", **fault)  # type: ignore[arg-type]
    with pytest.raises(DeliveryError) as info:
        await SlackWebhookDestination(server.webhook_url, max_retries=1).post(MESSAGE)
    assert info.value.recoverable is recoverable and code in str(info.value)
    for secret in (server.webhook_url, "/services/", "XXXX"):
        assert secret not in str(info.value) and secret not in repr(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None


async def test_webhook_connection_error_never_shows_the_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Connection refused: recoverable, and neither the error nor DEBUG logs show the URL."""
    url = free_port_url() + "services/T1/B1/SECRETSECRET"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DeliveryError) as info:
        await SlackWebhookDestination(url, max_retries=0).post(MESSAGE)
    assert info.value.recoverable is True
    assert "SECRETSECRET" not in str(info.value)
    assert "SECRETSECRET" not in caplog.text


async def test_webhook_upload_is_skipped_with_a_warning(
    server: SlackApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Webhooks cannot carry files: upload_file logs a warning (no URL) and sends nothing."""
    dest = SlackWebhookDestination(server.webhook_url)
    assert dest.supports_files is False
    await dest.upload_file(filename="c.png", content=b"x", title="t", thread_ts=None)
    assert "cannot upload files" in caplog.text and "XXXX" not in caplog.text
    assert server.calls == []
