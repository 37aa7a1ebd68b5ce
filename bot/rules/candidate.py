"""Rule ``candidate``: a flow-anomaly decision becomes ``candidate`` above the thresholds.

Source: `/v1/strategies/flow-anomaly/{symbol}` fields ``decision``, ``score`` (0..100),
``confidence`` (fraction 0..1), ``data_quality.score`` (0..100), ``metrics.bias`` / ``regime``.
A switch bullish ↔ bearish while still a candidate is a new alert.
"""

from __future__ import annotations

from pydantic import Field

from bot.api.models import FlowAnomaly
from bot.events import Event, Severity
from bot.rules.base import DetectContext, RuleConfig, RuleSpec
from bot.snapshot import MarketSnapshot


class CandidateConfig(RuleConfig):
    """``[rules.candidate]``: ``min_score`` 0..100; ``min_confidence`` a fraction 0..1 and
    ``min_data_quality`` 0..100 (0 = not required; when required, a missing value fails).
    Severity: ``warning``, ``critical`` from ``critical_score`` (0..100) up."""

    min_score: float = Field(70.0, ge=0, le=100)
    critical_score: float = Field(85.0, ge=0, le=100)
    min_confidence: float = Field(0.0, ge=0, le=1)
    min_data_quality: float = Field(0.0, ge=0, le=100)


def qualifies(anomaly: FlowAnomaly | None, cfg: CandidateConfig) -> bool:
    """True when ``anomaly`` is a candidate meeting every configured threshold."""
    if anomaly is None or anomaly.decision != "candidate" or anomaly.score is None:
        return False
    if anomaly.score < cfg.min_score:
        return False
    if cfg.min_confidence > 0 and (
        anomaly.confidence is None or anomaly.confidence < cfg.min_confidence
    ):
        return False
    if cfg.min_data_quality > 0:
        quality = anomaly.data_quality.score if anomaly.data_quality else None
        if quality is None or quality < cfg.min_data_quality:
            return False
    return True


def _direction(anomaly: FlowAnomaly | None) -> str:
    bias = anomaly.bias if anomaly is not None else None
    return bias if bias in ("bullish", "bearish") else "unknown"


def detect(
    prev: MarketSnapshot, curr: MarketSnapshot, cfg: RuleConfig, ctx: DetectContext
) -> list[Event]:
    """Events for symbols that became qualifying candidates, or switched direction as one."""
    assert isinstance(cfg, CandidateConfig)
    events: list[Event] = []
    for symbol, anomaly in curr.anomalies.items():
        if not qualifies(anomaly, cfg):
            continue
        before = prev.anomalies.get(symbol)
        was = qualifies(before, cfg)
        switched = was and {_direction(before), _direction(anomaly)} == {"bullish", "bearish"}
        if was and not switched:
            continue
        events.append(
            Event(
                rule="candidate",
                kind="candidate",
                symbol=symbol,
                state=f"candidate:{_direction(anomaly)}",
                occurred_at=anomaly.timestamp or ctx.now,
                context={
                    "anomaly": anomaly,
                    "previous_decision": before.decision if before is not None else None,
                    "previous_bias": before.bias if before is not None else None,
                    "switched": switched,
                },
                severity=(
                    Severity.CRITICAL
                    if (anomaly.score or 0) >= cfg.critical_score
                    else Severity.WARNING
                ),
            )
        )
    return events


SPEC = RuleSpec(
    name="candidate",
    config_model=CandidateConfig,
    detect=detect,
    summary="flow-anomaly decision becomes candidate with score >= min_score",
)
