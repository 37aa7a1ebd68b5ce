"""Rule ``flow_inflection``: a symbol's cumulative net option flow turns, or drifts far.

Source: `/v1/flow/options/{symbol}/cumulative` ``points[]``: ``netVolume`` (net contracts per
minute) and ``cumulative`` (their running sum over the window, contracts). The cumulative
page's use cases: the inflection "where buying pressure flipped to selling", and the
mean-reversion check "cumulative drifted far from zero".

- ``inflection``: the cumulative was beyond ±``min_cumulative`` contracts on one side and is
  now on the other side of zero. State ``inflection:bullish`` (turned to net buying) /
  ``inflection:bearish``. It re-arms when the cumulative is beyond the floor again.
- ``drift``: |cumulative| exceeds ``drift_k`` × the window's typical minute move (median
  |netVolume|) × √(minutes): ``drift_k`` "standard deviations" of a random walk of such
  minutes, so steady two-way flow never drifts while a one-sided burst does (needs
  ``min_points`` points). State ``drift:bullish`` / ``drift:bearish``; re-arms under half of
  that distance.

Memory (per symbol): ``side`` (+1 / -1 / 0: the side it was last beyond the floor on) and
``drift`` (``bullish`` / ``bearish`` / ``None``). Watchlist symbols only (the engine polls them).
"""

from __future__ import annotations

import math
from statistics import median
from typing import Any

from pydantic import Field

from bot.api.models import CumulativeFlow
from bot.events import Event, Severity
from bot.rules.base import DetectContext, Detection, RuleConfig, RuleSpec
from bot.snapshot import MarketSnapshot


class FlowInflectionConfig(RuleConfig):
    """``[rules.flow_inflection]``:

    - ``cadence_minutes`` (default 5, 1..390): how often the engine polls each watchlist
      symbol's cumulative flow (one request per symbol per cadence).
    - ``window_minutes`` (default 390, 1..10080): the ``minutes`` asked for (the session).
    - ``min_cumulative`` (default 20,000 contracts, > 0): the cumulative must have been beyond
      this on one side before a sign change counts.
    - ``drift_k`` (default 20, > 0; 0 turns drift alerts off) and ``min_points`` (default 30):
      the drift alert (|cumulative| ≥ drift_k × typical minute × √minutes).
    - ``severity`` (default ``warning``) of both kinds.
    """

    cadence_minutes: float = Field(5.0, ge=1, le=390)
    window_minutes: int = Field(390, ge=1, le=10080)
    min_cumulative: float = Field(20_000.0, gt=0)
    drift_k: float = Field(20.0, ge=0)
    min_points: int = Field(30, ge=2)
    severity: Severity = Severity.WARNING


def _lean(value: float) -> str:
    return "bullish" if value > 0 else "bearish"


def typical_move(flow: CumulativeFlow) -> float | None:
    """Median |netVolume| (contracts per minute) over the window, ``None`` without points."""
    moves = [abs(p.net_volume) for p in flow.points]
    return median(moves) if moves else None


def _event(
    symbol: str, flow: CumulativeFlow, state: str, cfg: FlowInflectionConfig, **extra: Any
) -> Event:
    last = flow.points[-1]
    return Event(
        rule="flow_inflection",
        kind="flow_inflection",
        symbol=symbol,
        state=state,
        occurred_at=last.ts,
        context={"flow": flow, "cumulative": last.cumulative, "at": last.ts, **extra},
        severity=cfg.severity,
    )


def detect(
    prev: MarketSnapshot, curr: MarketSnapshot, cfg: RuleConfig, ctx: DetectContext
) -> Detection:
    """Inflection and drift events for newly fetched cumulative flows; memory updated."""
    assert isinstance(cfg, FlowInflectionConfig)
    events: list[Event] = []
    memory: dict[str, Any] = dict(ctx.memory)
    for symbol, flow in curr.cumulative.items():
        if flow is prev.cumulative.get(symbol) or not flow.points:
            continue
        last = flow.points[-1]
        total = last.cumulative
        state = dict(memory.get(symbol) or {"side": 0, "drift": None})
        side = int(state.get("side", 0))
        if side and total * side < 0:
            events.append(
                _event(symbol, flow, f"inflection:{_lean(total)}", cfg, was_side=_lean(side))
            )
            side = 0
        if abs(total) >= cfg.min_cumulative:
            side = 1 if total > 0 else -1
        state["side"] = side

        typical = typical_move(flow)
        if cfg.drift_k > 0 and typical and len(flow.points) >= cfg.min_points:
            distance = abs(total) / typical
            spread = distance / math.sqrt(len(flow.points))  # random-walk "sigmas"
            if spread >= cfg.drift_k and state.get("drift") != _lean(total):
                state["drift"] = _lean(total)
                drift = f"drift:{_lean(total)}"
                events.append(_event(symbol, flow, drift, cfg, typical=typical, multiple=distance))
            elif spread < cfg.drift_k / 2:
                state["drift"] = None
        memory[symbol] = state
    return Detection(events, memory)


SPEC = RuleSpec(
    name="flow_inflection",
    config_model=FlowInflectionConfig,
    detect=detect,
    summary="cumulative net option flow changes sign after a floor, or drifts k× its minute move",
)
