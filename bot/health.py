"""What the bot has learned about its sources during a run, and saying each problem once.

The API page prescribes a reaction per error: 401 stops polling, 403 disables the source,
404 drops the symbol, 429 pauses until the quota resets, 5xx / malformed skip the source for
this cycle. This module holds that state and logs each new condition once, never a secret.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from bot.api.errors import (
    ApiError,
    AuthError,
    BadRequest,
    MalformedResponse,
    QuotaExceeded,
    SymbolNotFound,
    TierRestricted,
    Unavailable,
)

__all__ = ["SourceHealth"]

log = logging.getLogger("flowbot.health")


class SourceHealth:
    """Per-run state of every source (``summary``, ``anomaly``, ``options_leaderboard``,
    ``zero_dte_leaderboard``) and symbol. Times are UTC."""

    AUTH_RETRY = timedelta(minutes=10)
    """After a 401 the key is tried again this long later (someone may have fixed it)."""

    def __init__(self) -> None:
        self.auth_failed = False
        self.auth_retry_at: datetime | None = None
        self.disabled: dict[str, str] = {}  # source → required plan
        self.current_plan: dict[str, str | None] = {}  # source → the key's plan (403 body)
        self.unknown_symbols: set[str] = set()
        self.paused_until: datetime | None = None
        self.failures: dict[tuple[str, str], int] = {}
        self._said: set[tuple[str, ...]] = set()

    def once(self, level: int, key: tuple[str, ...], message: str, *args: object) -> None:
        """Log ``message`` the first time ``key`` is seen this run."""
        if key not in self._said:
            self._said.add(key)
            log.log(level, message, *args)

    def may_request(self, source: str, now: datetime, symbol: str | None = None) -> bool:
        """False when the key was rejected (401; one request is let through every
        :attr:`AUTH_RETRY`), polling is paused (429), the source disabled (403) or the symbol
        unknown (404)."""
        if self.auth_failed:
            if self.auth_retry_at is None or now < self.auth_retry_at:
                return False
            self.auth_retry_at = now + self.AUTH_RETRY  # this request is the retry
        if source in self.disabled:
            return False
        if self.paused_until is not None and now < self.paused_until:
            return False
        return symbol is None or symbol not in self.unknown_symbols

    def ok(self, source: str, key: str) -> None:
        """A successful response: clears the failure streak (and says it recovered); a key
        that was rejected works again."""
        if self.auth_failed:
            self.auth_failed, self.auth_retry_at = False, None
            self._said.discard(("auth",))
            log.info("FlashAlpha accepts the API key again: polling resumed")
        if self.failures.pop((source, key), 0):
            log.info("%s %s: recovered", source, key)
            self._said.discard(("down", source, key))

    def failed(self, source: str, key: str, error: BaseException, now: datetime) -> None:
        """React to ``error`` from ``source`` for ``key`` (a symbol, metric or ``-``)."""
        if isinstance(error, AuthError):
            self.auth_failed = True
            self.auth_retry_at = now + self.AUTH_RETRY
            self.once(
                logging.ERROR,
                ("auth",),
                "FlashAlpha rejected the API key (HTTP 401): polling stopped, tried again "
                "every 10 min. Set FLASHALPHA_API_KEY to a valid key.",
            )
        elif isinstance(error, TierRestricted):
            required = (error.required_plan or "a higher plan").strip()
            self.disabled[source] = required
            self.current_plan[source] = error.current_plan
            self.once(
                logging.WARNING,
                ("tier", source),
                "%s needs the %s plan (current plan: %s): source disabled, the rest keeps running",
                source,
                required,
                error.current_plan or "unknown",
            )
        elif isinstance(error, SymbolNotFound):
            self.unknown_symbols.add(key)
            self.once(logging.WARNING, ("404", key), "%s: symbol not found, skipped", key)
        elif isinstance(error, QuotaExceeded):
            # Wait for the later of what the server said (reset_at, Retry-After); a minute if
            # it said neither.
            hints = [error.reset_at] if error.reset_at else []
            if error.retry_after is not None:
                hints.append(now + timedelta(seconds=error.retry_after))
            self.paused_until = max(hints or [now + timedelta(minutes=1)]).astimezone(UTC)
            self.once(
                logging.WARNING,
                ("429", self.paused_until.isoformat()),
                "daily API quota spent: paused until %s",
                self.paused_until.isoformat(),
            )
        elif isinstance(error, BadRequest):
            self.disabled[source] = "a config fix"
            self.once(logging.ERROR, ("400", source), "%s: %s (check the config)", source, error)
        elif isinstance(error, (Unavailable, MalformedResponse, ApiError)):
            streak = self.failures.get((source, key), 0) + 1
            self.failures[(source, key)] = streak
            self.once(
                logging.WARNING,
                ("down", source, key),
                "%s %s: %s; keeping the previous snapshot",
                source,
                key,
                error,
            )
        else:
            log.exception("%s %s: unexpected error", source, key, exc_info=error)

    def note_label(self, field: str, value: str | None, known: frozenset[str]) -> None:
        """Log once when a label the API page does not document shows up (kept as text)."""
        if value is not None and value not in known:
            self.once(
                logging.WARNING,
                ("label", field, value),
                "new %s label %r kept as text",
                field,
                value,
            )
