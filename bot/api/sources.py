"""The polled sources, by the name the store and the health checks use.

A source knows its endpoint's response model, the lowest plan that serves it, whether it is
polled per symbol (the watchlist) or per board (a leaderboard, keyed by metric or ``-``), and
how to fetch one key with the client. Adding a source is one entry here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from bot.api.models import (
    CumulativeFlow,
    FlowAnomaly,
    FlowSummary,
    OptionsLeaderboard,
    ZeroDteLeaderboard,
)

if TYPE_CHECKING:
    from bot.api.client import FlashAlphaClient

__all__ = ["SOURCES", "FetchArgs", "Source"]


@dataclass(frozen=True, slots=True)
class FetchArgs:
    """What a fetch may need from the config: the watchlist ``expiry`` (``yyyy-MM-dd`` or
    ``None``), the options board's ``options_n`` rows per side over ``window_minutes``, and
    ``zero_dte_n`` rows per 0DTE board, and ``cumulative_minutes`` of per-minute flow."""

    expiry: str | None = None
    options_n: int = 10
    window_minutes: int = 240
    zero_dte_n: int = 20
    cumulative_minutes: int = 390


Fetch = Callable[["FlashAlphaClient", str, FetchArgs], Awaitable[BaseModel]]


@dataclass(frozen=True, slots=True)
class Source:
    """A polled endpoint: ``name`` (the store's ``source`` column), response ``model``,
    lowest ``plan``, ``per_symbol`` (keyed by symbol) or per board (keyed by metric or
    ``-``), ``fetch(client, key, args)``."""

    name: str
    model: type[BaseModel]
    plan: str
    per_symbol: bool
    fetch: Fetch


async def _summary(client: FlashAlphaClient, key: str, args: FetchArgs) -> Any:
    return await client.flow_summary(key, args.expiry)


async def _anomaly(client: FlashAlphaClient, key: str, args: FetchArgs) -> Any:
    return await client.flow_anomaly(key, args.expiry)


async def _options_board(client: FlashAlphaClient, key: str, args: FetchArgs) -> Any:
    return await client.options_leaderboard(args.options_n, args.window_minutes)


async def _zero_dte_board(client: FlashAlphaClient, key: str, args: FetchArgs) -> Any:
    return await client.zero_dte_leaderboard(key, args.zero_dte_n)


async def _cumulative(client: FlashAlphaClient, key: str, args: FetchArgs) -> Any:
    return await client.cumulative(key, args.cumulative_minutes)


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("summary", FlowSummary, "growth", True, _summary),
        Source("anomaly", FlowAnomaly, "growth", True, _anomaly),
        Source("options_leaderboard", OptionsLeaderboard, "alpha", False, _options_board),
        Source("zero_dte_leaderboard", ZeroDteLeaderboard, "alpha", False, _zero_dte_board),
        Source("cumulative", CumulativeFlow, "alpha", True, _cumulative),
    )
}
"""Every polled source by name (`/v1/flow/summary`, `/v1/strategies/flow-anomaly`,
`/v1/flow/options/leaderboard`, `/v1/flow/zero-dte/leaderboard`,
`/v1/flow/options/{symbol}/cumulative` for the flow_inflection rule, on its own cadence)."""
