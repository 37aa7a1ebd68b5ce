"""HTTP behaviour of the running sandbox: caching, quotas, errors, admin, faults, log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.sim import FaultRule, Sandbox
from bot.sim.nytime import parse_ny_time

# One client for the module: building an httpx client (TLS context) per call is slow.
# No keep-alive, so stopping a sandbox never waits on an idle connection.
_CLIENT = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))


def get(sb, path, key="sandbox-alpha", **params):
    """GET ``path`` on the sandbox with ``key``."""
    return _CLIENT.get(sb.base_url + path, headers={"X-Api-Key": key}, params=params or None)


def test_summary_cached_for_15_sim_seconds(sandbox):
    """Within a 15 s period as_of and numbers repeat; the next period is a new snapshot."""
    sandbox.set_time_ny("11:10:01")
    a = get(sandbox, "/v1/flow/summary/SPY").json()
    sandbox.advance(13)
    b = get(sandbox, "/v1/flow/summary/SPY").json()
    sandbox.advance(2)
    c = get(sandbox, "/v1/flow/summary/SPY").json()
    assert a == b and a["as_of"] == "2026-06-05T15:10:00Z"
    assert c["as_of"] == "2026-06-05T15:10:15Z"


def test_leaderboards_cached_for_30_sim_seconds(sandbox):
    """Both leaderboards keep generatedUtc / as_of for 30 simulated seconds."""
    sandbox.set_time_ny("11:10:00")
    a = get(sandbox, "/v1/flow/options/leaderboard").json()
    z = get(sandbox, "/v1/flow/zero-dte/leaderboard").json()
    sandbox.advance(29)
    assert get(sandbox, "/v1/flow/options/leaderboard").json() == a
    assert get(sandbox, "/v1/flow/zero-dte/leaderboard").json() == z
    sandbox.advance(1)
    assert get(sandbox, "/v1/flow/options/leaderboard").json()["generatedUtc"] == (
        "2026-06-05T15:10:30Z"
    )
    assert get(sandbox, "/v1/flow/zero-dte/leaderboard").json()["as_of"] == "2026-06-05T15:10:30Z"


def test_same_seed_same_time_same_body_across_servers():
    """Two sandboxes with the same seed return byte-identical bodies at the same sim time."""
    bodies = []
    for _ in range(2):
        with Sandbox(speed=0, seed=42) as sb:
            sb.set_time_ny("12:34:56")
            bodies.append([get(sb, p).content for p in (
                "/v1/flow/summary/NVDA", "/v1/flow/options/leaderboard",
                "/v1/flow/options/QQQ/cumulative")])  # fmt: skip
    assert bodies[0] == bodies[1]


def test_rate_limit_headers_and_quota_reset_at_sim_midnight_utc():
    """Growth sees numeric X-RateLimit headers; a Free quota resets at 00:00 UTC sim time."""
    with Sandbox(speed=0) as sb:
        r = get(sb, "/v1/flow/summary/SPY", key="sandbox-growth")
        reset = int(datetime(2026, 6, 6, tzinfo=UTC).timestamp())
        assert r.headers["X-RateLimit-Limit"] == "2500"
        assert r.headers["X-RateLimit-Remaining"] == "2499"
        assert r.headers["X-RateLimit-Reset"] == str(reset)
        assert get(sb, "/v1/flow/summary/SPY").headers["X-RateLimit-Limit"] == "unlimited"
        codes = [get(sb, "/v1/flow/summary/SPY", key="sandbox-free").status_code
                 for _ in range(6)]  # fmt: skip
        assert codes == [403] * 5 + [429]
        r = get(sb, "/v1/flow/summary/SPY", key="sandbox-free")
        body = r.json()
        assert body["error"] == "Quota exceeded" and body["limit"] == 5
        assert body["upgrade_to"] == "Basic" and body["reset_at"] == "2026-06-06T00:00:00Z"
        assert int(r.headers["Retry-After"]) == 10 * 3600 + 30 * 60  # 13:30Z -> midnight
        sb.clock.set(datetime(2026, 6, 5, 23, 59, 59, tzinfo=UTC))
        assert get(sb, "/v1/flow/summary/SPY", key="sandbox-free").status_code == 429
        sb.advance(1)
        r = get(sb, "/v1/flow/summary/SPY", key="sandbox-free")
        assert r.status_code == 403 and r.headers["X-RateLimit-Remaining"] == "4"


def test_documented_error_bodies(sandbox):
    """401/403/404/400 bodies match the API page."""
    r = get(sandbox, "/v1/flow/summary/SPY", key="wrong")
    assert r.status_code == 401 and r.json() == {
        "title": "Unauthorized", "status": 401, "detail": "Invalid API key."}  # fmt: skip
    assert _CLIENT.get(sandbox.base_url + "/v1/flow/summary/SPY").status_code == 401
    r = get(sandbox, "/v1/flow/options/SPY/cumulative", key="sandbox-basic")
    assert r.status_code == 403
    assert r.json()["error"] == "tier_restricted" and r.json()["required_plan"] == "Alpha"
    assert r.json()["current_plan"] == "Basic"
    r = get(sandbox, "/v1/strategies/flow-anomaly/SPY", key="sandbox-basic")
    assert r.json()["required_plan"] == "Growth"
    r = get(sandbox, "/v1/flow/summary/XYZ")
    assert r.status_code == 404 and r.json()["error"] == "symbol_not_found"
    r = get(sandbox, "/v1/flow/summary/SPY", expiry="2026/06/19")
    assert r.status_code == 400 and r.json()["error"] == "invalid_expiry"
    r = get(sandbox, "/v1/flow/zero-dte/strike-flow/SPY", bar="5m")
    assert r.status_code == 400 and r.json()["error"] == "bar_unavailable"


def test_symbols_trimmed_and_params_clamped(sandbox):
    """Symbols are trimmed/upper-cased; n, windowMinutes, minutes clamp to the documented ranges."""
    assert get(sandbox, "/v1/flow/summary/%20spy%20").json()["symbol"] == "SPY"
    assert get(sandbox, "/v1/flow/summary/SPY", expiry="2026-06-19").json()["expiry"] == (
        "2026-06-19"
    )
    lb = get(sandbox, "/v1/flow/options/leaderboard", n=500, windowMinutes=0).json()
    assert (lb["n"], lb["windowMinutes"]) == (50, 1)
    lb = get(sandbox, "/v1/flow/options/leaderboard").json()
    assert (lb["n"], lb["windowMinutes"]) == (10, 240)
    z = get(sandbox, "/v1/flow/zero-dte/leaderboard", n=0).json()
    assert (z["metric"], z["n"]) == ("heat", 1)
    assert get(sandbox, "/v1/flow/zero-dte/leaderboard", n=1000).json()["n"] == 100
    assert get(sandbox, "/v1/flow/zero-dte/strike-flow/SPY", minutes=9999).json()["bars"]
    c = get(sandbox, "/v1/flow/options/SPY/cumulative", minutes=99999).json()
    assert c["minutes"] == 10080 and c["count"] > 101  # earlier sessions of the week too
    assert c["points"][-1]["ts"] == "2026-06-05T15:10:00Z"
    assert get(sandbox, "/v1/flow/options/SPY/cumulative").json()["minutes"] == 240


def test_flow_feed_few_seconds_behind_and_oi_at_previous_close(sandbox):
    """data_as_of.flow_feed trails the sim clock by seconds; oi_feed is the prior close."""
    d = get(sandbox, "/v1/flow/summary/SPY").json()["data_as_of"]
    assert d["flow_feed"] == "2026-06-05T15:09:57Z"
    assert d["oi_feed"] == "2026-06-04T20:00:00Z"


def test_admin_clock_route_reads_and_sets_the_clock(sandbox):
    """GET/POST /_sim/clock read, set and advance the simulated clock."""
    r = _CLIENT.get(sandbox.base_url + "/_sim/clock").json()
    assert r["now"] == "2026-06-05T15:10:00Z" and r["frozen"] is True
    r = _CLIENT.post(sandbox.base_url + "/_sim/clock", json={"now": "2026-06-05T18:00:00Z"})
    assert r.json()["now"] == "2026-06-05T18:00:00Z"
    r = _CLIENT.post(sandbox.base_url + "/_sim/clock", json={"advance_seconds": 90})
    assert r.json()["now"] == "2026-06-05T18:01:30Z"
    assert sandbox.clock.now() == datetime(2026, 6, 5, 18, 1, 30, tzinfo=UTC)


def test_admin_routes_absent_unless_enabled():
    """Without admin=True the /_sim/ routes answer 404."""
    with Sandbox(speed=0) as sb:
        assert _CLIENT.get(sb.base_url + "/_sim/clock").status_code == 404
        assert _CLIENT.post(sb.base_url + "/_sim/clock", json={"advance_seconds": 5}).status_code \
            == 404  # fmt: skip


def test_default_outage_window_returns_502_then_recovers(sandbox):
    """The default scenario's 14:00-14:03 summary outage gives 502 upstream_unavailable."""
    sandbox.set_time_ny("13:59:59")
    assert get(sandbox, "/v1/flow/summary/SPY").status_code == 200
    sandbox.set_time_ny("14:00:00")
    r = get(sandbox, "/v1/flow/summary/SPY")
    assert r.status_code == 502 and r.json() == {"error": "upstream_unavailable"}
    assert get(sandbox, "/v1/strategies/flow-anomaly/SPY").status_code == 200
    sandbox.set_time_ny("14:03:00")
    assert get(sandbox, "/v1/flow/summary/SPY").status_code == 200


def test_runtime_fault_rules_malformed_modes(sandbox):
    """Malformed modes: truncated JSON, a missing required field, an unknown label."""
    rid = sandbox.faults.add(kind="malformed", endpoint="summary", symbol="NVDA", mode="truncated")
    r = get(sandbox, "/v1/flow/summary/NVDA")
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)
    assert get(sandbox, "/v1/flow/summary/SPY").json()["symbol"] == "SPY"  # other symbol fine
    sandbox.faults.remove(rid)
    sandbox.faults.add(kind="malformed", endpoint="anomaly", mode="missing_field")
    assert "decision" not in get(sandbox, "/v1/strategies/flow-anomaly/SPY").json()
    sandbox.faults.add(kind="malformed", endpoint="summary", mode="unknown_label")
    assert get(sandbox, "/v1/flow/summary/SPY").json()["flow_direction"] == "turbulent"
    sandbox.faults.clear()
    assert get(sandbox, "/v1/flow/summary/SPY").json()["flow_direction"] != "turbulent"


def test_error_rate_is_seeded_and_latency_applies():
    """A 5xx error rate fails a reproducible subset of requests; latency rules still answer."""
    runs = []
    for _ in range(2):
        rule = FaultRule(kind="error_rate", endpoint="cumulative", rate=0.5, status=503)
        lat = FaultRule(kind="latency", endpoint="cumulative", latency_ms=1, jitter_ms=2)
        with Sandbox(speed=0, faults=[rule, lat]) as sb:
            runs.append([get(sb, "/v1/flow/options/SPY/cumulative").status_code
                         for _ in range(30)])  # fmt: skip
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 503}


def test_scenario_fault_window_and_admin_faults():
    """Faults from scenario TOML (per symbol, window) and POST /_sim/faults both apply."""
    toml = """
    symbols = ["SPY", "QQQ"]
    [[faults]]
    endpoint = "cumulative"
    symbol = "QQQ"
    kind = "outage"
    status = 503
    start = "10:00"
    end = "10:05"
    """
    with Sandbox(scenario=toml.replace("\n    ", "\n"), speed=0, admin=True) as sb:
        sb.set_time_ny("10:02")
        assert get(sb, "/v1/flow/options/QQQ/cumulative").status_code == 503
        assert get(sb, "/v1/flow/options/SPY/cumulative").status_code == 200
        r = _CLIENT.post(sb.base_url + "/_sim/faults", json={
            "kind": "outage", "endpoint": "summary", "status": 502})  # fmt: skip
        assert r.status_code == 201
        assert get(sb, "/v1/flow/summary/SPY").status_code == 502
        _CLIENT.delete(f"{sb.base_url}/_sim/faults/{r.json()['id']}")
        assert get(sb, "/v1/flow/summary/SPY").status_code == 200


def test_request_log_and_count(sandbox):
    """request_log records path, symbol, status and sim time; request_count filters by prefix."""
    get(sandbox, "/v1/flow/summary/spy")
    get(sandbox, "/v1/flow/options/leaderboard")
    get(sandbox, "/v1/flow/summary/XYZ")
    assert sandbox.request_count("/v1/flow/summary") == 2
    assert sandbox.request_count() == 3
    rec = sandbox.request_log[0]
    assert (rec.symbol, rec.status, rec.endpoint) == ("SPY", 200, "summary")
    assert rec.sim_time == parse_ny_time("11:10", sandbox.scenario.session_date)
    assert sandbox.request_log[1].symbol is None


def test_extra_keys_and_scenario_keys():
    """extra_keys and scenario [keys] add accepted keys with their plans."""
    with Sandbox(scenario='symbols = ["SPY"]\n[keys]\nteam = "alpha"\n', speed=0,
                 extra_keys={"mine": "Growth"}) as sb:  # fmt: skip
        assert get(sb, "/v1/flow/options/leaderboard", key="team").status_code == 200
        assert get(sb, "/v1/flow/options/leaderboard", key="mine").status_code == 403
        assert get(sb, "/v1/flow/summary/SPY", key="mine").status_code == 200


def test_running_clock_ticks_and_stop_leaves_no_thread():
    """With speed > 0 the clock advances on its own; stop() joins the server thread."""
    import threading

    before = {t.name for t in threading.enumerate()}
    sb = Sandbox(speed=1000).start()
    start = sb.clock.now()
    deadline = datetime.now(UTC) + timedelta(seconds=5)
    while sb.clock.now() - start < timedelta(seconds=2) and datetime.now(UTC) < deadline:
        threading.Event().wait(0.01)
    assert sb.clock.now() - start >= timedelta(seconds=2)
    sb.stop()
    assert {t.name for t in threading.enumerate()} <= before
