"""Errors of the FlashAlpha API, one class per documented status, as the bot must react to them.

Messages carry the endpoint path, the status and the server's own ``error``/``message`` text;
never the API key (it travels only in the ``X-Api-Key`` request header).
"""

from __future__ import annotations

from datetime import datetime

__all__ = [
    "ApiError",
    "AuthError",
    "BadRequest",
    "MalformedResponse",
    "QuotaExceeded",
    "SymbolNotFound",
    "TierRestricted",
    "Unavailable",
    "outcome",
]


class ApiError(Exception):
    """Base of every API failure. ``path`` is the endpoint path, ``status`` the HTTP status
    (``None`` for a network failure or timeout)."""

    def __init__(self, message: str, *, path: str, status: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.status = status


class AuthError(ApiError):
    """401: the API key is missing or wrong. Polling stops; the bot says so once."""


class TierRestricted(ApiError):
    """403 ``tier_restricted``: the plan is below ``required_plan`` for this endpoint."""

    def __init__(
        self, message: str, *, path: str, current_plan: str | None, required_plan: str | None
    ) -> None:
        super().__init__(message, path=path, status=403)
        self.current_plan = current_plan
        self.required_plan = required_plan


class SymbolNotFound(ApiError):
    """404 ``symbol_not_found``: no data for the symbol. It is skipped and warned about once."""


class BadRequest(ApiError):
    """400 (``invalid_expiry``, ``bar_unavailable``): a config mistake, not retried."""


class QuotaExceeded(ApiError):
    """429: the daily quota is spent. ``retry_after`` seconds (``Retry-After``) and/or
    ``reset_at`` (UTC) say when requests may resume."""

    def __init__(
        self,
        message: str,
        *,
        path: str,
        retry_after: float | None,
        reset_at: datetime | None,
    ) -> None:
        super().__init__(message, path=path, status=429)
        self.retry_after = retry_after
        self.reset_at = reset_at


class Unavailable(ApiError):
    """5xx, timeout or network failure that outlasted the in-cycle retries: transient."""


class MalformedResponse(ApiError):
    """A 200 whose body is not JSON or does not fit the model: logged and skipped."""


_OUTCOMES: tuple[tuple[type[ApiError], str], ...] = (
    (AuthError, "auth"),
    (TierRestricted, "tier"),
    (SymbolNotFound, "not_found"),
    (QuotaExceeded, "quota"),
    (BadRequest, "bad_request"),
    (MalformedResponse, "malformed"),
    (ApiError, "unavailable"),
)


def outcome(error: BaseException) -> str:
    """A short label for what a request failed with (the metrics' ``outcome``): ``auth``,
    ``tier``, ``not_found``, ``quota``, ``bad_request``, ``malformed``, ``unavailable`` for
    the API's errors, ``error`` for anything else."""
    return next((name for kind, name in _OUTCOMES if isinstance(error, kind)), "error")
