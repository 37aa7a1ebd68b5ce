"""How fast requests may be sent: per-key request limits (requests per window of seconds)
that the API advertises, the config sets, or the bot learns from a short 429.

- **Advertised:** the IETF ``RateLimit-Policy`` header (draft-ietf-httpapi-ratelimit-headers),
  either ``"name";q=100;w=1`` (draft 08 and later, the name quoted or not) or ``100;w=1``
  (drafts 03–07). Every policy with a window of at most :data:`PACED_WINDOW_SECONDS` whose
  quota unit is requests is paced, each over its own window; a daily quota is the cadence's
  business (:mod:`bot.budget`). FlashAlpha's documentation names no such header; the sandbox
  sends one when it limits a key's requests per second (``flowbot sim --rate-limit``).
- **Configured:** ``[flashalpha] max_requests_per_second``, sent as given.
- **Learned:** the first 429 with a short ``Retry-After`` when no rate is known: the requests
  sent in the second before the refused one become the rate. A later short 429 halves it
  (once a second, never below half the first estimate), and a learned rate lapses after
  :data:`LEARNED_FOR_SECONDS`, so one burst from another client on the key does not slow the
  bot for the rest of the day.

An advertised or learned rate is paced at :data:`MARGIN` of itself, because requests sent
evenly can still arrive bunched. :class:`RatePacer` is clock-injectable and does no I/O.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "LEARNED_FOR_SECONDS",
    "MARGIN",
    "PACED_WINDOW_SECONDS",
    "Rate",
    "RatePacer",
    "parse_policy",
]

MARGIN = 0.9
"""Fraction of an advertised or learned limit that is sent."""

PACED_WINDOW_SECONDS = 60.0
"""Longest policy window paced request by request; longer ones are quotas."""

LEARNED_FOR_SECONDS = 600.0
"""How long a rate learnt from 429s holds before the bot sends unpaced again."""

_LOG = 4096  # send times kept at least (more when a limit allows more per window)
_ITEMS = re.compile(r',(?=(?:[^"]*"[^"]*")*[^"]*$)')  # commas outside quoted strings


@dataclass(frozen=True, slots=True)
class Rate:
    """Limits on sends: for each ``(requests, window)`` of ``limits``, at most ``requests``
    sends in any ``window`` seconds; ``source`` is where they came from (``"advertised"``,
    ``"configured"``, ``"learned"``)."""

    limits: tuple[tuple[int, float], ...]
    source: str

    @property
    def per_second(self) -> float:
        """The tightest of the limits, in requests per second."""
        return min(requests / window for requests, window in self.limits)

    def __str__(self) -> str:
        each = " and ".join(f"{requests} per {window:g} s" for requests, window in self.limits)
        return f"{each} ({self.source})"


def parse_policy(value: str) -> list[tuple[int, float]]:
    """The paced policies of a ``RateLimit-Policy`` header value as ``(quota, window
    seconds)``: those with a window of at most :data:`PACED_WINDOW_SECONDS` whose quota unit
    (``qu``) is requests; ``[]`` when there is none or it cannot be read. Both syntaxes:
    ``"burst";q=100;w=1, "day";q=5000;w=86400`` and ``100;w=1``."""
    found = []
    for item in _ITEMS.split(value.strip().lower()):
        head, *rest = [part.strip() for part in item.split(";")]
        params = {}
        for part in rest:
            key, _, raw = part.partition("=")
            params[key.strip()] = raw.strip().strip('"')
        quota_text = params.get("q", head if head.isdigit() else None)
        if params.get("qu", "requests") != "requests":
            continue  # bytes or concurrent requests: not a request rate
        try:
            quota = int(quota_text) if quota_text is not None else -1
            window = float(params.get("w", "nan"))
        except ValueError:
            continue
        if quota >= 1 and 0 < window <= PACED_WINDOW_SECONDS:
            found.append((quota, window))
    return found


class RatePacer:
    """A log of send times: :meth:`delay` is how long until one more request may go without
    more than ``requests`` sends in any ``window`` seconds, for each of :attr:`rate`'s
    limits, and no sooner than ``window / requests`` after the last send for the limit with
    the shortest window (a server counting fixed windows then never sees a burst at a window's
    edge). With no rate, everything may go at once. ``clock`` is a monotonic clock in
    seconds. :meth:`learn` turns a 429 into a rate from the same log."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._rate: Rate | None = None
        self._sent: deque[float] = deque(maxlen=_LOG)
        self._policy: str | None = None  # the last RateLimit-Policy value read
        self._learned_at = float("-inf")  # when the refused request behind it was sent
        self._floor = 1
        self._lapses_at = float("inf")

    @property
    def rate(self) -> Rate | None:
        """The limits in force, or ``None`` (a learnt rate lapses, see the module)."""
        rate = self._rate
        if rate is not None and rate.source == "learned" and self.clock() >= self._lapses_at:
            self._rate = rate = None
        return rate

    def configure(self, per_second: float) -> Rate:
        """Send at most ``per_second`` requests in any second (``[flashalpha]
        max_requests_per_second``); a fractional rate is paced over a longer window. Raises
        ``ValueError`` unless it is positive."""
        if per_second <= 0:
            raise ValueError("max_requests_per_second must be positive")
        requests = max(1, math.floor(per_second))
        self._rate = Rate(((requests, requests / per_second),), "configured")
        return self._rate

    def advertise(self, policy: str) -> Rate | None:
        """Apply a ``RateLimit-Policy`` header value; returns the new rate when it changed the
        pacing, else ``None`` (same value as before, no paced policy, or a configured rate,
        which wins)."""
        if policy == self._policy:
            return None
        self._policy = policy
        limits = parse_policy(policy)
        if not limits or (self._rate is not None and self._rate.source == "configured"):
            return None
        rate = Rate(tuple((max(1, math.floor(q * MARGIN)), w) for q, w in limits), "advertised")
        if rate == self._rate:
            return None
        self._rate = rate
        return rate

    def learn(self, refused_sent_at: float) -> Rate | None:
        """A request sent at ``refused_sent_at`` got a short 429. With no rate yet, the
        requests sent in the second before it (:data:`MARGIN` of them, at least 1) become the
        rate; a learnt rate in force is halved, once a second and never below half the first
        estimate. Either holds :data:`LEARNED_FOR_SECONDS`. Returns the new rate, or ``None``
        when it did not change (an advertised or configured rate stays)."""
        rate = self.rate
        if rate is not None and rate.source != "learned":
            return None
        if rate is None:
            since = refused_sent_at - 1.0
            sent = sum(1 for t in self._sent if since <= t < refused_sent_at)
            requests = max(1, math.floor(sent * MARGIN))
            self._floor = max(1, requests // 2)
        else:
            if refused_sent_at < self._learned_at + 1.0:
                return None  # sent before the last change took a second to act
            requests = max(self._floor, rate.limits[0][0] // 2)
        self._learned_at = refused_sent_at
        self._lapses_at = self.clock() + LEARNED_FOR_SECONDS
        if rate is not None and requests == rate.limits[0][0]:
            return None
        self._rate = Rate(((requests, 1.0),), "learned")
        return self._rate

    def delay(self) -> float:
        """Seconds to wait before the next send (0.0 = now)."""
        rate = self.rate
        if rate is None:
            return 0.0
        now = self.clock()
        sent = self._sent
        most = max(requests for requests, _ in rate.limits)
        if sent.maxlen is not None and sent.maxlen < most:
            sent = self._sent = deque(sent, maxlen=most)
        wait = 0.0
        for requests, window in rate.limits:
            if len(sent) >= requests:
                wait = max(wait, sent[-requests] + window - now)
        if sent:  # evenly spaced within the shortest window, so arrivals do not bunch
            requests, window = min(rate.limits, key=lambda limit: limit[1])
            wait = max(wait, sent[-1] + window / requests - now)
        return wait

    def sent(self) -> None:
        """Record one send now (call it right before sending). Sends are recorded before any
        rate is known too, so the first burst counts once a rate arrives."""
        self._sent.append(self.clock())
