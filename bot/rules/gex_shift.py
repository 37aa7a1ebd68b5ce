"""Rule ``gex_shift``: live dealer GEX moved far from the settled morning GEX.

Source: `/v1/flow/summary/{symbol}` fields ``flow_gex_pct_shift`` ((live - settled) /
|settled|, a *fraction*: 0.25 = 25%), ``live_gex`` (dollars per 1% move), ``flow_direction``.
The summary page's "the morning GEX picture has stopped being representative".

- ``|flow_gex_pct_shift| >= threshold`` (first look included) raises ``gex_shift`` with state
  ``beyond:up`` / ``beyond:down``; it re-arms once the shift fell under ``threshold - margin``.
- ``flow_gex_pct_shift: null`` *present in the body* with a non-zero ``live_gex`` is its own
  case, state ``no_baseline``: the settled GEX was zero, a regime appeared from nothing, and no
  percentage exists. An absent or invalid (nulled) field is unknown and raises nothing.
- A sign change (``flow_direction == regime_flip``) is the regime_flip rule's alert; it is left
  out here unless ``include_flips``.

Memory (per symbol): ``state`` (``calm`` / ``beyond:up`` / ``beyond:down`` / ``no_baseline``).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bot.api.models import FlowSummary
from bot.events import Event, Severity
from bot.rules.base import DetectContext, Detection, RuleConfig, RuleSpec
from bot.snapshot import MarketSnapshot

SHIFT_FIELD = "flow_gex_pct_shift"


class GexShiftConfig(RuleConfig):
    """``[rules.gex_shift]``:

    - ``threshold`` (default 0.25, a fraction > 0): |shift| from which the alert fires.
    - ``margin`` (default 0.05, a fraction ≥ 0): re-arm once |shift| < threshold - margin.
    - ``include_flips`` (default ``false``): also alert when the label is ``regime_flip``
      (a sign change, already alerted by ``regime_flip``).
    - Severity: ``warning``; ``critical`` from ``critical_shift`` (default 0.5) up, and for the
      zero-baseline case.
    """

    threshold: float = Field(0.25, gt=0)
    margin: float = Field(0.05, ge=0)
    critical_shift: float = Field(0.5, gt=0)
    include_flips: bool = False


def _reading(summary: FlowSummary) -> str | None:
    """``beyond:up`` / ``beyond:down`` / ``no_baseline`` / ``None`` (unknown) / ``calm``."""
    if SHIFT_FIELD not in summary.model_fields_set:
        return None  # absent, or invalid and nulled: unknown, never a zero baseline
    shift = summary.flow_gex_pct_shift
    if shift is None:
        return "no_baseline" if summary.live_gex else None
    return "calm" if shift == 0 else ("beyond:up" if shift > 0 else "beyond:down")


def detect(
    prev: MarketSnapshot, curr: MarketSnapshot, cfg: RuleConfig, ctx: DetectContext
) -> Detection:
    """Events for summaries whose shift went beyond the threshold (or appeared from a zero
    baseline); the per-symbol memory updated."""
    assert isinstance(cfg, GexShiftConfig)
    events: list[Event] = []
    memory: dict[str, Any] = dict(ctx.memory)
    for symbol, summary in curr.summaries.items():
        if summary is prev.summaries.get(symbol):
            continue
        reading = _reading(summary)
        if reading is None:
            continue
        was = memory.get(symbol, "calm")
        shift = summary.flow_gex_pct_shift
        size = abs(shift) if shift is not None else None
        if reading.startswith("beyond") and size is not None and size < cfg.threshold:
            reading = (
                was if was.startswith("beyond") and size >= cfg.threshold - cfg.margin else ("calm")
            )
        memory[symbol] = reading
        if reading in ("calm", was):
            continue
        if summary.flow_direction == "regime_flip" and not cfg.include_flips:
            continue
        critical = reading == "no_baseline" or (size is not None and size >= cfg.critical_shift)
        events.append(
            Event(
                rule="gex_shift",
                kind="gex_shift",
                symbol=symbol,
                state=reading,
                occurred_at=summary.as_of or ctx.now,
                context={"summary": summary, "threshold": cfg.threshold, "previous": was},
                severity=Severity.CRITICAL if critical else Severity.WARNING,
            )
        )
    return Detection(events, memory)


SPEC = RuleSpec(
    name="gex_shift",
    config_model=GexShiftConfig,
    detect=detect,
    summary="live GEX moved beyond threshold (fraction) from the settled morning GEX",
)
