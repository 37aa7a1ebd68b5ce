"""Cadence: polls learn each endpoint's cache phase from response stamps and land just after
the refresh; a server that does not cache is polled at the fallback cadence; the quota spaces
polls over what is left of the session."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime

import pytest

from bot.api.models import FlowAnomaly, FlowSummary
from bot.cadence import Cadence, Phase, QuotaPace, stamp_of

OFFSET = 5_000.0  # server clock minus ours: the planner must not assume it is zero
LATENCY = 0.04


def cached(phase: float, period: float = 15.0):
    """A server caching ``period`` s on ``phase``: the stamp a request at our ``t`` gets."""
    return lambda t: math.floor((t + OFFSET - phase) / period) * period + phase


def run(cadence: Cadence, servers: dict[str, object], polls: int, start: float = 100.0):
    """Poll ``polls`` times where the cadence says; returns [(poll time, why)]."""
    t, out = start, []
    for _ in range(polls):
        for key, stamp in servers.items():
            cadence.observe(key, t, t + LATENCY, stamp(t + LATENCY / 2))  # type: ignore[operator]
        when, why = cadence.next_poll(t + LATENCY, t)
        out.append((when, why))
        t = when
    return out


def lag(t: float, phase: float, period: float = 15.0) -> float:
    """How long after the server's last refresh our time ``t`` is."""
    return (t + OFFSET - phase) % period


@pytest.mark.parametrize("phase", [0.0, 3.7, 11.2, 14.9], ids=lambda p: f"phase {p}")
def test_learns_the_phase_then_polls_just_after_each_refresh(phase: float) -> None:
    """After a few learning polls every poll lands within a second after the refresh, one poll
    per period."""
    cadence = Cadence(period=15.0, fallback=15.0)
    polls = run(cadence, {"SPY": cached(phase)}, 30)
    settled = polls[-8:]
    assert all(why == "just after the cache refresh" for _, why in settled)
    assert all(lag(t, phase) < 1.0 for t, _ in settled)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(settled)]
    assert all(abs(g - 15.0) < 0.5 for g in gaps)


def test_server_without_cache_is_polled_at_the_fallback() -> None:
    """Every response is new (stamp = the server's now): the configured cadence is kept."""
    cadence = Cadence(period=15.0, fallback=15.0)
    polls = run(cadence, {"SPY": lambda t: t + OFFSET}, 12)
    assert polls[-1][1] == "server does not cache"
    assert polls[-1][0] - polls[-2][0] == pytest.approx(15.0)


def test_symbols_on_different_phases_are_each_caught() -> None:
    """Two symbols refreshing 7 s apart: polls land just after each of them."""
    cadence = Cadence(period=15.0, fallback=15.0)
    polls = run(cadence, {"SPY": cached(2.0), "QQQ": cached(9.0)}, 40)
    settled = [t for t, _ in polls[-10:]]
    assert any(lag(t, 2.0) < 1.0 for t in settled)
    assert any(lag(t, 9.0) < 1.0 for t in settled)
    assert all(lag(t, 2.0) < 1.0 or lag(t, 9.0) < 1.0 for t in settled)


def test_each_poll_is_for_the_symbols_whose_cache_just_refreshed() -> None:
    """Once the phases are learnt (bisection polls come first), the poll after SPY's refresh
    is due for SPY only, the one after QQQ's for QQQ only; before anything is known every
    symbol is due."""
    cadence = Cadence(period=15.0, fallback=15.0)
    assert cadence.due is None
    servers = {"SPY": cached(2.0), "QQQ": cached(9.0)}
    t = 100.0
    for _ in range(40):
        for key, stamp in servers.items():
            cadence.observe(key, t, t + LATENCY, stamp(t + LATENCY / 2))  # type: ignore[operator]
        t, why = cadence.next_poll(t + LATENCY, t)
        if why.startswith("just after") and cadence.due is not None and len(cadence.due) == 1:
            (key,) = cadence.due
            assert lag(t, 2.0 if key == "SPY" else 9.0) < 1.0
    assert cadence.due in ({"SPY"}, {"QQQ"})


def test_a_poll_that_landed_just_before_the_refresh_is_followed_at_once() -> None:
    """The phase is known to 0.2 s; a poll lands 0.05 s before the refresh (old body) and its
    tick ends 0.6 s later: the next poll is right away, not a whole cache period later. When
    the quota spaces polls, the next refresh is aimed at instead."""
    phase = Phase(15.0)
    phase.observe(104.9, 104.95, 90.0)
    phase.observe(105.05, 105.1, 105.0)
    assert phase.width <= 0.25
    phase.observe(119.95, 120.0, 105.0)  # just before the 120 s refresh: the old body
    assert phase.next_poll(120.6, 0.3, 0.25) == pytest.approx(120.6)
    assert phase.next_poll(120.6, 0.3, 0.25, catch_up=False) == pytest.approx(135.4, abs=0.2)


def test_uncached_server_makes_every_symbol_due() -> None:
    cadence = Cadence(period=15.0, fallback=15.0)
    polls = run(cadence, {"SPY": lambda t: t, "QQQ": lambda t: t}, 5)
    assert polls and cadence.due is None


def test_refreshes_closer_than_min_gap_share_one_poll() -> None:
    """Phases 0.2 s apart are one poll per period, after both."""
    cadence = Cadence(period=15.0, fallback=15.0, min_gap=1.0)
    polls = run(cadence, {"SPY": cached(4.0), "QQQ": cached(4.2)}, 30)
    settled = [t for t, _ in polls[-6:]]
    gaps = [b - a for a, b in itertools.pairwise(settled)]
    assert all(abs(g - 15.0) < 0.5 for g in gaps)
    assert all(0.2 <= lag(t, 4.0) < 1.2 for t in settled)


def test_quota_spaces_polls_to_the_next_refresh_after_the_gap() -> None:
    """A 40 s quota spacing on a 15 s cache: polls 45 s apart, still just after a refresh."""
    cadence = Cadence(period=15.0, fallback=15.0)
    run(cadence, {"SPY": cached(6.0)}, 20)
    last = 1_000.0
    when, why = cadence.next_poll(last, last, pace=40.0)
    assert when - last >= 40.0
    assert lag(when, 6.0) < 1.0
    assert "quota" in why


@pytest.mark.parametrize(
    ("remaining", "now", "per_poll", "expected"),
    [
        (None, 0.0, 32, 0.0),  # Alpha: unlimited
        (1000, 0.0, 10, 10.0 * 900 / 900),  # 900 usable over 900 s at 10 per poll: every 10 s
        (5, 0.0, 10, math.inf),  # not even one poll left (after the reserve)
    ],
    ids=["unlimited", "spread over the session", "spent"],
)
def test_quota_pace(remaining: int | None, now: float, per_poll: int, expected: float) -> None:
    """What is left of the quota (less a 10% reserve) spread over what is left of the session."""
    assert QuotaPace(remaining, session_end=900.0).min_gap(now, per_poll) == expected


def test_a_clock_step_restarts_learning() -> None:
    """Observations that contradict the known interval replace it instead of wedging it."""
    phase = Phase(15.0)
    phase.observe(0.0, 0.1, OFFSET)
    phase.observe(100.0, 100.1, OFFSET + 7_000.0)  # the server clock jumped
    assert phase.lo <= phase.hi


def test_stamp_of_reads_the_documented_fields() -> None:
    """as_of (summary) and timestamp (anomaly) are the build time of the body."""
    at = datetime(2026, 6, 5, 14, 0, 15, tzinfo=UTC)
    summary = FlowSummary.model_validate(
        {"symbol": "SPY", "flow_direction": "neutral", "as_of": at.isoformat()}
    )
    assert stamp_of(summary) == at
    anomaly = FlowAnomaly.model_construct(timestamp=at)
    assert stamp_of(anomaly) == at
    assert stamp_of(object()) is None
