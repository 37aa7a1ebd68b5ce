"""The simulated market: pure, deterministic functions of (scenario, seed, symbol, sim time).

Randomness is drawn per (seed, symbol, New York date, stream) from ``random.Random`` seeded with
a stable hash, so a whole session's per-minute series is computed once and memoised; any time
of day is then a lookup. Scripted events (scenario ``[[events]]``) override the walk.

Units: prices and premiums in dollars (premium per share, so notional = contracts x premium x
100); GEX in dollars per 1% move; volumes in contracts; ``flow_gex_pct_shift`` a fraction.
Minute ``m`` of a session is the 1-minute bar starting at 09:30 New York + m minutes.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from bot.sim.nytime import (
    SESSION_MINUTES,
    is_trading_day,
    iso_z,
    ny_date,
    previous_trading_day,
    session_close,
    session_open,
)
from bot.sim.scenario import Event, Scenario, SymbolSpec

NEUTRAL_BAND = 0.05  # |shift| under 5% is "neutral" (API page)
CANDIDATE_SCORE, NEUTRAL_SCORE = 70, 40  # decision bands (API page)

_Num = TypeVar("_Num", int, float)


def stable_int(*parts: object) -> int:
    """64-bit integer hash of ``parts`` that is stable across processes (unlike ``hash``)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def classify_flow(
    settled: float, live: float, contracts_with_flow: int
) -> tuple[str, float | None]:
    """The documented flow_direction rule -> (label, flow_gex_pct_shift fraction or None).

    no_flow: no contract has flow. regime_flip: the sign changed, or settled is 0 and live is
    not (shift None). neutral: |shift| < 5%. amplifying/dampening: same sign, larger/smaller
    magnitude.
    """
    if settled == 0:
        if contracts_with_flow == 0:
            return "no_flow", None
        return ("regime_flip" if live != 0 else "neutral"), None
    shift = (live - settled) / abs(settled)
    if contracts_with_flow == 0:
        return "no_flow", shift
    if live * settled < 0:
        return "regime_flip", shift
    if abs(shift) < NEUTRAL_BAND:
        return "neutral", shift
    return ("amplifying" if abs(live) > abs(settled) else "dampening"), shift


def decision_for(score: int) -> str:
    """Score bands: >= 70 candidate, >= 40 neutral, else avoid."""
    if score >= CANDIDATE_SCORE:
        return "candidate"
    return "neutral" if score >= NEUTRAL_SCORE else "avoid"


@dataclass
class DaySeries:
    """Per-minute series of one symbol over one session (lists of length 390) plus prefix sums
    (``c*[m]`` = sum over minutes < m, length 391)."""

    price: list[float]
    shift: list[float]
    lnr: list[float]
    net: list[int]
    buy: list[int]
    sell: list[int]
    trades: list[int]
    vwap: list[float]
    heat: list[float]
    pin: list[float]
    absf: list[float]
    charm: list[float]
    cnet: list[int]
    cbuy: list[int]
    csell: list[int]
    ctrades: list[int]
    cprem: list[float]


def _prefix(xs: list[_Num]) -> list[_Num]:
    """Prefix sums: ``out[i]`` = sum of ``xs[:i]`` (length ``len(xs) + 1``, ``out[0]`` = 0)."""
    out: list[_Num] = [0] * (len(xs) + 1)
    for i, x in enumerate(xs):
        out[i + 1] = out[i] + x
    return out


class Market:
    """Deterministic market for one scenario and seed (``seed=None`` = the scenario's).

    Every public method takes an aware UTC instant ``t`` and returns a JSON-ready dict body
    (without ``endpoint_version``/``data_as_of``, which the app adds).
    """

    def __init__(self, scenario: Scenario, seed: int | None = None) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else int(seed)
        self.vol = scenario.volatility
        self._lock = threading.Lock()
        self._days: dict[tuple[str, int], DaySeries] = {}
        self._overrides: dict[tuple[str, str, str | None], list[Event]] = {}
        for ev in scenario.events:
            key = (ev.kind, ev.symbol, ev.metric if ev.kind == "zero_dte" else None)
            if ev.kind != "block":
                self._overrides.setdefault(key, []).append(ev)

    # ---- series -----------------------------------------------------------------------
    def has_symbol(self, symbol: str) -> bool:
        """True when ``symbol`` (upper-case) is in the universe."""
        return symbol in self.scenario.symbols

    def day(self, symbol: str, d: date) -> DaySeries:
        """Memoised per-minute series of ``symbol`` on New York date ``d``."""
        key = (symbol, d.toordinal())
        series = self._days.get(key)
        if series is None:
            series = self._build_day(self.scenario.symbols[symbol], d)
            with self._lock:
                self._days[key] = series
        return series

    def _build_day(self, spec: SymbolSpec, d: date) -> DaySeries:
        v = self.vol
        rng = random.Random(stable_int(self.seed, spec.symbol, d.toordinal()))
        n = SESSION_MINUTES
        sig_price = v * 0.015 / math.sqrt(n)  # ~1.5% daily move at volatility 1
        price, shift, lnr, heat, pin, absf, charm = [], [], [], [], [], [], []
        net, buy, sell, trades, vwap = [], [], [], [], []
        zp = zs = zr = zh = zc = 0.0
        base_lnr = math.log(spec.cp_ratio)
        for m in range(n):
            g = [rng.gauss(0.0, 1.0) for _ in range(8)]
            u = rng.random()
            zp += g[0]
            zs += g[1]
            zr += g[2]
            zh += g[3]
            zc += g[4]
            price.append(round(spec.price * math.exp(sig_price * zp), 2))
            # The walk never crosses -100% on its own: flips are scripted (or a 0 baseline).
            shift.append(max(-0.6, min(0.6, spec.gex_shift + v * 0.005 * zs)))
            lnr.append(base_lnr + v * 0.012 * zr)
            gross = max(1, round(spec.flow * (1 + v * 0.3 * (2 * u - 1))))
            frac = max(-1.0, min(1.0, spec.flow_bias + v * 0.35 * g[5]))
            nv = round(gross * frac)
            b = max(nv, 0) + (gross - abs(nv)) // 2
            net.append(nv)
            buy.append(b)
            sell.append(b - nv)
            trades.append(max(1, round(gross / (3 + 2 * u))))
            vwap.append(round(max(0.05, spec.premium * (1 + v * 0.05 * g[6])), 2))
            heat.append(math.exp(v * 0.03 * zh))
            pin.append(max(0.0, min(100.0, spec.pin_risk + v * 1.2 * zh)))
            absf.append(math.exp(v * 0.3 * g[7]))
            charm.append((1 + 2 * m / n) * math.exp(v * 0.01 * zc))
        if d == self.scenario.session_date:
            open_ = session_open(d)
            for ev in self.scenario.events:
                m = int((ev.at - open_).total_seconds() // 60)
                if ev.kind == "block" and ev.symbol == spec.symbol and 0 <= m < n:
                    nv = int(ev.net_volume)
                    net[m] += nv
                    if nv >= 0:
                        buy[m] += nv
                    else:
                        sell[m] -= nv
                    trades[m] += 1
        gross_prem = [(b + s) * p for b, s, p in zip(buy, sell, vwap, strict=True)]
        return DaySeries(
            price,
            shift,
            lnr,
            net,
            buy,
            sell,
            trades,
            vwap,
            heat,
            pin,
            absf,
            charm,
            _prefix(net),
            _prefix(buy),
            _prefix(sell),
            _prefix(trades),
            _prefix(gross_prem),
        )

    # ---- time helpers -----------------------------------------------------------------
    @staticmethod
    def position(t: datetime) -> tuple[date, int | None, bool]:
        """(New York date, minute index clamped to the session or None before the open /
        on a weekend, market_open flag) at aware instant ``t``."""
        d = ny_date(t)
        if not is_trading_day(d):
            return d, None, False
        m = math.floor((t - session_open(d)).total_seconds() / 60)
        if m < 0:
            return d, None, False
        return d, min(m, SESSION_MINUTES - 1), m < SESSION_MINUTES

    @staticmethod
    def windows(t: datetime, minutes: int) -> list[tuple[date, int, int]]:
        """Session minute ranges ``(date, m_lo, m_hi)`` (inclusive) whose bars start in
        ``(t - minutes, t]``: at most ``minutes`` bars, never after ``t``."""
        start = t - timedelta(minutes=minutes)
        out = []
        d = ny_date(start)
        while d <= ny_date(t):
            if is_trading_day(d):
                open_ = session_open(d)
                lo = max(0, math.floor((start - open_).total_seconds() / 60) + 1)
                hi = min(SESSION_MINUTES - 1, math.floor((t - open_).total_seconds() / 60))
                if lo <= hi:
                    out.append((d, lo, hi))
            d += timedelta(days=1)
        return out

    def _override(
        self, kind: str, symbol: str, t: datetime, metric: str | None = None
    ) -> Event | None:
        """The scripted event in force for (kind, symbol, metric) at ``t``, or None."""
        current = None
        for ev in self._overrides.get((kind, symbol, metric), ()):
            if ev.at <= t:
                current = ev
            else:
                break
        if current is None or (current.until is not None and t >= current.until):
            return None
        return None if current.value == "walk" else current

    def has_zero_dte(self, symbol: str, d: date) -> bool:
        """Whether ``symbol`` lists a same-day expiry on ``d`` (None spec = Mon/Wed/Fri)."""
        z = self.scenario.symbols[symbol].zero_dte
        if z is None:
            return d.weekday() in (0, 2, 4)
        return bool(z) and is_trading_day(d)

    def price(self, symbol: str, t: datetime) -> float:
        """Underlying price in dollars at ``t`` (the open price before the session)."""
        d, m, _ = self.position(t)
        if m is None:
            return round(self.scenario.symbols[symbol].price, 2)
        return self.day(symbol, d).price[m]

    def _expiry_factor(self, symbol: str, expiry: str | None) -> float:
        # One expiry holds a seeded share of the chain; labels are unchanged because both
        # live and settled GEX scale by the same factor.
        if not expiry:
            return 1.0
        return 0.15 + 0.5 * (stable_int(self.seed, symbol, expiry) % 1000) / 1000

    # ---- endpoint bodies --------------------------------------------------------------
    def flow_summary(self, symbol: str, t: datetime, expiry: str | None = None) -> dict[str, Any]:
        """Body of GET /v1/flow/summary/{symbol} at ``t``."""
        spec = self.scenario.symbols[symbol]
        d, m, _ = self.position(t)
        f = self._expiry_factor(symbol, expiry)
        settled = spec.settled_gex * f
        total = max(1, round(spec.contracts_total * f))
        if m is None:
            cwf, live, oi_delta, price = 0, settled, 0, round(spec.price, 2)
        else:
            s = self.day(symbol, d)
            price = s.price[m]
            cwf = max(1, round(total * min(0.85, 0.05 + 0.8 * (m + 1) / SESSION_MINUTES)))
            oi_delta = round(s.cnet[m + 1] * 0.35 * f)
            shift = s.shift[m]
            ev = self._override("flow_direction", symbol, t)
            if ev is not None:
                label = ev.value
                if not isinstance(label, str):  # parse_scenario admits only labels here
                    raise ValueError(f"flow_direction event for {symbol} has no label")
                shift = {
                    "regime_flip": -1.35,
                    "amplifying": 0.12,
                    "dampening": -0.12,
                    "neutral": 0.02,
                    "no_flow": 0.0,
                }[label]
                if label == "no_flow":
                    cwf = 0
            # A zero baseline: live GEX comes from flow alone (regime created from nothing).
            live = settled * (1 + shift) if settled else spec.flow * price * 1e3 * (shift or 0.1)
        live = round(live)
        label, pct = classify_flow(round(settled), live, cwf)
        return {
            "symbol": symbol,
            "as_of": iso_z(t),
            "underlying_price": price,
            "expiry": expiry,
            "flow_direction": label,
            "intraday_oi_delta": oi_delta,
            "contracts_with_flow": cwf,
            "contracts_total": total,
            "live_gex": live,
            "flow_gex_pct_shift": None if pct is None else round(pct, 4),
        }

    def settled_gex(self, symbol: str, expiry: str | None = None) -> int:
        """The morning (settled) GEX baseline in dollars per 1% move, fixed for the session."""
        return round(
            self.scenario.symbols[symbol].settled_gex * self._expiry_factor(symbol, expiry)
        )

    def flow_anomaly(self, symbol: str, t: datetime, expiry: str | None = None) -> dict[str, Any]:
        """Body of GET /v1/strategies/flow-anomaly/{symbol} at ``t`` (strategy envelope)."""
        spec = self.scenario.symbols[symbol]
        d, m, _ = self.position(t)
        base = {"strategy": "flow_anomaly", "symbol": symbol, "timestamp": iso_z(t)}
        if m is None:
            return {
                **base,
                "decision": "insufficient_data",
                "score": 0,
                "confidence": 0.0,
                "regime": "insufficient_flow",
                "best_structures": [],
                "metrics": {},
                "risk_flags": ["no_session_flow"],
                "why": ["No flow yet this session."],
                "avoid_if": [],
                "data_quality": {"score": 0, "warnings": ["pre_open"]},
            }
        s = self.day(symbol, d)
        lnr = s.lnr[m]
        score = min(99, round(20 + 108 * abs(lnr)))
        ev = self._override("anomaly", symbol, t)
        if ev is not None:
            if ev.score is None:  # parse_scenario requires a score unless value = "walk"
                raise ValueError(f"anomaly event for {symbol} has no score")
            score = max(0, min(99, int(ev.score)))
            sign = {"bullish": 1, "bearish": -1}.get(ev.bias or "", 0)
            lnr = sign * max(0.2, (score - 20) / 108)
        ratio = math.exp(lnr)
        if score < NEUTRAL_SCORE or abs(lnr) < 1e-9:
            regime, bias = "neutral_flow", "neutral"
        elif ratio > 1:
            regime, bias = "bullish_flow_imbalance", "bullish"
        else:
            regime, bias = "bearish_flow_imbalance", "bearish"
        decision = decision_for(score)
        f = self._expiry_factor(symbol, expiry)
        price = s.price[m]
        total_volume = round((s.cbuy[m + 1] + s.csell[m + 1]) * 3 * f)
        u = (stable_int(self.seed, symbol, d.toordinal(), "anom") % 1000) / 1000
        dominant = round(0.5 + 0.3 * score / 100, 2)
        structures = []
        if decision == "candidate" and bias != "neutral":
            structures.append(self._spread(symbol, d, price, bias, score, u, expiry))
        if ratio >= 1:
            why = f"Call volume outweighs put volume by {ratio:.2f}x."
        else:
            why = f"Put volume outweighs call volume by {1 / ratio:.2f}x."
        return {
            **base,
            "decision": decision,
            "score": score,
            "confidence": round(min(0.99, 0.35 + score / 150), 2),
            "regime": regime,
            "best_structures": structures,
            "metrics": {
                "bias": bias,
                "call_put_volume_ratio": round(ratio, 2),
                "call_put_oi_ratio": round(spec.cp_ratio**0.3, 2),
                "total_volume": total_volume,
                "total_open_interest": round(spec.contracts_total * 350 * f),
                "underlying_price": price,
                "dominant_premium_usd": round(total_volume * s.vwap[m] * 100 * dominant),
                "dominant_premium_pct": dominant,
                "top3_strikes_volume_pct": round(0.25 + 0.3 * u, 2),
            },
            "risk_flags": [],
            "why": [why],
            "avoid_if": [
                "Volume imbalance fades intraday or flow turns from sweep-driven to block-driven."
            ],
            "data_quality": {"score": 90, "warnings": []},
        }

    @staticmethod
    def _spread(
        symbol: str, d: date, price: float, bias: str, score: int, u: float, expiry: str | None
    ) -> dict[str, Any]:
        """Short put spread (bullish) / short call spread (bearish) with consistent P&L:
        credit = sell - buy premium, max_profit = credit, max_loss = width - credit."""
        inc = 1 if price < 250 else 5
        width = 10 if price >= 250 else (5 if price >= 80 else 2)
        if bias == "bullish":
            kind, typ, sgn = "short_put_spread", "put", -1
            short = math.floor(price * 0.98 / inc) * inc
        else:
            kind, typ, sgn = "short_call_spread", "call", 1
            short = math.ceil(price * 1.02 / inc) * inc
        long_ = short + sgn * width
        sell_p = round(width * (0.13 + 0.03 * u), 2)
        buy_p = round(sell_p * 0.5, 2)
        credit = round(sell_p - buy_p, 2)
        if not expiry:  # the Friday at least two weeks out
            exp_d = d + timedelta(days=14 + (4 - d.weekday()) % 7)
            expiry = exp_d.isoformat()
        return {
            "rank": 1,
            "structure": kind,
            "expiry": expiry,
            "legs": [
                {
                    "action": "sell",
                    "type": typ,
                    "strike": short,
                    "delta": sgn * 0.25,
                    "premium": sell_p,
                    "quantity": 1,
                },
                {
                    "action": "buy",
                    "type": typ,
                    "strike": long_,
                    "delta": sgn * 0.12,
                    "premium": buy_p,
                    "quantity": 1,
                },
            ],
            "credit": credit,
            "debit": None,
            "max_profit": credit,
            "max_loss": round(width - credit, 2),
            "breakevens": [round(short + sgn * credit, 2)],
            "edge_score": score,
            "liquidity_score": round(0.7 + 0.25 * u, 2),
        }

    def _flow_row(self, symbol: str, t: datetime, minutes: int) -> dict[str, Any] | None:
        """Aggregated options flow of ``symbol`` over the window, or None if no trades."""
        nv = bv = sv = tc = 0
        prem = 0.0
        last = None
        for d, lo, hi in self.windows(t, minutes):
            s = self.day(symbol, d)
            nv += s.cnet[hi + 1] - s.cnet[lo]
            bv += s.cbuy[hi + 1] - s.cbuy[lo]
            sv += s.csell[hi + 1] - s.csell[lo]
            tc += s.ctrades[hi + 1] - s.ctrades[lo]
            prem += s.cprem[hi + 1] - s.cprem[lo]
            last = session_open(d) + timedelta(minutes=hi)
        if last is None or bv + sv == 0:
            return None
        avg = round(prem / (bv + sv), 2)
        # Last trade: a few seconds before t in the current bar, else late in the last bar.
        lag = 1 + stable_int(self.seed, symbol, iso_z(t)) % 5
        last_trade = min(t - timedelta(seconds=lag), last + timedelta(seconds=59))
        return {
            "symbol": symbol,
            "netVolume": nv,
            "netNotional": round(nv * avg * 100),
            "buyVolume": bv,
            "sellVolume": sv,
            "avgPremium": avg,
            "tradeCount": tc,
            "lastTradeUtc": iso_z(max(last, last_trade)),
        }

    def options_leaderboard(self, t: datetime, n: int, window_minutes: int) -> dict[str, Any]:
        """Body of GET /v1/flow/options/leaderboard: buyers (netNotional > 0) and sellers
        (< 0), each sorted by |netNotional| descending, at most ``n`` rows per side."""
        rows = [r for s in self.scenario.symbols if (r := self._flow_row(s, t, window_minutes))]
        buyers = sorted(
            (r for r in rows if r["netNotional"] > 0),
            key=lambda r: (-r["netNotional"], r["symbol"]),
        )
        sellers = sorted(
            (r for r in rows if r["netNotional"] < 0), key=lambda r: (r["netNotional"], r["symbol"])
        )
        return {
            "generatedUtc": iso_z(t),
            "n": n,
            "windowMinutes": window_minutes,
            "buyers": buyers[:n],
            "sellers": sellers[:n],
        }

    def zero_dte_value(self, symbol: str, metric: str, t: datetime) -> float | None:
        """One 0DTE metric of ``symbol`` at ``t`` (None without a 0DTE session): heat
        (hedge flow / net GEX, unitless), pin_risk (0-100), abs_flow (dollars, latest bar),
        charm_intensity (dollars per hour)."""
        d, m, _ = self.position(t)
        if m is None or not self.has_zero_dte(symbol, d):
            return None
        ev = self._override("zero_dte", symbol, t, metric)
        if ev is not None:
            if ev.value is None:
                raise ValueError(f"zero_dte event for {symbol} {metric} has no value")
            return float(ev.value)
        spec, s = self.scenario.symbols[symbol], self.day(symbol, d)
        if metric == "heat":
            return round(spec.heat * s.heat[m], 2)
        if metric == "pin_risk":
            return round(s.pin[m], 1)
        if metric == "abs_flow":
            return float(round(spec.abs_flow * s.absf[m]))
        return float(round(spec.charm_intensity * s.charm[m]))

    def zero_dte_leaderboard(self, t: datetime, metric: str, n: int) -> dict[str, Any]:
        """Body of GET /v1/flow/zero-dte/leaderboard: entries ranked 1..n by value desc."""
        _, _, market_open = self.position(t)
        vals = [
            (v, s)
            for s in self.scenario.symbols
            if (v := self.zero_dte_value(s, metric, t)) is not None
        ]
        vals.sort(key=lambda x: (-x[0], x[1]))
        return {
            "metric": metric,
            "n": n,
            "as_of": iso_z(t),
            "market_open": market_open,
            "entries": [
                {"rank": i + 1, "symbol": s, "value": v} for i, (v, s) in enumerate(vals[:n])
            ],
        }

    def strike_flow(self, symbol: str, t: datetime, minutes: int) -> dict[str, Any]:
        """Body of GET /v1/flow/zero-dte/strike-flow/{symbol}: 1-minute bars of today's 0DTE
        session in the window; per-bar arrays index-aligned with ``strikes_grid``
        (signed delta-dollars, signed gamma-dollars, signed contracts). No 0DTE -> empty."""
        d, m, _ = self.position(t)
        price = self.price(symbol, t)
        body = {
            "symbol": symbol,
            "underlying_price": price,
            "expiration": None,
            "bar_size": "1m",
            "as_of": iso_z(t),
            "tier_used": "raw",
            "strikes_grid": [],
            "bars": [],
            "gap_intervals": [],
        }
        if m is None or not self.has_zero_dte(symbol, d):
            return body
        spec, s = self.scenario.symbols[symbol], self.day(symbol, d)
        inc = 1 if spec.price < 250 else 5
        center = round(s.price[0] / inc) * inc
        grid = [center + k * inc for k in range(-5, 6)]
        bars = []
        for dd, lo, hi in self.windows(t, minutes):
            if dd != d:
                continue  # 0DTE flow is today's expiry only
            for mm in range(lo, hi + 1):
                rng = random.Random(stable_int(self.seed, symbol, d.toordinal(), "sf", mm))
                spot = s.price[mm]
                dollars = s.buy[mm] + s.sell[mm]
                bias = s.net[mm] / max(1, dollars)
                sdd, sgd, con = [], [], []
                for k in grid:
                    w = math.exp(-(((k - spot) / (2.5 * inc)) ** 2))
                    signed = (rng.random() - 0.5) * 2 * 0.6 + bias
                    c = round(dollars / len(grid) * w * signed * 2)
                    con.append(c)
                    sdd.append(round(c * 100 * spot * 0.5))
                    sgd.append(round(abs(c) * 100 * spot * 0.02 * w))
                bars.append(
                    {
                        "t": iso_z(session_open(d) + timedelta(minutes=mm)),
                        "spot": spot,
                        "signed_delta_dollars": sdd,
                        "signed_gamma_dollars": sgd,
                        "contracts": con,
                    }
                )
        body.update(expiration=d.isoformat(), strikes_grid=grid, bars=bars)
        return body

    def cumulative(self, symbol: str, t: datetime, minutes: int) -> dict[str, Any]:
        """Body of GET /v1/flow/options/{symbol}/cumulative: one point per session minute in
        the window up to ``t``; ``cumulative`` is the running sum of ``netVolume``."""
        points = []
        running = 0
        for d, lo, hi in self.windows(t, minutes):
            s = self.day(symbol, d)
            open_ = session_open(d)
            for mm in range(lo, hi + 1):
                running += s.net[mm]
                points.append(
                    {
                        "ts": iso_z(open_ + timedelta(minutes=mm)),
                        "netVolume": s.net[mm],
                        "cumulative": running,
                        "vwap": s.vwap[mm],
                        "tradeCount": s.trades[mm],
                    }
                )
        return {"symbol": symbol, "minutes": minutes, "count": len(points), "points": points}

    # ---- envelope ---------------------------------------------------------------------
    @staticmethod
    def data_as_of(t: datetime) -> dict[str, Any]:
        """The ten-key ``data_as_of`` block at ``t``: feeds a few seconds behind during the
        session, flow_feed pinned at the close after it, oi_feed = previous session close."""
        d = ny_date(t)
        today_close = session_close(d) if is_trading_day(d) else None
        flow = t - timedelta(seconds=3)
        if today_close is not None and t > today_close:
            flow = today_close
        elif not is_trading_day(d) or t < session_open(d):
            flow = session_close(previous_trading_day(d))
        oi_day = previous_trading_day(d)
        return {
            "node": "sandbox-1",
            "equity_feed": iso_z(t - timedelta(seconds=1)),
            "equity_options_feed": iso_z(t - timedelta(seconds=1)),
            "index_feed": iso_z(t - timedelta(seconds=2)),
            "index_options_feed": iso_z(t - timedelta(seconds=2)),
            "futures_feed": None,
            "futures_options_feed": None,
            "flow_feed": iso_z(flow),
            "oi_feed": iso_z(session_close(oi_day)),
            "macro_feed": iso_z(t.replace(minute=(t.minute // 30) * 30, second=0, microsecond=0)),
        }
