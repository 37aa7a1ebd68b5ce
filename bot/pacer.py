"""Connects :mod:`bot.cadence` to a running bot: hears the client's responses, tells the
scheduler when each poll job should run next, and explains the choice.

One :class:`Pacer` per job (``symbols`` or ``leaderboards``). With an explicit cadence in the
config it only reports it; with ``"auto"`` it aligns to the server's cache and spaces polls by
the quota left (``X-RateLimit-Remaining``) over what is left of the session.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.api.client import FlashAlphaClient
from bot.budget import CACHE_SECONDS, RESERVE, Budget
from bot.cadence import Cadence, QuotaPace

__all__ = ["Pacer", "pacers_for"]

log = logging.getLogger("flowbot.schedule")
_BOARD_PATHS = ("/v1/flow/options/leaderboard", "/v1/flow/zero-dte/leaderboard")
# The poll job's endpoints (path ends with the symbol); /cumulative runs on its own cadence.
_SYMBOL_PATHS = ("/v1/flow/summary/", "/v1/strategies/flow-anomaly/")


@dataclass
class Pacer:
    """The plan of one poll job. ``job``: ``symbols`` or ``leaderboards``; ``seconds``: the
    configured interval (or the cache period with ``auto``); ``auto``: align to the cache;
    ``requests_per_poll``: what one poll costs of the quota."""

    job: str
    seconds: float
    auto: bool
    requests_per_poll: int
    cadence: Cadence = field(init=False)
    why: str = "not polled yet"

    def __post_init__(self) -> None:
        self.cadence = Cadence(period=CACHE_SECONDS[self.job], fallback=self.seconds)

    def observe(self, path: str, sent: float, received: float, stamp: float) -> None:
        """A client observer: feed responses of this job's endpoints to the cadence."""
        mine = _BOARD_PATHS if self.job == "leaderboards" else _SYMBOL_PATHS
        if path.startswith(mine):
            self.cadence.observe(path, sent, received, stamp)

    def next_run(
        self, last_poll: datetime, now: datetime, remaining: int | None, session_end: datetime
    ) -> datetime | None:
        """When the job should run next (UTC), or ``None`` to keep the fixed interval."""
        if not self.auto:
            return None
        pace = QuotaPace(remaining, session_end.timestamp(), RESERVE).min_gap(
            now.timestamp(), self.requests_per_poll
        )
        when, self.why = self.cadence.next_poll(now.timestamp(), last_poll.timestamp(), pace)
        if when == float("inf"):
            self.why = "quota spent: waiting for the reset"
            return None
        return datetime.fromtimestamp(when, UTC)

    def symbols_due(self, watchlist: Sequence[str]) -> list[str] | None:
        """The watchlist symbols whose cache refreshes before the next planned run (a symbol
        not yet seen counts as due); ``None`` = all of them (not ``auto``, nothing learnt,
        the server does not cache, or every symbol is due), so the caller polls everything.
        Symbols on different cache phases are then each polled just after their own refresh."""
        due = self.cadence.due if self.auto else None
        if due is None:
            return None
        seen = {key.rsplit("/", 1)[-1] for key in self.cadence.phases}
        fresh = {key.rsplit("/", 1)[-1] for key in due}
        picked = [s for s in watchlist if s in fresh or s not in seen]
        return None if len(picked) == len(watchlist) else picked

    def describe(self) -> str:
        """``every 15 s (auto: …)`` for logs and ``flowbot check``."""
        if not self.auto:
            below = self.seconds < CACHE_SECONDS[self.job]
            note = " (below the server's cache period: repeats cached bodies)" if below else ""
            return f"every {self.seconds:g} s as configured{note}"
        return (
            f"auto: just after each {CACHE_SECONDS[self.job]:g} s cache refresh "
            f"(learnt from response stamps), spaced by the quota; {self.why}"
        )


def pacers_for(budget: Budget, client: FlashAlphaClient | None = None) -> dict[str, Pacer]:
    """The pacers of ``budget``'s jobs, registered as observers of ``client`` when given.
    Warns once when an explicit cadence is below the server's cache period."""
    pacers = {
        "symbols": Pacer(
            "symbols", budget.poll_seconds, budget.poll_auto, budget.symbol_requests_per_poll
        ),
        "leaderboards": Pacer(
            "leaderboards",
            budget.leaderboard_seconds,
            budget.leaderboard_auto,
            budget.leaderboard_requests_per_poll,
        ),
    }
    for name, pacer in pacers.items():
        if not pacer.auto and pacer.seconds < CACHE_SECONDS[name]:
            log.warning(
                "%s every %g s: below the server's %g s cache, so most polls return the same "
                'body; "auto" polls just after each refresh',
                name,
                pacer.seconds,
                CACHE_SECONDS[name],
            )
        if client is not None and pacer.auto:
            client.observers.append(pacer.observe)
    return pacers
