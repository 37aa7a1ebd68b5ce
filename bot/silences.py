"""Silences: mute alerts that match, for a while, without losing the record of them.

Two kinds, matched on the same keys as routes (:class:`bot.routes.RouteMatch`):
- added at run time with ``flowbot silence add --rule R --symbol S --for 2h --comment TEXT``,
  stored in the state database (a running bot picks one up on its next tick);
- standing ones in the config (``[[silences]]`` with a daily New York ``start`` / ``end``, e.g.
  the first five minutes after the open).

A silenced event is recorded in the alert log with the silence's id and reason ``silenced``; it
is not sent, does not count for cooldowns, and the recap counts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from bot.events import Event
from bot.routes import Routable, RouteMatch

__all__ = ["Silence", "StandingSilence", "active", "matching", "parse_duration"]

NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True, slots=True)
class Silence:
    """One silence: ``id`` (``"12"`` from the database, ``"config:0"`` from the config), the
    ``matchers`` (route match keys → values), UTC ``starts_at`` / ``ends_at``, a ``comment``
    and who made it (``created_by``: the OS user of ``flowbot silence add``, or ``config``)."""

    id: str
    matchers: dict[str, Any]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str

    @property
    def match(self) -> RouteMatch:
        """The matchers as a :class:`RouteMatch`."""
        return RouteMatch.model_validate(self.matchers)

    def covers(self, event: Event, now: datetime) -> bool:
        """True when ``now`` (UTC) is inside the silence and ``event`` matches it."""
        return self.starts_at <= now < self.ends_at and self.match.fits(Routable.of(event))


class StandingSilence(BaseModel):
    """``[[silences]]`` in the config: ``match`` (route match keys) muted every day from
    ``start`` to ``end`` New York time (e.g. ``"09:30"`` to ``"09:35"``), with a ``comment``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: RouteMatch = RouteMatch()
    start: time
    end: time
    comment: str = Field("", max_length=500)

    def on(self, index: int, now: datetime) -> Silence | None:
        """Today's window as a :class:`Silence` when ``now`` (UTC) falls inside it."""
        day = now.astimezone(NEW_YORK).date()
        starts = datetime.combine(day, self.start, NEW_YORK)
        ends = datetime.combine(day, self.end, NEW_YORK)
        if not starts <= now < ends:
            return None
        matchers = self.match.model_dump(exclude_none=True, mode="json")
        return Silence(f"config:{index}", matchers, starts, ends, self.comment, "config")


def active(
    stored: Sequence[Silence], standing: Sequence[StandingSilence], now: datetime
) -> list[Silence]:
    """Every silence in force at ``now`` (UTC): stored ones whose window holds ``now`` and the
    standing ones whose daily window does."""
    out = [s for s in stored if s.starts_at <= now < s.ends_at]
    out += [s for i, cfg in enumerate(standing) if (s := cfg.on(i, now)) is not None]
    return out


def matching(event: Event, silences: Sequence[Silence], now: datetime) -> Silence | None:
    """The first silence that covers ``event`` at ``now``, or ``None``."""
    return next((s for s in silences if s.covers(event, now)), None)


def parse_duration(text: str) -> timedelta:
    """``"90m"``, ``"2h"``, ``"1d"``, ``"1h30m"`` → a timedelta. Raises ``ValueError`` naming
    the text when it is not a positive duration in d / h / m."""
    units = {"d": 86400, "h": 3600, "m": 60}
    total, number = 0, ""
    for char in text.strip().lower():
        if char.isdigit():
            number += char
        elif char in units and number:
            total += int(number) * units[char]
            number = ""
        else:
            raise ValueError(f"{text!r} is not a duration: use d, h, m (2h, 90m, 1h30m)")
    if number or total <= 0:
        raise ValueError(f"{text!r} is not a duration: use d, h, m (2h, 90m, 1h30m)")
    return timedelta(seconds=total)
