"""Scan, then drill: a 0DTE leaderboard alert shows its symbol's busiest strikes, fetched once
from the sandbox's strike-flow endpoint over 127.0.0.1; a refused or failed request sends the
alert without them and says why."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import stamina

from bot.api.client import FlashAlphaClient
from bot.api.models import StrikeFlow
from bot.app import build_bot
from bot.drill import Drill, drill_from, enrich, fetch_drills, wanted
from bot.events import Event
from bot.policy import Decision, Reason
from bot.settings import Secrets, load_settings
from bot.sim import Sandbox

EXAMPLE: dict[str, Any] = {  # /work/shared/api/examples/zero-dte-strike-flow.SPY.json
    "symbol": "SPY",
    "underlying_price": 590.42,
    "expiration": "2026-06-05",
    "bar_size": "1m",
    "as_of": "2026-06-05T18:45:12Z",
    "tier_used": "raw",
    "strikes_grid": [588, 589, 590, 591, 592],
    "bars": [
        {
            "t": "2026-06-05T18:44:00Z",
            "spot": 590.42,
            "signed_delta_dollars": [-120000, 45000, 880000, 210000, -30000],
            "signed_gamma_dollars": [18000, 24000, 96000, 31000, 9000],
            "contracts": [1200, 1850, 5400, 2100, 640],
        }
    ],
    "gap_intervals": [],
}


def _flow(**changes: Any) -> StrikeFlow:
    return StrikeFlow.model_validate({**EXAMPLE, **changes})


def _bar(delta: list[Any], **extra: Any) -> dict[str, Any]:
    return {"t": "2026-06-05T18:44:00Z", "signed_delta_dollars": delta, **extra}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # the vendor's example: the three largest |delta $|, each with its lean
        (
            {},
            [
                (590, "bullish", 880000, 96000, 5400),
                (591, "bullish", 210000, 31000, 2100),
                (588, "bearish", -120000, 18000, 1200),
            ],
        ),
        # bars are summed per strike: 588 turns bullish over the window
        (
            {"bars": [*EXAMPLE["bars"], _bar([500000, 0, -880000, 0, 0])]},
            [
                (588, "bullish", 380000, 18000, 1200),
                (591, "bullish", 210000, 31000, 2100),
                (589, "bullish", 45000, 24000, 1850),
            ],
        ),
        # null entries and short arrays add nothing; zero strikes are left out
        (
            {"bars": [_bar([None, 0, -7000])]},
            [(590, "bearish", -7000, 0, 0)],
        ),
    ],
    ids=["example", "summed-over-bars", "nulls-and-zeros"],
)
def test_top_strikes_by_absolute_delta_dollars(body: dict[str, Any], expected: list[Any]) -> None:
    """The drill shows the 3 strikes with the largest |signed delta-dollars| over the window."""
    drill = drill_from(_flow(**body), 30)
    got = [(s.strike, s.lean, s.delta_dollars, s.gamma_dollars, s.contracts) for s in drill.strikes]
    assert got == expected
    assert drill.spot == 590.42 and drill.error is None


def test_no_zero_dte_data_is_said_not_shown_as_empty() -> None:
    """An empty grid (a 200 without 0DTE data) gives a one-line reason, spot from the body."""
    drill = drill_from(_flow(strikes_grid=[], bars=[]), 30)
    assert drill.strikes == () and drill.error == "no 0DTE strike flow in the last 30 min"


def _event(kind: str = "leaderboard_lead", board: str = "zero_dte:heat", symbol: str = "SPY"):
    at = datetime(2026, 6, 5, 16, 1, tzinfo=UTC)
    return Event("top_n", kind, symbol, "lead", at, {"n": 5}, board=board)


def test_only_sent_zero_dte_entries_and_leads_are_drilled() -> None:
    """Options-board alerts, held alerts and exits get no drill; one request per symbol."""
    decisions = [
        Decision(_event(), Reason.FIRST),
        Decision(_event(board="zero_dte:pin_risk"), Reason.FIRST),  # same symbol: one request
        Decision(_event(board="options:buyers", symbol="QQQ"), Reason.FIRST),
        Decision(_event(symbol="IWM"), Reason.IN_COOLDOWN),
        Decision(_event(kind="leaderboard_exit", symbol="AMD"), Reason.FIRST),
        Decision(_event(kind="leaderboard_entry", symbol="TSLA"), Reason.COOLDOWN_ELAPSED),
    ]
    assert wanted(decisions) == ["SPY", "TSLA"]
    drills = {s: Drill(s, 30, error="x") for s in ("SPY", "QQQ", "TSLA")}
    enriched = enrich(decisions, drills)
    assert ["drill" in d.event.context for d in enriched] == [True, True, False, False, False, True]


# ------------------------------------------------------------------ against the sandbox
SCENARIO = """
session_date = "2026-06-05"
seed = 11
symbols = ["SPY", "QQQ"]

[[events]]
at = "12:00"
symbol = "SPY"
kind = "zero_dte"
metric = "heat"
value = 25.0
"""


@pytest.fixture(autouse=True)
def fast_retries():
    stamina.set_testing(True, attempts=1)
    yield
    stamina.set_testing(False)


async def _lead_alert(sandbox: Sandbox, tmp_path: Path, **top_n: Any) -> tuple[str, Any]:
    """Run the bot over SPY taking the 0DTE heat lead at 12:00; the alert's text and report."""
    settings = load_settings(
        None,
        flashalpha={"base_url": sandbox.base_url, "plan": "alpha", "retries": 0},
        watchlist={"symbols": ["SPY", "QQQ"]},
        state={"path": tmp_path / "state.sqlite3"},
        console={"jsonl_path": tmp_path / "messages.jsonl"},
        rules={
            "top_n": {
                "options_leaderboard": False,
                "zero_dte_metrics": ["heat"],
                "watchlist_only": True,
                **top_n,
            }
        },
    )
    bot = build_bot(
        settings,
        Secrets(flashalpha_api_key="sandbox-alpha"),
        clock=sandbox.clock.now,
        close_of=lambda day: None,
    )
    try:
        for hhmm in ("11:58", "12:01"):
            sandbox.set_time_ny(hhmm)
            report = await bot.engine.poll_leaderboards(sandbox.clock.now())
            await bot.worker.flush()
        metrics = {
            outcome: bot.metrics.requests.labels("strike_flow", outcome)._value.get()
            for outcome in ("ok", "tier")
        }
    finally:
        await bot.aclose()
    lines = (tmp_path / "messages.jsonl").read_text().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])["text"], (report, metrics)


async def test_lead_alert_shows_top_strikes_with_one_request(tmp_path: Path) -> None:
    """The 0DTE lead alert carries 3 strikes with lean and the spot, for one counted request."""
    with Sandbox(scenario=SCENARIO, speed=0) as sandbox:
        text, (report, metrics) = await _lead_alert(sandbox, tmp_path)
        assert sandbox.request_count("/v1/flow/zero-dte/strike-flow/SPY") == 1
    assert "SPY takes the lead on 0DTE" in text
    assert "0DTE strikes (30 min): " in text and "· spot $" in text
    assert text.count("bullish") + text.count("bearish") == 3
    assert report.fetched == 2 and metrics["ok"] == 1  # the board and the drill


async def test_refused_drill_sends_the_alert_and_says_why(tmp_path: Path) -> None:
    """A 403 on strike flow: the alert goes out without strikes, with a one-line reason."""
    with Sandbox(scenario=SCENARIO, speed=0) as sandbox:
        sandbox.faults.add(kind="outage", endpoint="strike_flow", status=403)
        text, (report, metrics) = await _lead_alert(sandbox, tmp_path)
    assert "SPY takes the lead on 0DTE" in text
    assert "no drill-down: strike flow is not in this key's plan (403)" in text
    assert report.failed == 1 and metrics["tier"] == 1


async def test_drill_off_makes_no_request(tmp_path: Path) -> None:
    """``drill = false``: the alert is sent as before and strike flow is never asked."""
    with Sandbox(scenario=SCENARIO, speed=0) as sandbox:
        text, _ = await _lead_alert(sandbox, tmp_path, drill=False)
        assert sandbox.request_count("/v1/flow/zero-dte/strike-flow") == 0
    assert "SPY takes the lead on 0DTE" in text and "strikes" not in text


async def test_growth_key_is_refused_with_a_reason() -> None:
    """With the sandbox's Growth key the endpoint answers 403: a Drill with the reason."""
    with Sandbox(scenario=SCENARIO, speed=0) as sandbox:
        sandbox.set_time_ny("12:01")
        async with FlashAlphaClient(sandbox.base_url, "sandbox-growth", retries=0) as client:
            drills, outcomes = await fetch_drills(client, ["SPY"], 30)
    assert drills["SPY"].error == "strike flow is not in this key's plan (403)"
    assert drills["SPY"].strikes == () and outcomes["SPY"] is not None


async def test_client_asks_one_minute_bars_over_the_window() -> None:
    """``strike_flow(symbol, minutes)`` is `GET .../strike-flow/{symbol}?bar=1m&minutes=N`."""
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json=EXAMPLE)

    transport = httpx.MockTransport(handler)
    async with FlashAlphaClient("http://api.test", "k", transport=transport) as client:
        flow = await client.strike_flow("SPY", 45)
    assert seen[0].path == "/v1/flow/zero-dte/strike-flow/SPY"
    assert dict(seen[0].params) == {"bar": "1m", "minutes": "45"}
    assert flow.strikes_grid == [588, 589, 590, 591, 592]
