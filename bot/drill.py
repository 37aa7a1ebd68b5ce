"""Scan, then drill: a 0DTE leaderboard alert carries its symbol's busiest strikes.

When rule ``top_n`` raises an entry or a new leader on a 0DTE board (``zero_dte:<metric>``) and
the alert will be sent, the engine asks `/v1/flow/zero-dte/strike-flow/{symbol}?bar=1m&minutes=N`
once for that symbol (:func:`fetch_drills`, the edge) and the pipeline's ``enrich`` stage puts
the result in the event's context as ``drill`` (:func:`enrich`, pure), where the leaderboard
templates show it: the spot and the top 3 strikes by |signed delta-dollars| summed over the
window, each with its lean, signed gamma-dollars and contracts. A failed or refused request
(403: the key's plan lacks the endpoint) leaves a :class:`Drill` with ``error``: the alert is
sent without the strikes and says why in one line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from bot.api.errors import ApiError, TierRestricted
from bot.api.models import StrikeFlow
from bot.events import Event

if TYPE_CHECKING:
    from bot.api.client import FlashAlphaClient
    from bot.policy import Decision

__all__ = [
    "DRILL_KINDS",
    "Drill",
    "StrikeLean",
    "drill_from",
    "enrich",
    "fetch_drills",
    "wanted",
]

log = logging.getLogger("flowbot.drill")

DRILL_KINDS = frozenset({"leaderboard_entry", "leaderboard_lead"})
"""The top_n event kinds that are drilled (on a 0DTE board)."""

TOP_STRIKES = 3


@dataclass(frozen=True, slots=True)
class StrikeLean:
    """One strike over the window: ``strike`` (dollars), ``lean`` (``bullish`` when the summed
    signed delta-dollars are positive, ``bearish`` when negative), ``delta_dollars`` and
    ``gamma_dollars`` (signed dollars, summed over the bars) and ``contracts`` (summed)."""

    strike: float
    lean: str
    delta_dollars: float
    gamma_dollars: float
    contracts: float


@dataclass(frozen=True, slots=True)
class Drill:
    """The drill-down of one symbol: ``minutes`` of 1-minute bars, ``spot`` (dollars; the
    response's ``underlying_price``, else the last bar's), ``strikes`` (at most 3, busiest
    first), ``as_of`` (UTC) and, when there is nothing to show, ``error``: one line saying why
    (the request failed, the plan refused it, or no 0DTE flow in the window)."""

    symbol: str
    minutes: int
    spot: float | None = None
    strikes: tuple[StrikeLean, ...] = ()
    as_of: datetime | None = None
    error: str | None = None


def _wants(event: Event) -> bool:
    return (
        event.rule == "top_n"
        and event.kind in DRILL_KINDS
        and (event.board or "").startswith("zero_dte:")
        and not event.follow_up
    )


def wanted(decisions: Iterable[Decision]) -> list[str]:
    """The symbols to drill for a tick: those of sent 0DTE entries and new leaders, each once,
    in order (two boards alerting one symbol share one request)."""
    out: dict[str, None] = {}
    for decision in decisions:
        if decision.send and _wants(decision.event):
            out.setdefault(decision.event.symbol, None)
    return list(out)


def drill_from(flow: StrikeFlow, minutes: int) -> Drill:
    """The :class:`Drill` of a strike-flow response: per strike of ``strikes_grid`` the bars'
    sums (``None`` entries skipped; a bar whose arrays are shorter than the grid adds nothing
    for the missing strikes), the 3 largest by |signed delta-dollars|, zero ones left out."""
    n = len(flow.strikes_grid)
    delta, gamma, contracts = [0.0] * n, [0.0] * n, [0.0] * n
    spot = flow.underlying_price
    for bar in flow.bars:
        for sums, values in (
            (delta, bar.signed_delta_dollars),
            (gamma, bar.signed_gamma_dollars),
            (contracts, bar.contracts),
        ):
            for i, value in enumerate(values[:n]):
                if value is not None:
                    sums[i] += value
        if flow.underlying_price is None and bar.spot is not None:
            spot = bar.spot
    ranked = sorted(range(n), key=lambda i: abs(delta[i]), reverse=True)
    strikes = tuple(
        StrikeLean(
            strike=flow.strikes_grid[i],
            lean="bullish" if delta[i] > 0 else "bearish",
            delta_dollars=delta[i],
            gamma_dollars=gamma[i],
            contracts=contracts[i],
        )
        for i in ranked[:TOP_STRIKES]
        if delta[i] != 0
    )
    error = None if strikes else f"no 0DTE strike flow in the last {minutes} min"
    return Drill(flow.symbol, minutes, spot, strikes, flow.as_of, error)


def _reason(error: BaseException) -> str:
    if isinstance(error, TierRestricted):
        return "strike flow is not in this key's plan (403)"
    if isinstance(error, ApiError):
        status = f" ({error.status})" if error.status else ""
        return f"strike flow request failed{status}"
    return f"strike flow request failed ({type(error).__name__})"


async def fetch_drills(
    client: FlashAlphaClient, symbols: Sequence[str], minutes: int
) -> tuple[dict[str, Drill], dict[str, BaseException | None]]:
    """One `/v1/flow/zero-dte/strike-flow/{symbol}` request per symbol, concurrently.

    Returns ``(drills, outcomes)``: symbol → :class:`Drill` (with ``error`` set on failure;
    never raises for an API error) and symbol → the exception of a failed request or ``None``
    (for the engine's request metrics)."""
    results = await asyncio.gather(
        *(client.strike_flow(s, minutes) for s in symbols), return_exceptions=True
    )
    drills: dict[str, Drill] = {}
    outcomes: dict[str, BaseException | None] = {}
    for symbol, result in zip(symbols, results, strict=True):
        if isinstance(result, asyncio.CancelledError):
            raise result
        if isinstance(result, BaseException):
            log.warning("drill-down for %s: %s", symbol, _reason(result))
            drills[symbol] = Drill(symbol, minutes, error=_reason(result))
            outcomes[symbol] = result
        else:
            drills[symbol] = drill_from(result, minutes)
            outcomes[symbol] = None
    return drills, outcomes


def enrich(decisions: list[Decision], drills: Mapping[str, Drill]) -> list[Decision]:
    """The pipeline's ``enrich`` stage (pure): each sent 0DTE entry or lead whose symbol is in
    ``drills`` gets it in its context as ``drill``; other decisions are returned unchanged."""
    if not drills:
        return decisions
    out = []
    for decision in decisions:
        event = decision.event
        drill = drills.get(event.symbol)
        if drill is not None and decision.send and _wants(event):
            event = replace(event, context={**event.context, "drill": drill})
            decision = replace(decision, event=event)
        out.append(decision)
    return out
