"""API drift never becomes an alert: a body missing what a rule needs is skipped (the previous
snapshot stays), an invalid optional field is read as null and the rest of the body is used."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.api.models import FlowAnomaly, FlowSummary, OptionsLeaderboard, ZeroDteLeaderboard
from bot.rules.candidate import CandidateConfig
from bot.rules.regime_flip import RegimeFlipConfig
from bot.rules.top_n import TopNConfig
from tests.support.rules import Player, parse

T0 = datetime(2026, 6, 5, 15, 0, tzinfo=UTC)
EXAMPLES = Path(__file__).resolve().parent / "golden" / "render"


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text())


def options_board() -> dict[str, Any]:
    rows = [
        {"symbol": s, "netNotional": (9 - i) * 5e6, "netVolume": 1000}
        for i, s in enumerate(["SPY", "QQQ", "NVDA", "AMD", "TSLA", "IWM", "META", "AAPL"])
    ]
    return {
        "generatedUtc": "2026-06-05T15:00:00Z",
        "windowMinutes": 240,
        "buyers": rows,
        "sellers": [{**r, "netNotional": -r["netNotional"]} for r in reversed(rows)],
    }


def zero_dte_board() -> dict[str, Any]:
    names = ["SPY", "QQQ", "IWM", "NVDA", "TSLA", "AMD", "META", "AAPL"]
    entries = [{"rank": i + 1, "symbol": s, "value": 40.0 - i} for i, s in enumerate(names)]
    return {"metric": "heat", "as_of": "2026-06-05T15:00:00Z", "entries": entries}


def summary_flip() -> dict[str, Any]:
    return {**example("flow-summary.SPY.json"), "flow_direction": "regime_flip"}


def anomaly() -> dict[str, Any]:
    return example("flow-anomaly.SPY.json")


def drop(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


def rename(body: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    out = drop(body, old)
    out[new] = body[old]
    return out


def with_(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(body), **changes}


ALL = TopNConfig(zero_dte_metrics=["heat"], zero_dte_floor={"heat": 0}, min_net_notional=0)
SOURCES = {
    "options": (OptionsLeaderboard, "-", "top_n", ALL, options_board),
    "zero_dte": (ZeroDteLeaderboard, "heat", "top_n", ALL, zero_dte_board),
    "summary": (FlowSummary, "SPY", "regime_flip", RegimeFlipConfig(), summary_flip),
    "anomaly": (FlowAnomaly, "SPY", "candidate", CandidateConfig(), anomaly),
}

DRIFTED = [
    # (id, source, drifted body from the good one)
    ("buyers renamed", "options", lambda b: rename(b, "buyers", "topBuyers")),
    ("sellers renamed", "options", lambda b: rename(b, "sellers", "topSellers")),
    ("both sides renamed", "options", lambda b: rename(rename(b, "buyers", "b"), "sellers", "s")),
    ("buyers null", "options", lambda b: with_(b, buyers=None)),
    ("row lost netNotional", "options", lambda b: with_(b, buyers=[{"symbol": "ZZZ"}])),
    ("entries renamed", "zero_dte", lambda b: rename(b, "entries", "rows")),
    ("entries null", "zero_dte", lambda b: with_(b, entries=None)),
    ("entry without rank", "zero_dte", lambda b: with_(b, entries=[{"symbol": "ZZZ"}])),
    ("flow_direction null", "summary", lambda b: with_(b, flow_direction=None)),
    ("flow_direction missing", "summary", lambda b: drop(b, "flow_direction")),
    ("flow_direction renamed", "summary", lambda b: rename(b, "flow_direction", "direction")),
    ("decision missing", "anomaly", lambda b: drop(b, "decision")),
    ("decision null", "anomaly", lambda b: with_(b, decision=None)),
    ("shift n/a (optional)", "summary", lambda b: with_(b, flow_gex_pct_shift="n/a")),
    ("score text (optional)", "anomaly", lambda b: with_(b, score="high")),
    ("data_quality text (optional)", "anomaly", lambda b: with_(b, data_quality="ok")),
    ("windowMinutes text (optional)", "options", lambda b: with_(b, windowMinutes="all")),
]


@pytest.mark.parametrize(("source", "drift"), [c[1:] for c in DRIFTED], ids=[c[0] for c in DRIFTED])
def test_good_drifted_good_raises_no_alert(source, drift):
    """Through (good, drifted, good) the rule raises nothing after the first good body."""
    model, key, rule, cfg, good = SOURCES[source]
    player = Player(rule, cfg)
    first = player.tick(T0, [(key, parse(model, good()))])
    assert player.tick(T0 + timedelta(seconds=30), [(key, parse(model, drift(good())))]) == []
    assert player.tick(T0 + timedelta(seconds=60), [(key, parse(model, good()))]) == []
    # the first good body is the baseline for the boards; a flip / candidate alerts on it
    assert len(first) == (0 if rule == "top_n" else 1)


@pytest.mark.parametrize(
    ("source", "drift"),
    [c[1:] for c in DRIFTED if "optional" not in c[0]],
    ids=[c[0] for c in DRIFTED if "optional" not in c[0]],
)
def test_missing_required_field_is_malformed(source, drift):
    """A body without a field a rule depends on does not parse (the client's MalformedResponse)."""
    model, _, _, _, good = SOURCES[source]
    assert parse(model, good()) is not None
    assert parse(model, drift(good())) is None


def test_invalid_optional_field_is_null_with_a_warning_and_the_flip_is_used():
    """A flip whose optional shift is "n/a" is alerted at once; the field reads as null."""
    body = with_(summary_flip(), flow_gex_pct_shift="n/a")
    flip = parse(FlowSummary, body)
    assert isinstance(flip, FlowSummary)
    assert flip.flow_gex_pct_shift is None and flip.live_gex is not None
    assert flip.nulled_fields == (
        "flow_gex_pct_shift: Input should be a valid number, unable to parse string as a number",
    )
    player = Player("regime_flip", RegimeFlipConfig())
    quiet = parse(FlowSummary, example("flow-summary.SPY.json"))
    assert player.tick(T0, [("SPY", quiet)]) == []
    (event,) = player.tick(T0 + timedelta(seconds=30), [("SPY", flip)])
    assert event.kind == "regime_flip"


def test_invalid_optional_field_in_a_row_keeps_the_board():
    """An invalid optional value inside a leaderboard row nulls that value, not the board."""
    body = options_board()
    body["buyers"][2]["avgPremium"] = "n/a"
    board = parse(OptionsLeaderboard, body)
    assert isinstance(board, OptionsLeaderboard)
    assert board.buyers[2].avg_premium is None and len(board.buyers) == 8
    assert board.nulled_fields[0].startswith("buyers.2.avgPremium:")


def test_empty_sides_are_a_real_empty_board():
    """Present but empty lists are a valid (quiet) board, unlike missing keys."""
    board = parse(OptionsLeaderboard, with_(options_board(), buyers=[], sellers=[]))
    assert isinstance(board, OptionsLeaderboard) and board.buyers == []
