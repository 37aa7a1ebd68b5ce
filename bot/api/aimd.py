"""How many requests may be in flight: slow start, then AIMD (additive increase,
multiplicative decrease) on throttling (HTTP 429) and on latency rising above its baseline.

Pure and clock-free: the caller passes each response's start time and latency (seconds, any
monotonic clock), so a table of cases drives it in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AimdLimit"]


@dataclass(slots=True)
class AimdLimit:
    """The concurrency limit of one API host.

    - ``minimum`` / ``maximum``: bounds of :attr:`limit` (requests in flight).
    - ``initial``: the limit before any response.
    - ``backoff``: factor applied on a 429 (0.5 halves the limit).
    - ``latency_backoff``: factor applied when a response took more than ``latency_tolerance``
      times the baseline (the fastest recent latency) and at least ``latency_floor`` seconds
      more than it: a queue is building at the server.
    - Until the first decrease the limit grows by 1 per success (slow start: doubles per round
      trip); after it, by ``1 / limit`` per success (one more request per round trip).
    - One decrease per round trip: a response to a request started before the last decrease
      was sent at the old limit and does not decrease again.
    """

    minimum: int = 1
    maximum: int = 64
    initial: int = 8
    backoff: float = 0.5
    latency_backoff: float = 0.8
    latency_tolerance: float = 2.0
    latency_floor: float = 0.05
    _limit: float = field(init=False)
    _slow_start: bool = field(init=False, default=True)
    _decreased_at: float = field(init=False, default=float("-inf"))
    _baseline: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.initial <= self.maximum:
            raise ValueError("need 1 <= minimum <= initial <= maximum")
        self._limit = float(self.initial)

    @property
    def limit(self) -> int:
        """Requests allowed in flight now (``minimum`` .. ``maximum``)."""
        return int(self._limit)

    def on_response(self, started: float, latency: float, *, throttled: bool = False) -> int:
        """Account one response: the request ``started`` at this time and took ``latency``
        seconds; ``throttled`` when the server answered 429. Returns the new :attr:`limit`."""
        finished = started + latency
        baseline = self._baseline
        if not throttled:
            # The baseline creeps up 1% per response, so a slower network is learnt again.
            self._baseline = latency if baseline is None else min(latency, baseline * 1.01)
        slow = (
            baseline is not None
            and latency > baseline * self.latency_tolerance
            and latency - baseline >= self.latency_floor
        )
        if throttled or slow:
            if started >= self._decreased_at:
                factor = self.backoff if throttled else self.latency_backoff
                self._limit = max(float(self.minimum), self._limit * factor)
                self._slow_start = False
                self._decreased_at = finished
        elif self._slow_start:
            self._limit = min(float(self.maximum), self._limit + 1)
        else:
            self._limit = min(float(self.maximum), self._limit + 1 / self._limit)
        return self.limit
