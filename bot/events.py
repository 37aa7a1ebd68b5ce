"""The data that flows between stages: events raised by rules, rendered messages, alert records.

All frozen: a stage never changes what an earlier stage handed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = ["AlertRecord", "Category", "Dialect", "Event", "Message", "Severity"]


class Severity(StrEnum):
    """How urgent an event is, as the config and routes spell it. Ordered: ``info`` <
    ``warning`` < ``critical`` (compare with :meth:`rank`). It sets the colour of a Slack
    attachment bar, a Discord embed and a Teams card, and is a word in text and email."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for info, 1 for warning, 2 for critical."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class Event:
    """A change worth telling the desk about, raised by a rule from (previous, current) snapshots.

    Fields:
    - ``rule``: the rule's config name (``regime_flip``, ``candidate``, ``top_n``).
    - ``kind``: what happened; it names the template (``templates/slack/<kind>.j2``):
      ``regime_flip``, ``regime_flip_ended``, ``candidate``, ``leaderboard_entry``,
      ``leaderboard_lead``, ``leaderboard_exit``.
    - ``symbol``: the underlying, upper case.
    - ``board``: for leaderboard events the board it happened on (``options:buyers``,
      ``options:sellers``, ``zero_dte:<metric>``); ``None`` for per-symbol rules.
    - ``state``: identity of the state alerted on (``regime_flip``, ``candidate:bullish``,
      ``top:3``, ``lead``...). With ``alert_key`` it is what dedupe compares: the same key in
      the same state is never alerted twice in a row.
    - ``occurred_at``: UTC; the source's ``as_of`` / ``generatedUtc`` when it has one, else
      the tick's time.
    - ``context``: what the template shows (the current response model, previous labels...).
    - ``thread_parent``: for follow-ups, the ``alert_key`` of the alert whose Slack thread
      this goes into; ``None`` for a top-level alert.
    - ``follow_up``: ``True`` for a thread reply that closes an earlier alert (not subject to
      the cooldown, and only sent when the parent was).
    - ``severity``: derived by the rule from its config thresholds (see each rule's module).
    - ``notice``: ``True`` for a notice about the bot itself (:mod:`bot.notices`).
    """

    rule: str
    kind: str
    symbol: str
    state: str
    occurred_at: datetime
    context: Mapping[str, Any] = field(default_factory=dict)
    board: str | None = None
    thread_parent: str | None = None
    follow_up: bool = False
    severity: Severity = Severity.INFO
    notice: bool = False

    @property
    def category(self) -> Category:
        """What routes match as ``kind``: ``notice`` for the bot's own notices (and their
        recovered replies), else ``follow_up`` for a thread reply, else ``alert``."""
        if self.notice:
            return Category.NOTICE
        return Category.FOLLOW_UP if self.follow_up else Category.ALERT

    @property
    def source(self) -> str | None:
        """The board for leaderboard events (``options:buyers``, ``zero_dte:heat``), else
        ``None``: what routes match as ``source``."""
        return self.board

    @property
    def alert_key(self) -> str:
        """Cooldown and threading key: ``rule:board:symbol`` (board ``-`` when none)."""
        return f"{self.rule}:{self.board or '-'}:{self.symbol}"


class Category(StrEnum):
    """What a message is, as routes match it (``[[routes]] match.kind``): a top-level
    ``alert``, a thread ``follow_up``, a ``notice`` about the bot itself, the session
    ``recap`` (and its chart) or the email ``digest``."""

    ALERT = "alert"
    FOLLOW_UP = "follow_up"
    NOTICE = "notice"
    RECAP = "recap"
    DIGEST = "digest"


class Dialect(StrEnum):
    """The markup a destination reads, which decides how API text is escaped:
    ``slack`` mrkdwn, ``markdown`` (Discord, Teams) or ``plain`` text (webhook, email,
    console)."""

    SLACK = "slack"
    MARKDOWN = "markdown"
    PLAIN = "plain"


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered message in one :class:`Dialect`.

    - ``kind``: the template it came from (``regime_flip``, ``recap``, ``group``…).
    - ``text``: the one-paragraph fallback (Slack notifications, webhook ``text``).
    - ``blocks``: Block-Kit-shaped parts (``header`` / ``section`` with ``text`` and
      ``fields`` / ``context`` / ``divider``), JSON-ready; their texts are in ``dialect``.
      Slack posts them as they are; other destinations map them (embed, card, JSON fields).
    - ``severity``: colours the Slack bar, the Discord embed and the Teams card; ``None`` for
      messages without one (the recap).
    """

    kind: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    severity: Severity | None = None
    dialect: Dialect = Dialect.SLACK

    @property
    def title(self) -> str:
        """The header block's text, else the first line of ``text``."""
        for block in self.blocks:
            if block.get("type") == "header":
                return str(block["text"]["text"])
        return self.text.split("\n", 1)[0]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_json` reads back (the outbox payload)."""
        return {
            "kind": self.kind,
            "text": self.text,
            "blocks": self.blocks,
            "severity": self.severity.value if self.severity else None,
            "dialect": self.dialect.value,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        """The message :meth:`to_json` wrote (older rows without severity/dialect: Slack)."""
        severity = data.get("severity")
        return cls(
            kind=str(data["kind"]),
            text=str(data["text"]),
            blocks=list(data.get("blocks") or []),
            severity=Severity(severity) if severity else None,
            dialect=Dialect(data.get("dialect") or Dialect.SLACK),
        )


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert as the store remembers it (the alert log), for cooldowns, threads and the recap.

    ``occurred_at`` and ``sent_at`` are UTC (``sent_at`` ``None`` while undelivered);
    ``channel`` / ``ts`` are Slack's answer to the post (``None`` for console or webhook
    delivery, where Slack returns no timestamp); ``permalink`` when Slack gave one.
    ``summary`` is the plain-text fallback of the message, for digest lists. ``outcome``:
    ``sent``, ``pending``, ``expired``, ``dead`` or ``silenced`` (the recap counts them).
    """

    id: int
    alert_key: str
    rule: str
    kind: str
    symbol: str
    board: str | None
    state: str
    occurred_at: datetime
    sent_at: datetime | None
    channel: str | None
    ts: str | None
    permalink: str | None
    summary: str
    outcome: str = "sent"
