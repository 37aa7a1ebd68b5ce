"""Slack delivery: the real slack_sdk clients against the local Slack Web API server.

Covers posting and threads, the mention and the severity's colour bar, how failures are
classified for the outbox (a 429 is recoverable and carries its Retry-After; the client itself
retries nothing but a dropped connection), that the token and the webhook URL never show in an
error or a log, the three-step file upload, and the outbox worker's pacing and file skipping
with these destinations.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot.deliver.base import (
    SEVERITY_COLOURS,
    Delivered,
    DeliveryError,
    Destination,
    Envelope,
    FileUpload,
)
from bot.deliver.slack import SlackBotDestination, SlackWebhookDestination
from bot.events import Category, Message, Severity
from bot.outbox import OutboxWorker, file_payload, message_payload
from bot.store import NewMessage, Store
from tests.support.slack_api import SlackApiServer

MESSAGE = Message(
    kind="regime_flip",
    text="SPY regime flip &lt;!channel&gt;",
    blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*SPY* flip"}}],
)
SESSION = "2026-06-05"
T0 = datetime(2026, 6, 5, 14, 32, tzinfo=UTC)
CHANNEL_ID = "C0ALERTS01"


@pytest.fixture
def server() -> Iterator[SlackApiServer]:
    with SlackApiServer() as srv:
        yield srv


def bot(server: SlackApiServer, channel: str = "#alerts", **kwargs: object) -> SlackBotDestination:
    options: dict[str, object] = {"min_interval": 0, **kwargs}
    return SlackBotDestination(server.token, channel, server.api_url, **options)  # type: ignore[arg-type]


def envelope(**kwargs: object) -> Envelope:
    """An outbox row as a destination receives it (a plain alert unless overridden)."""
    fields: dict[str, object] = {
        "id": 1,
        "dedupe_key": "k1",
        "category": Category.ALERT,
        "session": SESSION,
        "created_at": T0,
        **kwargs,
    }
    return Envelope(**fields)  # type: ignore[arg-type]


def free_port_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_destinations_satisfy_the_protocol(server: SlackApiServer) -> None:
    """Both Slack destinations are Destinations; only the bot token carries threads and files."""
    token, hook = bot(server), SlackWebhookDestination(server.webhook_url)
    assert isinstance(token, Destination) and isinstance(hook, Destination)
    assert token.capabilities.threads and token.capabilities.files
    assert not hook.capabilities.threads and not hook.capabilities.files


async def test_post_and_thread_reply(server: SlackApiServer) -> None:
    """A post returns channel id, ts and permalink; a reply lands in its thread."""
    dest = bot(server)
    parent = await dest.post(MESSAGE)
    reply = await dest.send(envelope(message=MESSAGE, thread_ts=parent.ts))
    first, second = server.wait_for_posts(2)
    assert parent == Delivered(first.channel_id, first.ts, parent.permalink)
    assert parent.permalink and first.ts.replace(".", "") in parent.permalink
    assert (first.text, first.blocks, first.thread_ts) == (MESSAGE.text, MESSAGE.blocks, None)
    assert second.thread_ts == parent.ts and reply.ts == second.ts
    assert first.params["unfurl_links"] is False and first.params["unfurl_media"] is False
    await dest.close()


async def test_route_mention_channel_and_severity_colour(server: SlackApiServer) -> None:
    """The route's mention leads the text and the blocks, its channel replaces the default,
    and a critical alert's blocks sit behind the critical colour bar."""
    critical = Message(MESSAGE.kind, MESSAGE.text, MESSAGE.blocks, severity=Severity.CRITICAL)
    await bot(server, fetch_permalink=False).send(
        envelope(message=critical, mention="<!here>", channel="#flips")
    )
    (post,) = server.wait_for_posts(1)
    assert post.channel == "#flips"
    assert post.text == f"<!here> {MESSAGE.text}"
    mention = {"type": "section", "text": {"type": "mrkdwn", "text": "<!here>"}}
    assert post.blocks == [mention, *MESSAGE.blocks]
    assert post.colours == (SEVERITY_COLOURS[Severity.CRITICAL],)


@pytest.mark.parametrize(
    ("fault", "code", "recoverable", "retry_after"),
    [
        # rate limited: try again later, not before Slack's Retry-After
        ({"status": 429, "retry_after": 7}, "ratelimited", True, 7.0),
        # Slack having trouble: try again later (the outbox's backoff)
        ({"status": 503}, "internal_error", True, None),
        ({"status": 500}, "internal_error", True, None),
        # API-level errors that will not heal by retrying
        ({"status": 200, "error": "not_in_channel"}, "not_in_channel", False, None),
        ({"status": 200, "error": "invalid_blocks"}, "invalid_blocks", False, None),
    ],
    ids=["429", "503", "500", "not_in_channel", "invalid_blocks"],
)
async def test_api_errors_are_classified_for_the_outbox(
    server: SlackApiServer,
    fault: dict[str, object],
    code: str,
    recoverable: bool,
    retry_after: float | None,
) -> None:
    """A failed post raises one DeliveryError naming the Slack code, saying whether a retry
    can help and carrying Slack's Retry-After; the client does not retry it itself (the
    outbox does, for every kind of send), and the token is in no error text."""
    server.fail_next("chat.postMessage", **fault)  # type: ignore[arg-type]
    with pytest.raises(DeliveryError) as info:
        await bot(server, fetch_permalink=False).post(MESSAGE)
    error = info.value
    assert code in str(error) and error.recoverable is recoverable
    assert error.retry_after == retry_after
    assert len(server.calls_to("chat.postMessage")) == 1 and server.posts == []
    assert server.token not in str(error) and server.token not in repr(error)


async def test_invalid_token_is_fatal_and_not_leaked(server: SlackApiServer) -> None:
    """A wrong token is non-recoverable invalid_auth; the token is in no error text."""
    token = "xoxb-secret-wrong-token"
    dest = SlackBotDestination(token, "#alerts", server.api_url, min_interval=0)
    with pytest.raises(DeliveryError) as info:
        await dest.post(MESSAGE)
    assert info.value.recoverable is False and "invalid_auth" in str(info.value)
    assert token not in str(info.value) and token not in repr(info.value)
    assert server.posts == []


async def test_unknown_channel_is_fatal() -> None:
    """channel_not_found is non-recoverable."""
    with SlackApiServer(missing_channels=frozenset({"#gone"})) as server:
        dest = SlackBotDestination(server.token, "#gone", server.api_url)
        with pytest.raises(DeliveryError) as info:
            await dest.post(MESSAGE)
    assert info.value.recoverable is False and "channel_not_found" in str(info.value)


async def test_connection_refused_is_recoverable() -> None:
    """No server listening: a recoverable connection error."""
    dest = SlackBotDestination("xoxb-t", "#a", free_port_url())
    with pytest.raises(DeliveryError) as info:
        await dest.post(MESSAGE)
    assert info.value.recoverable is True and "connection error" in str(info.value)
    assert "xoxb-t" not in str(info.value)


async def test_file_upload_lands_in_thread(server: SlackApiServer) -> None:
    """files_upload_v2's three steps deliver the bytes into the thread, with the channel id."""
    dest = bot(server)
    parent = await dest.post(MESSAGE)
    content = bytes(range(256)) * 40
    chart = FileUpload("recap.png", "Session chart", content)
    delivered = await dest.send(envelope(category=Category.RECAP, file=chart, thread_ts=parent.ts))
    (upload,) = server.wait_for_uploads(1)
    assert upload.content == content and upload.filename == "recap.png"
    assert upload.thread_ts == parent.ts and upload.channel_id == parent.channel
    assert upload.title == "Session chart" and delivered.channel == parent.channel
    methods = [c.method for c in server.calls]
    assert methods[-3:] == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]


async def test_upload_failure_is_classified(server: SlackApiServer) -> None:
    """A failing completeUploadExternal becomes a permanent DeliveryError without the token."""
    server.fail_next("files.completeUploadExternal", status=200, error="invalid_arguments")
    with pytest.raises(DeliveryError) as info:
        await bot(server, CHANNEL_ID).send(envelope(file=FileUpload("a.png", "t", b"x")))
    assert "invalid_arguments" in str(info.value) and not info.value.recoverable
    assert server.token not in str(info.value)
    assert server.uploads == []


def queue(store: Store, destination: str, *payloads: dict[str, object]) -> None:
    """Queue one outbox row per payload for ``destination``, in order."""
    for i, payload in enumerate(payloads):
        row = NewMessage(f"row{i}", destination, "alert", payload, SESSION)  # type: ignore[arg-type]
        store.enqueue(row, T0)


async def test_worker_paces_every_send_to_a_destination(server: SlackApiServer) -> None:
    """At one send a second, two alerts and a chart upload reach Slack each at least ~1 s
    after the one before (server-side arrival times), in queue order."""
    store = Store(":memory:")
    dest = bot(server, CHANNEL_ID, min_interval=1.0, fetch_permalink=False)
    chart = FileUpload("flow.png", "Flow", b"\x89PNG")
    queue(store, "slack", message_payload(MESSAGE), message_payload(MESSAGE), file_payload(chart))
    worker = OutboxWorker(store, {"slack": dest}, clock=lambda: T0)
    assert await worker.flush() == 3
    first, second = server.wait_for_posts(2)
    (upload_start,) = server.calls_to("files.getUploadURLExternal")
    assert second.at - first.at >= 0.9
    assert upload_start.at - second.at >= 0.9
    assert store.pending("slack") == []


async def test_webhook_post(server: SlackApiServer) -> None:
    """A webhook post sends text + blocks and returns no ts (threads become plain posts);
    a severity puts the blocks behind its colour bar."""
    dest = SlackWebhookDestination(server.webhook_url, min_interval=0)
    assert await dest.send(envelope(message=MESSAGE, thread_ts="123.456")) == Delivered()
    warning = Message(MESSAGE.kind, MESSAGE.text, MESSAGE.blocks, severity=Severity.WARNING)
    await dest.send(envelope(message=warning))
    plain, coloured = server.wait_for_webhook_posts(2)
    assert plain["text"] == MESSAGE.text and plain["blocks"] == MESSAGE.blocks
    assert "thread_ts" not in plain
    colour = SEVERITY_COLOURS[Severity.WARNING]
    assert coloured["attachments"] == [{"color": colour, "blocks": MESSAGE.blocks}]
    await dest.close()


async def test_webhook_rate_limit_is_recoverable_with_retry_after(server: SlackApiServer) -> None:
    """A webhook 429 is one recoverable DeliveryError carrying Retry-After (the outbox waits
    it out); the client does not retry it, nothing is posted, the URL is not shown."""
    server.fail_next("webhook", status=429, retry_after=3)
    with pytest.raises(DeliveryError) as info:
        await SlackWebhookDestination(server.webhook_url).send(envelope(message=MESSAGE))
    assert info.value.recoverable is True and info.value.retry_after == 3.0
    assert "ratelimited" in str(info.value) and "XXXX" not in str(info.value)
    assert [c.status for c in server.calls_to("webhook")] == [429]
    assert server.webhook_posts == []


@pytest.mark.parametrize(
    ("fault", "code", "recoverable"),
    [
        ({"status": 500}, "internal_error", True),
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
        await SlackWebhookDestination(server.webhook_url).send(envelope(message=MESSAGE))
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
        await SlackWebhookDestination(url).send(envelope(message=MESSAGE))
    assert info.value.recoverable is True
    assert "SECRETSECRET" not in str(info.value)
    assert "SECRETSECRET" not in caplog.text


async def test_worker_skips_files_for_a_webhook(
    server: SlackApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Webhooks cannot carry files: the worker posts the message, skips the chart with a
    warning (no URL) instead of blocking the queue, and the webhook gets nothing else."""
    store = Store(":memory:")
    dest = SlackWebhookDestination(server.webhook_url, name="hook", min_interval=0)
    chart = FileUpload("flow.png", "Flow", b"\x89PNG")
    queue(store, "hook", file_payload(chart), message_payload(MESSAGE))
    caplog.set_level(logging.DEBUG)
    assert await OutboxWorker(store, {"hook": dest}, clock=lambda: T0).flush() == 1
    assert [body["text"] for body in server.wait_for_webhook_posts(1)] == [MESSAGE.text]
    assert [c.method for c in server.calls] == ["webhook"]
    assert "cannot carry files" in caplog.text and "XXXX" not in caplog.text
    assert store.pending("hook") == []
    with pytest.raises(DeliveryError) as info:  # and sent directly, it refuses for good
        await dest.send(envelope(file=chart))
    assert info.value.recoverable is False and "XXXX" not in str(info.value)
