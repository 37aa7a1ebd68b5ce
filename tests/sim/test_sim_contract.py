"""Wire compatibility: the official flashalpha SDK against a running sandbox."""

from __future__ import annotations

import pytest
from flashalpha import FlashAlpha
from flashalpha.exceptions import (
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    TierRestrictedError,
)

from bot.sim import Sandbox

DATA_AS_OF_KEYS = {
    "node", "equity_feed", "equity_options_feed", "index_feed", "index_options_feed",
    "futures_feed", "futures_options_feed", "flow_feed", "oi_feed", "macro_feed",
}  # fmt: skip


@pytest.fixture(scope="module")
def sb():
    """One frozen sandbox for the module, at 11:10 New York."""
    with Sandbox(speed=0) as s:
        s.set_time_ny("11:10")
        yield s


def _envelope(body: dict) -> None:
    assert body["endpoint_version"] == "2026.08.25"
    assert set(body["data_as_of"]) == DATA_AS_OF_KEYS


def test_all_six_sdk_calls_succeed_with_documented_fields(sb):
    """All six SDK methods return 200 bodies carrying the documented fields and envelope."""
    fa = FlashAlpha("sandbox-alpha", base_url=sb.base_url)
    s = fa.flow_summary("SPY")
    assert {"symbol", "as_of", "underlying_price", "expiry", "flow_direction",
            "intraday_oi_delta", "contracts_with_flow", "contracts_total", "live_gex",
            "flow_gex_pct_shift"} <= set(s)  # fmt: skip
    a = fa.strategy_flow_anomaly("NVDA")
    assert {"strategy", "symbol", "timestamp", "decision", "score", "confidence", "regime",
            "best_structures", "metrics", "risk_flags", "why", "avoid_if",
            "data_quality"} <= set(a)  # fmt: skip
    assert a["decision"] == "candidate" and a["best_structures"][0]["structure"] == (
        "short_put_spread"
    )
    lb = fa.flow_options_leaderboard(n=5, window_minutes=60)
    assert (lb["n"], lb["windowMinutes"]) == (5, 60)
    row = lb["buyers"][0]
    assert set(row) == {"symbol", "netVolume", "netNotional", "buyVolume", "sellVolume",
                        "avgPremium", "tradeCount", "lastTradeUtc"}  # fmt: skip
    z = fa.flow_zero_dte_leaderboard(metric="pin_risk", n=3)
    assert z["metric"] == "pin_risk" and [e["rank"] for e in z["entries"]] == [1, 2, 3]
    sf = fa.flow_zero_dte_strike_flow("SPY", bar="1m", minutes=5)
    assert sf["bar_size"] == "1m" and len(sf["bars"]) == 5
    c = fa.flow_option_cumulative("SPY", minutes=30)
    assert c["count"] == len(c["points"]) == 30
    for body in (s, a, lb, z, sf, c):
        _envelope(body)


def test_bad_key_raises_authentication_error(sb):
    """An unknown key maps to the SDK's AuthenticationError (401)."""
    with pytest.raises(AuthenticationError):
        FlashAlpha("nope", base_url=sb.base_url).flow_summary("SPY")


def test_growth_key_on_alpha_endpoint_is_tier_restricted(sb):
    """A Growth key on an Alpha endpoint raises TierRestrictedError naming Alpha."""
    with pytest.raises(TierRestrictedError) as ei:
        FlashAlpha("sandbox-growth", base_url=sb.base_url).flow_options_leaderboard()
    assert ei.value.required_plan == "Alpha" and ei.value.current_plan == "Growth"


def test_unknown_symbol_raises_not_found(sb):
    """A symbol outside the universe raises NotFoundError (404 symbol_not_found)."""
    with pytest.raises(NotFoundError):
        FlashAlpha("sandbox-alpha", base_url=sb.base_url).flow_summary("XYZ")


def test_spent_free_quota_raises_rate_limit_with_retry_after():
    """The Free key's 6th request of the simulated UTC day raises RateLimitError + retry_after."""
    with Sandbox(speed=0) as s:
        fa = FlashAlpha("sandbox-free", base_url=s.base_url)
        for _ in range(5):  # counted against the quota even though Free is below Growth
            with pytest.raises(TierRestrictedError):
                fa.flow_summary("SPY")
        with pytest.raises(RateLimitError) as ei:
            fa.flow_summary("SPY")
        assert ei.value.retry_after is not None and ei.value.retry_after > 0
        assert ei.value.response["reset_at"] == "2026-06-06T00:00:00Z"
