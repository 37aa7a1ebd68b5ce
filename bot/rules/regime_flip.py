"""Rule ``regime_flip``: a symbol's ``flow_direction`` becomes ``regime_flip``.

Source: `/v1/flow/summary/{symbol}` field ``flow_direction``. Dealer GEX changed sign against
the settled morning baseline (long gamma ↔ short gamma), or a regime appeared from a zero
baseline. The first observation of the session counts when it already is a flip. When the
label later leaves ``regime_flip`` a follow-up goes into the alert's Slack thread.
"""

from __future__ import annotations

from bot.events import Event, Severity
from bot.rules.base import DetectContext, RuleConfig, RuleSpec
from bot.snapshot import MarketSnapshot

FLIP = "regime_flip"


class RegimeFlipConfig(RuleConfig):
    """``[rules.regime_flip]``: ``follow_up`` posts a thread reply when the flip ends;
    ``severity`` of the flip alert (default ``critical``; the ended reply is ``info``)."""

    follow_up: bool = True
    severity: Severity = Severity.CRITICAL


def detect(
    prev: MarketSnapshot, curr: MarketSnapshot, cfg: RuleConfig, ctx: DetectContext
) -> list[Event]:
    """Events for watchlist symbols whose label entered (or, as a follow-up, left) regime_flip."""
    assert isinstance(cfg, RegimeFlipConfig)
    events: list[Event] = []
    for symbol, summary in curr.summaries.items():
        before = prev.summaries.get(symbol)
        previous = before.flow_direction if before is not None else None
        occurred = summary.as_of or ctx.now
        if summary.flow_direction == FLIP and previous != FLIP:
            events.append(
                Event(
                    rule="regime_flip",
                    kind="regime_flip",
                    symbol=symbol,
                    state=FLIP,
                    occurred_at=occurred,
                    context={"summary": summary, "previous": previous},
                    severity=cfg.severity,
                )
            )
        elif previous == FLIP and summary.flow_direction != FLIP and cfg.follow_up:
            parent = f"regime_flip:-:{symbol}"
            events.append(
                Event(
                    rule="regime_flip",
                    kind="regime_flip_ended",
                    symbol=symbol,
                    state=f"ended:{summary.flow_direction}",
                    occurred_at=occurred,
                    context={
                        "summary": summary,
                        "previous": FLIP,
                        "flipped_at": before.as_of if before is not None else None,
                    },
                    thread_parent=parent,
                    follow_up=True,
                )
            )
    return events


SPEC = RuleSpec(
    name="regime_flip",
    config_model=RegimeFlipConfig,
    detect=detect,
    summary="flow_direction becomes regime_flip (dealer gamma changed sign vs the settled GEX)",
)
