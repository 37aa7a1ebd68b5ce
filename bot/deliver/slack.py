"""Slack destinations: a bot token (Web API, threads, files) and an incoming webhook.

Both use slack_sdk's async clients with slack_sdk's own retry handlers (rate limit honouring
``Retry-After``, 500/503, connection resets): no retry loop of ours. What is still failing after
those retries becomes a :class:`DeliveryError` classified for the outbox. Error messages name
the Slack error code and never carry the token or the webhook URL.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.deliver.base import Delivered, DeliveryError
from bot.events import SlackMessage

__all__ = ["RECOVERABLE_CODES", "SlackBotDestination", "SlackWebhookDestination", "retry_handlers"]

log = logging.getLogger(__name__)

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")

RECOVERABLE_CODES = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
"""Slack error codes worth trying again later. Any other ``ok: false`` code (``invalid_auth``,
``channel_not_found``, ``not_in_channel``, ``invalid_blocks``...) will fail the same way again."""


def retry_handlers(max_retries: int = 2) -> list[AsyncRetryHandler]:
    """slack_sdk's built-in async handlers: connection errors, HTTP 429 (sleeps ``Retry-After``
    seconds plus jitter), HTTP 500/503; each retried at most ``max_retries`` times."""
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=max_retries),
        AsyncRateLimitErrorRetryHandler(max_retry_count=max_retries),
        AsyncServerErrorRetryHandler(max_retry_count=max_retries),
    ]


class _Pacer:
    """At most one send per ``interval`` seconds, in call order (Slack allows about one message
    per second per channel; bursting earns 429s). Bound to one event loop, like any asyncio
    lock: create the destination inside the loop that uses it."""

    def __init__(self, interval: float):
        self._interval = interval
        self._lock = asyncio.Lock()
        self._next_at = 0.0

    async def wait(self) -> None:
        async with self._lock:
            delay = self._next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next_at = time.monotonic() + self._interval


def _interval(max_posts_per_second: float) -> float:
    return 0.0 if max_posts_per_second <= 0 else 1.0 / max_posts_per_second


def _api_error(method: str, exc: Exception) -> DeliveryError:
    """Classify what the Web API client raised; the message is built from codes only."""
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", None)
        data = getattr(exc.response, "data", None)
        code = data.get("error") if isinstance(data, dict) else None
        recoverable = (
            code in RECOVERABLE_CODES or status == 429 or (status is not None and status >= 500)
        )
        return DeliveryError(
            f"slack {method} failed: {code or 'http_error'} (HTTP {status})",
            recoverable=recoverable,
        )
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return DeliveryError(
            f"slack {method} failed: connection error ({type(exc).__name__})", recoverable=True
        )
    if isinstance(exc, SlackRequestError):
        # e.g. the file upload POST answered non-200: transient on Slack's side.
        return DeliveryError(f"slack {method} failed: request error", recoverable=True)
    return DeliveryError(f"slack {method} failed: {type(exc).__name__}", recoverable=False)


class SlackBotDestination:
    """Posts with a bot token through the Web API: threads, permalinks and file uploads.

    - ``token``: the ``xoxb-…`` bot token (never appears in errors or logs).
    - ``channel``: channel id (``C0123…``) or ``#name``; file uploads need the id, which is
      learned from the first ``chat.postMessage`` answer when a name was configured.
    - ``api_url``: Web API base, ending in ``/api/`` (a local server in tests).
    - ``max_posts_per_second``: pacing of posts and uploads to this channel (0 = no pacing).
    - ``fetch_permalink``: one ``chat.getPermalink`` call per post; a failure there is logged
      and leaves ``permalink`` ``None`` rather than failing a message that was delivered.
    """

    supports_files = True

    def __init__(
        self,
        token: str,
        channel: str,
        api_url: str = "https://slack.com/api/",
        max_posts_per_second: float = 1.0,
        *,
        name: str = "slack",
        fetch_permalink: bool = True,
        max_retries: int = 2,
        timeout: int = 30,
    ):
        self.name = name
        self.channel = channel
        self._channel_id: str | None = channel if _CHANNEL_ID.match(channel) else None
        self._fetch_permalink = fetch_permalink
        self._pacer = _Pacer(_interval(max_posts_per_second))
        self._client = AsyncWebClient(
            token=token,
            base_url=api_url,
            timeout=timeout,
            retry_handlers=retry_handlers(max_retries),
        )

    async def post(self, message: SlackMessage, *, thread_ts: str | None = None) -> Delivered:
        """``chat.postMessage`` with the fallback text and blocks (link unfurling off), in the
        thread of ``thread_ts`` when given. Returns Slack's channel id and message ts.
        Raises :class:`DeliveryError` (``recoverable`` for rate limits, 5xx, network)."""
        await self._pacer.wait()
        kwargs: dict[str, Any] = {
            "channel": self.channel,
            "text": message.text,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if message.blocks:
            kwargs["blocks"] = message.blocks
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        try:
            response = await self._client.chat_postMessage(**kwargs)
        except Exception as exc:
            raise _api_error("chat.postMessage", exc) from exc
        channel, ts = response.get("channel"), response.get("ts")
        if channel:
            self._channel_id = channel
        return Delivered(channel=channel, ts=ts, permalink=await self._permalink(channel, ts))

    async def _permalink(self, channel: str | None, ts: str | None) -> str | None:
        if not (self._fetch_permalink and channel and ts):
            return None
        try:
            response = await self._client.chat_getPermalink(channel=channel, message_ts=ts)
        except Exception as exc:
            log.warning("%s", _api_error("chat.getPermalink", exc))
            return None
        return response.get("permalink")

    async def upload_file(
        self,
        *,
        filename: str,
        content: bytes,
        title: str,
        thread_ts: str | None,
        initial_comment: str | None = None,
    ) -> None:
        """Upload ``content`` as ``filename`` into the channel (thread of ``thread_ts``) with
        ``files_upload_v2``: files.getUploadURLExternal → upload POST →
        files.completeUploadExternal. Raises :class:`DeliveryError`."""
        await self._pacer.wait()
        try:
            await self._client.files_upload_v2(
                filename=filename,
                content=content,
                title=title,
                channel=self._channel_id or self.channel,
                thread_ts=thread_ts,
                initial_comment=initial_comment,
            )
        except Exception as exc:
            raise _api_error("files_upload_v2", exc) from exc

    async def close(self) -> None:
        """Nothing to release: the client opens one aiohttp session per request."""


# slack_sdk's webhook client logs the full URL (which is the secret) at DEBUG; a logger of
# its own that never goes below INFO keeps it out of logs even when the app runs at DEBUG.
_webhook_client_log = logging.getLogger(__name__ + ".webhook_client")
_webhook_client_log.setLevel(logging.INFO)


class SlackWebhookDestination:
    """Posts through an incoming webhook URL (a secret: never in errors or logs).

    Webhooks return no message ts, so :meth:`post` returns ``Delivered(None, None, None)``
    and a thread reply arrives as a plain message in the channel. Webhooks cannot upload
    files: ``supports_files`` is ``False`` and :meth:`upload_file` logs a warning and skips
    (the message the file belonged to was still delivered; failing it would resend it).
    """

    supports_files = False

    def __init__(
        self,
        url: str,
        *,
        name: str = "slack_webhook",
        max_posts_per_second: float = 1.0,
        max_retries: int = 2,
        timeout: int = 30,
    ):
        self.name = name
        self._pacer = _Pacer(_interval(max_posts_per_second))
        self._client = AsyncWebhookClient(
            url=url,
            timeout=timeout,
            logger=_webhook_client_log,
            retry_handlers=retry_handlers(max_retries),
        )

    async def post(self, message: SlackMessage, *, thread_ts: str | None = None) -> Delivered:
        """Send text + blocks (``thread_ts`` is ignored: webhooks cannot thread).
        Raises :class:`DeliveryError`: recoverable for 429/5xx/network, else not."""
        await self._pacer.wait()
        try:
            response = await self._client.send(
                text=message.text,
                blocks=message.blocks or None,
                unfurl_links=False,
                unfurl_media=False,
            )
        except Exception as exc:
            # "from None": a chained client exception could print the URL in a traceback.
            raise DeliveryError(
                f"slack webhook failed: connection error ({type(exc).__name__})",
                recoverable=True,
            ) from None
        if response.status_code == 200:
            return Delivered(channel=None, ts=None, permalink=None)
        status = response.status_code
        body = (response.body or "").strip()
        # Slack answers short codes ("invalid_payload", "no_service"); anything else is
        # left out rather than risk echoing something unexpected.
        code = body if body.replace("_", "").isalnum() and len(body) <= 64 else "http_error"
        raise DeliveryError(
            f"slack webhook failed: {code} (HTTP {status})",
            recoverable=status == 429 or status >= 500,
        )

    async def upload_file(
        self,
        *,
        filename: str,
        content: bytes,
        title: str,
        thread_ts: str | None,
        initial_comment: str | None = None,
    ) -> None:
        """Skip with a warning: incoming webhooks cannot carry files (use a bot token)."""
        log.warning(
            "%s: incoming webhooks cannot upload files; skipped %s (use a bot token)",
            self.name,
            filename,
        )

    async def close(self) -> None:
        """Nothing to release: the client opens one aiohttp session per request."""
