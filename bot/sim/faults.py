"""Fault injection rules: latency, seeded 5xx rates, outage windows, malformed bodies.

A rule applies to one endpoint name (or ``"*"``), optionally one symbol, optionally inside a
simulated-time window ``[start, end)`` (aware UTC). Rules come from the scenario's
``[[faults]]`` tables, ``Sandbox(faults=...)`` or ``sandbox.faults.add(...)`` at runtime.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import date, datetime
from typing import Any

from bot.sim.nytime import parse_ny_time

#: Endpoint names used by rules, the request log and the cache.
ENDPOINTS = (
    "summary",
    "anomaly",
    "options_leaderboard",
    "zero_dte_leaderboard",
    "strike_flow",
    "cumulative",
)
KINDS = ("outage", "error_rate", "latency", "malformed")
MALFORMED_MODES = ("truncated", "missing_field", "unknown_label")


@dataclass
class FaultRule:
    """One fault.

    kind: ``outage`` (always ``status`` with body ``{"error":"upstream_unavailable"}``),
    ``error_rate`` (that body with probability ``rate``, a fraction, from a seeded RNG),
    ``latency`` (sleep ``latency_ms`` + uniform(0, ``jitter_ms``) real milliseconds),
    ``malformed`` (200 with a broken body: ``mode`` truncated / missing_field / unknown_label;
    ``field`` names the dropped field, ``label`` the unknown label, default ``"turbulent"``).
    """

    kind: str
    endpoint: str = "*"
    symbol: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    status: int = 502
    rate: float = 1.0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    mode: str = "truncated"
    field: str | None = None
    label: str = "turbulent"
    id: int = 0
    _rng: random.Random = dc_field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if self.endpoint != "*" and self.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {self.endpoint!r}; expected one of {ENDPOINTS}")
        if self.kind == "malformed" and self.mode not in MALFORMED_MODES:
            raise ValueError(f"unknown malformed mode {self.mode!r}")
        if self.symbol:
            self.symbol = self.symbol.strip().upper()

    def matches(self, endpoint: str, symbol: str | None, now: datetime) -> bool:
        """True when this rule covers ``endpoint``/``symbol`` at simulated time ``now``."""
        if self.endpoint not in ("*", endpoint):
            return False
        if self.symbol is not None and self.symbol != symbol:
            return False
        if self.start is not None and now < self.start:
            return False
        return not (self.end is not None and now >= self.end)


def rule_from_dict(d: Mapping[str, Any], session_date: date) -> FaultRule:
    """Build a rule from a scenario/CLI mapping; ``start``/``end`` are New York times
    ("HH:MM[:SS]") on ``session_date`` or full ISO-8601 datetimes."""
    fields = dict(d)
    for k in ("start", "end"):
        if fields.get(k) is not None:
            fields[k] = parse_ny_time(str(fields[k]), session_date)
    fields.pop("id", None)
    return FaultRule(**fields)


@dataclass(frozen=True)
class FaultDecision:
    """What the faults say about one request: real-time delay in seconds, an optional
    forced 5xx status, an optional malformed-body rule."""

    delay_s: float = 0.0
    error_status: int | None = None
    malformed: FaultRule | None = None


class FaultSet:
    """Thread-safe, mutable set of fault rules, seeded so error rates and jitter repeat."""

    def __init__(self, rules: list[FaultRule] | None = None, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._seed = seed
        for r in rules or []:
            self.add(r)

    def add(self, rule: FaultRule | None = None, **kwargs: Any) -> int:
        """Add a rule (or build one from kwargs, times as aware UTC datetimes); returns its id."""
        if rule is None:
            rule = FaultRule(**kwargs)
        with self._lock:
            rule.id = next(self._ids)
            rule._rng = random.Random(self._seed * 1_000_003 + rule.id)
            self._rules.append(rule)
            return rule.id

    def remove(self, rule_id: int) -> bool:
        """Remove the rule with ``rule_id``; True if it existed."""
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules = []

    def rules(self) -> list[FaultRule]:
        """Snapshot of the current rules."""
        with self._lock:
            return list(self._rules)

    def decide(self, endpoint: str, symbol: str | None, now: datetime) -> FaultDecision:
        """Combine every matching rule for one request (draws from the seeded RNGs)."""
        with self._lock:
            if not self._rules:
                return FaultDecision()
            delay = 0.0
            status: int | None = None
            malformed: FaultRule | None = None
            for r in self._rules:
                if not r.matches(endpoint, symbol, now):
                    continue
                if r.kind == "latency":
                    delay += (r.latency_ms + r._rng.uniform(0, r.jitter_ms)) / 1000.0
                elif r.kind == "outage":
                    status = status or r.status
                elif r.kind == "error_rate":
                    if r._rng.random() < r.rate:
                        status = status or r.status
                elif r.kind == "malformed":
                    malformed = malformed or r
            return FaultDecision(delay, status, malformed)
