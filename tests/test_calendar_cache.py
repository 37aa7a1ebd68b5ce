"""Tests for the on-disk cache of bot.calendar's session table: read instead of running the
child process, rebuilt when unreadable or written by another exchange_calendars version,
pruned, and never a reason for the calendar to fail."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path

import pytest

from bot import calendar
from bot.calendar import CalendarError, Session, TradingCalendar

START, END = date(2026, 11, 20), date(2026, 11, 30)

# What the stand-in child prints: two sessions, the second an early close.
TABLE = [
    ["2026-11-25", "2026-11-25T14:30:00+00:00", "2026-11-25T21:00:00+00:00", False],
    ["2026-11-27", "2026-11-27T14:30:00+00:00", "2026-11-27T18:00:00+00:00", True],
]
SESSIONS = [
    Session(date(2026, 11, 25), datetime(2026, 11, 25, 14, 30, tzinfo=UTC),
            datetime(2026, 11, 25, 21, tzinfo=UTC)),
    Session(date(2026, 11, 27), datetime(2026, 11, 27, 14, 30, tzinfo=UTC),
            datetime(2026, 11, 27, 18, tzinfo=UTC), early_close=True),
]  # fmt: skip


class FakeChild:
    """Stands in for ``python -m bot.calendar`` (a real, small process): prints ``table``,
    or runs ``code`` instead; ``calls`` counts how often a session table was asked for."""

    def __init__(self, table: list[list[object]] = TABLE, code: str | None = None) -> None:
        self.table = table
        self.code = code
        self.calls = 0

    def __call__(self, module: str, *args: str) -> tuple[list[str], dict[str, str]]:
        assert module == "bot.calendar"
        self.calls += 1
        code = self.code or f"print({json.dumps(self.table)!r})"
        return [sys.executable, "-c", code], {}


FAILS = "import sys; sys.exit('the child must not run')"


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh XDG_CACHE_HOME and a fresh process state (nothing in the in-memory cache)."""
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.setattr(calendar, "_unwritable", set())
    calendar._load_sessions.cache_clear()
    yield home
    calendar._load_sessions.cache_clear()


def new_process() -> None:
    """Forget what this process built, as a new ``flowbot once`` would."""
    calendar._load_sessions.cache_clear()


def cache_files(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "flowbot").glob("calendar-*"))


def use_child(monkeypatch: pytest.MonkeyPatch, child: FakeChild) -> FakeChild:
    monkeypatch.setattr(calendar, "child_command", child)
    return child


def test_a_new_process_reads_the_file_instead_of_running_the_child(cache_home, monkeypatch):
    """The first build runs exchange_calendars and writes the file; the next process takes
    the same sessions from it, while a child would fail."""
    first = TradingCalendar("XNYS", START, END)  # the real child process
    version = metadata.version("exchange_calendars")
    assert cache_files(cache_home) == [
        f"calendar-v{calendar.CACHE_FORMAT}-XNYS-2026-11-20-2026-11-30-xcals{version}.json"
    ]
    new_process()
    child = use_child(monkeypatch, FakeChild(code=FAILS))
    second = TradingCalendar("XNYS", START, END)
    assert child.calls == 0
    assert second.sessions_between(START, END) == first.sessions_between(START, END)
    assert second.session_for(date(2026, 11, 27)).early_close  # the day after Thanksgiving


def test_the_in_process_cache_is_kept(cache_home, monkeypatch):
    """Within one process a range is built once: the file is not even read the second time."""
    child = use_child(monkeypatch, FakeChild())
    TradingCalendar("XNYS", START, END)
    for path in (cache_home / "flowbot").iterdir():
        path.write_text("not json")
    assert TradingCalendar("XNYS", START, END).sessions_between(START, END) == SESSIONS
    assert child.calls == 1


@pytest.mark.parametrize(
    "content",
    [
        b'[["2026-11-25", "2026-11-25T14:30:00+00:00"',  # cut short
        b"",
        b"\xff\xfe\x00garbage",  # not even UTF-8
        b'{"sessions": []}',  # JSON, but not a list of rows
        b'[["2026-11-25", "2026-11-25T14:30:00+00:00", "2026-11-25T21:00:00+00:00"]]',
        b'[["2026-11-25", "2026-11-25T14:30:00", "2026-11-25T21:00:00", false]]',  # naive
        b'[["2026-11-25", "2026-11-25T14:30:00+00:00", "2026-11-25T21:00:00+00:00", 0]]',
        json.dumps(TABLE[::-1]).encode(),  # out of order: bisect would answer wrongly
        b"[]",  # no session at all: the bot would think the market never opens
        json.dumps(TABLE[:1]).encode().replace(b"2026-11-25", b"2026-11-13"),  # ends too soon
    ],
    ids=[
        "truncated",
        "empty",
        "binary",
        "object",
        "short-row",
        "naive",
        "int-flag",
        "reversed",
        "no-session",
        "partial",
    ],
)
def test_a_corrupt_file_is_ignored_and_replaced(cache_home, monkeypatch, content):
    """An unreadable cache file is passed over: the child builds the table, and the file is
    overwritten with it, so the next process reads it again."""
    path = calendar._cache_path("XNYS", START, END)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    child = use_child(monkeypatch, FakeChild())
    assert TradingCalendar("XNYS", START, END).sessions_between(START, END) == SESSIONS
    assert child.calls == 1
    assert json.loads(path.read_text()) == TABLE
    new_process()
    child.code = FAILS
    assert TradingCalendar("XNYS", START, END).sessions_between(START, END) == SESSIONS


def test_an_unwritable_cache_dir_still_gives_the_sessions(cache_home, monkeypatch, caplog):
    """When the cache directory cannot be made (here XDG_CACHE_HOME is a file, which stops
    root too) the sessions still come back, and one INFO line names the directory."""
    cache_home.parent.mkdir(exist_ok=True)
    cache_home.write_text("a file, not a directory")
    child = use_child(monkeypatch, FakeChild())
    with caplog.at_level(logging.INFO, logger="flowbot.calendar"):
        assert TradingCalendar("XNYS", START, END).sessions_between(START, END) == SESSIONS
        new_process()
        assert TradingCalendar("XNYS", START, END).sessions_between(START, END) == SESSIONS
    assert child.calls == 2
    notes = [r.getMessage() for r in caplog.records if r.name == "flowbot.calendar"]
    assert len(notes) == 1
    assert str(cache_home / "flowbot") in notes[0]


def test_another_exchange_calendars_version_does_not_reuse_the_file(cache_home, monkeypatch):
    """After an upgrade of exchange_calendars the table is built again, by the new library,
    into a file of its own; the old one is left to the pruning."""
    child = use_child(monkeypatch, FakeChild())
    monkeypatch.setattr(calendar, "_library_version", lambda: "4.13.2")
    TradingCalendar("XNYS", START, END)
    new_process()
    # The new version no longer has the early close: its table must win over the old file.
    child.table = [TABLE[0], [*TABLE[1][:2], "2026-11-27T21:00:00+00:00", False]]
    monkeypatch.setattr(calendar, "_library_version", lambda: "4.14.0")
    assert not TradingCalendar("XNYS", START, END).session_for(date(2026, 11, 27)).early_close
    assert child.calls == 2
    assert [name.rsplit("-", 1)[1] for name in cache_files(cache_home)] == [
        "xcals4.13.2.json",
        "xcals4.14.0.json",
    ]


def test_old_files_are_pruned_when_a_new_one_is_written(cache_home, monkeypatch):
    """Writing a table deletes our calendar files (and stray temp files) not written for
    CACHE_MAX_AGE_SECONDS; recent ones and other files in the directory stay."""
    directory = cache_home / "flowbot"
    directory.mkdir(parents=True)
    old = datetime.now(UTC).timestamp() - calendar.CACHE_MAX_AGE_SECONDS - 60
    names = {
        "calendar-v1-XNYS-2025-01-01-2027-01-01-xcals4.13.2.json": old,  # a stale day
        "calendar-v1-XNYS-2025-01-01-2027-01-01-xcals4.13.2.json.k2j3.tmp": old,  # a crash's
        "calendar-v1-XNYS-2025-06-01-2027-12-31-xcals4.13.2.json": None,  # another user, today
        "notes.txt": old,  # not ours
    }
    for name, mtime in names.items():
        (directory / name).write_text("[]")
        if mtime is not None:
            os.utime(directory / name, (mtime, mtime))
    use_child(monkeypatch, FakeChild())
    TradingCalendar("XNYS", START, END)
    assert sorted(p.name for p in directory.iterdir()) == [
        "calendar-v1-XNYS-2025-06-01-2027-12-31-xcals4.13.2.json",
        calendar._cache_path("XNYS", START, END).name,
        "notes.txt",
    ]


def test_a_refused_exchange_is_not_cached(cache_home, monkeypatch):
    """When exchange_calendars refuses, CalendarError is raised and nothing is written, so the
    next run asks the library again."""
    refuses = "import sys; sys.stderr.write('InvalidCalendarName: XXXX'); sys.exit(2)"
    use_child(monkeypatch, FakeChild(code=refuses))
    with pytest.raises(CalendarError, match="XXXX"):
        TradingCalendar("XXXX", START, END)
    assert cache_files(cache_home) == []
