"""Scenario behaviour: the default session's highlights and scripted events at their times."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.sim import Market, default_scenario, load_scenario
from bot.sim.nytime import parse_ny_time, session_open

QUIET = """
name = "e2e"
session_date = "2026-06-05"
seed = 11
quiet = true
symbols = ["SPY", "QQQ", "NVDA", "AMD", "TSLA"]

[keys]
"team-key" = "growth"

[[events]]
at = "10:32"
symbol = "SPY"
kind = "flow_direction"
value = "regime_flip"

[[events]]
at = "10:50"
symbol = "SPY"
kind = "flow_direction"
value = "walk"

[[events]]
at = "11:05"
until = "11:20"
symbol = "NVDA"
kind = "anomaly"
score = 78
bias = "bullish"

[[events]]
at = "13:15"
symbol = "AMD"
kind = "block"
net_volume = 500000

[[events]]
at = "12:00"
symbol = "QQQ"
kind = "zero_dte"
metric = "heat"
value = 99.0
"""


def test_default_scenario_session_has_flips_candidates_entries_and_lead_changes():
    """Sampling the default session every 30 s shows >=2 flips, >=2 candidates, top-3 and
    0DTE lead changes."""
    sc = default_scenario()
    mk = Market(sc)
    t = session_open(sc.session_date)
    flips = candidates = entries = leads = 0
    prev_label: dict[str, str] = {}
    prev_dec: dict[str, str] = {}
    prev_top3: set[str] | None = None
    prev_lead: dict[str, str] = {}
    for _ in range(390 * 2):
        for sym in sc.symbols:
            label = mk.flow_summary(sym, t)["flow_direction"]
            flips += label == "regime_flip" and prev_label.get(sym) != "regime_flip"
            prev_label[sym] = label
            dec = mk.flow_anomaly(sym, t)["decision"]
            candidates += dec == "candidate" and prev_dec.get(sym) != "candidate"
            prev_dec[sym] = dec
        top3 = {r["symbol"] for r in mk.options_leaderboard(t, 3, 240)["buyers"]}
        if prev_top3 is not None:
            entries += len(top3 - prev_top3)
        prev_top3 = top3
        for metric in ("heat", "pin_risk"):
            e = mk.zero_dte_leaderboard(t, metric, 1)["entries"]
            lead = e[0]["symbol"] if e else ""
            leads += metric in prev_lead and lead != prev_lead[metric]
            prev_lead[metric] = lead
        t += timedelta(seconds=30)
    assert flips >= 2
    assert candidates >= 2
    assert entries >= 3
    assert leads >= 2


def test_default_scenario_includes_amd_block_in_top3_buyers():
    """The default's 13:15 AMD block puts AMD into the top 3 buyers from that minute."""
    sc = default_scenario()
    mk = Market(sc)
    before = mk.options_leaderboard(parse_ny_time("13:14", sc.session_date), 3, 240)
    after = mk.options_leaderboard(parse_ny_time("13:15", sc.session_date), 3, 240)
    assert "AMD" not in {r["symbol"] for r in before["buyers"]}
    assert "AMD" in {r["symbol"] for r in after["buyers"]}


@pytest.fixture
def quiet():
    """Market over the quiet end-to-end scenario plus a time helper (NY HH:MM:SS)."""
    sc = load_scenario(QUIET)
    return Market(sc), lambda hhmm: parse_ny_time(hhmm, sc.session_date)


def test_quiet_flip_starts_and_ends_at_scripted_times(quiet):
    """SPY is regime_flip exactly from 10:32 until the 10:50 event hands it back."""
    mk, at = quiet
    walk = mk.flow_summary("SPY", at("10:31:59"))["flow_direction"]
    assert walk != "regime_flip"
    assert mk.flow_summary("SPY", at("10:32:00"))["flow_direction"] == "regime_flip"
    assert mk.flow_summary("SPY", at("10:49:59"))["flow_direction"] == "regime_flip"
    assert mk.flow_summary("SPY", at("10:50:00"))["flow_direction"] == walk


def test_quiet_candidate_window(quiet):
    """NVDA is a bullish candidate (score 78) only inside 11:05-11:20."""
    mk, at = quiet
    assert mk.flow_anomaly("NVDA", at("11:04:59"))["decision"] != "candidate"
    a = mk.flow_anomaly("NVDA", at("11:05"))
    assert (a["decision"], a["score"], a["regime"]) == ("candidate", 78, "bullish_flow_imbalance")
    assert mk.flow_anomaly("NVDA", at("11:20"))["decision"] != "candidate"


def test_quiet_block_and_zero_dte_lead(quiet):
    """AMD tops the buyers from 13:15; QQQ leads 0DTE heat from 12:00; nothing else moves."""
    mk, at = quiet
    assert mk.options_leaderboard(at("13:15"), 1, 240)["buyers"][0]["symbol"] == "AMD"
    top_before = mk.options_leaderboard(at("13:14"), 1, 240)["buyers"]
    assert not top_before or top_before[0]["symbol"] != "AMD"
    assert mk.zero_dte_leaderboard(at("11:59:59"), "heat", 1)["entries"][0]["symbol"] != "QQQ"
    assert mk.zero_dte_leaderboard(at("12:00"), "heat", 1)["entries"][0]["symbol"] == "QQQ"
    labels = {mk.flow_summary(s, at(h))["flow_direction"] for s in ("QQQ", "TSLA")
              for h in ("09:45", "12:00", "15:59")}  # fmt: skip
    assert len(labels) <= 2  # one static label per symbol


def test_scenario_keys_and_validation():
    """[keys] plans are case-insensitive; bad event kinds and unknown symbols are rejected."""
    assert load_scenario(QUIET).keys == {"team-key": "Growth"}
    with pytest.raises(ValueError):
        load_scenario('[[events]]\nat = "10:00"\nsymbol = "SPY"\nkind = "moon"\n')
    with pytest.raises(ValueError):
        load_scenario('symbols = ["SPY"]\n[[events]]\nat = "10:00"\nsymbol = "ZZZ"\n'
                      'kind = "block"\nnet_volume = 5\n')  # fmt: skip


def test_readme_example_scenario_parses():
    """The example TOML in README's Sandbox section is a valid scenario."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Sandbox") :]
    toml = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    sc = load_scenario(toml)
    assert sc.volatility == 0 and len(sc.events) == 4 and len(sc.faults) == 1
