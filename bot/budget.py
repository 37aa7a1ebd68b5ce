"""The day's request estimate for a config against the plan's daily quota, and a cadence that fits.

Quotas are per UTC day (API page): Free 5, Basic 250, Growth 2,500, Alpha unlimited. A watchlist
of 20 symbols × 2 endpoints every 30 s over a 390-minute session is 31,200 requests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from bot.api.sources import SOURCES, FetchArgs
from bot.rules.flow_inflection import FlowInflectionConfig
from bot.rules.top_n import TopNConfig, rows_needed
from bot.settings import PLAN_QUOTAS, Settings, plan_allows

__all__ = ["Budget", "PlannedSources", "plan_budget", "sources_for"]

SESSION_MINUTES = 390
CACHE_SECONDS = {"symbols": 15.0, "leaderboards": 30.0}
"""The API's cache periods: polling faster returns the same body (API page)."""
RESERVE = 0.1  # kept back for `flowbot check`, the recap's fresh poll and restarts


@dataclass(frozen=True, slots=True)
class Budget:
    """How a config spends the day's requests.

    - ``symbol_requests_per_poll``: watchlist symbols (and the ``auto_symbols``) × symbol
      endpoints the plan allows.
    - ``leaderboard_requests_per_poll``: leaderboard endpoints the plan allows.
    - ``estimate``: requests over one session at the configured cadence.
    - ``quota``: the plan's daily quota (``None`` = unlimited).
    - ``poll_seconds`` / ``leaderboard_seconds``: the cadence to use, stretched when the
      configured one would spend more than the quota less a 10% reserve.
    - ``skipped``: sources left out because the plan does not include them.
    - ``stretched``: the cadence was slowed to fit the quota.
    - ``poll_auto`` / ``leaderboard_auto``: the config says ``"auto"`` (:mod:`bot.cadence`
      aligns polls to the cache; the seconds above are then the cache period, or the quota's
      spacing when that is longer).
    - ``auto_symbols``: auto-watched symbols (``[watchlist] auto_from``) the quota allows,
      counted in ``estimate`` as if polled all session (``auto_max`` at most). When the quota
      is short they are dropped before the cadence is slowed (the engine polls the
      best-ranked that many, :mod:`bot.autowatch`).
    """

    symbol_requests_per_poll: int
    leaderboard_requests_per_poll: int
    estimate: int
    quota: int | None
    poll_seconds: float
    leaderboard_seconds: float
    skipped: tuple[str, ...]
    stretched: bool
    poll_auto: bool = False
    leaderboard_auto: bool = False
    auto_symbols: int = 0


def _estimate(per_poll: int, per_board: int, poll_s: float, board_s: float) -> int:
    seconds = SESSION_MINUTES * 60
    return math.ceil(seconds / poll_s) * per_poll + math.ceil(seconds / board_s) * per_board


class PlannedSources(NamedTuple):
    """What a config polls on its plan: ``symbol`` sources (``summary``, ``anomaly``) and
    ``board`` sources (``options_leaderboard``, ``zero_dte_leaderboard:<metric>``), and the
    ``skipped`` ones the plan does not include (names as in :data:`bot.api.sources.SOURCES`,
    a 0DTE board with its metric)."""

    symbol: list[str]
    board: list[str]
    skipped: list[str]


def sources_for(settings: Settings) -> PlannedSources:
    """The :class:`PlannedSources` of this config on its ``[flashalpha] plan``."""
    plan = settings.flashalpha.plan
    top_n = settings.rule_config("top_n", TopNConfig)
    wanted_symbol = ["summary", "anomaly"]
    wanted_board: list[str] = []
    if top_n.enabled and top_n.options_leaderboard:
        wanted_board.append("options_leaderboard")
    if top_n.enabled:
        wanted_board += [f"zero_dte_leaderboard:{m}" for m in top_n.zero_dte_metrics]
    for board in settings.watchlist.auto_from:  # auto-watch reads these boards too
        kind, _, name = board.partition(":")
        source = "options_leaderboard" if kind == "options" else f"zero_dte_leaderboard:{name}"
        if source not in wanted_board:
            wanted_board.append(source)
    skipped = [
        s
        for s in wanted_symbol + wanted_board
        if not plan_allows(plan, SOURCES[s.split(":")[0]].plan)
    ]
    return PlannedSources(
        symbol=[s for s in wanted_symbol if s not in skipped],
        board=[s for s in wanted_board if s not in skipped],
        skipped=skipped,
    )


def fetch_args(settings: Settings) -> FetchArgs:
    """What the sources' fetches need from ``settings``: the watchlist's expiry, each board's
    rows (the top_n rule's N plus its hysteresis margin) and window, and the flow_inflection
    rule's window of per-minute flow."""
    top_n = settings.rule_config("top_n", TopNConfig)
    options_rows, zero_dte_rows = rows_needed(top_n)
    inflection = settings.rule_config("flow_inflection", FlowInflectionConfig)
    return FetchArgs(
        expiry=settings.watchlist.expiry,
        options_n=options_rows,
        window_minutes=top_n.window_minutes,
        zero_dte_n=zero_dte_rows,
        cumulative_minutes=inflection.window_minutes,
    )


def first_cycle(settings: Settings) -> list[tuple[str, str]]:
    """The requests of a first poll of everything, as ``(source, key)``: each source of each
    configured watchlist symbol, then each board (key: its 0DTE metric, or ``-``). The
    session's auto-watched symbols are not known before the store is open, so not here."""
    symbol_sources, board_sources, _ = sources_for(settings)
    jobs = [(s, symbol) for symbol in settings.watchlist.symbols for s in symbol_sources]
    return jobs + [board_job(board) for board in board_sources]


def board_job(board: str) -> tuple[str, str]:
    """``(source, key)`` of a board source: ``zero_dte_leaderboard:heat`` is
    ``("zero_dte_leaderboard", "heat")``, ``options_leaderboard`` is keyed ``-``."""
    source, _, key = board.partition(":")
    return source, key or "-"


def plan_budget(settings: Settings) -> Budget:
    """The :class:`Budget` of ``settings`` on its ``[flashalpha] plan``."""
    symbol_sources, board_sources, skipped = sources_for(settings)
    per_poll = len(settings.watchlist.symbols) * len(symbol_sources)
    per_board = len(board_sources)
    schedule = settings.schedule
    poll_auto, board_auto = schedule.poll_seconds == "auto", schedule.leaderboard_seconds == "auto"
    poll_s = CACHE_SECONDS["symbols"] if poll_auto else float(schedule.poll_seconds)
    board_s = CACHE_SECONDS["leaderboards"] if board_auto else float(schedule.leaderboard_seconds)
    estimate = _estimate(per_poll, per_board, poll_s, board_s)
    quota = PLAN_QUOTAS[settings.flashalpha.plan]
    watch = settings.watchlist
    auto = watch.auto_max if watch.auto_from and board_sources and symbol_sources else 0
    per_auto = _estimate(len(symbol_sources), 0, poll_s, board_s)  # one auto symbol's session
    if quota is not None and auto:  # drop auto symbols before slowing the cadence
        room = quota * (1 - RESERVE) - estimate
        auto = min(auto, max(0, math.floor(room / per_auto)))
    per_poll += auto * len(symbol_sources)
    estimate += auto * per_auto
    stretched = False
    if quota is not None and estimate > quota * (1 - RESERVE):
        # Scale both cadences by the same factor: the watchlist keeps its shape, only slower.
        factor = estimate / (quota * (1 - RESERVE))
        poll_s, board_s = poll_s * factor, board_s * factor
        stretched = True
    return Budget(
        per_poll,
        per_board,
        estimate,
        quota,
        poll_s,
        board_s,
        tuple(skipped),
        stretched,
        poll_auto,
        board_auto,
        auto,
    )
