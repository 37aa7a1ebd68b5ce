"""Which events become alerts: dedupe, cooldown and follow-up gating, each with a named reason.

Pure: what the store remembers reaches this module as two lookups, so the decision can be tested
with tables of cases and replayed with any clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.events import Event

__all__ = ["Decision", "Reason", "decide"]


class Reason(StrEnum):
    """Why an event was sent or held back; the sending reasons reach the template (as the
    text value, e.g. ``"cooldown_elapsed"``)."""

    FIRST = "first_notification"
    COOLDOWN_ELAPSED = "cooldown_elapsed"
    FOLLOW_UP = "follow_up"
    IN_COOLDOWN = "in_cooldown"
    DUPLICATE = "duplicate_in_cycle"
    NO_PARENT = "no_parent_alert"
    SILENCED = "silenced"


SENDING = frozenset({Reason.FIRST, Reason.COOLDOWN_ELAPSED, Reason.FOLLOW_UP})


@dataclass(frozen=True, slots=True)
class Decision:
    """An event and what policy made of it: ``send`` and the named ``reason`` (with the
    ``silence_id`` when a silence held it)."""

    event: Event
    reason: Reason
    silence_id: str | None = None

    @property
    def send(self) -> bool:
        """True when the event becomes an alert."""
        return self.reason in SENDING


def decide(
    events: Iterable[Event],
    *,
    now: datetime,
    cooldown_minutes: Mapping[str, float],
    last_alerted: Callable[[str, str], datetime | None],
    parent_alerted: Callable[[str], bool],
) -> list[Decision]:
    """Decide each event, in order.

    - A follow-up is sent only when its parent (``thread_parent``) was alerted this session.
    - Otherwise an ``(alert_key, state)`` is sent at most once per ``cooldown_minutes[rule]``
      (missing → 0): a flapping label does not spam, while a new state (a candidate switching
      bullish ↔ bearish, a symbol taking the lead after entering) is alerted at once.
    - Two events for the same ``(alert_key, state)`` in one batch: only the first.

    ``now`` is UTC; ``last_alerted(alert_key, state)`` returns the last alert time or ``None``;
    ``parent_alerted(alert_key)`` tells whether that alert exists this session.
    """
    out: list[Decision] = []
    seen: set[tuple[str, str]] = set()
    for event in events:
        key = (event.alert_key, event.state)
        if key in seen:
            out.append(Decision(event, Reason.DUPLICATE))
            continue
        seen.add(key)
        if event.follow_up:
            parent = event.thread_parent or event.alert_key
            reason = Reason.FOLLOW_UP if parent_alerted(parent) else Reason.NO_PARENT
            out.append(Decision(event, reason))
            continue
        last = last_alerted(*key)
        if last is None:
            out.append(Decision(event, Reason.FIRST))
            continue
        cooldown = timedelta(minutes=cooldown_minutes.get(event.rule, 0.0))
        reason = Reason.COOLDOWN_ELAPSED if now - last >= cooldown else Reason.IN_COOLDOWN
        out.append(Decision(event, reason))
    return out
