"""Slack destinations: a bot token (Web API, threads, files) and an incoming webhook.

Both use slack_sdk's async clients. Only a dropped connection is retried inside the client
(once); a 429, a 5xx or an ``ok: false`` becomes a :class:`DeliveryError` classified for the
outbox, whose one retry stage honours ``Retry-After`` for everything sent to the destination.
Error messages name the Slack error code and never carry the token or the webhook URL.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any, Literal

from bot.deliver.base import (
    SEVERITY_COLOURS,
    BuildContext,
    Capabilities,
    Delivered,
    DeliveryError,
    DestinationConfig,
    DestinationKind,
    Envelope,
)
from bot.events import Dialect, Message

if TYPE_CHECKING:
    # slack_sdk and aiohttp cost ~0.14 s to import: paid on the first post, not at start-up.
    from slack_sdk.http_retry.async_handler import AsyncRetryHandler
    from slack_sdk.web.async_client import AsyncWebClient
    from slack_sdk.webhook.async_client import AsyncWebhookClient

__all__ = [
    "BOT_KIND",
    "RECOVERABLE_CODES",
    "WEBHOOK_KIND",
    "SlackBotDestination",
    "SlackConfig",
    "SlackWebhookConfig",
    "SlackWebhookDestination",
    "retry_handlers",
]

log = logging.getLogger(__name__)

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")

RECOVERABLE_CODES = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
"""Slack error codes worth trying again later. Any other ``ok: false`` code (``invalid_auth``,
``channel_not_found``, ``not_in_channel``, ``invalid_blocks``...) will fail the same way again."""


def retry_handlers(max_retries: int = 1) -> list[AsyncRetryHandler]:
    """slack_sdk's built-in handler for a dropped connection (retried ``max_retries`` times
    at once). 429 and 5xx are not retried here: the outbox does it, honouring Retry-After."""
    from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler

    return [AsyncConnectionErrorRetryHandler(max_retry_count=max_retries)]


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None) or {}
    for name in ("Retry-After", "retry-after"):
        value = headers.get(name)
        if value is not None:
            try:
                return max(float(value if isinstance(value, str) else value[0]), 0.0)
            except (TypeError, ValueError, IndexError):
                return None
    return None


def with_mention(message: Message, mention: str | None) -> tuple[str, list[dict[str, Any]]]:
    """``(text, lead_blocks)`` for Slack: the route's ``mention`` (config, never data) leads
    the text and gets a block of its own, which the caller puts before the message's blocks
    (or, for a message with a severity, before the colour-barred attachment)."""
    text = f"{mention} {message.text}" if mention else message.text
    lead = [{"type": "section", "text": {"type": "mrkdwn", "text": mention}}] if mention else []
    return text, lead


def _api_error(method: str, exc: Exception) -> DeliveryError:
    """Classify what the Web API client raised; the message is built from codes only."""
    import aiohttp
    from slack_sdk.errors import SlackApiError, SlackRequestError

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
            retry_after=_retry_after(exc.response),
        )
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return DeliveryError(
            f"slack {method} failed: connection error ({type(exc).__name__})", recoverable=True
        )
    if isinstance(exc, SlackRequestError):
        # e.g. the file upload POST answered non-200: transient on Slack's side.
        return DeliveryError(f"slack {method} failed: request error", recoverable=True)
    return DeliveryError(f"slack {method} failed: {type(exc).__name__}", recoverable=False)


class SlackConfig(DestinationConfig):
    """``kind = "slack"``: a bot token (from the variable ``token_env``, default
    ``SLACK_BOT_TOKEN``) posting to ``channel`` through the Web API at ``api_url`` (Slack's by
    default; tests point it at a local server). Threads, file uploads, colour bars."""

    kind: Literal["slack"] = "slack"
    token_env: str = "SLACK_BOT_TOKEN"
    channel: str = "#flow-alerts"
    api_url: str = "https://slack.com/api/"


class SlackBotDestination:
    """Posts with a bot token through the Web API: threads, permalinks and file uploads.

    - ``token``: the ``xoxb-…`` bot token (never appears in errors or logs).
    - ``channel``: channel id (``C0123…``) or ``#name``; a route may override it per message.
      File uploads need the id, learned from the first ``chat.postMessage`` answer.
    - ``api_url``: Web API base, ending in ``/api/`` (a local server in tests).
    - ``min_interval``: seconds between sends, applied by the outbox worker.
    - ``fetch_permalink``: one ``chat.getPermalink`` call per post; a failure there is logged
      and leaves ``permalink`` ``None`` rather than failing a message that was delivered.
    """

    capabilities = Capabilities(Dialect.SLACK, threads=True, files=True, colour=True)

    def __init__(
        self,
        token: str,
        channel: str,
        api_url: str = "https://slack.com/api/",
        *,
        name: str = "slack",
        min_interval: float = 1.0,
        fetch_permalink: bool = True,
        timeout: int = 30,
    ):
        self.name = name
        self.channel = channel
        self.min_interval = min_interval
        self._channel_ids: dict[str, str] = {}
        self._fetch_permalink = fetch_permalink
        self._settings = (token, api_url, timeout)
        self._web: AsyncWebClient | None = None

    @property
    def _client(self) -> AsyncWebClient:
        """slack_sdk's client, made (and slack_sdk imported) on the first call."""
        if self._web is None:
            from slack_sdk.web.async_client import AsyncWebClient

            token, api_url, timeout = self._settings
            self._web = AsyncWebClient(
                token=token, base_url=api_url, timeout=timeout, retry_handlers=retry_handlers()
            )
        return self._web

    async def send(self, envelope: Envelope) -> Delivered:
        """A message: ``chat.postMessage`` (into the thread of ``envelope.thread_ts`` when
        set); a file: ``files_upload_v2`` into that thread. Raises :class:`DeliveryError`."""
        channel = envelope.channel or self.channel
        if envelope.file is not None:
            await self._upload(envelope, channel)
            return Delivered(channel=self._channel_ids.get(channel), ts=None)
        if envelope.message is None:
            raise DeliveryError("slack cannot send an email payload", recoverable=False)
        return await self.post(
            envelope.message,
            thread_ts=envelope.thread_ts,
            channel=channel,
            mention=envelope.mention,
        )

    async def post(
        self,
        message: Message,
        *,
        thread_ts: str | None = None,
        channel: str | None = None,
        mention: str | None = None,
    ) -> Delivered:
        """``chat.postMessage`` with the fallback text and blocks (link unfurling off); a
        message with a severity goes in an attachment with its colour bar. Returns Slack's
        channel id and message ts. Raises :class:`DeliveryError`."""
        channel = channel or self.channel
        text, lead = with_mention(message, mention)
        kwargs: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if message.severity is not None and message.blocks:
            colour = SEVERITY_COLOURS[message.severity]
            kwargs["attachments"] = [{"color": colour, "blocks": message.blocks}]
            if lead:
                kwargs["blocks"] = lead
        elif message.blocks or lead:
            kwargs["blocks"] = lead + message.blocks
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        try:
            response = await self._client.chat_postMessage(**kwargs)
        except Exception as exc:
            raise _api_error("chat.postMessage", exc) from exc
        channel_id, ts = response.get("channel"), response.get("ts")
        if channel_id:
            self._channel_ids[channel] = channel_id
        return Delivered(channel=channel_id, ts=ts, permalink=await self._permalink(channel_id, ts))

    async def _permalink(self, channel: str | None, ts: str | None) -> str | None:
        if not (self._fetch_permalink and channel and ts):
            return None
        try:
            response = await self._client.chat_getPermalink(channel=channel, message_ts=ts)
        except Exception as exc:
            log.warning("%s", _api_error("chat.getPermalink", exc))
            return None
        return response.get("permalink")

    async def _upload(self, envelope: Envelope, channel: str) -> None:
        """``files_upload_v2``: files.getUploadURLExternal → upload POST →
        files.completeUploadExternal, into the thread of ``envelope.thread_ts``."""
        assert envelope.file is not None
        # Uploads need a channel id: the thread parent's (stored with its row, so it survives
        # a restart), else one learned from this instance's posts, else the configured one.
        target = envelope.thread_channel or self._channel_ids.get(channel) or channel
        if not _CHANNEL_ID.match(target):
            raise DeliveryError(
                f"slack files_upload_v2 needs a channel id, not {target!r}: configure the id "
                "or post into the channel first",
                recoverable=False,
            )
        try:
            await self._client.files_upload_v2(
                filename=envelope.file.filename,
                content=envelope.file.content,
                title=envelope.file.title,
                channel=target,
                thread_ts=envelope.thread_ts,
            )
        except Exception as exc:
            raise _api_error("files_upload_v2", exc) from exc

    async def close(self) -> None:
        """Nothing to release: the client opens one aiohttp session per request."""


# slack_sdk's webhook client logs the full URL (which is the secret) at DEBUG; a logger of
# its own that never goes below INFO keeps it out of logs even when the app runs at DEBUG.
_webhook_client_log = logging.getLogger(__name__ + ".webhook_client")
_webhook_client_log.setLevel(logging.INFO)


class SlackWebhookConfig(DestinationConfig):
    """``kind = "slack_webhook"``: an incoming webhook whose URL is in the variable
    ``url_env`` (default ``SLACK_WEBHOOK_URL``). No threads, no files, no channel override."""

    kind: Literal["slack_webhook"] = "slack_webhook"
    url_env: str = "SLACK_WEBHOOK_URL"


class SlackWebhookDestination:
    """Posts through an incoming webhook URL (a secret: never in errors or logs).

    Webhooks return no message ts, so a thread reply arrives as a plain message in the
    channel, and they cannot carry files (the outbox skips uploads for destinations without
    the ``files`` capability)."""

    capabilities = Capabilities(Dialect.SLACK, colour=True)

    def __init__(
        self, url: str, *, name: str = "slack_webhook", min_interval: float = 1.0, timeout: int = 30
    ):
        self.name = name
        self.min_interval = min_interval
        self._settings = (url, timeout)
        self._hook: AsyncWebhookClient | None = None

    @property
    def _client(self) -> AsyncWebhookClient:
        """slack_sdk's webhook client, made (and slack_sdk imported) on the first call."""
        if self._hook is None:
            from slack_sdk.webhook.async_client import AsyncWebhookClient

            url, timeout = self._settings
            self._hook = AsyncWebhookClient(
                url=url,
                timeout=timeout,
                logger=_webhook_client_log,
                retry_handlers=retry_handlers(),
            )
        return self._hook

    async def send(self, envelope: Envelope) -> Delivered:
        """Send text + blocks (attachment with the severity colour when set).
        Raises :class:`DeliveryError`: recoverable for 429/5xx/network, else not."""
        if envelope.message is None:
            raise DeliveryError("slack webhook cannot send this payload", recoverable=False)
        message = envelope.message
        text, lead = with_mention(message, envelope.mention)
        blocks: list[dict[str, Any]] | None = lead + message.blocks or None
        attachments = None
        if message.severity is not None and message.blocks:
            attachments = [{"color": SEVERITY_COLOURS[message.severity], "blocks": message.blocks}]
            blocks = lead or None
        try:
            response = await self._client.send(
                text=text,
                blocks=blocks,
                attachments=attachments,
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
            return Delivered()
        status = response.status_code
        body = (response.body or "").strip()
        # Slack answers short codes ("invalid_payload", "no_service"); anything else is
        # left out rather than risk echoing something unexpected.
        code = body if body.replace("_", "").isalnum() and len(body) <= 64 else "http_error"
        raise DeliveryError(
            f"slack webhook failed: {code} (HTTP {status})",
            recoverable=status == 429 or status >= 500,
            retry_after=_retry_after(response),
        )

    async def close(self) -> None:
        """Nothing to release: the client opens one aiohttp session per request."""


def _build_bot(cfg: SlackConfig, ctx: BuildContext) -> SlackBotDestination:
    return SlackBotDestination(
        ctx.secret(cfg.token_env, cfg.name),
        cfg.channel,
        cfg.api_url,
        name=cfg.name,
        min_interval=cfg.min_interval,
    )


def _build_webhook(cfg: SlackWebhookConfig, ctx: BuildContext) -> SlackWebhookDestination:
    return SlackWebhookDestination(
        ctx.secret(cfg.url_env, cfg.name), name=cfg.name, min_interval=cfg.min_interval
    )


BOT_KIND = DestinationKind(
    "slack",
    SlackConfig,
    _build_bot,
    SlackBotDestination.capabilities,
    "Slack Web API with a bot token: threads, chart upload, colour bars",
)
WEBHOOK_KIND = DestinationKind(
    "slack_webhook",
    SlackWebhookConfig,
    _build_webhook,
    SlackWebhookDestination.capabilities,
    "Slack incoming webhook: no threads, no files",
)
