"""Table-driven tests of the rules: pure functions of (previous, current, config) → events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.api.models import FlowAnomaly, FlowSummary, OptionsLeaderboard, ZeroDteLeaderboard
from bot.rules import RULES, DetectContext
from bot.rules.candidate import CandidateConfig
from bot.rules.regime_flip import RegimeFlipConfig
from bot.rules.top_n import TopNConfig, rows_needed
from bot.snapshot import MarketSnapshot
from tests.support.rules import Player

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


def detect(rule: str, before: MarketSnapshot, after: MarketSnapshot, cfg, ctx=CTX):
    """One tick without memory (the rule derives it from ``before``): the events."""
    return RULES[rule].detect(before, after, cfg, ctx).events


def minutes(n: float) -> datetime:
    return NOW + timedelta(minutes=n)


# -- regime_flip ------------------------------------------------------------------------------

FLIP_CASES = [
    # (id, previous label or None, current label, expected kinds)
    ("enters flip", "amplifying", "regime_flip", [("regime_flip", "SPY")]),
    ("first look already a flip", None, "regime_flip", [("regime_flip", "SPY")]),
    ("stays flipped: no repeat", "regime_flip", "regime_flip", []),
    ("leaves flip: one poll is not yet an end", "regime_flip", "dampening", []),
    ("unknown label is no flip", "neutral", "turbulent", []),
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
    assert kinds(detect("regime_flip", before, after, RegimeFlipConfig())) == expected


def test_regime_flip_follow_up_threads_under_the_alert_and_can_be_off():
    """The ended reply names the flip alert as its thread parent; follow_up=false drops it."""
    before = MarketSnapshot(summaries={"SPY": summary("regime_flip")})
    after = MarketSnapshot(summaries={"SPY": summary("amplifying")})
    (event,) = detect("regime_flip", before, after, RegimeFlipConfig(min_hold_polls=1))
    assert event.follow_up and event.thread_parent == "regime_flip:-:SPY"
    off = RegimeFlipConfig(follow_up=False, min_hold_polls=1)
    assert detect("regime_flip", before, after, off) == []


def test_regime_flip_from_zero_baseline_example_carries_null_shift():
    """The documented no-baseline flip (null shift, 7-digit fraction) becomes an alert."""
    body = json.loads((EXAMPLES / "flow-summary.regime_flip_no_baseline.json").read_text())
    flip = FlowSummary.model_validate(body)
    (event,) = detect(
        "regime_flip", MarketSnapshot(), MarketSnapshot(summaries={"IWM": flip}), RegimeFlipConfig()
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
    events = detect("candidate", before, after, CandidateConfig(**cfg))
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
    events = detect("top_n", before, after, config)
    assert kinds(e for e in events if e.board == "options:buyers") == expected


def test_top_n_watches_each_zero_dte_metric_and_sellers_separately():
    """A 0DTE lead change and a sellers entry are alerted on their own boards."""
    before = MarketSnapshot(
        options_board=board(["A"], ["X"]), zero_dte={"heat": zboard(["SPY", "QQQ"])}
    )
    after = MarketSnapshot(
        options_board=board(["A"], ["X", "Y"]), zero_dte={"heat": zboard(["QQQ", "SPY"])}
    )
    events = detect("top_n", before, after, TopNConfig())
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


# -- noise control: sequences through rule memory and the policy --------------------------------

STEP = timedelta(seconds=30)


def ranked_board(order: list[str], sizes: dict[str, float] | None = None) -> OptionsLeaderboard:
    """Buyers in ``order`` (net notional $50M down by $1M a rank unless ``sizes`` says)."""
    sizes = sizes or {}
    rows = [{"symbol": s, "netNotional": sizes.get(s, (50 - i) * 1e6)} for i, s in enumerate(order)]
    return OptionsLeaderboard.model_validate({"buyers": rows, "sellers": []})


BASE = ["A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9", "A10"]
OPTIONS_ONLY = TopNConfig(zero_dte_metrics=[])


def with_at(symbol: str, rank: int) -> list[str]:
    order = [s for s in BASE if s != symbol]
    return [*order[: rank - 1], symbol, *order[rank - 1 :]]


def play_boards(boards: list[OptionsLeaderboard], cfg: TopNConfig = OPTIONS_ONLY) -> list:
    player = Player("top_n", cfg, watchlist=())
    for i, b in enumerate(boards):
        player.tick(NOW + i * STEP, [("-", b)])
    return [(e.kind, e.symbol) for e in player.alerts if e.board == "options:buyers"]


TOPN_SEQUENCES = [
    # (id, boards in order, expected alerts on the buyers board)
    (
        "#5/#6 oscillation every poll alerts once",
        [ranked_board(BASE)] + [ranked_board(with_at("X", 5 + i % 2)) for i in range(40)],
        [("leaderboard_entry", "X")],
    ),
    (
        "a real entry from outside N+margin alerts on the first board",
        [ranked_board(BASE), ranked_board(with_at("X", 3))],
        [("leaderboard_entry", "X")],
    ),
    (
        "#5 → #8 (inside the margin) → #5: one alert",
        [ranked_board(BASE)] + [ranked_board(with_at("X", r)) for r in (5, 8, 5, 7, 4)],
        [("leaderboard_entry", "X")],
    ),
    (
        "small rows never alert, and growing inside the top N is no entry",
        [ranked_board(BASE)] + [ranked_board(with_at("X", 3), {"X": x}) for x in (2e5, 9e5, 4e7)],
        [],
    ),
    (
        "two names trading #1 by a hair every poll: no lead alert",
        [ranked_board(BASE, {"A1": 5e7, "A2": 4.9e7})]
        + [
            ranked_board(["A2", "A1", *BASE[2:]] if i % 2 == 0 else BASE, {"A1": 5e7, "A2": 5.1e7})
            for i in range(40)
        ],
        [],
    ),
    (
        "two names clearly swapping the lead every poll: once per name per cooldown",
        [ranked_board(BASE)]
        + [
            ranked_board(["A2", "A1", *BASE[2:]], {"A2": 6e7, "A1": 5e7})
            if i % 2 == 0
            else ranked_board(BASE, {"A1": 6e7, "A2": 5e7})
            for i in range(100)  # 50 minutes
        ],
        # A2 takes it at 0:30, A1 at 1:00; again only once 30 minutes have passed
        [("leaderboard_lead", "A2"), ("leaderboard_lead", "A1")] * 2,
    ),
    (
        "a lead below the floor is not alerted",
        [
            ranked_board(BASE, {s: 5e5 for s in BASE}),
            ranked_board(["A2", "A1", *BASE[2:]], {**{s: 5e5 for s in BASE}, "A2": 9e5}),
        ],
        [],
    ),
    (
        "a clear lead above the floor is",
        [ranked_board(BASE), ranked_board(["A2", "A1", *BASE[2:]], {"A2": 6e7})],
        [("leaderboard_lead", "A2")],
    ),
]


@pytest.mark.parametrize(
    ("boards", "expected"), [c[1:] for c in TOPN_SEQUENCES], ids=[c[0] for c in TOPN_SEQUENCES]
)
def test_top_n_noise_control(boards, expected):
    """Hysteresis, the floor and the cooldown keep a board to the alerts that matter."""
    assert play_boards(boards) == expected


def test_top_n_left_beyond_margin_alerts_again_after_cooldown():
    """Falling beyond N + margin (#9 for top 5 + 3) re-arms the entry."""
    player = Player("top_n", OPTIONS_ONLY, watchlist=())
    player.tick(NOW, [("-", ranked_board(BASE))])
    for minute, rank in ((1, 4), (2, 9), (40, 4)):
        player.tick(minutes(minute), [("-", ranked_board(with_at("X", rank)))])
    assert [(e.kind, e.symbol) for e in player.alerts] == [("leaderboard_entry", "X")] * 2


def test_top_n_zero_dte_floor_per_metric():
    """A 0DTE entry below the metric's floor is silent; above it, alerted."""
    player = Player("top_n", TopNConfig(options_leaderboard=False, zero_dte_metrics=["heat"]))
    player.tick(NOW, [("heat", zboard(["A", "B", "C"]))])
    player.tick(NOW + STEP, [("heat", zboard(["A", "B", "SPY"]))])  # SPY heat 8 < 10
    board = ZeroDteLeaderboard.model_validate(
        {"metric": "heat", "entries": [{"rank": 1, "symbol": "QQQ", "value": 25.0}]}
    )
    player.tick(NOW + 2 * STEP, [("heat", board)])
    assert [(e.kind, e.symbol) for e in player.alerts] == [("leaderboard_lead", "QQQ")]


def test_rows_needed_covers_the_margin():
    """The engine asks for N + margin rows (capped at the API's maxima)."""
    assert rows_needed(TopNConfig(options_n=5, zero_dte_n=10, margin=3)) == (8, 13)
    assert rows_needed(TopNConfig(options_n=50, zero_dte_n=100, margin=3)) == (50, 100)


def play_anomalies(steps: list[tuple[float, FlowAnomaly]], cfg=None) -> list[str]:
    player = Player("candidate", cfg or CandidateConfig(cooldown_minutes=0))
    for minute, a in steps:
        player.tick(minutes(minute), [("NVDA", a)])
    return [e.state for e in player.alerts]


def decided(score: float, bias: str = "bullish", **extra) -> FlowAnomaly:
    """The server's bands: >= 70 candidate, >= 40 neutral."""
    return anomaly("candidate" if score >= 70 else "neutral", score, bias, **extra)


CANDIDATE_SEQUENCES = [
    (
        "score oscillating 69/70/71 every poll for an hour alerts once",
        [(i / 2, decided(69 + i % 3)) for i in range(120)],
        ["candidate:bullish"],
    ),
    (
        "out of candidate for rearm_minutes re-arms",
        [(0, decided(72)), (1, decided(68)), (70, decided(72))],
        ["candidate:bullish", "candidate:bullish"],
    ),
    (
        "back within rearm_minutes does not",
        [(0, decided(72)), (1, decided(68)), (50, decided(72))],
        ["candidate:bullish"],
    ),
    (
        "score below min_score - margin re-arms at once",
        [(0, decided(72)), (1, decided(59)), (2, decided(72))],
        ["candidate:bullish", "candidate:bullish"],
    ),
    (
        "direction switch alerts at once",
        [(0, decided(72)), (0.5, decided(73, "bearish")), (1, decided(74, "bullish"))],
        ["candidate:bullish", "candidate:bearish", "candidate:bullish"],
    ),
]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [c[1:] for c in CANDIDATE_SEQUENCES],
    ids=[c[0] for c in CANDIDATE_SEQUENCES],
)
def test_candidate_rearm(steps, expected):
    """A candidate alerts once until it re-arms; a direction switch is new."""
    assert play_anomalies(steps) == expected


HIGH = [{"code": "earnings_within_expiry", "severity": "high"}]
GUARDRAIL_CASES = [
    ("flag at hold severity holds", {"hold_risk_severity": "warning"}, HIGH, {}, []),
    (
        "flag below hold severity passes",
        {"hold_risk_severity": "critical"},
        [{"code": "wide_spreads", "severity": "low"}],
        {},
        ["candidate:bullish"],
    ),
    ("unrated flag counts as warning", {"hold_risk_severity": "warning"}, ["odd"], {}, []),
    ("guardrail off by default", {}, HIGH, {}, ["candidate:bullish"]),
    ("data quality under the floor holds", {"min_data_quality": 60}, [], {"score": 40}, []),
]


@pytest.mark.parametrize(
    ("cfg", "flags", "quality", "expected"),
    [c[1:] for c in GUARDRAIL_CASES],
    ids=[c[0] for c in GUARDRAIL_CASES],
)
def test_candidate_guardrails(cfg, flags, quality, expected):
    """Candidates with a serious risk flag or poor data quality are held."""
    a = decided(80, risk_flags=flags, data_quality=quality or None)
    assert play_anomalies([(0, a)], CandidateConfig(**cfg)) == expected


def test_candidate_held_by_a_flag_alerts_when_it_clears():
    """Held candidates stay armed: the alert comes once the flag is gone."""
    cfg = CandidateConfig(hold_risk_severity="warning")
    states = play_anomalies([(0, decided(80, risk_flags=HIGH)), (1, decided(80))], cfg)
    assert states == ["candidate:bullish"]


def test_candidate_alert_shows_flags_with_severity():
    """The rated flags reach the alert's anomaly model with their severity."""
    (event,) = Player("candidate", CandidateConfig()).tick(
        NOW, [("NVDA", decided(80, risk_flags=HIGH))]
    )
    (flag,) = event.context["anomaly"].risk_flags
    assert (flag.code, flag.severity, flag.level) == ("earnings_within_expiry", "high", "critical")


def flip_session(labels: list[tuple[float, str]], cfg=None) -> Player:
    player = Player("regime_flip", cfg or RegimeFlipConfig())
    for minute, label in labels:
        s = summary(label, as_of=minutes(minute).isoformat())
        player.tick(minutes(minute), [("SPY", s)])
    return player


def test_regime_flip_duration_is_from_first_observation_to_first_non_flip():
    """10:32 → 10:50 is reported as 18 min, once the new label held two polls."""
    labels = [(i / 2, "regime_flip") for i in range(36)] + [(18, "amplifying")]
    player = flip_session(labels)
    assert [e.kind for e in player.alerts] == ["regime_flip"]
    player.tick(minutes(18.5), [("SPY", summary("amplifying", as_of=minutes(18.5).isoformat()))])
    flip, ended = player.alerts
    assert ended.kind == "regime_flip_ended" and ended.thread_parent == flip.alert_key
    assert ended.context["flipped_at"] == NOW and ended.context["ended_at"] == minutes(18)
    assert ended.context["lasted"] == timedelta(minutes=18)


def test_regime_flip_one_poll_blip_is_not_an_end():
    """A single non-flip poll inside a flip sends no ended reply."""
    labels = [(0, "regime_flip"), (0.5, "amplifying"), (1, "regime_flip"), (1.5, "regime_flip")]
    assert [e.kind for e in flip_session(labels).alerts] == ["regime_flip"]


def test_regime_flip_again_within_cooldown_is_a_thread_reply():
    """Ended then flipped again 5 min later: a reply in the same thread, not a new post."""
    labels = [(0, "regime_flip"), (10, "neutral"), (10.5, "neutral"), (15, "regime_flip")]
    player = flip_session(labels)
    assert [e.kind for e in player.alerts] == [
        "regime_flip",
        "regime_flip_ended",
        "regime_flip_again",
    ]
    again = player.alerts[2]
    assert again.follow_up and again.thread_parent == "regime_flip:-:SPY"
    # ...and after the cooldown a flip is a new top-level alert
    player.tick(minutes(16), [("SPY", summary("neutral", as_of=minutes(16).isoformat()))])
    player.tick(minutes(17), [("SPY", summary("neutral", as_of=minutes(17).isoformat()))])
    player.tick(minutes(60), [("SPY", summary("regime_flip", as_of=minutes(60).isoformat()))])
    assert [e.kind for e in player.alerts][3:] == ["regime_flip_ended", "regime_flip"]
    assert not player.alerts[-1].follow_up


def test_regime_flip_memory_is_json_and_survives_a_restart():
    """Memory stored as JSON and read back keeps the flip's start time."""
    player = flip_session([(0, "regime_flip"), (5, "regime_flip")])
    restarted = Player("regime_flip", RegimeFlipConfig())
    restarted.memory = json.loads(json.dumps(player.memory))
    restarted.market, restarted.log = player.market, player.log  # the store keeps both
    for minute in (30, 30.5):
        restarted.tick(
            minutes(minute), [("SPY", summary("dampening", as_of=minutes(minute).isoformat()))]
        )
    (ended,) = restarted.alerts
    assert ended.context["flipped_at"] == NOW and ended.context["lasted"] == timedelta(minutes=30)
