"""Rule ``top_n``: a symbol enters the top N of a leaderboard, or takes the lead (#1).

Sources: `/v1/flow/options/leaderboard` (``buyers[]`` and ``sellers[]``, ranked by
|netNotional|, dollars) and `/v1/flow/zero-dte/leaderboard` for each configured ``metric``
(``entries[]`` ranked by ``value``). The first board seen in a session is the baseline: no
alerts for it.

Noise control (memory per board, survives a restart: ``in``, the symbols counted as in the top
N, and ``leader``):

- Hysteresis: a symbol is *in* from the board that shows it in the top N until it falls beyond
  ``N + margin`` (or off the fetched rows). Only a symbol that was not in raises an entry, so
  one oscillating between #N and #N+1 alerts once; leaving (``alert_on_exit``) is alerted when
  it falls beyond ``N + margin``. The engine must fetch ``N + margin`` rows: :func:`rows_needed`.
- Floor: rows under the board's floor never alert (options: |net notional| under
  ``min_net_notional`` dollars; 0DTE: ``value`` under ``zero_dte_floor[metric]``). A small row
  still counts as in, so growing later inside the top N is no entry.
- Lead: a new #1 replaces the remembered leader only when it is ahead of it (its value on
  this board; #2's when it is gone) by ``lead_margin`` (a fraction); above the floor that
  raises a lead alert (instead of its entry). Two names trading #1 by a hair raise nothing,
  and the policy's cooldown keeps real swaps to one alert per ``cooldown_minutes`` per name
  and board.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from bot.api.models import ZERO_DTE_METRICS
from bot.events import Event, Severity
from bot.rules.base import DetectContext, Detection, RuleConfig, RuleSpec
from bot.snapshot import MarketSnapshot

ZERO_DTE_FLOORS: dict[str, float] = {
    "heat": 10.0,
    "pin_risk": 80.0,
    "abs_flow": 0.0,
    "charm_intensity": 0.0,
}
"""Default 0DTE floors: ``heat`` (hedge flow / net GEX, unitless) 10, ``pin_risk`` (0..100) 80,
``abs_flow`` (dollars, latest bar) and ``charm_intensity`` (dollars per hour) none (0)."""


class TopNConfig(RuleConfig):
    """``[rules.top_n]``:

    - ``options_n`` rows per side of the options board (1..50, default 5) over
      ``window_minutes`` (1..10080, default 240); ``zero_dte_metrics`` (heat, pin_risk,
      abs_flow, charm_intensity; default heat) each watched to ``zero_dte_n`` (1..100,
      default 5).
    - ``margin`` (default 3, 0..20): hysteresis in ranks; a symbol is out only beyond N + margin.
    - ``min_net_notional`` (default 1,000,000 dollars, ≥ 0): options rows with a smaller
      |net notional| never alert.
    - ``zero_dte_floor`` (metric → minimum ``value``; defaults :data:`ZERO_DTE_FLOORS`, keys
      given replace those defaults one by one): 0DTE rows under it never alert.
    - ``lead_margin`` (default 0.10, a fraction 0..1): how far ahead of the remembered leader
      a new #1 must be to count as a lead change (|net notional| or the metric's value).
    - ``alert_on_exit`` alerts when a symbol falls beyond N + margin; ``watchlist_only``
      limits alerts to watchlist symbols.
    - Severity: ``lead_severity`` (default ``warning``) for a new #1, ``entry_severity``
      (default ``info``) for an entry or an exit.
    - ``drill`` (default on): a 0DTE entry or new leader that is sent shows the symbol's top 3
      strikes from `/v1/flow/zero-dte/strike-flow` over the last ``drill_minutes`` (1..390,
      default 30); one request per alerted symbol (:mod:`bot.drill`).
    """

    options_leaderboard: bool = True
    options_n: int = Field(5, ge=1, le=50)
    window_minutes: int = Field(240, ge=1, le=10080)
    zero_dte_metrics: list[str] = Field(default_factory=lambda: ["heat"])
    zero_dte_n: int = Field(5, ge=1, le=100)
    margin: int = Field(3, ge=0, le=20)
    min_net_notional: float = Field(1_000_000.0, ge=0)
    zero_dte_floor: dict[str, float] = Field(default_factory=lambda: dict(ZERO_DTE_FLOORS))
    lead_margin: float = Field(0.10, ge=0, le=1)
    alert_on_exit: bool = False
    watchlist_only: bool = False
    lead_severity: Severity = Severity.WARNING
    entry_severity: Severity = Severity.INFO
    drill: bool = True
    drill_minutes: int = Field(30, ge=1, le=390)

    @field_validator("zero_dte_metrics")
    @classmethod
    def _known_metrics(cls, value: list[str]) -> list[str]:
        for metric in value:
            if metric not in ZERO_DTE_METRICS:
                raise ValueError(
                    f"unknown metric {metric!r}; known metrics: {', '.join(ZERO_DTE_METRICS)}"
                )
        return list(dict.fromkeys(value))

    @field_validator("zero_dte_floor")
    @classmethod
    def _known_floor_metrics(cls, value: dict[str, float]) -> dict[str, float]:
        for metric in value:
            if metric not in ZERO_DTE_METRICS:
                raise ValueError(
                    f"unknown metric {metric!r}; known metrics: {', '.join(ZERO_DTE_METRICS)}"
                )
        return {**ZERO_DTE_FLOORS, **value}


def rows_needed(cfg: TopNConfig) -> tuple[int, int]:
    """``(options n, 0DTE n)`` to request so ranks down to N + margin are known: the ``n``
    the engine passes to ``options_leaderboard`` (API max 50) and ``zero_dte_leaderboard``
    (API max 100)."""
    return min(cfg.options_n + cfg.margin, 50), min(cfg.zero_dte_n + cfg.margin, 100)


@dataclass(frozen=True, slots=True)
class Board:
    """One ranked list: ``name`` (``options:buyers``, ``zero_dte:heat``…), a title for people,
    ``ranked`` symbols best first (top N only), ``ranks`` symbol → 1-based rank of every
    fetched row (down to N + margin), the row per symbol, its UTC ``as_of``, and ``floor``
    (the minimum |net notional| in dollars, or the metric's minimum value)."""

    name: str
    title: str
    source: str
    side: str | None
    metric: str | None
    n: int
    ranked: tuple[str, ...]
    ranks: dict[str, int]
    rows: dict[str, Any]
    as_of: datetime | None
    floor: float

    def big_enough(self, symbol: str) -> bool:
        """True when ``symbol``'s row reaches the board's floor (a missing value does not)."""
        row = self.rows.get(symbol)
        if row is None:
            return False
        if self.source == "options":
            return bool(abs(row.net_notional) >= self.floor)
        return self.floor <= 0 or (row.value is not None and row.value >= self.floor)

    def size(self, symbol: str | None) -> float:
        """The ranking value of ``symbol``'s row (|net notional| or the metric value); 0 when
        absent."""
        row = self.rows.get(symbol) if symbol is not None else None
        if row is None:
            return 0.0
        value = abs(row.net_notional) if self.source == "options" else row.value
        return float(value or 0.0)


def boards(snapshot: MarketSnapshot, cfg: TopNConfig) -> dict[str, Board]:
    """The boards ``cfg`` watches that ``snapshot`` holds (every fetched row kept)."""
    out: dict[str, Board] = {}
    board = snapshot.options_board
    if cfg.options_leaderboard and board is not None:
        window = board.window_minutes or cfg.window_minutes
        for side, rows in (("buyers", board.buyers), ("sellers", board.sellers)):
            ordered = sorted(rows, key=lambda r: -abs(r.net_notional))
            out[f"options:{side}"] = Board(
                name=f"options:{side}",
                title=f"Options flow · top {side} ({window} min)",
                source="options",
                side=side,
                metric=None,
                n=cfg.options_n,
                ranked=tuple(r.symbol for r in ordered[: cfg.options_n]),
                ranks=_ranks(r.symbol for r in ordered),
                rows={r.symbol: r for r in ordered},
                as_of=board.generated_utc,
                floor=cfg.min_net_notional,
            )
    for metric in cfg.zero_dte_metrics:
        zboard = snapshot.zero_dte.get(metric)
        if zboard is None:
            continue
        ordered_entries = sorted(zboard.entries, key=lambda e: e.rank)
        out[f"zero_dte:{metric}"] = Board(
            name=f"zero_dte:{metric}",
            title=f"0DTE · {metric}",
            source="zero_dte",
            side=None,
            metric=metric,
            n=cfg.zero_dte_n,
            ranked=tuple(e.symbol for e in ordered_entries[: cfg.zero_dte_n]),
            ranks=_ranks(e.symbol for e in ordered_entries),
            rows={e.symbol: e for e in ordered_entries},
            as_of=zboard.as_of,
            floor=cfg.zero_dte_floor.get(metric, 0.0),
        )
    return out


def _ranks(symbols: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for symbol in symbols:
        out.setdefault(symbol, len(out) + 1)
    return out


def _event(
    kind: str,
    state: str,
    board: Board,
    symbol: str,
    now: datetime,
    severity: Severity,
    **extra: Any,
) -> Event:
    rank = board.ranked.index(symbol) + 1 if symbol in board.ranked else None
    context = {
        "board": board.name,
        "board_title": board.title,
        "source": board.source,
        "side": board.side,
        "metric": board.metric,
        "n": board.n,
        "rank": rank,
        "row": board.rows.get(symbol),
        "as_of": board.as_of,
        "previous_rank": None,
        "previous_leader": None,
        **extra,
    }
    return Event(
        rule="top_n",
        kind=kind,
        symbol=symbol,
        state=state,
        occurred_at=board.as_of or now,
        context=context,
        board=board.name,
        severity=severity,
    )


def _baseline(board: Board) -> dict[str, Any]:
    return {"in": sorted(board.ranked), "leader": board.ranked[0] if board.ranked else None}


def detect(
    prev: MarketSnapshot, curr: MarketSnapshot, cfg: RuleConfig, ctx: DetectContext
) -> Detection:
    """Entries, new leaders and (optionally) exits on every watched board, with hysteresis and
    floors (see the module docstring); the per-board memory updated."""
    assert isinstance(cfg, TopNConfig)
    before_boards = boards(prev, cfg)
    watch = set(ctx.watchlist)
    events: list[Event] = []
    memory: dict[str, Any] = dict(ctx.memory)
    for name, board in boards(curr, cfg).items():
        before = before_boards.get(name)
        state = memory.get(name)
        if state is None:
            if before is None:
                memory[name] = _baseline(board)  # the first board of the session
                continue
            state = _baseline(before)  # a board met without memory (upgrade): prev is the base
        old_rank = before.ranks if before is not None else {}
        was_in = set(state["in"])
        still_in = {s for s in was_in if board.ranks.get(s, math.inf) <= board.n + cfg.margin}
        entered = [s for s in board.ranked if s not in still_in]
        top = board.ranked[0] if board.ranked else None
        old_leader = state.get("leader")
        leader = top
        if top is not None and top != old_leader and old_leader in board.rows:
            ahead = board.size(top) >= board.size(old_leader) * (1 + cfg.lead_margin)
            leader = top if ahead else old_leader  # a hair ahead is no lead change
        alerted = set(watch) if cfg.watchlist_only else None

        def shown(symbol: str, alerted: set[str] | None = alerted) -> bool:
            return alerted is None or symbol in alerted

        lead = leader is not None and leader != old_leader and board.big_enough(leader)
        if lead and leader is not None and shown(leader):
            events.append(
                _event(
                    "leaderboard_lead",
                    "lead",
                    board,
                    leader,
                    ctx.now,
                    cfg.lead_severity,
                    # #1 by a hair before is no "was #1": say where it was when it was not
                    previous_rank=old_rank.get(leader) if old_rank.get(leader) != 1 else None,
                    previous_leader=old_leader,
                )
            )
        for symbol in entered:
            if (lead and symbol == leader) or not board.big_enough(symbol) or not shown(symbol):
                continue
            events.append(
                _event("leaderboard_entry", "top", board, symbol, ctx.now, cfg.entry_severity)
            )
        if cfg.alert_on_exit and before is not None:
            for symbol in sorted(was_in - still_in, key=lambda s: old_rank.get(s, math.inf)):
                if not shown(symbol):
                    continue
                events.append(
                    _event(
                        "leaderboard_exit",
                        "exit",
                        board,
                        symbol,
                        ctx.now,
                        cfg.entry_severity,
                        previous_rank=old_rank.get(symbol),
                        row=before.rows.get(symbol),
                    )
                )
        memory[name] = {"in": sorted(still_in | set(entered)), "leader": leader}
    return Detection(events, memory)


SPEC = RuleSpec(
    name="top_n",
    config_model=TopNConfig,
    detect=detect,
    summary="a symbol enters the top N of a leaderboard or takes the lead",
)
