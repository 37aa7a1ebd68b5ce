"""When to poll next: just after the server's cache refreshes.

The API caches flow summaries 15 s and leaderboards 30 s; polling between two refreshes returns
the same snapshot. Every response carries the time its data was built (``as_of``,
``generatedUtc``, ``timestamp``, else the ``data_as_of`` envelope), so each observation bounds
the clock offset between the server and us:

    stamp <= server time when it answered < stamp + period

A :class:`Phase` keeps that interval per (source, key). While it is wider than ``precision``
the next poll is also placed at its middle (bisection: a handful of polls learn the phase to a
quarter second); after that each poll lands ``margin`` after the refresh. A server whose stamp
changes faster than the period does not cache: :class:`Cadence` then polls every ``fallback``
seconds. Symbols on different phases are each tracked; polls closer than ``min_gap`` merge.

Pure: times are Unix seconds (floats, UTC) passed in by the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Cadence", "Phase", "QuotaPace", "stamp_of"]

_INF = math.inf


def stamp_of(model: object) -> datetime | None:
    """When the server built this body: ``as_of`` (summary, 0DTE board), ``generated_utc``
    (options board), ``timestamp`` (anomaly), else the newest feed in ``data_as_of``."""
    for name in ("as_of", "generated_utc", "timestamp"):
        value = getattr(model, name, None)
        if isinstance(value, datetime):
            return value
    feeds = getattr(model, "data_as_of", None)
    if feeds is None:
        return None
    stamps = [v for v in vars(feeds).values() if isinstance(v, datetime)]
    return max(stamps) if stamps else None


@dataclass(slots=True)
class Phase:
    """What is known of one cached endpoint's refreshes.

    ``period``: the cache period (seconds). ``lo`` / ``hi``: bounds of the server clock minus
    ours (seconds). ``stamp``: the newest data's build time (server clock, Unix seconds).
    ``uncached``: a stamp changed sooner than ``period`` after the previous one.
    """

    period: float
    lo: float = -_INF
    hi: float = _INF
    stamp: float | None = None
    uncached: bool = False

    def observe(self, sent: float, received: float, stamp: float) -> None:
        """A response to a request ``sent`` and ``received`` (our clock) built at ``stamp``."""
        if self.stamp is not None and stamp > self.stamp and stamp - self.stamp < self.period - 0.5:
            self.uncached = True
        lo, hi = stamp - received, stamp + self.period - sent
        if self.stamp is not None and stamp < self.stamp:
            return  # an older body (another replica lagging): it tells nothing new
        new_lo, new_hi = max(self.lo, lo), min(self.hi, hi)
        if new_lo > new_hi:  # the clocks moved (server restart, NTP step): start again
            new_lo, new_hi = lo, hi
        self.lo, self.hi = new_lo, new_hi
        self.stamp = stamp

    @property
    def width(self) -> float:
        """How uncertain the refresh instant is (seconds); ``inf`` before any observation."""
        return self.hi - self.lo

    def next_poll(
        self, now: float, margin: float, precision: float, catch_up: bool = True
    ) -> float | None:
        """Our time of the next useful poll after ``now``: the midpoint of the uncertainty
        while learning, else ``margin`` after the next refresh. ``None`` when unknown.

        A refresh not yet seen that has surely happened by ``now`` (a poll landed just
        before it, or ran long) is polled at once with ``catch_up``; without it (the quota
        spaces polls) the next refresh after ``now`` is aimed at instead."""
        if self.stamp is None or self.uncached or not math.isfinite(self.width):
            return None
        refresh = self.stamp + self.period
        if catch_up and refresh - self.lo + margin <= now:
            return now
        while refresh - self.hi + margin <= now and refresh - self.lo + margin <= now:
            refresh += self.period  # we are already past it: the one after
        surely = refresh - self.lo + margin  # the refresh has happened by then, whatever lo..hi
        if self.width > precision:
            middle = refresh - (self.lo + self.hi) / 2
            if middle > now:
                return middle
        return max(surely, now)


@dataclass(frozen=True, slots=True)
class QuotaPace:
    """Quota-aware spacing: ``remaining`` requests until ``reset`` (Unix seconds), of which
    ``reserve`` (a fraction) is kept for the recap and drill-downs; the session ends at
    ``session_end``. ``None`` remaining = unlimited."""

    remaining: int | None
    session_end: float
    reserve: float = 0.1

    def min_gap(self, now: float, requests_per_poll: int) -> float:
        """Fewest seconds between polls so the quota lasts the session (0 = no constraint)."""
        if self.remaining is None or requests_per_poll <= 0:
            return 0.0
        usable = self.remaining * (1 - self.reserve)
        left = max(0.0, self.session_end - now)
        if usable < requests_per_poll:
            return _INF if left > 0 else 0.0
        return left * requests_per_poll / usable


@dataclass(slots=True)
class Cadence:
    """The poll plan of one job (the watchlist's symbols, or the leaderboards).

    ``period``: the server's cache period (15 s symbols, 30 s boards). ``fallback``: seconds
    between polls when nothing is known or the server does not cache. ``margin``: how long
    after a refresh to poll. ``precision``: learn phases to this width. ``min_gap``: never two
    polls closer than this (refreshes closer than it merge into one poll).
    """

    period: float
    fallback: float
    margin: float = 0.3
    precision: float = 0.25
    min_gap: float = 1.0
    phases: dict[str, Phase] = field(default_factory=dict)
    _due: set[str] | None = field(default=None, init=False, repr=False)

    def observe(self, key: str, sent: float, received: float, stamp: float) -> None:
        """Feed one response for ``key`` (a symbol, or a board)."""
        phase = self.phases.get(key)
        if phase is None:
            phase = self.phases[key] = Phase(self.period)
        phase.observe(sent, received, stamp)

    @property
    def due(self) -> set[str] | None:
        """The keys whose refresh the poll planned by the last :meth:`next_poll` is for;
        ``None``: every key (a phase is still being learnt, or the server does not cache)."""
        return self._due

    @property
    def aligned(self) -> bool:
        """True when at least one key's phase is known and no key looks uncached."""
        return bool(self.phases) and not any(p.uncached for p in self.phases.values())

    def next_poll(self, now: float, last_poll: float, pace: float = 0.0) -> tuple[float, str]:
        """``(when, why)``: our time of the next poll after a poll at ``last_poll``, at least
        ``max(min_gap, pace)`` after it (``pace``: the quota's spacing)."""
        earliest = last_poll + max(self.min_gap, pace)
        self._due = None
        if not self.aligned:
            why = "server does not cache" if self.phases else "no response yet"
            return max(earliest, last_poll + max(self.fallback, pace)), why
        times = []
        catch_up = pace <= self.period  # a missed refresh is taken at once, unless quota-paced
        for phase in self.phases.values():
            t = phase.next_poll(max(now, earliest), self.margin, self.precision, catch_up)
            if t is not None:
                times.append(t)
        if not times:
            return max(earliest, last_poll + self.fallback), "learning"
        learning = any(p.width > self.precision for p in self.phases.values())
        when = max(min(times), earliest)
        # Refreshes within min_gap of the first are taken by the same poll, a bit later.
        when = max(t for t in times if t <= when + self.min_gap)
        # While any phase is being learnt every key is polled (each poll teaches all of them);
        # after that, only the keys whose refresh this poll is for.
        self._due = (
            None
            if learning
            else {
                key
                for key, phase in self.phases.items()
                if (t := phase.next_poll(max(now, earliest), self.margin, self.precision, catch_up))
                is not None
                and t <= when + 1e-6
            }
        )
        why = "learning the cache phase" if learning else "just after the cache refresh"
        if pace > self.period:
            why += f", spaced {pace:.0f} s by the quota"
        return when, why
