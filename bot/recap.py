"""The end-of-session recap as plain data: what the Slack recap and the email digest show.

Pure: no I/O, no clock. :func:`build_recap` turns the session's alert log and the last
snapshots into a frozen :class:`Recap`. Numbers stay raw, in the units documented per field
(dollars, fractions, contracts, UTC instants), and the templates format them with the
renderer's filters (``money``, ``pct``, ``num``), which show ``None`` as ``"—"``; missing
*labels* are already ``"—"`` here. Text is unescaped: each template's own escaping applies
(the alert log keeps each alert's Slack fallback text, which is mrkdwn-escaped, so summaries
are unescaped here, exactly once).

A recap covers one session, or several (the weekly digest): alerts of every covered session,
and the boards, 0DTE leaders and watchlist as of the last one.

What a trader reads first is the :class:`Headline` (regime flips and candidates with their
outcome), then :class:`BoardActivity` (per leaderboard: who entered, who led, how often),
instead of every leaderboard churn alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from bot.api.models import (
    FlowAnomaly,
    FlowSummary,
    LeaderboardRow,
    OptionsLeaderboard,
    ZeroDteLeaderboard,
)
from bot.autowatch import AutoWatch
from bot.calendar import NEW_YORK, Session
from bot.events import AlertRecord
from bot.humanize import human_duration
from bot.notices import NOTICES

__all__ = [
    "BOARD_KINDS",
    "KIND_LABELS",
    "MISSING",
    "AlertGroup",
    "AlertKindGroup",
    "AlertLine",
    "AutoLine",
    "BoardActivity",
    "CandidateLine",
    "FlipLine",
    "Headline",
    "LeaderLine",
    "Recap",
    "WatchRow",
    "ZeroDteLine",
    "ZeroDteSection",
    "board_label",
    "build_recap",
    "format_millions",
]

MISSING = "—"
"""Shown wherever the data is missing (no snapshot, ``null`` field)."""

KIND_LABELS: Mapping[str, str] = {
    "regime_flip": "Regime flips",
    "regime_flip_ended": "Regime flips ended",
    "candidate": "Candidates",
    "leaderboard_entry": "Leaderboard entries",
    "leaderboard_lead": "Leaderboard leads",
    "leaderboard_exit": "Leaderboard exits",
}
"""Headings for the alert kinds of :class:`bot.events.Event`; an unknown kind shows as itself."""

BOARD_KINDS = frozenset({"leaderboard_entry", "leaderboard_lead", "leaderboard_exit"})
"""Leaderboard churn: summarised per board in :class:`BoardActivity`, not listed one by one."""


# ---------------------------------------------------------------------------------- formatting


def format_millions(dollars: float | None) -> str:
    """Dollars → signed millions, as the leaderboard shows net notional:
    ``45_600_000`` → ``"+$45.6M"``, ``-3.2e6`` → ``"-$3.2M"``, ``None`` → ``"—"``."""
    if dollars is None:
        return MISSING
    sign = "-" if dollars < 0 else "+"
    return f"{sign}${abs(dollars) / 1e6:,.1f}M"


def _ny_hhmm(instant: datetime) -> str:
    return instant.astimezone(NEW_YORK).strftime("%H:%M")


def _http_url(url: str | None) -> str | None:
    # Links end up in href attributes and mrkdwn links: anything but http(s) is dropped, so a
    # "javascript:" value can never become clickable.
    if url and urlsplit(url.strip()).scheme.lower() in ("http", "https"):
        return url.strip()
    return None


def _label(text: str | None) -> str:
    # Labels the API may add later are shown verbatim; only absence becomes "—".
    return text if text else MISSING


# ---------------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class AlertLine:
    """One alert of the session, for the digest's alert list.

    ``occurred_at`` UTC; ``time_ny`` its New York wall time ``"HH:MM"``; ``summary`` the
    alert's plain-text fallback; ``permalink`` the Slack message URL when known (only
    ``http(s)`` URLs are kept).
    """

    occurred_at: datetime
    time_ny: str
    kind: str
    symbol: str
    summary: str
    permalink: str | None


@dataclass(frozen=True, slots=True)
class AutoLine:
    """A symbol auto-watched during the session (``[watchlist] auto_from``): why it joined,
    ``board`` (``board_label`` text) at ``rank``, at ``time_ny`` (New York ``"HH:MM"``)."""

    symbol: str
    board: str
    rank: int
    time_ny: str


@dataclass(frozen=True, slots=True)
class AlertGroup:
    """The alerts of one (kind, symbol) in the session: ``count`` alerts, the first at
    ``first_at`` (UTC) = ``first_time_ny`` (``"HH:MM"`` New York); ``permalink`` of that first
    alert when Slack gave one."""

    kind: str
    symbol: str
    count: int
    first_at: datetime
    first_time_ny: str
    permalink: str | None


@dataclass(frozen=True, slots=True)
class AlertKindGroup:
    """All :class:`AlertGroup` of one alert ``kind`` (``label`` is its heading), symbols in
    order of first alert; ``total`` = alerts of that kind."""

    kind: str
    label: str
    total: int
    groups: tuple[AlertGroup, ...]


@dataclass(frozen=True, slots=True)
class LeaderLine:
    """A row of the final options leaderboard.

    ``net_notional`` dollars (buyers > 0, sellers < 0); ``net_volume`` contracts or ``None``;
    ``rank`` 1-based within its side.
    """

    rank: int
    symbol: str
    net_notional: float
    net_volume: float | None

    @property
    def net_notional_m(self) -> float:
        """Net notional in millions of dollars (``45_600_000`` → ``45.6``)."""
        return self.net_notional / 1e6

    @property
    def net_notional_text(self) -> str:
        """Net notional as signed millions for display: ``"+$45.6M"``, ``"-$3.2M"``."""
        return format_millions(self.net_notional)


@dataclass(frozen=True, slots=True)
class ZeroDteLine:
    """A ranked 0DTE name: ``rank`` 1-based, ``value`` in the metric's own unit or ``None``."""

    rank: int
    symbol: str
    value: float | None


@dataclass(frozen=True, slots=True)
class ZeroDteSection:
    """The leaders of one configured 0DTE ``metric`` (``heat``, ``pin_risk``...)."""

    metric: str
    lines: tuple[ZeroDteLine, ...]


@dataclass(frozen=True, slots=True)
class WatchRow:
    """The final state of one watchlist symbol (``None`` / ``"—"`` where data is missing).

    - ``flow_direction``: the last summary's label as text (unknown labels verbatim).
    - ``live_gex``: dollars per 1% move (sign = dealer gamma).
    - ``shift``: ``flow_gex_pct_shift`` as a *fraction* (0.094 = 9.4%); ``None`` also when the
      settled baseline was zero.
    - ``decision``: the last flow-anomaly decision as text; ``score`` 0..100.
    """

    symbol: str
    flow_direction: str
    live_gex: float | None
    shift: float | None
    decision: str
    score: float | None


@dataclass(frozen=True, slots=True)
class FlipLine:
    """The gamma regime flips of one symbol: ``count`` flips, the first at ``at`` (UTC).
    ``ended_at`` (UTC) when a ``regime_flip_ended`` alert followed the latest flip, else
    ``None``; ``outcome`` of the latest flip in words: ``"ended 11:05 ET after 1 h 23 min"``,
    ``"still flipped at the close"`` or ``"no end seen"``; ``permalink`` of the first flip
    alert's message when the destination gave one."""

    symbol: str
    at: datetime
    ended_at: datetime | None
    outcome: str
    count: int
    permalink: str | None = None


@dataclass(frozen=True, slots=True)
class CandidateLine:
    """A candidate alert: ``symbol`` first alerted at ``at`` (UTC); ``held`` whether the last
    flow-anomaly decision at the (last) close was still ``candidate`` (``None`` when unknown);
    ``outcome`` in words: ``"held (candidate 78 at the close)"``, ``"faded (avoid 22 at the
    close)"``, ``"no anomaly data at the close"``; ``count`` candidate alerts of that symbol;
    ``permalink`` of the first one's message when known."""

    symbol: str
    at: datetime
    held: bool | None
    outcome: str
    count: int
    permalink: str | None = None


@dataclass(frozen=True, slots=True)
class Headline:
    """What the recap leads with. ``text`` is one line for a subject or a notification:
    ``"1 flip (SPY) · 2 candidates (QQQ held, AMD faded)"``, or ``"No flips or candidates"``."""

    flips: tuple[FlipLine, ...]
    candidates: tuple[CandidateLine, ...]
    text: str


@dataclass(frozen=True, slots=True)
class BoardActivity:
    """Leaderboard alerts of one ``board`` (``options:buyers``, ``zero_dte:heat``…; ``label``
    for people: ``"Options buyers"``, ``"0DTE heat"``): symbols that ``entered`` the top and
    that ``led`` it, each in order of first alert, and the alert counts."""

    board: str
    label: str
    entered: tuple[str, ...]
    led: tuple[str, ...]
    entries: int
    leads: int
    exits: int


@dataclass(frozen=True, slots=True)
class Recap:
    """Everything the end-of-session recap shows, for one :class:`~bot.calendar.Session` or,
    for a weekly digest, several (``sessions``, oldest first; ``session`` is the last one).

    - ``date_text``: the session date for titles (``"Fri 27 Nov 2026"``; several sessions:
      ``"Mon 23 – Fri 27 Nov 2026"``); ``close_time_ny`` the last close in New York
      (``"13:00"`` on an early close).
    - ``headline``: flips and candidates with their outcome, what a reader sees first.
    - ``board_activity``: leaderboard alerts summarised per board, in order of first alert.
    - ``alerts``: every alert in time order; ``key_alerts`` the same without leaderboard
      churn (flips, candidates…); ``alert_kinds``: all alerts grouped by kind, then symbol.
    - ``buyers`` / ``sellers``: the final options leaderboard, top ``top_n`` each;
      ``board_window_minutes`` its lookback, ``None`` when no board was fetched.
    - ``zero_dte``: one section per configured metric, top ``top_n`` each.
    - ``watchlist``: one row per watchlist symbol, in config order.
    - ``auto_watched``: the symbols the boards added to the watchlist, in joining order.
    """

    session: Session
    date_text: str
    close_time_ny: str
    alerts: tuple[AlertLine, ...]
    alert_kinds: tuple[AlertKindGroup, ...]
    buyers: tuple[LeaderLine, ...]
    sellers: tuple[LeaderLine, ...]
    board_window_minutes: int | None
    zero_dte: tuple[ZeroDteSection, ...]
    watchlist: tuple[WatchRow, ...]
    sessions: tuple[Session, ...]
    headline: Headline
    board_activity: tuple[BoardActivity, ...]
    auto_watched: tuple[AutoLine, ...] = ()

    @property
    def key_alerts(self) -> tuple[AlertLine, ...]:
        """The alerts that are not leaderboard churn, in time order."""
        return tuple(a for a in self.alerts if a.kind not in BOARD_KINDS)

    @property
    def multi_session(self) -> bool:
        """Whether the recap covers more than one session (then times carry the weekday)."""
        return len(self.sessions) > 1

    @property
    def time_format(self) -> str:
        """``strftime`` format for alert times: ``"%H:%M"``, or ``"%a %H:%M"`` over several
        sessions (for the ``nytime`` template filter)."""
        return "%a %H:%M" if self.multi_session else "%H:%M"

    @property
    def subject(self) -> str:
        """The digest's subject: what happened first, then the count:
        ``"Flowbot Fri 27 Nov 2026: 1 flip (SPY) · 1 candidate (QQQ held) · 4 alerts"``;
        a week: ``"Flowbot week Mon 23 – Fri 27 Nov 2026: …"``. Raw text (no escaping)."""
        n = self.alert_count
        week = "week " if self.multi_session else ""
        return (
            f"Flowbot {week}{self.date_text}: {self.headline.text} · "
            f"{n} alert{'' if n == 1 else 's'}"
        )

    @property
    def alert_count(self) -> int:
        """Number of alerts in the session."""
        return len(self.alerts)

    @property
    def has_board(self) -> bool:
        """Whether there is any options-leaderboard row to show."""
        return bool(self.buyers or self.sellers)


# ---------------------------------------------------------------------------------- building


def _session_alerts(
    sessions: Sequence[Session], alerts: Iterable[AlertRecord]
) -> list[AlertRecord]:
    # The store may hand over a wider slice (e.g. "since yesterday"); the recap is about the
    # sessions' New York dates only.
    days = {s.date for s in sessions}
    # Notices are about the bot, not the market: the status page and the ops route have them.
    mine = [
        a
        for a in alerts
        if a.occurred_at.astimezone(NEW_YORK).date() in days and a.rule not in NOTICES
    ]
    return sorted(mine, key=lambda a: (a.occurred_at, a.id))


def _date_text(sessions: Sequence[Session]) -> str:
    first, last = sessions[0].date, sessions[-1].date
    if first == last:
        return last.strftime("%a %d %b %Y")
    head = "%a %d" if (first.year, first.month) == (last.year, last.month) else "%a %d %b"
    if first.year != last.year:
        head = "%a %d %b %Y"
    return f"{first.strftime(head)} – {last.strftime('%a %d %b %Y')}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _flips(alerts: list[AlertRecord], summaries: Mapping[str, FlowSummary]) -> list[FlipLine]:
    by_symbol: dict[str, list[AlertRecord]] = {}
    for a in alerts:
        if a.kind in ("regime_flip", "regime_flip_ended"):
            by_symbol.setdefault(a.symbol, []).append(a)
    lines = []
    for symbol, records in by_symbol.items():
        flips = [r for r in records if r.kind == "regime_flip"]
        if not flips:
            continue  # an end whose flip was before the recap's first session
        first, latest = flips[0], flips[-1]
        # The outcome is the latest flip's: did it end, and after how long?
        ended = next(
            (
                r
                for r in records
                if r.kind == "regime_flip_ended" and r.occurred_at >= latest.occurred_at
            ),
            None,
        )
        if ended is not None:
            lasted = (ended.occurred_at - latest.occurred_at).total_seconds()
            outcome = f"ended {_ny_hhmm(ended.occurred_at)} ET after {human_duration(lasted)}"
        else:
            last = summaries.get(symbol.upper())
            still = last is not None and last.flow_direction == "regime_flip"
            outcome = "still flipped at the close" if still else "no end seen"
        lines.append(
            FlipLine(
                symbol=symbol,
                at=first.occurred_at,
                permalink=_http_url(first.permalink),
                ended_at=ended.occurred_at if ended else None,
                outcome=outcome,
                count=len(flips),
            )
        )
    return lines


def _candidates(
    alerts: list[AlertRecord], anomalies: Mapping[str, FlowAnomaly]
) -> list[CandidateLine]:
    by_symbol: dict[str, list[AlertRecord]] = {}
    for a in alerts:
        if a.kind == "candidate":
            by_symbol.setdefault(a.symbol, []).append(a)
    lines = []
    for symbol, records in by_symbol.items():
        last = anomalies.get(symbol.upper())
        if last is None or not last.decision:
            held, outcome = None, "no anomaly data at the close"
        else:
            held = last.decision == "candidate"
            score = f" {last.score:.0f}" if last.score is not None else ""
            verb = "held" if held else "faded"
            outcome = f"{verb} ({last.decision.replace('_', ' ')}{score} at the close)"
        lines.append(
            CandidateLine(
                symbol=symbol,
                at=records[0].occurred_at,
                permalink=_http_url(records[0].permalink),
                held=held,
                outcome=outcome,
                count=len(records),
            )
        )
    return lines


def _headline(flips: list[FlipLine], candidates: list[CandidateLine]) -> Headline:
    parts = []
    if flips:
        parts.append(f"{_plural(len(flips), 'flip')} ({', '.join(f.symbol for f in flips)})")
    if candidates:
        words = {True: " held", False: " faded", None: ""}
        named = ", ".join(f"{c.symbol}{words[c.held]}" for c in candidates)
        parts.append(f"{_plural(len(candidates), 'candidate')} ({named})")
    text = " · ".join(parts) if parts else "No flips or candidates"
    return Headline(flips=tuple(flips), candidates=tuple(candidates), text=text)


def board_label(board: str) -> str:
    """``"options:buyers"`` → ``"Options buyers"``, ``"zero_dte:pin_risk"`` → ``"0DTE pin
    risk"``; anything else as itself."""
    source, _, rest = board.partition(":")
    rest = rest.replace("_", " ")
    if source == "options":
        return f"Options {rest}".strip()
    if source == "zero_dte":
        return f"0DTE {rest}".strip()
    return board


def _board_activity(alerts: list[AlertRecord]) -> tuple[BoardActivity, ...]:
    by_board: dict[str, list[AlertRecord]] = {}
    for a in alerts:
        if a.kind in BOARD_KINDS:
            by_board.setdefault(a.board or "—", []).append(a)
    out = []
    for board, records in by_board.items():
        kinds = [r.kind for r in records]
        out.append(
            BoardActivity(
                board=board,
                label=board_label(board),
                entered=tuple(
                    dict.fromkeys(r.symbol for r in records if r.kind == "leaderboard_entry")
                ),
                led=tuple(dict.fromkeys(r.symbol for r in records if r.kind == "leaderboard_lead")),
                entries=kinds.count("leaderboard_entry"),
                leads=kinds.count("leaderboard_lead"),
                exits=kinds.count("leaderboard_exit"),
            )
        )
    return tuple(out)


def _group_alerts(alerts: list[AlertRecord]) -> tuple[AlertKindGroup, ...]:
    by_kind: dict[str, dict[str, list[AlertRecord]]] = {}
    for a in alerts:  # already in time order, so dict order = order of first alert
        by_kind.setdefault(a.kind, {}).setdefault(a.symbol, []).append(a)
    kinds = []
    for kind, by_symbol in by_kind.items():
        groups = tuple(
            AlertGroup(
                kind=kind,
                symbol=symbol,
                count=len(records),
                first_at=records[0].occurred_at,
                first_time_ny=_ny_hhmm(records[0].occurred_at),
                permalink=next((u for r in records if (u := _http_url(r.permalink))), None),
            )
            for symbol, records in by_symbol.items()
        )
        kinds.append(
            AlertKindGroup(
                kind=kind,
                label=KIND_LABELS.get(kind, kind),
                total=sum(g.count for g in groups),
                groups=groups,
            )
        )
    return tuple(kinds)


def _leader_lines(rows: Sequence[LeaderboardRow], top_n: int) -> tuple[LeaderLine, ...]:
    return tuple(
        LeaderLine(
            rank=i,
            symbol=row.symbol,
            net_notional=row.net_notional,
            net_volume=row.net_volume,
        )
        for i, row in enumerate(rows[:top_n], start=1)
    )


def _watch_row(symbol: str, summary: FlowSummary | None, anomaly: FlowAnomaly | None) -> WatchRow:
    return WatchRow(
        symbol=symbol,
        flow_direction=_label(summary.flow_direction if summary else None),
        live_gex=summary.live_gex if summary else None,
        shift=summary.flow_gex_pct_shift if summary else None,
        decision=_label(anomaly.decision if anomaly else None),
        score=anomaly.score if anomaly else None,
    )


def build_recap(
    session: Session,
    *,
    alerts: list[AlertRecord],
    summaries: dict[str, FlowSummary],
    anomalies: dict[str, FlowAnomaly],
    options_board: OptionsLeaderboard | None,
    zero_dte: dict[str, ZeroDteLeaderboard],
    watchlist: list[str],
    top_n: int = 5,
    sessions: Sequence[Session] | None = None,
    auto: Sequence[AutoWatch] = (),
) -> Recap:
    """Build the recap of ``session`` from the alert log and the last snapshots.

    - ``alerts``: alert-log records; only those whose ``occurred_at`` falls on a covered
      session's New York date are used, notices about the bot left out. Their ``summary`` is
      the alert's plain one-line text, shown as is (each output escapes it once).
    - ``summaries`` / ``anomalies``: the last flow summary / flow-anomaly envelope per symbol
      (keys are symbols, any case); a symbol without one shows ``"—"``. They also decide the
      outcome of flips and candidates in the headline.
    - ``options_board``: the last options leaderboard of the session, or ``None``.
    - ``zero_dte``: the last 0DTE leaderboard per configured metric (``{"heat": board}``),
      shown in the dict's order.
    - ``watchlist``: symbols in config order (upper-cased, duplicates dropped).
    - ``top_n``: rows kept per leaderboard side and per 0DTE metric; must be ≥ 1.
    - ``sessions``: every session covered, for a weekly digest (``session`` is added when
      missing and is treated as the last); default: ``session`` alone.
    - ``auto``: the session's auto-watched symbols (:mod:`bot.autowatch`), in joining order.

    Raises ``ValueError`` when ``top_n < 1``.
    """
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    covered = sorted({*(sessions or ()), session}, key=lambda s: s.date)
    summaries_up = {k.strip().upper(): v for k, v in summaries.items()}
    anomalies_up = {k.strip().upper(): v for k, v in anomalies.items()}
    symbols = list(dict.fromkeys(s.strip().upper() for s in watchlist if s.strip()))

    session_alerts = _session_alerts(covered, alerts)
    return Recap(
        session=session,
        date_text=_date_text(covered),
        close_time_ny=_ny_hhmm(session.close_utc),
        alerts=tuple(
            AlertLine(
                occurred_at=a.occurred_at,
                time_ny=_ny_hhmm(a.occurred_at),
                kind=a.kind,
                symbol=a.symbol,
                summary=a.summary,
                permalink=_http_url(a.permalink),
            )
            for a in session_alerts
        ),
        alert_kinds=_group_alerts(session_alerts),
        buyers=_leader_lines(options_board.buyers, top_n) if options_board else (),
        sellers=_leader_lines(options_board.sellers, top_n) if options_board else (),
        board_window_minutes=options_board.window_minutes if options_board else None,
        zero_dte=tuple(
            ZeroDteSection(
                metric=board.metric if board.metric != "unknown" else metric,
                lines=tuple(
                    ZeroDteLine(e.rank, e.symbol, e.value)
                    for e in sorted(board.entries, key=lambda e: e.rank)[:top_n]
                ),
            )
            for metric, board in zero_dte.items()
        ),
        watchlist=tuple(_watch_row(s, summaries_up.get(s), anomalies_up.get(s)) for s in symbols),
        sessions=tuple(covered),
        headline=_headline(
            _flips(session_alerts, summaries_up), _candidates(session_alerts, anomalies_up)
        ),
        board_activity=_board_activity(session_alerts),
        auto_watched=tuple(
            AutoLine(a.symbol, board_label(a.board), a.rank, _ny_hhmm(a.since)) for a in auto
        ),
    )
