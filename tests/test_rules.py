"""Table-driven tests of the rules: pure functions of (previous, current, config) → events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.api.models import FlowAnomaly, FlowSummary, OptionsLeaderboard, ZeroDteLeaderboard
from bot.rules import RULES, DetectContext
from bot.rules.candidate import CandidateConfig
from bot.rules.regime_flip import RegimeFlipConfig
from bot.rules.top_n import TopNConfig
from bot.snapshot import MarketSnapshot

NOW = datetime(2026, 6, 5, 15, 0, tzinfo=UTC)
CTX = DetectContext(now=NOW, watchlist=("SPY", "NVDA"))
# Copies of the API page's documented bodies (shared/api/examples), kept with the tests.
EXAMPLES = Path(__file__).resolve().parent / "golden" / "render"


def summary(label: str | None, symbol: str = "SPY", **extra: object) -> FlowSummary:
    return FlowSummary.model_validate({"symbol": symbol, "flow_direction": label, **extra})


def anomaly(
    decision: str, score: float | None, bias: str | None = "bullish", **extra
) -> FlowAnomaly:
    body: dict = {
        "strategy": "flow_anomaly",
        "symbol": "NVDA",
        "decision": decision,
        "score": score,
    }
    if bias:
        body["metrics"] = {"bias": bias}
    return FlowAnomaly.model_validate({**body, **extra})


def kinds(events) -> list[tuple[str, str]]:
    return [(e.kind, e.symbol) for e in events]


# -- regime_flip ------------------------------------------------------------------------------

FLIP_CASES = [
    # (id, previous label or None, current label, expected kinds)
    ("enters flip", "amplifying", "regime_flip", [("regime_flip", "SPY")]),
    ("first look already a flip", None, "regime_flip", [("regime_flip", "SPY")]),
    ("stays flipped: no repeat", "regime_flip", "regime_flip", []),
    ("leaves flip: follow-up", "regime_flip", "dampening", [("regime_flip_ended", "SPY")]),
    ("unknown label is no flip", "neutral", "turbulent", []),
    ("null label is no flip", "neutral", None, []),
    ("unknown label then flip", "turbulent", "regime_flip", [("regime_flip", "SPY")]),
    ("quiet to quiet", "no_flow", "neutral", []),
]


@pytest.mark.parametrize(
    ("prev", "curr", "expected"), [c[1:] for c in FLIP_CASES], ids=[c[0] for c in FLIP_CASES]
)
def test_regime_flip_transitions(prev, curr, expected):
    """regime_flip fires on entering the label (first look included) and follows up on leaving."""
    before = MarketSnapshot(summaries={"SPY": summary(prev)} if prev else {})
    after = MarketSnapshot(summaries={"SPY": summary(curr)})
    assert kinds(RULES["regime_flip"].detect(before, after, RegimeFlipConfig(), CTX)) == expected


def test_regime_flip_follow_up_threads_under_the_alert_and_can_be_off():
    """The follow-up names the flip alert as its thread parent; follow_up=false drops it."""
    before = MarketSnapshot(summaries={"SPY": summary("regime_flip")})
    after = MarketSnapshot(summaries={"SPY": summary("amplifying")})
    (event,) = RULES["regime_flip"].detect(before, after, RegimeFlipConfig(), CTX)
    assert event.follow_up and event.thread_parent == "regime_flip:-:SPY"
    off = RegimeFlipConfig(follow_up=False)
    assert RULES["regime_flip"].detect(before, after, off, CTX) == []


def test_regime_flip_from_zero_baseline_example_carries_null_shift():
    """The documented no-baseline flip (null shift, 7-digit fraction) becomes an alert."""
    body = json.loads((EXAMPLES / "flow-summary.regime_flip_no_baseline.json").read_text())
    flip = FlowSummary.model_validate(body)
    (event,) = RULES["regime_flip"].detect(
        MarketSnapshot(), MarketSnapshot(summaries={"IWM": flip}), RegimeFlipConfig(), CTX
    )
    assert event.context["summary"].flow_gex_pct_shift is None
    assert event.occurred_at == flip.as_of


# -- candidate --------------------------------------------------------------------------------

CANDIDATE_CASES = [
    (
        "becomes candidate",
        anomaly("neutral", 55),
        anomaly("candidate", 78),
        {},
        ["candidate:bullish"],
    ),
    ("first look is a candidate", None, anomaly("candidate", 78), {}, ["candidate:bullish"]),
    ("stays candidate", anomaly("candidate", 75), anomaly("candidate", 80), {}, []),
    ("below min_score", None, anomaly("candidate", 72), {"min_score": 75}, []),
    (
        "switch bullish→bearish",
        anomaly("candidate", 75),
        anomaly("candidate", 74, "bearish"),
        {},
        ["candidate:bearish"],
    ),
    (
        "confidence required and missing",
        None,
        anomaly("candidate", 80),
        {"min_confidence": 0.5},
        [],
    ),
    (
        "confidence met",
        None,
        anomaly("candidate", 80, confidence=0.8),
        {"min_confidence": 0.5},
        ["candidate:bullish"],
    ),
    (
        "data quality too low",
        None,
        anomaly("candidate", 80, data_quality={"score": 40}),
        {"min_data_quality": 60},
        [],
    ),
    ("null score", None, anomaly("candidate", None), {}, []),
    ("unknown decision", None, anomaly("watch", 99), {}, []),
    (
        "bias from regime when no metrics",
        None,
        anomaly("candidate", 80, None, regime="bearish_flow_imbalance"),
        {},
        ["candidate:bearish"],
    ),
    (
        "rises past threshold",
        anomaly("candidate", 65),
        anomaly("candidate", 71),
        {},
        ["candidate:bullish"],
    ),
]


@pytest.mark.parametrize(
    ("prev", "curr", "cfg", "states"),
    [c[1:] for c in CANDIDATE_CASES],
    ids=[c[0] for c in CANDIDATE_CASES],
)
def test_candidate_transitions(prev, curr, cfg, states):
    """candidate fires when a qualifying candidate appears or switches direction."""
    before = MarketSnapshot(anomalies={"NVDA": prev} if prev else {})
    after = MarketSnapshot(anomalies={"NVDA": curr})
    events = RULES["candidate"].detect(before, after, CandidateConfig(**cfg), CTX)
    assert [e.state for e in events] == states


def test_candidate_minimal_payload_and_documented_example_parse():
    """A payload of only strategy/symbol/decision/score parses; the example gives its structure."""
    minimal = FlowAnomaly.model_validate(
        {"strategy": "flow_anomaly", "symbol": "spy", "decision": "candidate", "score": 72}
    )
    assert minimal.symbol == "SPY" and minimal.top_structure is None and minimal.why == []
    full = FlowAnomaly.model_validate_json((EXAMPLES / "flow-anomaly.SPY.json").read_text())
    assert full.top_structure is not None and full.top_structure.credit == pytest.approx(0.70)


# -- top_n ------------------------------------------------------------------------------------


def board(buyers: list[str], sellers: list[str] = (), at: str = "2026-06-05T15:00:00Z"):
    def rows(symbols, sign):
        return [{"symbol": s, "netNotional": sign * (10 - i) * 1e6} for i, s in enumerate(symbols)]

    return OptionsLeaderboard.model_validate(
        {
            "generatedUtc": at,
            "n": 5,
            "windowMinutes": 240,
            "buyers": rows(buyers, 1),
            "sellers": rows(sellers, -1),
        }
    )


def zboard(symbols: list[str], metric: str = "heat") -> ZeroDteLeaderboard:
    return ZeroDteLeaderboard.model_validate(
        {
            "metric": metric,
            "entries": [
                {"rank": i + 1, "symbol": s, "value": 10 - i} for i, s in enumerate(symbols)
            ],
        }
    )


TOPN_CASES = [
    ("first board is the baseline", None, ["AAA", "BBB"], {}, []),
    ("same board again", ["AAA", "BBB"], ["AAA", "BBB"], {}, []),
    ("new entry", ["AAA", "BBB"], ["AAA", "BBB", "CCC"], {}, [("leaderboard_entry", "CCC")]),
    ("new leader from inside", ["AAA", "BBB"], ["BBB", "AAA"], {}, [("leaderboard_lead", "BBB")]),
    (
        "straight to the lead from outside: one alert",
        ["AAA", "BBB"],
        ["CCC", "AAA"],
        {},
        [("leaderboard_lead", "CCC")],
    ),
    ("exit off by default", ["AAA", "BBB", "CCC"], ["AAA", "BBB"], {}, []),
    (
        "exit when asked",
        ["AAA", "BBB", "CCC"],
        ["AAA", "BBB"],
        {"alert_on_exit": True},
        [("leaderboard_exit", "CCC")],
    ),
    (
        "rank 6 is outside the top 5",
        ["A", "B", "C", "D", "E"],
        ["A", "B", "C", "D", "E", "F"],
        {},
        [],
    ),
    (
        "watchlist only",
        ["AAA"],
        ["AAA", "NVDA", "CCC"],
        {"watchlist_only": True},
        [("leaderboard_entry", "NVDA")],
    ),
]


@pytest.mark.parametrize(
    ("prev", "curr", "cfg", "expected"), [c[1:] for c in TOPN_CASES], ids=[c[0] for c in TOPN_CASES]
)
def test_top_n_options_board(prev, curr, cfg, expected):
    """top_n alerts entries and new leaders; the first board seen is a silent baseline."""
    before = MarketSnapshot(options_board=board(prev) if prev is not None else None)
    after = MarketSnapshot(options_board=board(curr))
    config = TopNConfig(zero_dte_metrics=[], **cfg)
    events = RULES["top_n"].detect(before, after, config, CTX)
    assert kinds(e for e in events if e.board == "options:buyers") == expected


def test_top_n_watches_each_zero_dte_metric_and_sellers_separately():
    """A 0DTE lead change and a sellers entry are alerted on their own boards."""
    before = MarketSnapshot(
        options_board=board(["A"], ["X"]), zero_dte={"heat": zboard(["SPY", "QQQ"])}
    )
    after = MarketSnapshot(
        options_board=board(["A"], ["X", "Y"]), zero_dte={"heat": zboard(["QQQ", "SPY"])}
    )
    events = RULES["top_n"].detect(before, after, TopNConfig(), CTX)
    assert sorted((e.board, e.kind, e.symbol) for e in events) == [
        ("options:sellers", "leaderboard_entry", "Y"),
        ("zero_dte:heat", "leaderboard_lead", "QQQ"),
    ]
    lead = next(e for e in events if e.kind == "leaderboard_lead")
    assert lead.context["previous_leader"] == "SPY" and lead.context["previous_rank"] == 2


def test_top_n_unknown_metric_is_a_config_error():
    """A metric the API does not have is rejected with the list of known metrics."""
    with pytest.raises(ValueError, match="known metrics: heat"):
        TopNConfig(zero_dte_metrics=["vibes"])
