"""End-of-session reports: the Slack recap (with its chart in the thread) and the email digest.

Both are built from the store (the session's alert log and last snapshots) plus a fresh
cumulative-flow poll for the chart, routed like alerts (``kind = "recap"`` / ``"digest"``) and
queued in the outbox, which delivers and retries them; each is queued at most once per session
(outbox keys ``recap:<session>:<destination>``, ``digest-<session>-<destination>``, and the
``job_run`` table).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bot.api.errors import ApiError
from bot.app import Bot
from bot.autowatch import auto_from_rows
from bot.calendar import Session, TradingCalendar
from bot.chart import Series, render_chart_in_child, session_series
from bot.deliver.base import FileUpload
from bot.deliver.email import CHART_SRC, build_digest_message, digest_subject, write_digest_files
from bot.events import Category
from bot.outbox import email_payload, file_payload, message_payload
from bot.recap import Recap, build_recap
from bot.rules.top_n import TopNConfig
from bot.settings import plan_allows
from bot.snapshot import snapshot_from_rows
from bot.store import NewMessage

__all__ = [
    "DigestResult",
    "build_session_recap",
    "due_reports",
    "send_digest",
    "send_recap",
]

log = logging.getLogger("flowbot.reports")

_NOT_IN_RECAP = frozenset({"cumulative"})
"""Stored sources the recap does not read (the chart fetches its own series)."""


async def build_session_recap(
    bot: Bot, session: Session, sessions: Sequence[Session] = ()
) -> tuple[Recap, bytes | None]:
    """The :class:`Recap` of ``session`` from stored history, and the chart PNG (``None``
    when the chart is off, the plan lacks the Alpha cumulative endpoint, or no data came).
    ``sessions`` (a weekly digest): every session covered, their alerts included; the boards,
    the watchlist and the chart are ``session``'s."""
    recap = _recap(bot, session, sessions)
    # The chart after the recap: the stored rows and their models are garbage by then, so the
    # chart's fetch does not add to them at the peak.
    chart = await _chart(bot, session) if bot.settings.recap.chart else None
    return recap, chart


def _recap(bot: Bot, session: Session, sessions: Sequence[Session]) -> Recap:
    settings = bot.settings
    day = session.date.isoformat()
    # The per-minute cumulative series (flow_inflection's source) is not in the recap: its
    # rows are the largest (50 symbols x 390 points) and are dropped before any is parsed.
    rows = [
        r
        for r in bot.store.snapshots_as_of(day, until=session.close_utc)
        if r.source not in _NOT_IN_RECAP
    ]
    market = snapshot_from_rows(rows)
    top_n = settings.rule_config("top_n", TopNConfig)
    days = sorted({day, *(s.date.isoformat() for s in sessions)})
    return build_recap(
        session,
        sessions=sessions,
        alerts=[a for d in days for a in bot.store.alerts(d)],
        summaries=dict(market.summaries),
        anomalies=dict(market.anomalies),
        options_board=market.options_board,
        zero_dte={m: market.zero_dte[m] for m in top_n.zero_dte_metrics if m in market.zero_dte},
        watchlist=list(settings.watchlist.symbols),
        top_n=top_n.options_n,
        auto=auto_from_rows(rows),
    )


async def _chart(bot: Bot, session: Session) -> bytes | None:
    if not plan_allows(bot.settings.flashalpha.plan, "alpha"):
        return None
    # The window must reach back to the open from whenever the recap is built (maybe later).
    minutes = min(10080, session.minutes + 24 * 60)
    symbols = bot.settings.watchlist.symbols

    async def line(symbol: str) -> Series:
        # Cut to the session's line as soon as it arrives: a whole response (a day and a half
        # of minute points, as models) is ~1 MB, and 50 of them at once would stay in the heap.
        return session_series(await bot.client.cumulative(symbol, minutes), session)

    results = await asyncio.gather(*(line(s) for s in symbols), return_exceptions=True)
    series: dict[str, Series] = {}
    for symbol, result in zip(symbols, results, strict=True):
        if isinstance(result, ApiError):
            log.warning("cumulative %s: %s; left out of the chart", symbol, result)
        elif isinstance(result, BaseException):
            raise result
        else:
            series[symbol] = result
    if not series:
        return None
    flips: dict[str, list[datetime]] = {}
    for a in bot.store.alerts(session.date.isoformat()):
        if a.kind == "regime_flip":
            flips.setdefault(a.symbol, []).append(a.occurred_at)
    return await render_chart_in_child(series, session, bot.settings.schedule.timezone, flips=flips)


async def send_recap(bot: Bot, session: Session, now: datetime, *, key_suffix: str = "") -> bool:
    """Queue the recap of ``session`` for every destination its route names, each with its
    chart (uploaded in the channel right after the recap where the destination carries
    files), and wake the outbox worker.

    Returns ``False`` when this session's recap was queued before (it is never sent twice);
    ``key_suffix`` makes an on-demand repeat (``flowbot recap``) a new message. A failed send
    stays in the outbox and is retried like any alert."""
    day = session.date.isoformat()
    recap, chart = await build_session_recap(bot, session)
    queued = False
    for name in bot.destinations.targets(bot.settings, Category.RECAP):
        destination = bot.destinations.by_name[name]
        key = f"recap:{day}:{name}" + (f":{key_suffix}" if key_suffix else "")
        message = bot.renderer.slack_template(
            "recap", destination.capabilities.dialect, recap=recap
        )
        row = NewMessage(key, name, Category.RECAP.value, message_payload(message), day)
        if not bot.store.enqueue(row, now):
            continue
        queued = True
        if chart is not None and destination.capabilities.files:
            upload = FileUpload(f"flow-{day}.png", f"Cumulative net option flow, {day}", chart)
            bot.store.enqueue(
                NewMessage(
                    f"chart:{key}",
                    name,
                    Category.RECAP.value,
                    file_payload(upload, in_channel=True),
                    day,
                    thread_parent=f"row:{key}",
                ),
                now,
            )
    bot.worker.wake()
    return queued


@dataclass(frozen=True, slots=True)
class DigestResult:
    """How the digest went out: ``queued`` for the email destinations named, or written to
    ``files`` (eml, html) with ``--dry-run``."""

    queued: tuple[str, ...]
    files: tuple[Path, ...]


async def send_digest(
    bot: Bot,
    session: Session,
    now: datetime,
    *,
    dry_run: bool = False,
    sessions: Sequence[Session] = (),
    key_suffix: str = "",
) -> DigestResult:
    """Build the digest of ``session`` (with ``sessions``: one digest covering all of them,
    e.g. the week) and queue it for the email destinations its route names (by SMTP, or as
    ``.eml`` + ``.html`` files in ``[email] outbox_dir`` without a host); with ``dry_run``
    write the files now and queue nothing. A digest queued before for the same session and
    destination is not queued again; a failed send is retried by the outbox (a refused login
    goes to the dead letters at once, so a bad password is never retried every minute)."""
    settings = bot.settings
    recap, chart = await build_session_recap(bot, session, sessions)
    text, html = bot.renderer.email("digest", recap=recap, chart_src=CHART_SRC if chart else None)
    recipients = settings.email.recipients or ["desk@localhost"]
    msg = build_digest_message(
        recap,
        text=text,
        html=html,
        chart_png=chart,
        sender=settings.email.sender,
        recipients=recipients,
        subject=digest_subject(recap),
        date=now,
    )
    stem = f"digest-{'week-' if recap.multi_session else ''}{session.date.isoformat()}"
    if dry_run:
        return DigestResult((), write_digest_files(msg, html, settings.email.outbox_dir, stem))
    day = session.date.isoformat()
    queued = []
    for name in bot.destinations.targets(settings, Category.DIGEST):
        key = stem + (f"-{key_suffix}" if key_suffix else "") + f"-{name}"
        row = NewMessage(key, name, Category.DIGEST.value, email_payload(bytes(msg)), day)
        if bot.store.enqueue(row, now):
            queued.append(name)
    bot.worker.wake()
    return DigestResult(tuple(queued), ())


async def due_reports(bot: Bot, calendar: TradingCalendar, now: datetime) -> None:
    """Send the recap and the digest that are due at ``now`` (UTC) and not sent yet.

    Missed-run safe: it looks at the latest closed session, so a bot started after the close
    (or restarted during it) still sends that day's reports, once."""
    settings = bot.settings
    if settings.recap.enabled:
        session = calendar.recap_due(now, settings.recap.delay_minutes)
        if session is not None and not bot.store.job_done("recap", session.date.isoformat()):
            await send_recap(bot, session, now)
            bot.store.mark_job_done("recap", session.date.isoformat(), now)
    if settings.digest.enabled:
        session = calendar.last_closed_session(now)
        if session is None or bot.store.job_done("digest", session.date.isoformat()):
            return
        if now.astimezone(settings.timezone).date() != session.date:
            return  # catch up within the session's own day only, like the recap
        if settings.digest.weekly_on and not calendar.is_weekly_digest_session(
            session, settings.digest.weekly_on
        ):
            return
        if now < calendar.digest_time(session, settings.digest.at):
            return
        week: list[Session] = []
        if settings.digest.weekly_on:
            monday = session.date - timedelta(days=session.date.weekday())
            week = calendar.sessions_between(monday, session.date)
        result = await send_digest(bot, session, now, sessions=week)
        bot.store.mark_job_done("digest", session.date.isoformat(), now)
        if result.queued:
            log.info("digest for %s queued for %s", session.date, ", ".join(result.queued))
