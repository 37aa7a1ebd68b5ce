"""Rule ``candidate``: a flow-anomaly decision becomes ``candidate`` above the thresholds.

Source: `/v1/strategies/flow-anomaly/{symbol}` fields ``decision``, ``score`` (0..100),
``confidence`` (fraction 0..1), ``data_quality.score`` (0..100), ``risk_flags[]``,
``metrics.bias`` / ``regime``.

Memory (per symbol, survives a restart): ``armed``, ``direction`` (bias last alerted) and
``out_since`` (UTC, since when the symbol stopped qualifying). A qualifying candidate alerts
only when armed; the alert disarms the symbol. It re-arms once it stopped qualifying (the
decision left ``candidate``, or a threshold is no longer met) for ``rearm_minutes``, or its
score fell below ``min_score - rearm_margin``. So a score oscillating around ``min_score``
alerts once. A switch bullish ↔ bearish while qualifying alerts at once.

Guardrails: a candidate with a risk flag at or above ``hold_risk_severity``, or with
``data_quality.score`` under ``min_data_quality``, does not qualify (it is held, stays armed,
and alerts when the guardrail clears). The alert shows every risk flag with its severity.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from bot.api.models import FlowAnomaly, RiskFlag
from bot.events import Event, Severity
from bot.rules.base import DetectContext, Detection, RuleConfig, RuleSpec
from bot.snapshot import MarketSnapshot


class CandidateConfig(RuleConfig):
    """``[rules.candidate]``:

    - ``min_score`` (default 70, 0..100); ``min_confidence`` a fraction 0..1 and
      ``min_data_quality`` 0..100 (0 = not required; when required, a missing value fails).
    - ``rearm_minutes`` (default 60, ≥ 0): minutes a symbol must stop qualifying before it can
      alert again; ``rearm_margin`` (default 10 score points, ≥ 0): a score under
      ``min_score - rearm_margin`` re-arms at once.
    - ``hold_risk_severity`` (default unset = off; ``info`` / ``warning`` / ``critical``):
      hold candidates carrying a risk flag of that severity or above. A flag without a known
      severity counts as ``warning``.
    - Severity of the alert: ``warning``, ``critical`` from ``critical_score`` (0..100) up.
    """

    min_score: float = Field(70.0, ge=0, le=100)
    critical_score: float = Field(85.0, ge=0, le=100)
    min_confidence: float = Field(0.0, ge=0, le=1)
    min_data_quality: float = Field(0.0, ge=0, le=100)
    rearm_minutes: float = Field(60.0, ge=0)
    rearm_margin: float = Field(10.0, ge=0, le=100)
    hold_risk_severity: Severity | None = None


def flag_severity(flag: RiskFlag) -> Severity:
    """The flag's severity as the bot ranks it; unrated or unknown words count as ``warning``."""
    return Severity(flag.level) if flag.level is not None else Severity.WARNING


def held_by_guardrail(anomaly: FlowAnomaly, cfg: CandidateConfig) -> bool:
    """True when a risk flag reaches ``hold_risk_severity`` or data quality is under the floor."""
    if cfg.hold_risk_severity is not None:
        floor = cfg.hold_risk_severity.rank
        if any(flag_severity(f).rank >= floor for f in anomaly.risk_flags):
            return True
    if cfg.min_data_quality > 0:
        quality = anomaly.data_quality.score if anomaly.data_quality else None
        if quality is None or quality < cfg.min_data_quality:
            return True
    return False


def qualifies(anomaly: FlowAnomaly | None, cfg: CandidateConfig) -> bool:
    """True when ``anomaly`` is a candidate meeting every configured threshold and guardrail."""
    if anomaly is None or anomaly.decision != "candidate" or anomaly.score is None:
        return False
    if anomaly.score < cfg.min_score:
        return False
    if cfg.min_confidence > 0 and (
        anomaly.confidence is None or anomaly.confidence < cfg.min_confidence
    ):
        return False
    return not held_by_guardrail(anomaly, cfg)


def _direction(anomaly: FlowAnomaly | None) -> str:
    bias = anomaly.bias if anomaly is not None else None
    return bias if bias in ("bullish", "bearish") else "unknown"


def _start(before: FlowAnomaly | None, cfg: CandidateConfig) -> dict[str, Any]:
    """Memory for a symbol met without any: armed unless ``before`` already qualified."""
    if qualifies(before, cfg):
        return {"armed": False, "direction": _direction(before), "out_since": None}
    return {"armed": True, "direction": None, "out_since": None}


def detect(
    prev: MarketSnapshot, curr: MarketSnapshot, cfg: RuleConfig, ctx: DetectContext
) -> Detection:
    """Events for armed symbols that became qualifying candidates, or switched direction as
    one; the per-symbol memory updated."""
    assert isinstance(cfg, CandidateConfig)
    events: list[Event] = []
    memory: dict[str, Any] = dict(ctx.memory)
    for symbol, anomaly in curr.anomalies.items():
        before = prev.anomalies.get(symbol)
        state = dict(memory.get(symbol) or _start(before, cfg))
        direction = _direction(anomaly)
        out_since = state.get("out_since")
        if out_since is not None and ctx.now - datetime.fromisoformat(out_since) >= timedelta(
            minutes=cfg.rearm_minutes
        ):
            state["armed"] = True  # it stopped qualifying rearm_minutes ago
        if not qualifies(anomaly, cfg):
            dropped = anomaly.score is not None and anomaly.score < cfg.min_score - cfg.rearm_margin
            state["out_since"] = out_since or ctx.now.isoformat()
            if dropped:
                state["armed"] = True
            memory[symbol] = state
            continue
        switched = not state["armed"] and {state.get("direction"), direction} == {
            "bullish",
            "bearish",
        }
        if state["armed"] or switched:
            events.append(
                Event(
                    rule="candidate",
                    kind="candidate",
                    symbol=symbol,
                    state=f"candidate:{direction}",
                    occurred_at=anomaly.timestamp or ctx.now,
                    context={
                        "anomaly": anomaly,
                        "previous_decision": before.decision if before is not None else None,
                        "previous_bias": state.get("direction")
                        if switched
                        else (before.bias if before is not None else None),
                        "switched": switched,
                    },
                    severity=(
                        Severity.CRITICAL
                        if (anomaly.score or 0) >= cfg.critical_score
                        else Severity.WARNING
                    ),
                )
            )
            state["direction"] = direction
        memory[symbol] = {"armed": False, "direction": state.get("direction"), "out_since": None}
    return Detection(events, memory)


SPEC = RuleSpec(
    name="candidate",
    config_model=CandidateConfig,
    detect=detect,
    summary="flow-anomaly decision becomes candidate with score >= min_score",
)
