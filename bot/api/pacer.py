"""How fast requests may be sent: a per-key request rate (requests per window of seconds) that
the API advertises, the config sets, or the bot learns from a short 429.

- **Advertised:** the IETF ``RateLimit-Policy`` header (draft-ietf-httpapi-ratelimit-headers),
  either ``"name";q=100;w=1`` (draft 08 and later) or ``100;w=1`` (drafts 03–07). Only
  policies with a window of at most :data:`PACED_WINDOW_SECONDS` are paced; a daily quota is
  the cadence's business (:mod:`bot.budget`). FlashAlpha's documentation names no such header;
  the sandbox sends one when it limits a key's requests per second (``flowbot sim
  --rate-limit``).
- **Configured:** ``[flashalpha] max_requests_per_second``, sent as given.
- **Learned:** the first 429 with a short ``Retry-After`` when no rate is known: the requests
  the API accepted in the second before it become the rate.

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

__all__ = ["MARGIN", "PACED_WINDOW_SECONDS", "Rate", "RatePacer", "parse_policy"]

MARGIN = 0.9
"""Fraction of an advertised or learned limit that is sent."""

PACED_WINDOW_SECONDS = 60.0
"""Longest policy window paced request by request; longer ones are quotas."""

_LOG = 4096  # send times kept at least (more when a rate allows more per window)

_ITEM = re.compile(r'(?:^|,)\s*(?:"[^"]*"|[0-9]+)\s*((?:;\s*[a-z0-9_-]+=[^;,]*)*)')
_PARAM = re.compile(r";\s*([a-z0-9_-]+)=([^;,]*)")
_LEADING = re.compile(r"\s*([0-9]+)")


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``requests`` sends in any ``window`` seconds; ``source`` is where it came from
    (``"advertised"``, ``"configured"``, ``"learned"``)."""

    requests: int
    window: float
    source: str

    @property
    def per_second(self) -> float:
        """Requests per second."""
        return self.requests / self.window

    def __str__(self) -> str:
        return f"{self.requests} per {self.window:g} s ({self.source})"


def parse_policy(value: str) -> tuple[int, float] | None:
    """What to pace for a ``RateLimit-Policy`` header value: ``(quota, window seconds)`` that
    keeps within every policy whose window is at most :data:`PACED_WINDOW_SECONDS` (the
    lowest rate of them, over the shortest of their windows), or ``None`` when there is no
    such policy (or it cannot be read). Both syntaxes: ``"burst";q=100;w=1, "day";q=5000;
    w=86400`` and ``100;w=1``."""
    rates: list[float] = []
    windows: list[float] = []
    for item in _ITEM.finditer(value.strip().lower()):
        params = dict(_PARAM.findall(item.group(1)))
        quota_text = params.get("q")
        if quota_text is None:  # drafts 03–07: the quota is the item itself
            leading = _LEADING.match(item.group(0).lstrip(","))
            quota_text = leading.group(1) if leading else None
        try:
            quota = int(quota_text) if quota_text is not None else -1
            window = float(params.get("w", "nan"))
        except ValueError:
            continue
        if quota < 1 or not 0 < window <= PACED_WINDOW_SECONDS:
            continue
        rates.append(quota / window)
        windows.append(window)
    if not rates:
        return None
    window = min(windows)
    return max(1, math.floor(min(rates) * window)), window


class RatePacer:
    """A sliding log of send times: :meth:`delay` is how long until one more request may go
    without more than :attr:`rate` ``.requests`` sends in any ``.window`` seconds. With no
    rate, everything may go at once. ``clock`` is a monotonic clock in seconds.

    It also keeps when recent accepted requests were sent (:meth:`accepted`), which
    :meth:`learn` turns into a rate after a 429."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.rate: Rate | None = None
        self._sent: deque[float] = deque(maxlen=_LOG)
        self._accepted: deque[float] = deque()
        self._policy: str | None = None  # the last RateLimit-Policy value read
        self._learned_at = float("-inf")

    def configure(self, per_second: float) -> Rate:
        """Send at most ``per_second`` requests in any second (``[flashalpha]
        max_requests_per_second``); a fractional rate is paced over a longer window."""
        if per_second <= 0:
            raise ValueError("max_requests_per_second must be positive")
        requests = max(1, math.floor(per_second))
        self.rate = Rate(requests, requests / per_second, "configured")
        return self.rate

    def advertise(self, policy: str) -> Rate | None:
        """Apply a ``RateLimit-Policy`` header value; returns the new rate when it changed the
        pacing, else ``None`` (same value as before, no paced policy, or a configured rate,
        which wins)."""
        if policy == self._policy:
            return None
        self._policy = policy
        parsed = parse_policy(policy)
        if parsed is None or (self.rate is not None and self.rate.source == "configured"):
            return None
        quota, window = parsed
        rate = Rate(max(1, math.floor(quota * MARGIN)), window, "advertised")
        if rate == self.rate:
            return None
        self.rate = rate
        return rate

    def learn(self, refused_sent_at: float) -> Rate | None:
        """A request sent at ``refused_sent_at`` got a short 429. With no rate yet, the
        requests accepted in the second before it (:data:`MARGIN` of them, at least 1) become
        the rate; a learned rate already in force is halved, once per window. Returns the new
        rate, or ``None`` when an advertised or configured rate stays."""
        rate = self.rate
        if rate is not None and rate.source != "learned":
            return None
        if rate is None:
            since = refused_sent_at - 1.0
            accepted = sum(1 for t in self._accepted if since <= t <= refused_sent_at)
            self.rate = Rate(max(1, math.floor(accepted * MARGIN)), 1.0, "learned")
            self._learned_at = refused_sent_at
            return self.rate
        if refused_sent_at < self._learned_at + rate.window:
            return None  # sent before the last change took effect
        self.rate = Rate(max(1, rate.requests // 2), rate.window, "learned")
        self._learned_at = refused_sent_at
        return self.rate

    def accepted(self, sent_at: float) -> None:
        """A request sent at ``sent_at`` was answered without a 429 (kept for a second while
        the rate may still be learned)."""
        if self.rate is not None and self.rate.source != "learned":
            return
        self._accepted.append(sent_at)
        horizon = sent_at - 1.0
        while self._accepted and self._accepted[0] < horizon:
            self._accepted.popleft()

    def delay(self) -> float:
        """Seconds to wait before the next send (0.0 = now)."""
        rate = self.rate
        if rate is None:
            return 0.0
        now = self.clock()
        sent = self._sent
        if sent.maxlen is not None and sent.maxlen < rate.requests:
            sent = self._sent = deque(sent, maxlen=rate.requests)
        while sent and sent[0] <= now - rate.window:
            sent.popleft()
        if len(sent) < rate.requests:
            return 0.0
        return sent[-rate.requests] + rate.window - now

    def sent(self) -> None:
        """Record one send now (call it right before sending). Sends are recorded before any
        rate is known too, so the first burst counts once a rate arrives."""
        self._sent.append(self.clock())
