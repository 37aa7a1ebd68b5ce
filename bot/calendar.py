"""The exchange trading calendar (NYSE by default): sessions, early closes, when a recap is due.

Built on ``exchange_calendars``, which is run in a short-lived child process
(``python -m bot.calendar``): it hands back the session table as plain dates and times, so
pandas and exchange_calendars (about 50 MB) never load into the long-running bot. The table is
kept on disk too, in ``$XDG_CACHE_HOME/flowbot/`` (``~/.cache/flowbot/`` when unset), one file
per exchange, range and exchange_calendars version, so a ``flowbot once`` from cron runs the
child (about 0.6 s of a full core) only once a day; deleting those files is safe, and a cache
that cannot be read or written is passed over (see :func:`cache_dir`). Every method
takes and returns *aware* datetimes; instants are UTC (``*_utc``) unless a name says New York
(``*_ny``). A naive datetime is rejected, because guessing its zone is how a recap ends up an
hour late after a DST change.

Config keys that drive the callers (read by the scheduler, not here):
``[recap] enabled, delay_minutes`` and ``[digest] enabled, at = "16:30", weekly_on``.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

from bot.child import child_command

__all__ = [
    "NEW_YORK",
    "WEEKDAYS",
    "CalendarError",
    "CalendarRangeError",
    "Session",
    "TradingCalendar",
    "cache_dir",
]

log = logging.getLogger("flowbot.calendar")

NEW_YORK = ZoneInfo("America/New_York")

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Names accepted by ``[digest] weekly_on`` (index = ``date.weekday()``)."""


class CalendarRangeError(ValueError):
    """A date or instant outside the range the calendar was built for (``start``..``end``)."""


class CalendarError(ValueError):
    """``exchange_calendars`` refused the request (an unknown exchange code, a range outside
    the exchange's data); ``str()`` carries its message."""


CHILD_TIMEOUT_SECONDS = 120.0
"""How long the child process building a session table may take (it needs about 1 s)."""

CACHE_FORMAT = 1
"""Version of the cache files' name and content (the child's JSON rows); part of the key, so
bumping it leaves the old files unread until they are pruned."""

CACHE_MAX_AGE_SECONDS = 3 * 86400.0
"""Calendar cache files not written for this long are deleted when a new one is written (the
default range slides daily, so each day has a new key and yesterday's file is dead)."""


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session.

    - ``date``: the session's New York calendar date.
    - ``open_utc`` / ``close_utc``: aware UTC instants of the open and the close.
    - ``early_close``: ``True`` on a shortened day (e.g. 13:00 ET the day after Thanksgiving).
    """

    date: date
    open_utc: datetime
    close_utc: datetime
    early_close: bool = False

    @property
    def open_ny(self) -> datetime:
        """The open as an aware America/New_York datetime (09:30 ET on XNYS)."""
        return self.open_utc.astimezone(NEW_YORK)

    @property
    def close_ny(self) -> datetime:
        """The close as an aware America/New_York datetime (16:00 ET, 13:00 ET when early)."""
        return self.close_utc.astimezone(NEW_YORK)

    @property
    def minutes(self) -> int:
        """Length of the session in minutes (390 on a full NYSE day, 210 on an early close)."""
        return int((self.close_utc - self.open_utc).total_seconds() // 60)


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive datetime {now!r}: pass an aware datetime (UTC or New York)")
    return now.astimezone(UTC)


def _session_rows(exchange: str, start: date, end: date) -> list[list[object]]:
    """The session table of ``exchange`` over ``start..end`` straight from exchange_calendars:
    one ``[date, open UTC, close UTC, early close]`` row per session (ISO text and a bool).
    Runs in the child process; raises what exchange_calendars raises."""
    with warnings.catch_warnings():
        # exchange_calendars 4.13 trips a pandas 3 deprecation internally; not ours to fix.
        warnings.filterwarnings("ignore", message="Series.values returning")
        import exchange_calendars as xcals

        cal = xcals.get_calendar(exchange, start=start.isoformat(), end=end.isoformat())
    early = {ts.date() for ts in cal.early_closes}
    sched = cal.schedule
    return [
        [
            day.date().isoformat(),
            opened.to_pydatetime().astimezone(UTC).isoformat(),
            closed.to_pydatetime().astimezone(UTC).isoformat(),
            day.date() in early,
        ]
        for day, opened, closed in zip(sched.index, sched["open"], sched["close"], strict=True)
    ]


def cache_dir() -> Path | None:
    """Where the session tables are cached: ``$XDG_CACHE_HOME/flowbot``, or
    ``~/.cache/flowbot`` when XDG_CACHE_HOME is unset, empty or relative (the XDG rule);
    ``None`` without a home directory. Everything in it can be deleted at any time."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no HOME and no passwd entry
            return None
    return Path(base) / "flowbot"


def _library_version() -> str | None:
    """The installed exchange_calendars version, ``None`` when it is not installed."""
    # importlib.metadata is loaded in every flowbot process already (pydantic's plugin loader
    # imports it) and the lookup reads one METADATA file: about 0.7 ms, against ~0.6 s for the
    # child it saves. exchange_calendars itself is not imported.
    from importlib import metadata

    try:
        return metadata.version("exchange_calendars") or None
    except metadata.PackageNotFoundError:
        return None


def _cache_path(exchange: str, start: date, end: date) -> Path | None:
    """The cache file of one session table, or ``None`` when there is nowhere to keep it.
    The key is the exchange, the range, the exchange_calendars version and
    :data:`CACHE_FORMAT`, e.g. ``calendar-v1-XNYS-2025-12-03-2028-12-05-xcals4.13.2.json``
    (quoted: ``24/7`` is an exchange code)."""
    directory = cache_dir()
    version = _library_version()
    if directory is None or version is None:
        return None
    ex, ver = quote(exchange, safe=""), quote(version, safe="")
    return directory / f"calendar-v{CACHE_FORMAT}-{ex}-{start}-{end}-xcals{ver}.json"


def _parse_rows(rows: object) -> tuple[Session, ...]:
    """Sessions from the child's JSON rows (see :func:`_session_rows`), ``ValueError`` when
    ``rows`` are not such a table: aware times, dates in order (the lookups bisect them)."""
    if not isinstance(rows, list):
        raise ValueError("not a list of sessions")
    sessions: list[Session] = []
    for row in rows:
        if not (
            isinstance(row, list)
            and len(row) == 4
            and all(isinstance(text, str) for text in row[:3])
            and isinstance(row[3], bool)
        ):
            raise ValueError(f"not a session row: {row!r:.80}")
        day, opened, closed, early = row
        session = Session(
            date.fromisoformat(day),
            datetime.fromisoformat(opened),
            datetime.fromisoformat(closed),
            early,
        )
        if session.open_utc.tzinfo is None or session.close_utc.tzinfo is None:
            raise ValueError(f"naive time in session row: {row!r:.80}")
        if session.close_utc <= session.open_utc or (
            sessions and sessions[-1].date >= session.date
        ):
            raise ValueError(f"session row out of order: {row!r:.80}")
        sessions.append(session)
    return tuple(sessions)


def _read_cache(path: Path, start: date, end: date) -> tuple[Session, ...] | None:
    """The sessions cached in ``path``; ``None`` when it is missing, unreadable, not a session
    table, or one that does not reach from ``start`` to ``end`` (within
    :data:`_COVER_SLACK`: holidays and weekends), so the caller builds the table and
    overwrites the file."""
    try:
        sessions = _parse_rows(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # JSON and Unicode errors are ValueErrors
        log.debug("calendar cache %s ignored: %s", path, exc)
        return None
    if not sessions or not (
        sessions[0].date <= start + _COVER_SLACK and sessions[-1].date >= end - _COVER_SLACK
    ):
        log.debug("calendar cache %s ignored: does not cover %s..%s", path, start, end)
        return None
    return sessions


_COVER_SLACK = timedelta(days=10)
"""How far inside its range a cached table's first and last sessions may be."""


_unwritable: set[Path] = set()
"""Cache directories already reported as unwritable (one log line per directory and process)."""


def _write_cache(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file in the same directory, then
    ``os.replace``: a reader sees the old file or the new one, never half of one), then prune
    the directory. A failure is logged once per directory and process, and swallowed."""
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except (OSError, ValueError) as exc:  # ValueError: a path the OS cannot take
        if directory not in _unwritable:
            _unwritable.add(directory)
            log.info(
                "calendar cache off: cannot write in %s (%s); the session table is built "
                "on each run (set XDG_CACHE_HOME to a writable directory to keep it)",
                directory,
                getattr(exc, "strerror", None) or exc,
            )
        return
    _prune(directory, keep=path)


def _prune(directory: Path, keep: Path) -> None:
    """Delete the calendar cache files in ``directory`` (and temporary files a crash left)
    not written for :data:`CACHE_MAX_AGE_SECONDS`, except ``keep``. Other files are not ours
    to touch; a file another process deletes first is fine."""
    cutoff = datetime.now(UTC).timestamp() - CACHE_MAX_AGE_SECONDS
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith("calendar-") or entry.path == str(keep):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)


def _run_child(exchange: str, start: date, end: date) -> str:
    """The child's JSON session table of ``exchange`` over ``start..end`` (its stdout).
    Raises :class:`CalendarError` when exchange_calendars refuses, else ``RuntimeError``."""
    argv, env = child_command("bot.calendar", exchange, start.isoformat(), end.isoformat())
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"{exchange} calendar {start}..{end}: child process: {exc}") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        if done.returncode == 2 and lines:
            raise CalendarError(f"{exchange} calendar {start}..{end}: {lines[-1]}")
        tail = lines[-1] if lines else f"exit status {done.returncode}"
        raise RuntimeError(f"{exchange} calendar {start}..{end}: child process failed: {tail}")
    return done.stdout


@cache
def _load_sessions(exchange: str, start: date, end: date) -> tuple[Session, ...]:
    """The sessions of ``exchange`` over ``start..end``: from this process's memory, else the
    cache file (:func:`_cache_path`), else the child process, whose table is then written to
    the cache file. A cache that cannot be read or written never fails the calendar."""
    # Building an exchange calendar takes ~0.5 s and exchange_calendars with pandas ~50 MB, so
    # a child process builds it (this process never imports them) and one process asks for a
    # range once (scheduler, CLI, tests share it). Sessions are immutable: sharing is safe.
    path = _cache_path(exchange, start, end)
    if path is not None and (cached := _read_cache(path, start, end)) is not None:
        return cached
    text = _run_child(exchange, start, end)
    try:
        sessions = _parse_rows(json.loads(text))
    except ValueError as exc:
        msg = f"{exchange} calendar {start}..{end}: child process printed no session table"
        raise RuntimeError(f"{msg}: {exc}") from None
    if path is not None:
        _write_cache(path, text)
    return sessions


class TradingCalendar:
    """Sessions of one exchange over an explicit date range.

    ``exchange`` is an ``exchange_calendars`` code (``"XNYS"`` for NYSE). ``start`` / ``end``
    bound the range (New York dates, inclusive); by default one year back to two years ahead of
    today, because the library's own default stops a year ahead and a long-running bot would
    silently run out of sessions. Methods asked about dates outside the range raise
    :class:`CalendarRangeError`; rebuild the calendar (e.g. daily) to slide the window.
    Construction is cached per (exchange, start, end), in this process and in a file (see
    :func:`cache_dir`): only the first one of a range, per day and exchange_calendars version,
    runs a child process for about 1 s. Raises :class:`CalendarError` when exchange_calendars
    refuses the exchange or the range, ``RuntimeError`` when the child process cannot run.
    """

    def __init__(
        self, exchange: str = "XNYS", start: date | None = None, end: date | None = None
    ) -> None:
        today = date.today()
        self.exchange = exchange
        self.start = start or today - timedelta(days=366)
        self.end = end or today + timedelta(days=2 * 366)
        if self.end <= self.start:
            raise ValueError(f"calendar end {self.end} is not after start {self.start}")
        self._sessions = _load_sessions(exchange, self.start, self.end)
        self._dates = [s.date for s in self._sessions]
        self._closes = [s.close_utc for s in self._sessions]
        self._opens = [s.open_utc for s in self._sessions]

    def __repr__(self) -> str:
        return f"TradingCalendar({self.exchange!r}, start={self.start}, end={self.end})"

    def _check_day(self, day: date) -> None:
        if not self.start <= day <= self.end:
            raise CalendarRangeError(
                f"{day} is outside the {self.exchange} calendar range {self.start}..{self.end}"
            )

    def session_for(self, day: date) -> Session | None:
        """The session on New York date ``day``, or ``None`` on a weekend or holiday.

        Raises :class:`CalendarRangeError` when ``day`` is outside the calendar's range.
        """
        self._check_day(day)
        i = bisect.bisect_left(self._dates, day)
        if i < len(self._dates) and self._dates[i] == day:
            return self._sessions[i]
        return None

    def session_at(self, now: datetime) -> Session | None:
        """The session in progress at aware instant ``now`` (open ≤ now < close), else ``None``."""
        now = _utc(now)
        self._check_day(now.astimezone(NEW_YORK).date())
        i = bisect.bisect_right(self._opens, now) - 1
        if i >= 0 and now < self._sessions[i].close_utc:
            return self._sessions[i]
        return None

    def is_open(self, now: datetime) -> bool:
        """``True`` while a session is in progress at aware instant ``now`` (close exclusive)."""
        return self.session_at(now) is not None

    def last_closed_session(self, now: datetime) -> Session | None:
        """The most recent session whose close is at or before ``now`` (aware), else ``None``
        (``now`` before the first session in range)."""
        now = _utc(now)
        self._check_day(now.astimezone(NEW_YORK).date())
        i = bisect.bisect_right(self._closes, now) - 1
        return self._sessions[i] if i >= 0 else None

    def next_session(self, now: datetime) -> Session:
        """The first session that opens strictly after ``now`` (aware): while a session is in
        progress this is tomorrow's (or Monday's). Raises :class:`CalendarRangeError` when the
        range has no later session."""
        now = _utc(now)
        i = bisect.bisect_right(self._opens, now)
        if i >= len(self._sessions):
            raise CalendarRangeError(
                f"no {self.exchange} session after {now.isoformat()} before {self.end}"
            )
        return self._sessions[i]

    def recap_due(self, now: datetime, delay_minutes: float = 5) -> Session | None:
        """The session whose recap is due at aware instant ``now``, or ``None``.

        A session's recap is due from ``close + delay_minutes`` until the end of that New York
        calendar day, so a bot (re)started at 17:00 ET still returns that day's session (the
        missed-run catch-up), while on a weekend, a holiday or the next morning nothing is due.
        The same session is returned on every call inside that window: the caller sends it
        once by remembering the session date (the store), not by timing.
        ``delay_minutes`` is ``[recap] delay_minutes``.
        """
        last = self.last_closed_session(now)
        if last is None:
            return None
        now = _utc(now)
        due_from = last.close_utc + timedelta(minutes=delay_minutes)
        if due_from <= now and now.astimezone(NEW_YORK).date() == last.date:
            return last
        return None

    def digest_time(self, session: Session, at: time = time(16, 30)) -> datetime:
        """When the daily digest for ``session`` goes out, as an aware UTC instant.

        ``at`` is New York wall time on the session date (``[digest] at``, default 16:30 ET);
        it is never earlier than the session's close, so an ``at`` before the close waits for
        it. DST is applied for that date (16:30 ET is 20:30 UTC in summer, 21:30 UTC in winter).
        """
        wanted = datetime.combine(session.date, at, NEW_YORK).astimezone(UTC)
        return max(wanted, session.close_utc)

    def is_weekly_digest_session(self, session: Session, weekly_on: str) -> bool:
        """Whether ``session`` is the one that sends the weekly digest for ``[digest] weekly_on``.

        ``weekly_on`` is a weekday name (``"fri"``; see :data:`WEEKDAYS`) or ``""`` for a daily
        digest (every session qualifies). When that weekday is a holiday the last session before
        it in the same week takes its place (Good Friday → Thursday). Raises ``ValueError`` on an
        unknown weekday name.
        """
        name = weekly_on.strip().lower()[:3]
        if not name:
            return True
        if name not in WEEKDAYS:
            known = ", ".join(WEEKDAYS)
            raise ValueError(f"unknown weekday {weekly_on!r}; expected one of {known}")
        target = WEEKDAYS.index(name)
        if session.date.weekday() > target:
            return False
        # The chosen session is the last one in [monday, target day] of this week.
        monday = session.date - timedelta(days=session.date.weekday())
        for offset in range(target, -1, -1):
            day = monday + timedelta(days=offset)
            if self.start <= day <= self.end and self.session_for(day) is not None:
                return day == session.date
        return False

    def sessions_between(self, first: date, last: date) -> list[Session]:
        """Sessions with New York dates in ``first..last`` (inclusive), oldest first; used to
        gather a week of recaps for a weekly digest."""
        lo = bisect.bisect_left(self._dates, first)
        hi = bisect.bisect_right(self._dates, last)
        return list(self._sessions[lo:hi])


def _child(argv: list[str]) -> int:
    """``python -m bot.calendar EXCHANGE START END``: print the session table as JSON (see
    :func:`_session_rows`); exit 2 with the message on stderr when exchange_calendars refuses."""
    from exchange_calendars.errors import CalendarError as Refused

    exchange, start, end = argv
    try:
        rows = _session_rows(exchange, date.fromisoformat(start), date.fromisoformat(end))
    except (Refused, ValueError) as exc:  # an unknown code, a range outside the data
        print(f"{type(exc).__name__}: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    json.dump(rows, sys.stdout, separators=(",", ":"))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
