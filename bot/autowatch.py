"""Auto-watch: symbols entering chosen leaderboards join the session's watchlist until the close.

``[watchlist] auto_from`` names boards (``options:buyers``, ``options:sellers``,
``zero_dte:<metric>``); a symbol seen in a board's top N (``[rules.top_n] options_n`` /
``zero_dte_n``) at or above the board's floor (``min_net_notional`` / ``zero_dte_floor``), and
not on the configured watchlist, joins it, at most ``auto_max`` per session. From then on it
gets the summary and anomaly polls (and the rules) of a watchlist symbol, as long as the
request budget allows: :func:`bot.budget.plan_budget` says how many auto symbols fit the
plan's quota (``Budget.auto_symbols``) and only the best-ranked that many are polled, so the
lowest-ranked drop first when the quota is short.

The list is per session and stored like rule memory: one ``SnapshotRow(source="auto",
key="-")`` written with the cycle's snapshots, read back after a restart; the recap lists the
symbols and why they joined.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.api.models import ZERO_DTE_METRICS
from bot.rules.top_n import TopNConfig, boards
from bot.snapshot import MarketSnapshot
from bot.store import SnapshotRow

__all__ = ["AUTO_BOARDS", "AUTO_SOURCE", "AutoWatch", "AutoWatchlist", "auto_from_rows"]

log = logging.getLogger("flowbot.autowatch")

AUTO_SOURCE = "auto"
"""``source`` of the stored auto-watch row (key ``-``)."""

AUTO_BOARDS = ("options:buyers", "options:sellers", *(f"zero_dte:{m}" for m in ZERO_DTE_METRICS))
"""The boards ``auto_from`` may name."""


@dataclass(frozen=True, slots=True)
class AutoWatch:
    """One auto-watched symbol: the ``board`` it entered, its ``rank`` there (1 = best) and
    ``since`` (UTC, the tick that saw it)."""

    symbol: str
    board: str
    rank: int
    since: datetime

    def to_json(self) -> dict[str, str | int]:
        """The stored form (JSON-ready)."""
        return {
            "symbol": self.symbol,
            "board": self.board,
            "rank": self.rank,
            "since": self.since.isoformat(),
        }


class AutoWatchlist:
    """The session's auto-watched symbols (engine state; not thread-safe).

    ``auto_from`` boards, at most ``auto_max`` symbols, ``polled`` of them polled (the
    budget's ``auto_symbols``); ``top_n`` gives each board's N and floor; ``watchlist`` the
    configured symbols, never auto-watched."""

    def __init__(
        self,
        auto_from: Sequence[str],
        *,
        auto_max: int,
        polled: int,
        top_n: TopNConfig,
        watchlist: Sequence[str],
    ) -> None:
        self.auto_from = list(auto_from)
        self.auto_max = auto_max
        self.polled = min(polled, auto_max)
        self.watchlist = list(watchlist)
        metrics = [b.split(":", 1)[1] for b in auto_from if b.startswith("zero_dte:")]
        self._cfg = top_n.model_copy(
            update={
                "options_leaderboard": any(b.startswith("options:") for b in auto_from),
                "zero_dte_metrics": metrics,
            }
        )
        self.entries: list[AutoWatch] = []

    def load(self, rows: Iterable[SnapshotRow]) -> None:
        """Replace the list by the one stored in a session's ``rows`` (none → empty); a row
        that does not parse is logged and ignored."""
        self.entries = []
        for row in rows:
            if row.source != AUTO_SOURCE:
                continue
            try:
                self.entries = [
                    AutoWatch(e["symbol"], e["board"], int(e["rank"]), _utc(e["since"]))
                    for e in row.payload.get("symbols", [])
                ]
            except (KeyError, TypeError, ValueError):
                log.warning("stored auto-watch list does not parse: starting empty")

    def update(self, snapshot: MarketSnapshot, now: datetime) -> list[AutoWatch]:
        """Admit the symbols ``snapshot``'s ``auto_from`` boards show in their top N (above the
        floor), best rank first, up to ``auto_max``; returns those added (``now`` UTC)."""
        if not self.auto_from or len(self.entries) >= self.auto_max:
            return []
        known = {*self.watchlist, *(e.symbol for e in self.entries)}
        seen = boards(snapshot, self._cfg)
        candidates = sorted(
            (
                (board.ranks[symbol], self.auto_from.index(name), symbol, name)
                for name in self.auto_from
                if (board := seen.get(name)) is not None
                for symbol in board.ranked
                if board.big_enough(symbol)
            ),
        )
        added: list[AutoWatch] = []
        for rank, _, symbol, name in candidates:
            if symbol in known or len(self.entries) >= self.auto_max:
                continue
            known.add(symbol)
            entry = AutoWatch(symbol, name, rank, now)
            self.entries.append(entry)
            added.append(entry)
            log.info("auto-watch: %s entered %s at #%d; polled until the close", symbol, name, rank)
        return added

    def symbols(self) -> list[str]:
        """The auto symbols to poll: the best-ranked :attr:`polled` (ties: earlier first)."""
        best = sorted(self.entries, key=lambda e: (e.rank, e.since))[: self.polled]
        return [e.symbol for e in self.entries if e in best]

    def rows(self, session: str, now: datetime) -> list[SnapshotRow]:
        """The stored form for ``commit_cycle(snapshots=...)`` (none while the list is empty,
        so a session without auto-watch stores nothing)."""
        if not self.entries:
            return []
        payload = {"symbols": [e.to_json() for e in self.entries]}
        return [SnapshotRow(AUTO_SOURCE, "-", session, now, payload)]


def auto_from_rows(rows: Iterable[SnapshotRow]) -> list[AutoWatch]:
    """The auto-watch list stored in a session's ``rows`` (for the recap); empty when none."""
    watch = AutoWatchlist((), auto_max=0, polled=0, top_n=TopNConfig(), watchlist=())
    watch.load(rows)
    return watch.entries


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text)
