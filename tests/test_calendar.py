"""Tests for bot.calendar: NYSE sessions, holidays, early closes, DST and when a recap is due."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from bot.calendar import NEW_YORK, CalendarError, CalendarRangeError, Session, TradingCalendar

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cal() -> TradingCalendar:
    """One explicit 2025-2027 range: tests must not depend on today's date."""
    return TradingCalendar("XNYS", start=date(2025, 6, 1), end=date(2027, 12, 31))


def ny(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    """An aware New York wall-clock instant."""
    return datetime(y, m, d, hh, mm, tzinfo=NEW_YORK)


def utc(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    """An aware UTC instant."""
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "open_utc", "close_utc", "early"),
    [
        # Friday before the spring DST change: EST, open 14:30 UTC.
        (date(2026, 3, 6), utc(2026, 3, 6, 14, 30), utc(2026, 3, 6, 21), False),
        # Monday after 2026-03-08: EDT, open 13:30 UTC.
        (date(2026, 3, 9), utc(2026, 3, 9, 13, 30), utc(2026, 3, 9, 20), False),
        # Friday before the fall change on 2026-11-01: still EDT.
        (date(2026, 10, 30), utc(2026, 10, 30, 13, 30), utc(2026, 10, 30, 20), False),
        # Monday after: EST again.
        (date(2026, 11, 2), utc(2026, 11, 2, 14, 30), utc(2026, 11, 2, 21), False),
        # Day after Thanksgiving: early close at 13:00 ET = 18:00 UTC.
        (date(2026, 11, 27), utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18), True),
        # Christmas Eve: early close too.
        (date(2026, 12, 24), utc(2026, 12, 24, 14, 30), utc(2026, 12, 24, 18), True),
    ],
    ids=[
        "pre-spring-dst",
        "post-spring-dst",
        "pre-fall-dst",
        "post-fall-dst",
        "black-friday",
        "christmas-eve",
    ],
)
def test_session_times(cal, day, open_utc, close_utc, early):
    """Open/close are the right UTC instants across DST changes and on early-close days."""
    s = cal.session_for(day)
    assert s == Session(day, open_utc, close_utc, early)
    assert s.open_ny.time() == time(9, 30)
    assert s.close_ny.time() == (time(13) if early else time(16))


@pytest.mark.parametrize(
    "day",
    [date(2026, 11, 26), date(2026, 12, 25), date(2026, 3, 7), date(2026, 3, 8), date(2026, 11, 1)],
    ids=["thanksgiving", "christmas", "saturday", "sunday-dst-spring", "sunday-dst-fall"],
)
def test_no_session_on_holidays_and_weekends(cal, day):
    """Holidays and weekends have no session."""
    assert cal.session_for(day) is None


@pytest.mark.parametrize(
    ("now", "due"),
    [
        # Thanksgiving afternoon and evening: nothing is due (Wednesday's window has ended).
        (ny(2026, 11, 26, 16, 10), None),
        (ny(2026, 11, 26, 18), None),
        # Early close 13:00 ET: not due at 13:04, due at 13:05 and later that day.
        (ny(2026, 11, 27, 12, 59), None),
        (ny(2026, 11, 27, 13, 4), None),
        (ny(2026, 11, 27, 13, 5), date(2026, 11, 27)),
        (ny(2026, 11, 27, 16, 5), date(2026, 11, 27)),
        # Weekend after: nothing.
        (ny(2026, 11, 28, 12), None),
        (ny(2026, 11, 29, 17), None),
        # A bot started at 17:00 on a normal day still gets that day's session.
        (ny(2026, 11, 30, 17), date(2026, 11, 30)),
        (
            ny(
                2026,
                11,
                30,
                16,
                4,
            ),
            None,
        ),
        (ny(2026, 11, 30, 23, 59), date(2026, 11, 30)),
        # Next morning the old recap is no longer due.
        (ny(2026, 12, 1, 8), None),
        # DST weeks: due at 16:05 ET whatever the UTC offset.
        (utc(2026, 3, 6, 21, 5), date(2026, 3, 6)),
        (utc(2026, 3, 9, 20, 5), date(2026, 3, 9)),
        (utc(2026, 3, 9, 20, 4), None),
        (utc(2026, 11, 2, 21, 5), date(2026, 11, 2)),
        (utc(2026, 11, 2, 20, 5), None),
    ],
)
def test_recap_due(cal, now, due):
    """recap_due returns the session from close + 5 min until New York midnight, else None."""
    session = cal.recap_due(now, delay_minutes=5)
    assert (session.date if session else None) == due


def test_recap_due_started_at_17(cal):
    """A bot started at 17:00 ET sends that day's recap: recap_due returns today's session."""
    session = cal.recap_due(ny(2026, 6, 15, 17), delay_minutes=5)
    assert session is not None
    assert session.date == date(2026, 6, 15)


@pytest.mark.parametrize(
    ("now", "open_"),
    [
        (ny(2026, 3, 9, 9, 29), False),
        (ny(2026, 3, 9, 9, 30), True),
        (ny(2026, 3, 9, 15, 59), True),
        (ny(2026, 3, 9, 16), False),
        (ny(2026, 11, 27, 12, 59), True),
        (ny(2026, 11, 27, 13), False),
        (ny(2026, 11, 26, 11), False),
        (ny(2026, 3, 8, 11), False),
    ],
)
def test_is_open(cal, now, open_):
    """is_open is true from the open (inclusive) to the close (exclusive) on session days."""
    assert cal.is_open(now) is open_
    assert (cal.session_at(now) is not None) is open_


@pytest.mark.parametrize(
    ("now", "last", "nxt"),
    [
        # Thanksgiving: the last close was Wednesday, the next open Friday.
        (ny(2026, 11, 26, 12), date(2026, 11, 25), date(2026, 11, 27)),
        # During Friday's session: last closed is still Wednesday; next is Monday.
        (ny(2026, 11, 27, 10), date(2026, 11, 25), date(2026, 11, 30)),
        # Exactly at the early close: that session counts as closed.
        (ny(2026, 11, 27, 13), date(2026, 11, 27), date(2026, 11, 30)),
        # Sunday of the spring DST change.
        (ny(2026, 3, 8, 12), date(2026, 3, 6), date(2026, 3, 9)),
    ],
)
def test_last_closed_and_next_session(cal, now, last, nxt):
    """last_closed_session is the latest close ≤ now; next_session the first open after now."""
    assert cal.last_closed_session(now).date == last
    assert cal.next_session(now).date == nxt


@pytest.mark.parametrize(
    ("day", "at", "expected"),
    [
        (date(2026, 3, 6), time(16, 30), utc(2026, 3, 6, 21, 30)),
        (date(2026, 3, 9), time(16, 30), utc(2026, 3, 9, 20, 30)),
        (date(2026, 11, 27), time(16, 30), utc(2026, 11, 27, 21, 30)),
        # An 'at' before the close waits for the close.
        (date(2026, 3, 9), time(15), utc(2026, 3, 9, 20)),
    ],
)
def test_digest_time(cal, day, at, expected):
    """digest_time is New York wall time on the session date, as UTC, never before the close."""
    assert cal.digest_time(cal.session_for(day), at) == expected


@pytest.mark.parametrize(
    ("day", "weekly_on", "sends"),
    [
        (date(2026, 3, 9), "", True),
        (date(2026, 3, 13), "fri", True),
        (date(2026, 3, 12), "fri", False),
        # Good Friday 2026-04-03 is a holiday: Thursday sends the weekly digest.
        (date(2026, 4, 2), "fri", True),
        (date(2026, 3, 9), "Monday", True),
    ],
)
def test_weekly_digest_session(cal, day, weekly_on, sends):
    """The weekly digest goes on the chosen weekday, or the last session before it if a holiday."""
    assert cal.is_weekly_digest_session(cal.session_for(day), weekly_on) is sends


def test_errors(cal):
    """Naive datetimes, out-of-range dates and unknown weekdays raise clear errors."""
    with pytest.raises(ValueError, match="naive"):
        cal.is_open(datetime(2026, 3, 9, 10))
    with pytest.raises(CalendarRangeError, match="outside"):
        cal.session_for(date(2030, 1, 2))
    with pytest.raises(ValueError, match="unknown weekday"):
        cal.is_weekly_digest_session(cal.session_for(date(2026, 3, 9)), "funday")


def test_default_range_covers_two_years_ahead():
    """The default range reaches beyond the library's one-year default."""
    today = date.today()
    c = TradingCalendar()
    assert c.start < today < c.end
    assert (c.end - today).days >= 700


def test_sessions_between(cal):
    """sessions_between lists the week's sessions, skipping the holiday."""
    days = [s.date for s in cal.sessions_between(date(2026, 11, 23), date(2026, 11, 29))]
    assert days == [date(2026, 11, d) for d in (23, 24, 25, 27)]


def test_sessions_come_from_a_child_process(tmp_path):
    """Building a calendar leaves pandas and exchange_calendars out of this process."""
    code = (
        "import sys\n"
        "from datetime import date\n"
        "from bot.calendar import TradingCalendar\n"
        "c = TradingCalendar(start=date(2026, 1, 1), end=date(2026, 12, 31))\n"
        "assert c.session_for(date(2026, 11, 27)).early_close\n"
        "print(sorted({'pandas', 'exchange_calendars'} & set(sys.modules)))\n"
    )
    # An empty cache of its own, so the child process does run.
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    assert done.stdout.strip() == "[]"
    assert len(list((tmp_path / "flowbot").glob("calendar-*.json"))) == 1


def test_unknown_exchange():
    """An exchange code exchange_calendars does not know raises CalendarError naming it."""
    with pytest.raises(CalendarError, match="XXXX"):
        TradingCalendar("XXXX", start=date(2026, 1, 1), end=date(2026, 12, 31))
