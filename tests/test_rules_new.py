"""Tables for the rules added for signal quality: gex_shift and flow_inflection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.api.models import CumulativeFlow, FlowSummary
from bot.rules.flow_inflection import FlowInflectionConfig
from bot.rules.gex_shift import GexShiftConfig
from tests.support.rules import Player, parse

T0 = datetime(2026, 6, 5, 14, 0, tzinfo=UTC)


def summary(shift: Any = "absent", label: str = "amplifying", live: float = 3e9) -> FlowSummary:
    body: dict[str, Any] = {"symbol": "SPY", "flow_direction": label, "live_gex": live}
    if shift != "absent":
        body["flow_gex_pct_shift"] = shift
    model = parse(FlowSummary, body)
    assert isinstance(model, FlowSummary)
    return model


def play_shifts(steps: list[FlowSummary], cfg: GexShiftConfig | None = None) -> list[str]:
    player = Player("gex_shift", cfg or GexShiftConfig(cooldown_minutes=0))
    for i, s in enumerate(steps):
        player.tick(T0 + i * timedelta(minutes=1), [("SPY", s)])
    return [e.state for e in player.alerts]


GEX_CASES = [
    ("under the threshold", [summary(0.1), summary(0.2)], []),
    ("crosses up", [summary(0.1), summary(0.3)], ["beyond:up"]),
    ("first look already beyond", [summary(-0.4, "dampening")], ["beyond:down"]),
    (
        "oscillating around 25% alerts once (margin 5%)",
        [summary(0.1)] + [summary(0.24 + 0.02 * (i % 2)) for i in range(20)],
        ["beyond:up"],
    ),
    (
        "re-arms under threshold - margin",
        [summary(0.3), summary(0.1), summary(0.3)],
        ["beyond:up"] * 2,
    ),
    ("up then down is two alerts", [summary(0.3), summary(-0.3)], ["beyond:up", "beyond:down"]),
    ("zero baseline (null, present) is its own case", [summary(None, "neutral")], ["no_baseline"]),
    ("absent shift is unknown, no alert", [summary(0.1), summary("absent")], []),
    ("invalid shift (nulled) is unknown, no alert", [summary(0.1), summary("n/a")], []),
    ("a flip is regime_flip's alert", [summary(-1.35, "regime_flip", -1e9)], []),
    ("null on a flip too", [summary(None, "regime_flip")], []),
]


@pytest.mark.parametrize(
    ("steps", "expected"), [c[1:] for c in GEX_CASES], ids=[c[0] for c in GEX_CASES]
)
def test_gex_shift(steps, expected):
    """gex_shift fires when |shift| crosses the threshold, and states the zero-baseline case."""
    assert play_shifts(steps) == expected


def test_gex_shift_include_flips_and_severity():
    """With include_flips a flip's shift alerts; 50% and the zero baseline are critical."""
    player = Player("gex_shift", GexShiftConfig(include_flips=True))
    (event,) = player.tick(T0, [("SPY", summary(-1.35, "regime_flip", -1e9))])
    assert event.state == "beyond:down" and event.severity == "critical"
    (event,) = Player("gex_shift", GexShiftConfig()).tick(T0, [("SPY", summary(0.3))])
    assert event.severity == "warning"


def cumulative(values: list[float], start: datetime = T0) -> CumulativeFlow:
    """Points whose running sum ends at each value in turn."""
    points, total = [], 0.0
    for i, value in enumerate(values):
        points.append(
            {
                "ts": (start + timedelta(minutes=i)).isoformat(),
                "netVolume": value - total,
                "cumulative": value,
            }
        )
        total = value
    return CumulativeFlow.model_validate({"symbol": "SPY", "minutes": 390, "points": points})


def play_flows(series: list[list[float]], cfg: FlowInflectionConfig | None = None) -> list[str]:
    player = Player("flow_inflection", cfg or FlowInflectionConfig(cooldown_minutes=0, drift_k=0))
    for i, values in enumerate(series):
        player.tick(T0 + i * timedelta(minutes=5), [("SPY", cumulative(values))])
    return [e.state for e in player.alerts]


INFLECTION_CASES = [
    ("buying then selling past zero", [[5e3, 3e4], [5e3, 3e4, -2e3]], ["inflection:bearish"]),
    ("never beyond the floor: no inflection", [[5e3, 1e4], [5e3, 1e4, -2e3]], []),
    ("selling then buying", [[-3e4], [-3e4, 1e3]], ["inflection:bullish"]),
    (
        "wobbling around zero after a turn: once until beyond the floor again",
        [[3e4], [3e4, -1e3], [3e4, -1e3, 1e3], [3e4, -1e3, 1e3, -1e3]],
        ["inflection:bearish"],
    ),
    (
        "beyond the floor again re-arms",
        [[3e4], [3e4, -3e4], [3e4, -3e4, 1e3]],
        ["inflection:bearish", "inflection:bullish"],
    ),
]


@pytest.mark.parametrize(
    ("series", "expected"), [c[1:] for c in INFLECTION_CASES], ids=[c[0] for c in INFLECTION_CASES]
)
def test_flow_inflection_sign_change(series, expected):
    """A sign change counts only after the cumulative was beyond the floor on the other side."""
    assert play_flows(series) == expected


def test_flow_inflection_drift_against_the_typical_minute():
    """A run far beyond k random-walk spreads (typical minute × √minutes) alerts once while
    it stays far."""
    cfg = FlowInflectionConfig(cooldown_minutes=0, drift_k=4, min_points=30, min_cumulative=1e9)
    calm = [float(100 * (i % 2)) for i in range(40)]  # typical minute 100 contracts
    trend = calm + [float(100 * i) for i in range(1, 41)]  # +4,000 = 40 typical, 4.5 spreads
    assert play_flows([calm, trend, [*trend, 4050.0]], cfg) == ["drift:bullish"]


def test_flow_inflection_steady_flow_never_drifts_with_the_defaults():
    """A whole session of steady one-sided buying at the typical minute (390 × 100 contracts)
    is 19.7 spreads: under the default drift_k of 20, so no alert."""
    cfg = FlowInflectionConfig(cooldown_minutes=0, min_cumulative=1e9)
    steady = [float(100 * i) for i in range(1, 391)]
    assert play_flows([steady[:200], steady], cfg) == []


def test_flow_inflection_needs_a_new_fetch():
    """The same cumulative object seen again (another source's tick) raises nothing."""
    player = Player("flow_inflection", FlowInflectionConfig(drift_k=0))
    flow = cumulative([3e4])
    player.tick(T0, [("SPY", flow)])
    turned = cumulative([3e4, -1e3])
    assert [e.state for e in player.tick(T0 + timedelta(minutes=5), [("SPY", turned)])] == [
        "inflection:bearish"
    ]
    assert player.tick(T0 + timedelta(minutes=6), []) == []
