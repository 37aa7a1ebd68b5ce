"""Scenario files (TOML): universe, session date, seed, volatility, keys, events, faults.

See README "Sandbox" for the format. ``load_scenario(path_or_text)`` parses one;
``default_scenario()`` loads the packaged ``default_scenario.toml``.
"""

from __future__ import annotations

import tomllib
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from bot.sim.faults import FaultRule, rule_from_dict
from bot.sim.nytime import parse_ny_time

PLANS = ("Free", "Basic", "Growth", "Alpha")
EVENT_KINDS = ("flow_direction", "anomaly", "block", "zero_dte")
FLOW_LABELS = ("no_flow", "neutral", "amplifying", "dampening", "regime_flip")
ZERO_DTE_METRICS = ("heat", "pin_risk", "abs_flow", "charm_intensity")
DEFAULT_SESSION_DATE = date(2026, 6, 5)  # a Friday: single names have 0DTE too

# Rough real-world anchors so the default universe looks plausible; unknown symbols get
# seeded values. Prices in dollars, settled GEX in dollars per 1% move.
_KNOWN = {
    "SPY": (590.0, 3.1e9, 3000, True),
    "QQQ": (515.0, 1.4e9, 2200, True),
    "IWM": (211.0, 2.5e8, 900, True),
    "AAPL": (201.0, 6.0e8, 1100, False),
    "NVDA": (135.0, 9.0e8, 2000, False),
    "TSLA": (245.0, 4.0e8, 1800, False),
    "AMD": (118.0, 1.5e8, 800, False),
    "MSFT": (460.0, 3.5e8, 700, False),
    "AMZN": (205.0, 3.0e8, 750, False),
    "META": (640.0, 2.6e8, 650, False),
    "GOOGL": (172.0, 2.2e8, 600, False),
    "NFLX": (1180.0, 9.0e7, 300, False),
}


def _unit(seed: int, symbol: str, salt: str) -> float:
    """Stable uniform [0, 1) from (seed, symbol, salt) — Python's hash() is salted per run."""
    return zlib.crc32(f"{seed}|{symbol}|{salt}".encode()) / 2**32


@dataclass
class SymbolSpec:
    """Per-symbol baselines (all optional in TOML; seeded defaults otherwise).

    price: dollars at the open. settled_gex: settled dealer GEX, dollars per 1% move (may be 0).
    gex_shift: baseline (live - settled)/|settled|, a fraction. flow: gross option contracts per
    minute. flow_bias: net/gross fraction in -1..1 (positive = net buying). premium: average
    option premium in dollars per share. cp_ratio: baseline call/put volume ratio.
    zero_dte: has a same-day expiry (None = index ETFs daily, single names Mon/Wed/Fri).
    heat/pin_risk(0-100)/abs_flow(dollars)/charm_intensity(dollars per hour): 0DTE baselines.
    contracts_total: contracts in the chain.
    """

    symbol: str
    price: float
    settled_gex: float
    gex_shift: float
    flow: float
    flow_bias: float
    premium: float
    cp_ratio: float
    zero_dte: bool | None
    heat: float
    pin_risk: float
    abs_flow: float
    charm_intensity: float
    contracts_total: int


@dataclass
class Event:
    """A scripted event at ``at`` (aware UTC) for ``symbol``.

    kind ``flow_direction`` (``value`` a label, or ``"walk"`` to hand back to the walk),
    ``anomaly`` (``score`` 0-99 and ``bias`` bullish/bearish/neutral, or ``value="walk"``),
    ``block`` (one-minute block of ``net_volume`` contracts, signed),
    ``zero_dte`` (``metric`` and ``value``, or ``value="walk"``). Overrides last until ``until``
    or the next event of the same kind/symbol(/metric).
    """

    at: datetime
    kind: str
    symbol: str
    until: datetime | None = None
    value: str | float | None = None
    score: int | None = None
    bias: str | None = None
    net_volume: int = 0
    metric: str | None = None


@dataclass
class Scenario:
    """A parsed scenario. ``session_date`` is the New York trading date the clock opens on;
    ``volatility`` scales every random move (0 = static market, only events change things)."""

    name: str
    session_date: date
    seed: int
    volatility: float
    symbols: dict[str, SymbolSpec]
    keys: dict[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    faults: list[FaultRule] = field(default_factory=list)


def normalize_plan(plan: str) -> str:
    """Case-insensitive plan name -> canonical ``Free``/``Basic``/``Growth``/``Alpha``."""
    for p in PLANS:
        if p.lower() == str(plan).strip().lower():
            return p
    raise ValueError(f"unknown plan {plan!r}; expected one of {PLANS}")


def _symbol_spec(sym: str, seed: int, d: dict[str, Any]) -> SymbolSpec:
    price, gex, flow, zdte = _KNOWN.get(
        sym,
        (
            20 + 480 * _unit(seed, sym, "price"),
            1e8 + 9e8 * _unit(seed, sym, "gex"),
            200 + 1000 * _unit(seed, sym, "flow"),
            None,
        ),
    )

    def u(salt: str) -> float:
        return _unit(seed, sym, salt)

    spec = SymbolSpec(
        symbol=sym,
        price=float(d.get("price", price)),
        settled_gex=float(d.get("settled_gex", gex)),
        gex_shift=float(d.get("gex_shift", -0.08 + 0.2 * u("shift"))),
        flow=float(d.get("flow", flow)),
        flow_bias=float(d.get("flow_bias", -0.25 + 0.5 * u("bias"))),
        premium=float(d.get("premium", round(0.8 + 3.5 * u("prem"), 2))),
        cp_ratio=float(d.get("cp_ratio", round(0.8 + 0.5 * u("cpr"), 3))),
        zero_dte=d.get("zero_dte", True if zdte else None),
        heat=float(d.get("heat", round(1 + 8 * u("heat"), 2))),
        pin_risk=float(d.get("pin_risk", round(10 + 70 * u("pin"), 1))),
        abs_flow=float(d.get("abs_flow", round(flow * 900 * (0.5 + u("abs"))))),
        charm_intensity=float(d.get("charm_intensity", round(flow * 400 * (0.5 + u("charm"))))),
        contracts_total=int(d.get("contracts_total", int(1500 + 5000 * u("chain")))),
    )
    return spec


def _event(d: dict[str, Any], session_date: date, symbols: dict[str, SymbolSpec]) -> Event:
    d = dict(d)
    kind = d.pop("kind")
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}; expected one of {EVENT_KINDS}")
    sym = str(d.pop("symbol")).strip().upper()
    if sym not in symbols:
        raise ValueError(f"event symbol {sym} is not in the universe")
    at = parse_ny_time(str(d.pop("at")), session_date)
    until = d.pop("until", None)
    ev = Event(
        at=at,
        kind=kind,
        symbol=sym,
        until=parse_ny_time(str(until), session_date) if until else None,
        **d,
    )
    if kind == "flow_direction" and ev.value not in (*FLOW_LABELS, "walk"):
        raise ValueError(f"flow_direction event value must be one of {FLOW_LABELS} or 'walk'")
    if kind == "anomaly" and ev.value != "walk" and ev.score is None:
        raise ValueError("anomaly event needs score (and bias) or value = 'walk'")
    if kind == "zero_dte" and ev.metric not in ZERO_DTE_METRICS:
        raise ValueError(f"zero_dte event metric must be one of {ZERO_DTE_METRICS}")
    return ev


def parse_scenario(data: dict[str, Any]) -> Scenario:
    """Build a Scenario from an already-parsed TOML mapping."""
    seed = int(data.get("seed", 0))
    session_date = data.get("session_date", DEFAULT_SESSION_DATE)
    if isinstance(session_date, str):
        session_date = date.fromisoformat(session_date)
    vol = 0.0 if data.get("quiet") else float(data.get("volatility", 1.0))
    raw_syms = data.get("symbols", list(_KNOWN))
    if isinstance(raw_syms, list):  # symbols = ["SPY", "QQQ"]
        raw_syms = {s: {} for s in raw_syms}
    symbols = {
        s.strip().upper(): _symbol_spec(s.strip().upper(), seed, v or {})
        for s, v in raw_syms.items()
    }
    keys = {k: normalize_plan(v) for k, v in data.get("keys", {}).items()}
    events = [_event(e, session_date, symbols) for e in data.get("events", [])]
    events.sort(key=lambda e: e.at)
    faults = [rule_from_dict(f, session_date) for f in data.get("faults", [])]
    return Scenario(
        name=str(data.get("name", "scenario")),
        session_date=session_date,
        seed=seed,
        volatility=vol,
        symbols=symbols,
        keys=keys,
        events=events,
        faults=faults,
    )


def load_scenario(source: str | Path) -> Scenario:
    """Load a scenario from a TOML file path, or from TOML text (a str containing a newline
    or ``=``)."""
    if isinstance(source, Path) or ("\n" not in source and "=" not in source):
        text = Path(source).read_text(encoding="utf-8")
    else:
        text = source
    return parse_scenario(tomllib.loads(text))


def default_scenario() -> Scenario:
    """The packaged default: 12 liquid names, volatility 1, scripted flips/candidates/blocks."""
    text = resources.files("bot.sim").joinpath("default_scenario.toml").read_text("utf-8")
    return parse_scenario(tomllib.loads(text))
