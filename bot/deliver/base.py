"""The destination contract: what every sender receives (:class:`Envelope`), what it answers
(:class:`Delivered`), what it can do (:class:`Capabilities`), the one error type it raises, and
the config every ``[[destinations]]`` entry shares."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from bot.events import Category, Dialect, Message, Severity

__all__ = [
    "SEVERITY_COLOURS",
    "AlertRef",
    "BuildContext",
    "Capabilities",
    "Delivered",
    "DeliveryError",
    "Destination",
    "DestinationConfig",
    "DestinationKind",
    "Envelope",
    "FileUpload",
    "MissingSecret",
]

SEVERITY_COLOURS: dict[Severity, str] = {
    Severity.INFO: "#439FE0",
    Severity.WARNING: "#ECB22E",
    Severity.CRITICAL: "#E01E5A",
}
"""Hex colour per severity: Slack's attachment bar, Discord's embed colour."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """What a destination answered for one send.

    ``channel`` and ``ts`` identify the message for thread replies (Slack channel id and
    message timestamp; ``None`` where the destination gives none, e.g. webhooks);
    ``permalink`` is a URL to the message when the destination returned one.
    """

    channel: str | None = None
    ts: str | None = None
    permalink: str | None = None


class DeliveryError(Exception):
    """A send failed. ``recoverable`` tells the outbox whether trying again later can help
    (rate limits, 5xx, network) or not (bad token, unknown channel, invalid payload: the row
    goes to the dead letters). ``retry_after`` (seconds) is the destination's own
    ``Retry-After`` when it gave one: nothing is sent to it before that has passed.

    The message names the failure (a status or error code) and never contains a token or a
    webhook URL: senders build it from codes, never from a client's exception text.
    """

    def __init__(self, message: str, *, recoverable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.recoverable = recoverable
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"DeliveryError({self.args[0]!r}, recoverable={self.recoverable})"


class MissingSecret(ValueError):
    """A destination names an environment variable (``token_env``, ``url_env``…) that is not
    set. The message names the variable and the destination, never a value."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a destination kind can do: reply in ``threads``, carry ``files`` (the recap
    chart), show a severity ``colour``, send the email ``digest``; and the ``dialect`` its
    text is rendered in."""

    dialect: Dialect
    threads: bool = False
    files: bool = False
    colour: bool = False
    digest: bool = False


@dataclass(frozen=True, slots=True)
class AlertRef:
    """One alert a message carries (a group carries several): for the webhook payload and
    logs. ``as_of`` is UTC; ``key`` is the alert's dedupe key (``rule:board:symbol``)."""

    rule: str
    symbol: str
    state: str
    severity: Severity
    board: str | None
    as_of: datetime
    key: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (``as_of`` as ISO-8601 UTC)."""
        return {
            "rule": self.rule,
            "symbol": self.symbol,
            "state": self.state,
            "severity": self.severity.value,
            "board": self.board,
            "as_of": self.as_of.isoformat(),
            "key": self.key,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertRef:
        """Read back what :meth:`to_json` wrote."""
        return cls(
            rule=str(data["rule"]),
            symbol=str(data["symbol"]),
            state=str(data["state"]),
            severity=Severity(data["severity"]),
            board=data.get("board"),
            as_of=datetime.fromisoformat(data["as_of"]),
            key=str(data["key"]),
        )


@dataclass(frozen=True, slots=True)
class FileUpload:
    """A file to attach (the recap chart PNG): ``filename``, ``title`` and the bytes."""

    filename: str
    title: str
    content: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    """One outbox row as a destination receives it.

    - ``id`` / ``dedupe_key``: the outbox row; ``dedupe_key`` stays the same across retries
      (the webhook's ``Idempotency-Key``).
    - ``category``: alert, follow_up, notice, recap, digest.
    - exactly one of ``message`` (rendered in the destination's dialect), ``file`` (an
      upload into the thread of ``thread_ts``) or ``email`` (a whole RFC 822 message, the
      digest) is set.
    - ``alerts``: the alerts the message carries; ``session`` the New York trading date.
    - ``mention`` (from the route's config, never from data) and ``channel`` (the route's
      Slack channel override); ``thread_ts`` / ``thread_channel``: the parent's ts and the
      channel id the destination answered for it (a reply or upload goes there).
    - ``created_at``: when the row was queued (UTC); ``delayed``: it waited longer than
      ``[outbox] alert_max_age_minutes`` and the message already carries the marker.
    """

    id: int
    dedupe_key: str
    category: Category
    session: str
    created_at: datetime
    message: Message | None = None
    file: FileUpload | None = None
    email: bytes | None = None
    alerts: tuple[AlertRef, ...] = ()
    mention: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    thread_channel: str | None = None
    delayed: bool = False


@runtime_checkable
class Destination(Protocol):
    """A place messages go. ``name`` is its config name; ``capabilities`` says what it can
    do; ``min_interval`` is the pacing in seconds between two sends (the outbox worker
    applies it, whatever the send: alert, reply, recap or upload)."""

    name: str
    capabilities: Capabilities
    min_interval: float

    async def send(self, envelope: Envelope) -> Delivered:
        """Send ``envelope`` once (the outbox retries). Raises :class:`DeliveryError`."""
        ...

    async def close(self) -> None:
        """Release connections; the destination is not used afterwards."""
        ...


class DestinationConfig(BaseModel):
    """What every ``[[destinations]]`` entry has: a unique ``name`` (what routes use), its
    ``kind`` and ``max_posts_per_second`` (0 = no pacing). Secrets are never written here:
    each kind names the environment variable that holds its token or URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str
    max_posts_per_second: float = Field(1.0, ge=0)

    @property
    def min_interval(self) -> float:
        """Seconds between two sends (0 when unpaced)."""
        return 0.0 if self.max_posts_per_second <= 0 else 1.0 / self.max_posts_per_second


def _read_secret(name: str, environ: Mapping[str, str], secrets_dir: Path | None) -> str | None:
    value = environ.get(name)
    if value:
        return value
    if secrets_dir is not None:
        path = secrets_dir / name.lower()
        if path.is_file():
            return path.read_text().strip() or None
    return None


@dataclass(frozen=True)
class BuildContext:
    """What building a destination may read: ``environ`` (the process environment for
    ``run`` / ``once`` / ``check``, an explicit dict for the demo and tests) and the
    ``secrets_dir`` (``/run/secrets``) files named like the variable in lower case."""

    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    secrets_dir: Path | None = None
    console: Any = None

    def secret(self, variable: str, destination: str) -> str:
        """The value of ``variable``. Raises :class:`MissingSecret` naming it when unset."""
        value = _read_secret(variable, self.environ, self.secrets_dir)
        if value is None:
            raise MissingSecret(
                f"destination {destination!r}: environment variable {variable} is not set"
            )
        return value

    def optional_secret(self, variable: str | None) -> str | None:
        """The value of ``variable``, or ``None`` when it (or the name) is unset."""
        return None if not variable else _read_secret(variable, self.environ, self.secrets_dir)


@dataclass(frozen=True, slots=True)
class DestinationKind:
    """A registered destination kind: ``kind`` as written in the config, its config model,
    ``build(config, context) -> Destination``, its capabilities and a one-line summary."""

    kind: str
    config_model: type[DestinationConfig]
    build: Callable[[Any, BuildContext], Destination]
    capabilities: Capabilities
    summary: str
