"""Rule ``regime_flip``: a symbol's ``flow_direction`` becomes ``regime_flip``.

Source: `/v1/flow/summary/{symbol}` fields ``flow_direction`` and ``as_of`` (UTC). Dealer GEX
changed sign against the settled morning baseline (long gamma ↔ short gamma), or a regime
appeared from a zero baseline. The first observation of the session counts when it already is
a flip.

Memory (per symbol, survives a restart): ``state`` (``flip`` / ``calm``), ``since`` (the first
observation of the flip: the summary's ``as_of``, else the tick's time), ``calm_polls`` and
``left_at`` (the first non-flip observation), ``ended_at``. From it:

- the flip alert (``regime_flip``, top level) is raised once per flip;
- the flip is over only after a non-flip label held for ``min_hold_polls`` polls in a row; then
  a ``regime_flip_ended`` reply goes into the flip's thread, with the true start, end
  (``left_at``) and duration;
- a flip that starts again within ``cooldown_minutes`` of that end is a ``regime_flip_again``
  reply in the same thread, not a new top-level post.

A "poll" is a cycle that fetched the summary (``curr.summaries[s] is not prev.summaries[s]``);
ticks of other sources do not count.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from bot.api.models import FlowSummary
from bot.events import Event, Severity
from bot.rules.base import DetectContext, Detection, RuleConfig, RuleSpec
from bot.snapshot import MarketSnapshot

FLIP = "regime_flip"


class RegimeFlipConfig(RuleConfig):
    """``[rules.regime_flip]``:

    - ``follow_up`` (default ``true``): thread replies when the flip ends and when it flips
      again within ``cooldown_minutes`` of ending (``false``: neither).
    - ``min_hold_polls`` (default 2, 1..20): polls in a row a non-flip label must hold before
      the flip counts as over.
    - ``severity`` of the flip alert (default ``critical``); replies are ``info``.
    - ``cooldown_minutes`` (default 30): also the window in which a new flip after an end is a
      "flipped again" reply instead of a new alert.
    """

    follow_up: bool = True
    min_hold_polls: int = Field(2, ge=1, le=20)
    severity: Severity = Severity.CRITICAL


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _start(prev: FlowSummary | None) -> dict[str, Any]:
    """Memory for a symbol first met without any: what ``prev`` tells (upgrade from no memory)."""
    if prev is not None and prev.flow_direction == FLIP:
        return {"state": "flip", "since": _iso(prev.as_of), "calm_polls": 0, "left_at": None}
    return {"state": "calm", "ended_at": None}


def detect(
    prev: MarketSnapshot, curr: MarketSnapshot, cfg: RuleConfig, ctx: DetectContext
) -> Detection:
    """Flip alerts, ended / flipped-again thread replies, and the updated per-symbol memory."""
    assert isinstance(cfg, RegimeFlipConfig)
    events: list[Event] = []
    memory: dict[str, Any] = dict(ctx.memory)
    parent_of = "regime_flip:-:{}".format
    for symbol, summary in curr.summaries.items():
        before = prev.summaries.get(symbol)
        if summary is before:
            continue  # not fetched this cycle: nothing observed
        state = dict(memory.get(symbol) or _start(before))
        seen = summary.as_of or ctx.now
        previous = before.flow_direction if before is not None else None
        if state["state"] == "calm" and summary.flow_direction == FLIP:
            ended = _time(state.get("ended_at"))
            again = ended is not None and seen - ended < timedelta(minutes=cfg.cooldown_minutes)
            context = {"summary": summary, "previous": previous}
            if not again:
                events.append(
                    Event(
                        rule="regime_flip",
                        kind="regime_flip",
                        symbol=symbol,
                        state=FLIP,
                        occurred_at=seen,
                        context=context,
                        severity=cfg.severity,
                    )
                )
            elif cfg.follow_up:
                events.append(
                    Event(
                        rule="regime_flip",
                        kind="regime_flip_again",
                        symbol=symbol,
                        state=f"again:{seen.isoformat()}",
                        occurred_at=seen,
                        context={**context, "ended_at": ended, "first_since": state.get("first")},
                        thread_parent=parent_of(symbol),
                        follow_up=True,
                    )
                )
            first = state.get("first") if again else _iso(seen)
            state = {"state": "flip", "since": _iso(seen), "first": first, "calm_polls": 0}
            state["left_at"] = None
        elif state["state"] == "flip" and summary.flow_direction == FLIP:
            state.update(calm_polls=0, left_at=None)
        elif state["state"] == "flip":
            left_at = _time(state.get("left_at")) or seen
            calm = int(state.get("calm_polls", 0)) + 1
            state.update(calm_polls=calm, left_at=_iso(left_at))
            if calm >= cfg.min_hold_polls:
                since = _time(state.get("since"))
                if cfg.follow_up:
                    events.append(
                        Event(
                            rule="regime_flip",
                            kind="regime_flip_ended",
                            symbol=symbol,
                            state=f"ended:{left_at.isoformat()}",
                            occurred_at=left_at,
                            context={
                                "summary": summary,
                                "previous": FLIP,
                                "flipped_at": since,
                                "ended_at": left_at,
                                "lasted": left_at - since if since is not None else None,
                            },
                            thread_parent=parent_of(symbol),
                            follow_up=True,
                        )
                    )
                state = {"state": "calm", "ended_at": _iso(left_at), "first": state.get("first")}
        memory[symbol] = state
    return Detection(events, memory)


SPEC = RuleSpec(
    name="regime_flip",
    config_model=RegimeFlipConfig,
    detect=detect,
    summary="flow_direction becomes regime_flip (dealer gamma changed sign vs the settled GEX)",
)
