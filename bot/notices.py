"""Notices: the bot tells the desk when it is itself in trouble, once per episode, and replies
"recovered" in the notice's thread when the episode ends.

The engine turns what it learned during a tick (:class:`bot.health.SourceHealth`, stale feeds,
new dead letters) into a set of open :class:`Condition`; :func:`notices` compares it with the
previous tick's set and raises an event for each condition that opened (kind ``notice``) or
closed (its ``recovered`` reply). They go through the same pipeline as alerts: silences, routes
(``match.kind = "notice"``), grouping, rendering and the outbox. Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.events import Event, Severity
from bot.health import SourceHealth
from bot.humanize import human_duration

__all__ = [
    "NOTICES",
    "Condition",
    "dead_letter_conditions",
    "health_conditions",
    "notices",
    "source_conditions",
    "stale_condition",
    "stale_conditions",
]

NOTICES = (
    "api_key_rejected",
    "plan_lacks_source",
    "source_down",
    "feed_stale",
    "quota_exhausted",
    "dead_letters",
)
"""Every notice name (what routes and silences match as ``rule``)."""


@dataclass(frozen=True, slots=True)
class Condition:
    """Something wrong with the bot itself: ``name`` (one of :data:`NOTICES`), ``scope`` (which
    source or destination; ``-`` when global), a one-line ``title``, a ``detail`` line and its
    ``severity``. Two ticks with the same ``(name, scope)`` are one episode."""

    name: str
    scope: str
    title: str
    detail: str
    severity: Severity = Severity.WARNING

    @property
    def key(self) -> tuple[str, str]:
        """What identifies the episode."""
        return (self.name, self.scope)


def notices(
    before: Mapping[tuple[str, str], Condition],
    after: Iterable[Condition],
    now: datetime,
    *,
    closes: bool = True,
) -> list[Event]:
    """Events for the conditions in ``after`` not open ``before`` (a notice) and, when
    ``closes``, for those open ``before`` and gone now (a ``recovered`` reply in the notice's
    thread). ``now`` is UTC. Conditions that are events rather than states (dead letters) are
    never "recovered"."""
    current = {c.key: c for c in after}
    events = [_event(c, now) for key, c in current.items() if key not in before]
    if closes:
        events += [
            _event(c, now, recovered=True)
            for key, c in before.items()
            if key not in current and c.name != "dead_letters"
        ]
    return events


def _event(condition: Condition, now: datetime, *, recovered: bool = False) -> Event:
    key = f"{condition.name}:{condition.scope}:-"
    return Event(
        rule=condition.name,
        kind="notice",
        symbol="-",
        state="recovered" if recovered else "open",
        occurred_at=now,
        context={
            "title": condition.title,
            "detail": condition.detail,
            "recovered": recovered,
            "scope": condition.scope,
        },
        board=condition.scope,
        thread_parent=key if recovered else None,
        follow_up=recovered,
        severity=Severity.INFO if recovered else condition.severity,
        notice=True,
    )


def source_conditions(
    *,
    auth_failed: bool,
    disabled: Mapping[str, tuple[str, str | None]],
    failures: Mapping[tuple[str, str], int],
    failing_after: int,
    paused_until: datetime | None,
    now: datetime,
) -> list[Condition]:
    """The open conditions of the sources: a rejected key (401), a source the plan lacks (403:
    ``disabled`` maps source → (required plan, current plan)), sources whose keys failed
    ``failing_after`` or more cycles in a row (one condition per source), a spent quota."""
    out: list[Condition] = []
    if auth_failed:
        out.append(
            Condition(
                "api_key_rejected",
                "-",
                "FlashAlpha rejected the API key (HTTP 401)",
                "No data is polled. Set FLASHALPHA_API_KEY to a valid key; the bot tries "
                "again every 10 minutes.",
                Severity.CRITICAL,
            )
        )
    for source, (required, current) in sorted(disabled.items()):
        out.append(
            Condition(
                "plan_lacks_source",
                source,
                f"{source} needs the {required} plan",
                f"The key's plan is {current or 'unknown'}: {source} is not polled; "
                "the rest keeps running.",
            )
        )
    down: dict[str, list[str]] = {}
    for (source, key), streak in sorted(failures.items()):
        if streak >= failing_after:
            down.setdefault(source, []).append(key)
    for source, keys in down.items():
        shown = ", ".join(k for k in keys[:8] if k != "-") or source
        more = f" and {len(keys) - 8} more" if len(keys) > 8 else ""
        out.append(
            Condition(
                "source_down",
                source,
                f"{source} failing for {failing_after}+ polls",
                f"{shown}{more}: the previous data is kept and no alert comes from it.",
            )
        )
    if paused_until is not None and now < paused_until:
        out.append(
            Condition(
                "quota_exhausted",
                "-",
                "Daily API quota spent",
                f"Polling paused until {paused_until:%H:%M} UTC "
                f"({human_duration((paused_until - now).total_seconds())}).",
                Severity.CRITICAL,
            )
        )
    return out


def health_conditions(health: SourceHealth, failing_after: int, now: datetime) -> list[Condition]:
    """:func:`source_conditions` of what ``health`` (the engine's run state) knows."""
    return source_conditions(
        auth_failed=health.auth_failed,
        disabled={s: (p, health.current_plan.get(s)) for s, p in health.disabled.items()},
        failures=health.failures,
        failing_after=failing_after,
        paused_until=health.paused_until,
        now=now,
    )


def stale_conditions(lag_seconds: Mapping[str, float], limit: float) -> list[Condition]:
    """The stale-feed condition as a list (empty when nothing is stale or ``limit`` is 0,
    i.e. the check is off)."""
    found = stale_condition(lag_seconds, limit) if limit else None
    return [found] if found is not None else []


def dead_letter_conditions(rows: Iterable[tuple[str, str | None]]) -> list[Condition]:
    """One condition per destination for outbox rows newly moved to the dead letters:
    ``rows`` are ``(destination, last_error)``, newest first."""
    by_destination: dict[str, list[str | None]] = {}
    for destination, error in rows:
        by_destination.setdefault(destination, []).append(error)
    return [
        Condition(
            "dead_letters",
            destination,
            f"{len(errors)} message(s) to {destination} failed for good",
            f"{errors[0] or 'permanent failure'}. Fix it, then `flowbot outbox retry --all`.",
            Severity.CRITICAL,
        )
        for destination, errors in sorted(by_destination.items())
    ]


def stale_condition(lag_seconds: Mapping[str, float], limit: float) -> Condition | None:
    """One condition for every symbol whose ``data_as_of.flow_feed`` lags the clock by more
    than ``limit`` seconds (``lag_seconds``: symbol → seconds behind), or ``None``."""
    stale = {s: lag for s, lag in lag_seconds.items() if lag > limit}
    if not stale:
        return None
    worst = max(stale.values())
    names = ", ".join(sorted(stale)[:8]) + (f" and {len(stale) - 8} more" if len(stale) > 8 else "")
    return Condition(
        "feed_stale",
        "-",
        f"Flow feed stale: {len(stale)} symbol{'s' if len(stale) > 1 else ''}, "
        f"{human_duration(worst)} behind",
        f"{names}: numbers may be old; alerts from them may be late.",
    )
