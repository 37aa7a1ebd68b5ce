"""Simulated market clock shared by the sandbox's HTTP handlers and tests.

All times are timezone-aware UTC ``datetime`` objects. The clock either runs at
``speed`` x real time (monotonic-based, so wall-clock jumps do not affect it) or is
frozen, in which case only ``set``/``advance`` move it.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


def _as_utc(dt: datetime) -> datetime:
    """Return ``dt`` as aware UTC; naive datetimes are taken to be UTC already."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


class SimClock:
    """Thread-safe simulated clock.

    ``SimClock(start, speed=1.0, frozen=False)``: ``start`` is the simulated UTC instant at
    construction; ``speed`` is simulated seconds per real second (``speed=300`` plays a
    390-minute session in 78 s). ``speed <= 0`` or ``frozen=True`` gives a frozen clock.
    """

    def __init__(self, start: datetime, speed: float = 1.0, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self._speed = float(speed)
        self._frozen = frozen or self._speed <= 0
        self._anchor_sim = _as_utc(start)
        self._anchor_real = time.monotonic()

    @property
    def speed(self) -> float:
        """Simulated seconds per real second (0 when constructed frozen)."""
        return self._speed

    @property
    def frozen(self) -> bool:
        """True when the clock only moves through ``set``/``advance``."""
        return self._frozen

    def _now_locked(self) -> datetime:
        if self._frozen:
            return self._anchor_sim
        elapsed = time.monotonic() - self._anchor_real
        return self._anchor_sim + timedelta(seconds=elapsed * self._speed)

    def now(self) -> datetime:
        """Current simulated time, aware UTC."""
        with self._lock:
            return self._now_locked()

    def set(self, dt: datetime) -> None:
        """Jump to ``dt`` (naive = UTC); a running clock keeps ticking from there."""
        with self._lock:
            self._anchor_sim = _as_utc(dt)
            self._anchor_real = time.monotonic()

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by ``delta`` (timedelta or simulated seconds); returns the new now."""
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=float(delta))
        with self._lock:
            self._anchor_sim = self._now_locked() + delta
            self._anchor_real = time.monotonic()
            return self._anchor_sim

    def freeze(self) -> None:
        """Stop the clock at the current simulated time."""
        with self._lock:
            self._anchor_sim = self._now_locked()
            self._anchor_real = time.monotonic()
            self._frozen = True

    def unfreeze(self, speed: float | None = None) -> None:
        """Let the clock run again (optionally at a new ``speed``) from the current time."""
        with self._lock:
            self._anchor_sim = self._now_locked()
            self._anchor_real = time.monotonic()
            if speed is not None:
                self._speed = float(speed)
            self._frozen = self._speed <= 0
