"""The destination contract every sender implements, and the one error type they raise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.events import SlackMessage

__all__ = ["Delivered", "DeliveryError", "Destination"]


@dataclass(frozen=True, slots=True)
class Delivered:
    """What a destination answered for one post.

    ``channel`` and ``ts`` identify the message for thread replies (Slack channel id and
    message timestamp; ``None`` where the destination gives none, e.g. incoming webhooks);
    ``permalink`` is a URL to the message when the destination returned one.
    """

    channel: str | None
    ts: str | None
    permalink: str | None = None


class DeliveryError(Exception):
    """A send failed. ``recoverable`` tells the outbox whether trying again later can help
    (rate limits, 5xx, network) or not (bad token, unknown channel, invalid blocks).

    The message names the failure (e.g. the Slack error code) and never contains a token or
    a webhook URL: senders build it from codes, never from the exception text of the client.
    """

    def __init__(self, message: str, *, recoverable: bool):
        super().__init__(message)
        self.recoverable = recoverable

    def __repr__(self) -> str:
        return f"DeliveryError({self.args[0]!r}, recoverable={self.recoverable})"


@runtime_checkable
class Destination(Protocol):
    """A place messages go (Slack bot, Slack webhook, console).

    ``name`` is the destination's config name; ``supports_files`` says whether
    :meth:`upload_file` can deliver (webhooks cannot).
    """

    name: str
    supports_files: bool

    async def post(self, message: SlackMessage, *, thread_ts: str | None = None) -> Delivered:
        """Post ``message`` (into the thread of ``thread_ts`` when given).
        Raises :class:`DeliveryError`."""
        ...

    async def upload_file(
        self,
        *,
        filename: str,
        content: bytes,
        title: str,
        thread_ts: str | None,
        initial_comment: str | None = None,
    ) -> None:
        """Attach a file (e.g. the recap chart PNG), in the thread of ``thread_ts`` when given.
        Raises :class:`DeliveryError`."""
        ...

    async def close(self) -> None:
        """Release connections; the destination is not used afterwards."""
        ...
