"""API keys, plans and per-key daily quotas (reset at 00:00 UTC of the simulated clock)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from bot.sim.scenario import PLANS, normalize_plan

BUILTIN_KEYS = {
    "sandbox-free": "Free",
    "sandbox-basic": "Basic",
    "sandbox-growth": "Growth",
    "sandbox-alpha": "Alpha",
}
#: Requests per UTC day; None = unlimited.
QUOTAS: dict[str, int | None] = {"Free": 5, "Basic": 250, "Growth": 2500, "Alpha": None}
#: Minimum plan per endpoint name.
REQUIRED_PLAN = {
    "summary": "Growth",
    "anomaly": "Growth",
    "options_leaderboard": "Alpha",
    "zero_dte_leaderboard": "Alpha",
    "strike_flow": "Alpha",
    "cumulative": "Alpha",
}


def plan_rank(plan: str) -> int:
    """Free=0 < Basic=1 < Growth=2 < Alpha=3."""
    return PLANS.index(plan)


def next_utc_midnight(now: datetime) -> datetime:
    """The next 00:00 UTC strictly after ``now`` (aware UTC)."""
    d = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime.combine(d, time(0), UTC)


@dataclass(frozen=True)
class QuotaResult:
    """Outcome of charging one request: ``allowed``; ``limit``/``remaining`` (None = unlimited);
    ``reset`` = next 00:00 UTC (simulated)."""

    allowed: bool
    limit: int | None
    remaining: int | None
    reset: datetime


class KeyStore:
    """Key -> plan mapping plus thread-safe daily counters keyed by (key, simulated UTC date)."""

    def __init__(self, extra: dict[str, str] | None = None) -> None:
        self._plans = dict(BUILTIN_KEYS)
        for k, p in (extra or {}).items():
            self._plans[k] = normalize_plan(p)
        self._lock = threading.Lock()
        self._used: dict[tuple[str, date], int] = {}

    @property
    def keys(self) -> dict[str, str]:
        """Copy of the accepted key -> plan mapping."""
        return dict(self._plans)

    def plan(self, key: str | None) -> str | None:
        """Plan of ``key`` or None when missing/unknown."""
        return self._plans.get(key) if key else None

    def status(self, key: str, now: datetime) -> QuotaResult:
        """Quota state without charging."""
        limit = QUOTAS[self._plans[key]]
        with self._lock:
            used = self._used.get((key, now.astimezone(UTC).date()), 0)
        rem = None if limit is None else max(0, limit - used)
        return QuotaResult(limit is None or used < limit, limit, rem, next_utc_midnight(now))

    def spend(self, key: str, now: datetime, leave: int = 0) -> None:
        """Use up ``key``'s quota for the simulated UTC day of ``now``, leaving ``leave``
        requests (tests: a spent quota without sending hundreds of requests)."""
        limit = QUOTAS[self._plans[key]]
        if limit is None:
            raise ValueError(f"the {self._plans[key]} plan has no daily quota")
        with self._lock:
            self._used[(key, now.astimezone(UTC).date())] = max(limit - leave, 0)

    def charge(self, key: str, now: datetime) -> QuotaResult:
        """Count one request for ``key`` on the simulated UTC day of ``now`` if quota is left."""
        limit = QUOTAS[self._plans[key]]
        day = now.astimezone(UTC).date()
        with self._lock:
            used = self._used.get((key, day), 0)
            if limit is not None and used >= limit:
                return QuotaResult(False, limit, 0, next_utc_midnight(now))
            self._used[(key, day)] = used + 1
            rem = None if limit is None else limit - used - 1
        return QuotaResult(True, limit, rem, next_utc_midnight(now))
