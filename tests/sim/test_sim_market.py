"""Market invariants of the pure model over many seeds and times (no HTTP)."""

from __future__ import annotations

import math
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.sim import Market, default_scenario, load_scenario
from bot.sim.market import classify_flow, decision_for
from bot.sim.nytime import parse_iso, session_open

SCENARIO = default_scenario()
OPEN = session_open(SCENARIO.session_date)
SYMS = sorted(SCENARIO.symbols)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

seeds = st.integers(min_value=0, max_value=10_000)
minutes = st.integers(min_value=-30, max_value=420)  # before the open to after the close
symbols = st.sampled_from(SYMS)


def _t(m: int, s: int = 0):
    return OPEN + timedelta(minutes=m, seconds=s)


@given(st.floats(-1e10, 1e10), st.floats(-1e10, 1e10), st.integers(0, 5000))
def test_classify_flow_follows_documented_rule(settled, live, cwf):
    """classify_flow implements no_flow / regime_flip / neutral(<5%) / amplifying / dampening."""
    label, pct = classify_flow(settled, live, cwf)
    if cwf == 0:
        assert label == "no_flow"
    elif settled == 0:
        assert pct is None and label == ("regime_flip" if live != 0 else "neutral")
    elif live * settled < 0:
        assert label == "regime_flip"
    elif abs(pct) < 0.05:
        assert label == "neutral"
    else:
        assert label == ("amplifying" if abs(live) > abs(settled) else "dampening")
    if settled != 0:
        assert math.isclose(pct, (live - settled) / abs(settled))


@FAST
@given(seeds, symbols, minutes)
def test_summary_label_matches_live_vs_settled(seed, sym, m):
    """flow_direction and flow_gex_pct_shift follow from live_gex vs the fixed settled GEX."""
    mk = Market(SCENARIO, seed)
    body = mk.flow_summary(sym, _t(m))
    settled = mk.settled_gex(sym)
    label, pct = classify_flow(settled, body["live_gex"], body["contracts_with_flow"])
    assert body["flow_direction"] == label
    assert body["flow_gex_pct_shift"] == (None if pct is None else round(pct, 4))
    assert 0 <= body["contracts_with_flow"] <= body["contracts_total"]
    if m < 0:
        assert body["flow_direction"] == "no_flow"


@FAST
@given(seeds, symbols, st.integers(0, 389))
def test_anomaly_decision_regime_and_spread_are_consistent(seed, sym, m):
    """Decision follows the score bands; regime matches the call/put ratio; spread P&L adds up."""
    a = Market(SCENARIO, seed).flow_anomaly(sym, _t(m))
    assert a["decision"] == decision_for(a["score"])
    ratio = a["metrics"]["call_put_volume_ratio"]
    if a["regime"] == "bullish_flow_imbalance":
        assert ratio > 1 and a["metrics"]["bias"] == "bullish"
    elif a["regime"] == "bearish_flow_imbalance":
        assert ratio < 1 and a["metrics"]["bias"] == "bearish"
    else:
        assert a["regime"] == "neutral_flow"
    for s in a["best_structures"]:
        sell = next(leg for leg in s["legs"] if leg["action"] == "sell")
        buy = next(leg for leg in s["legs"] if leg["action"] == "buy")
        width = abs(sell["strike"] - buy["strike"])
        assert s["credit"] == round(sell["premium"] - buy["premium"], 2) > 0
        assert s["max_profit"] == s["credit"]
        assert math.isclose(s["max_loss"], width - s["credit"], abs_tol=0.006)
        if s["structure"] == "short_put_spread":
            assert a["regime"] == "bullish_flow_imbalance" and sell["strike"] > buy["strike"]
            assert math.isclose(s["breakevens"][0], sell["strike"] - s["credit"], abs_tol=0.006)
        else:
            assert s["structure"] == "short_call_spread"
            assert a["regime"] == "bearish_flow_imbalance" and sell["strike"] < buy["strike"]
            assert math.isclose(s["breakevens"][0], sell["strike"] + s["credit"], abs_tol=0.006)
    if a["decision"] == "candidate" and a["regime"] != "neutral_flow":
        assert len(a["best_structures"]) == 1


@FAST
@given(seeds, minutes, st.integers(1, 50), st.integers(1, 10080))
def test_options_leaderboard_sides_sorting_and_notional(seed, m, n, window):
    """Buyers > 0, sellers < 0, each by abs(netNotional) desc; notional = volume*premium*100."""
    t = _t(m)
    lb = Market(SCENARIO, seed).options_leaderboard(t, n, window)
    assert len(lb["buyers"]) <= n and len(lb["sellers"]) <= n
    for side, sign in (("buyers", 1), ("sellers", -1)):
        rows = lb[side]
        assert all(sign * r["netNotional"] > 0 for r in rows)
        notionals = [abs(r["netNotional"]) for r in rows]
        assert notionals == sorted(notionals, reverse=True)
        for r in rows:
            assert r["netVolume"] == r["buyVolume"] - r["sellVolume"]
            assert abs(r["netNotional"] - r["netVolume"] * r["avgPremium"] * 100) <= 1
            assert parse_iso(r["lastTradeUtc"]) <= t


@FAST
@given(seeds, minutes, st.sampled_from(["heat", "pin_risk", "abs_flow", "charm_intensity"]),
       st.integers(1, 100))  # fmt: skip
def test_zero_dte_entries_ranked_by_value(seed, m, metric, n):
    """0DTE entries are ranked 1..k by value descending, k <= n."""
    z = Market(SCENARIO, seed).zero_dte_leaderboard(_t(m), metric, n)
    values = [e["value"] for e in z["entries"]]
    assert values == sorted(values, reverse=True)
    assert [e["rank"] for e in z["entries"]] == list(range(1, len(values) + 1))
    assert len(values) <= n
    assert z["market_open"] == (0 <= m < 390)


@FAST
@given(seeds, symbols, minutes, st.integers(1, 10080))
def test_cumulative_is_running_sum_up_to_now(seed, sym, m, window):
    """cumulative is the running sum of netVolume, one point per minute, none after now."""
    t = _t(m, 20)
    c = Market(SCENARIO, seed).cumulative(sym, t, window)
    assert c["count"] == len(c["points"]) <= window
    running = 0
    prev = None
    for p in c["points"]:
        running += p["netVolume"]
        assert p["cumulative"] == running
        ts = parse_iso(p["ts"])
        assert ts <= t and ts > t - timedelta(minutes=window)
        assert prev is None or ts - prev >= timedelta(minutes=1)
        prev = ts


@FAST
@given(seeds, symbols, minutes, st.integers(1, 390))
def test_strike_flow_arrays_align_with_grid(seed, sym, m, window):
    """Every bar's three arrays are index-aligned with strikes_grid; no 0DTE -> empty arrays."""
    sf = Market(SCENARIO, seed).strike_flow(sym, _t(m), window)
    for b in sf["bars"]:
        assert len(b["signed_delta_dollars"]) == len(sf["strikes_grid"])
        assert len(b["signed_gamma_dollars"]) == len(b["contracts"]) == len(sf["strikes_grid"])
    assert len(sf["bars"]) <= window
    if m < 0:
        assert sf["strikes_grid"] == [] and sf["bars"] == []


def test_no_zero_dte_symbol_gets_empty_strike_flow():
    """A symbol without a same-day expiry gets 200-shaped empty arrays."""
    sc = load_scenario("symbols = { SPY = {}, XYZ = { zero_dte = false } }\n")
    sf = Market(sc).strike_flow("XYZ", session_open(sc.session_date) + timedelta(hours=1), 60)
    assert sf["strikes_grid"] == [] and sf["bars"] == [] and sf["gap_intervals"] == []


@settings(max_examples=10, deadline=None)
@given(seeds, symbols, minutes)
def test_same_seed_same_time_same_bodies(seed, sym, m):
    """Two markets with the same scenario and seed give identical bodies at the same time."""
    a, b = Market(SCENARIO, seed), Market(SCENARIO, seed)
    t = _t(m, 7)
    assert a.flow_summary(sym, t) == b.flow_summary(sym, t)
    assert a.flow_anomaly(sym, t) == b.flow_anomaly(sym, t)
    assert a.options_leaderboard(t, 10, 240) == b.options_leaderboard(t, 10, 240)
    assert a.strike_flow(sym, t, 5) == b.strike_flow(sym, t, 5)


def test_settled_zero_gives_regime_flip_with_null_shift():
    """A zero settled baseline with flow is a regime_flip with flow_gex_pct_shift null."""
    sc = load_scenario("symbols = { IWM = { settled_gex = 0 } }\n")
    s = Market(sc).flow_summary("IWM", session_open(sc.session_date) + timedelta(minutes=10))
    assert s["flow_direction"] == "regime_flip" and s["flow_gex_pct_shift"] is None


def test_quiet_walk_is_static():
    """volatility = 0 makes prices, labels, scores and ranks constant over the session."""
    sc = load_scenario("seed = 3\nquiet = true\n")
    mk = Market(sc)
    o = session_open(sc.session_date)
    times = [o + timedelta(minutes=k) for k in (1, 100, 389)]
    assert len({mk.price("SPY", t) for t in times}) == 1
    assert len({mk.flow_summary("NVDA", t)["flow_direction"] for t in times}) == 1
    assert len({mk.flow_anomaly("TSLA", t)["score"] for t in times}) == 1
    ranks = {tuple(r["symbol"] for r in mk.options_leaderboard(t, 5, 240)["buyers"])
             for t in times}  # fmt: skip
    assert len(ranks) == 1
    heat = {tuple(e["symbol"] for e in mk.zero_dte_leaderboard(t, "heat", 5)["entries"])
            for t in times}  # fmt: skip
    assert len(heat) == 1
