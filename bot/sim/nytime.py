"""New York session-time helpers: the regular session is 09:30-16:00 America/New_York."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
SESSION_MINUTES = 390  # 09:30-16:00


def session_open(d: date) -> datetime:
    """09:30 New York on ``d`` as aware UTC."""
    return datetime.combine(d, time(9, 30), NY).astimezone(UTC)


def session_close(d: date) -> datetime:
    """16:00 New York on ``d`` as aware UTC."""
    return datetime.combine(d, time(16, 0), NY).astimezone(UTC)


def ny_date(t: datetime) -> date:
    """The New York calendar date of aware instant ``t``."""
    return t.astimezone(NY).date()


def is_trading_day(d: date) -> bool:
    """Weekdays only (the sandbox has no holiday calendar)."""
    return d.weekday() < 5


def previous_trading_day(d: date) -> date:
    """The last weekday strictly before ``d``."""
    d -= timedelta(days=1)
    while not is_trading_day(d):
        d -= timedelta(days=1)
    return d


def parse_ny_time(text: str, session_date: date) -> datetime:
    """``"HH:MM"``/``"HH:MM:SS"`` = New York time on ``session_date``; anything else is parsed
    as ISO-8601 (a trailing ``Z`` or offset; naive = UTC). Returns aware UTC."""
    text = text.strip()
    if len(text) <= 8 and ":" in text and "T" not in text:
        t = time.fromisoformat(text)
        return datetime.combine(session_date, t, NY).astimezone(UTC)
    return parse_iso(text)


def parse_iso(text: str) -> datetime:
    """Parse ISO-8601 (``Z`` accepted; naive = UTC) into aware UTC."""
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def iso_z(t: datetime) -> str:
    """Aware instant -> ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
