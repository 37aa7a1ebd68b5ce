"""Rule ``top_n``: a symbol enters the top N of a leaderboard, or takes the lead (#1).

Sources: `/v1/flow/options/leaderboard` (``buyers[]`` and ``sellers[]``, ranked by
|netNotional|, dollars) and `/v1/flow/zero-dte/leaderboard` for each configured ``metric``
(``entries[]`` ranked by ``value``). The first board seen in a session is the baseline: no
alerts for it. Leaving the top N is alerted only with ``alert_on_exit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from bot.api.models import ZERO_DTE_METRICS
from bot.events import Event, Severity
from bot.rules.base import DetectContext, RuleConfig, RuleSpec
from bot.snapshot import MarketSnapshot


class TopNConfig(RuleConfig):
    """``[rules.top_n]``: ``options_n`` rows per side of the options board (1..50) over
    ``window_minutes`` (1..10080); ``zero_dte_metrics`` (heat, pin_risk, abs_flow,
    charm_intensity) each watched to ``zero_dte_n`` (1..100); ``alert_on_exit`` alerts when a
    symbol leaves the top N; ``watchlist_only`` limits alerts to watchlist symbols.
    Severity: ``lead_severity`` (default ``warning``) for a new #1, ``entry_severity``
    (default ``info``) for an entry or an exit."""

    options_leaderboard: bool = True
    options_n: int = Field(5, ge=1, le=50)
    window_minutes: int = Field(240, ge=1, le=10080)
    zero_dte_metrics: list[str] = Field(default_factory=lambda: ["heat"])
    zero_dte_n: int = Field(5, ge=1, le=100)
    alert_on_exit: bool = False
    watchlist_only: bool = False
    lead_severity: Severity = Severity.WARNING
    entry_severity: Severity = Severity.INFO

    @field_validator("zero_dte_metrics")
    @classmethod
    def _known_metrics(cls, value: list[str]) -> list[str]:
        for metric in value:
            if metric not in ZERO_DTE_METRICS:
                raise ValueError(
                    f"unknown metric {metric!r}; known metrics: {', '.join(ZERO_DTE_METRICS)}"
                )
        return list(dict.fromkeys(value))


@dataclass(frozen=True, slots=True)
class Board:
    """One ranked list: ``name`` (``options:buyers``, ``zero_dte:heat``…), a title for people,
    ``ranked`` symbols best first (top N only), the row per symbol, and its UTC ``as_of``."""

    name: str
    title: str
    source: str
    side: str | None
    metric: str | None
    n: int
    ranked: tuple[str, ...]
    rows: dict[str, Any]
    as_of: datetime | None


def boards(snapshot: MarketSnapshot, cfg: TopNConfig) -> dict[str, Board]:
    """The boards ``cfg`` watches that ``snapshot`` holds, cut to their top N."""
    out: dict[str, Board] = {}
    board = snapshot.options_board
    if cfg.options_leaderboard and board is not None:
        window = board.window_minutes or cfg.window_minutes
        for side, rows in (("buyers", board.buyers), ("sellers", board.sellers)):
            top = rows[: cfg.options_n]
            out[f"options:{side}"] = Board(
                name=f"options:{side}",
                title=f"Options flow · top {side} ({window} min)",
                source="options",
                side=side,
                metric=None,
                n=cfg.options_n,
                ranked=tuple(r.symbol for r in top),
                rows={r.symbol: r for r in top},
                as_of=board.generated_utc,
            )
    for metric in cfg.zero_dte_metrics:
        zboard = snapshot.zero_dte.get(metric)
        if zboard is None:
            continue
        top = sorted(zboard.entries, key=lambda e: e.rank)[: cfg.zero_dte_n]
        out[f"zero_dte:{metric}"] = Board(
            name=f"zero_dte:{metric}",
            title=f"0DTE · {metric}",
            source="zero_dte",
            side=None,
            metric=metric,
            n=cfg.zero_dte_n,
            ranked=tuple(e.symbol for e in top),
            rows={e.symbol: e for e in top},
            as_of=zboard.as_of,
        )
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


def detect(
    prev: MarketSnapshot, curr: MarketSnapshot, cfg: RuleConfig, ctx: DetectContext
) -> list[Event]:
    """Entries, new leaders and (optionally) exits on every watched board against ``prev``."""
    assert isinstance(cfg, TopNConfig)
    before_boards = boards(prev, cfg)
    watch = set(ctx.watchlist)
    events: list[Event] = []
    for name, now_board in boards(curr, cfg).items():
        before = before_boards.get(name)
        if before is None:
            continue  # the first board of the session is the baseline
        old_rank = {s: i + 1 for i, s in enumerate(before.ranked)}
        leader = now_board.ranked[0] if now_board.ranked else None
        old_leader = before.ranked[0] if before.ranked else None
        for symbol in now_board.ranked:
            if cfg.watchlist_only and symbol not in watch:
                continue
            if symbol == leader and leader != old_leader:
                events.append(
                    _event(
                        "leaderboard_lead",
                        "lead",
                        now_board,
                        symbol,
                        ctx.now,
                        cfg.lead_severity,
                        previous_rank=old_rank.get(symbol),
                        previous_leader=old_leader,
                    )
                )
            elif symbol not in old_rank:
                events.append(
                    _event(
                        "leaderboard_entry", "top", now_board, symbol, ctx.now, cfg.entry_severity
                    )
                )
        if cfg.alert_on_exit:
            for symbol in before.ranked:
                if symbol in now_board.ranked or (cfg.watchlist_only and symbol not in watch):
                    continue
                events.append(
                    _event(
                        "leaderboard_exit",
                        "exit",
                        now_board,
                        symbol,
                        ctx.now,
                        cfg.entry_severity,
                        previous_rank=old_rank[symbol],
                        row=before.rows.get(symbol),
                    )
                )
    return events


SPEC = RuleSpec(
    name="top_n",
    config_model=TopNConfig,
    detect=detect,
    summary="a symbol enters the top N of a leaderboard or takes the lead",
)
