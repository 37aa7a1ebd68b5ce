"""The end-of-session recap as plain data: what the Slack recap and the email digest show.

Pure: no I/O, no clock. :func:`build_recap` turns the session's alert log and the last
snapshots into a frozen :class:`Recap`. Numbers stay raw, in the units documented per field
(dollars, fractions, contracts, UTC instants), and the templates format them with the
renderer's filters (``money``, ``pct``, ``num``), which show ``None`` as ``"—"``; missing
*labels* are already ``"—"`` here. Text is unescaped: each template's own escaping applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from bot.api.models import FlowAnomaly, FlowSummary, OptionsLeaderboard, ZeroDteLeaderboard
from bot.calendar import NEW_YORK, Session
from bot.events import AlertRecord

__all__ = [
    "KIND_LABELS",
    "MISSING",
    "AlertGroup",
    "AlertKindGroup",
    "AlertLine",
    "LeaderLine",
    "Recap",
    "WatchRow",
    "ZeroDteLine",
    "ZeroDteSection",
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
class Recap:
    """Everything the end-of-session recap shows, for one :class:`~bot.calendar.Session`.

    - ``date_text``: the session date for titles (``"Fri 27 Nov 2026"``); ``close_time_ny``
      the close in New York (``"13:00"`` on an early close).
    - ``alerts``: every alert of the session in time order; ``alert_kinds``: the same grouped
      by kind, then symbol.
    - ``buyers`` / ``sellers``: the final options leaderboard, top ``top_n`` each;
      ``board_window_minutes`` its lookback, ``None`` when no board was fetched.
    - ``zero_dte``: one section per configured metric, top ``top_n`` each.
    - ``watchlist``: one row per watchlist symbol, in config order.
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

    @property
    def alert_count(self) -> int:
        """Number of alerts in the session."""
        return len(self.alerts)

    @property
    def has_board(self) -> bool:
        """Whether there is any options-leaderboard row to show."""
        return bool(self.buyers or self.sellers)


# ---------------------------------------------------------------------------------- building


def _session_alerts(session: Session, alerts: Iterable[AlertRecord]) -> list[AlertRecord]:
    # The store may hand over a wider slice (e.g. "since yesterday"); the recap is about the
    # session's New York date only.
    mine = [a for a in alerts if a.occurred_at.astimezone(NEW_YORK).date() == session.date]
    return sorted(mine, key=lambda a: (a.occurred_at, a.id))


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


def _leader_lines(rows, top_n: int) -> tuple[LeaderLine, ...]:
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
) -> Recap:
    """Build the recap of ``session`` from the day's alert log and the last snapshots.

    - ``alerts``: alert-log records; only those whose ``occurred_at`` falls on the session's
      New York date are used.
    - ``summaries`` / ``anomalies``: the last flow summary / flow-anomaly envelope per symbol
      (keys are symbols, any case); a symbol without one shows ``"—"``.
    - ``options_board``: the last options leaderboard of the session, or ``None``.
    - ``zero_dte``: the last 0DTE leaderboard per configured metric (``{"heat": board}``),
      shown in the dict's order.
    - ``watchlist``: symbols in config order (upper-cased, duplicates dropped).
    - ``top_n``: rows kept per leaderboard side and per 0DTE metric; must be ≥ 1.

    Raises ``ValueError`` when ``top_n < 1``.
    """
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    summaries_up = {k.strip().upper(): v for k, v in summaries.items()}
    anomalies_up = {k.strip().upper(): v for k, v in anomalies.items()}
    symbols = list(dict.fromkeys(s.strip().upper() for s in watchlist if s.strip()))

    session_alerts = _session_alerts(session, alerts)
    return Recap(
        session=session,
        date_text=session.date.strftime("%a %d %b %Y"),
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
    )
