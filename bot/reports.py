"""End-of-session reports: the Slack recap (with its chart in the thread) and the email digest.

Both are built from the store (the session's alert log and last snapshots) plus a fresh
cumulative-flow poll for the chart, and both are sent at most once per session: the recap
through the outbox under the key ``recap:<session>``, the digest through the ``job_run`` table.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from bot.api.errors import ApiError
from bot.api.models import (
    CumulativeFlow,
)
from bot.app import Bot
from bot.calendar import Session, TradingCalendar
from bot.chart import render_cumulative_chart
from bot.deliver.base import DeliveryError
from bot.deliver.email import (
    CHART_SRC,
    EmailError,
    EmailSender,
    build_digest_message,
    digest_subject,
    write_digest_files,
)
from bot.recap import Recap, build_recap
from bot.settings import plan_allows
from bot.snapshot import snapshot_from_rows

__all__ = ["DigestResult", "build_session_recap", "due_reports", "send_digest", "send_recap"]

log = logging.getLogger("flowbot.reports")


async def build_session_recap(
    bot: Bot, session: Session, sessions: Sequence[Session] = ()
) -> tuple[Recap, bytes | None]:
    """The :class:`Recap` of ``session`` from stored history, and the chart PNG (``None``
    when the chart is off, the plan lacks the Alpha cumulative endpoint, or no data came).
    ``sessions`` (a weekly digest): every session covered, their alerts included; the boards,
    the watchlist and the chart are ``session``'s."""
    settings = bot.settings
    day = session.date.isoformat()
    market = snapshot_from_rows(bot.store.snapshots_as_of(day, until=session.close_utc))
    top_n = settings.rule_config("top_n")
    days = sorted({day, *(s.date.isoformat() for s in sessions)})
    recap = build_recap(
        session,
        sessions=sessions,
        alerts=[a for d in days for a in bot.store.alerts(d)],
        summaries=dict(market.summaries),
        anomalies=dict(market.anomalies),
        options_board=market.options_board,
        zero_dte={m: market.zero_dte[m] for m in top_n.zero_dte_metrics if m in market.zero_dte},
        watchlist=list(settings.watchlist.symbols),
        top_n=top_n.options_n,
    )
    chart = await _chart(bot, session) if settings.recap.chart else None
    return recap, chart


async def _chart(bot: Bot, session: Session) -> bytes | None:
    if not plan_allows(bot.settings.flashalpha.plan, "alpha"):
        return None
    # The window must reach back to the open from whenever the recap is built (maybe later).
    minutes = min(10080, session.minutes + 24 * 60)
    symbols = bot.settings.watchlist.symbols
    results = await asyncio.gather(
        *(bot.client.cumulative(s, minutes) for s in symbols), return_exceptions=True
    )
    flows: dict[str, CumulativeFlow] = {}
    for symbol, result in zip(symbols, results, strict=True):
        if isinstance(result, ApiError):
            log.warning("cumulative %s: %s; left out of the chart", symbol, result)
        elif isinstance(result, BaseException):
            raise result
        else:
            flows[symbol] = result
    if not flows:
        return None
    flips: dict[str, list[datetime]] = {}
    for a in bot.store.alerts(session.date.isoformat()):
        if a.kind == "regime_flip":
            flips.setdefault(a.symbol, []).append(a.occurred_at)
    return await asyncio.to_thread(
        partial(render_cumulative_chart, flips=flips),
        flows,
        session,
        bot.settings.schedule.timezone,
    )


async def send_recap(bot: Bot, session: Session, now: datetime, *, key_suffix: str = "") -> bool:
    """Queue and deliver the recap of ``session``, then upload its chart into the thread.

    Returns ``False`` when this session's recap was queued before (it is never sent twice);
    ``key_suffix`` makes an on-demand repeat (``flowbot recap``) a new message.
    A failed post stays in the outbox and is retried by the delivery job.
    """
    day = session.date.isoformat()
    key = f"recap:{day}" + (f":{key_suffix}" if key_suffix else "")
    recap, chart = await build_session_recap(bot, session)
    message = bot.renderer.slack_template("recap", recap=recap)
    if not bot.store.enqueue(
        dedupe_key=key, destination=bot.destination.name, message=message, session=day, now=now
    ):
        return False
    await bot.engine.deliver(now)
    if chart is not None:
        await upload_chart(bot, key, day, chart, now)
    return True


async def upload_chart(bot: Bot, key: str, day: str, chart: bytes, now: datetime) -> None:
    """Upload the chart into the thread of the recap queued as ``key`` (once per recap)."""
    ts = bot.store.outbox_ts(key)
    if bot.store.job_done(f"chart:{key}", day):
        return
    try:
        await bot.destination.upload_file(
            filename=f"flow-{day}.png",
            content=chart,
            title=f"Cumulative net option flow, {day}",
            thread_ts=ts,
        )
    except DeliveryError as exc:
        log.warning("recap chart upload failed: %s", exc)
        return
    bot.store.mark_job_done(f"chart:{key}", day, now)


@dataclass(frozen=True, slots=True)
class DigestResult:
    """How the digest went out: ``sent`` by SMTP, or written to ``files`` (eml, html)."""

    sent: bool
    files: tuple[Path, ...]


async def send_digest(
    bot: Bot,
    session: Session,
    now: datetime,
    *,
    dry_run: bool = False,
    sessions: Sequence[Session] = (),
) -> DigestResult:
    """Build the digest of ``session`` (with ``sessions``: one digest covering all of them,
    e.g. the week) and send it by SMTP, or, with no ``[email] host`` (or ``dry_run``), write
    it as ``.eml`` + ``.html`` into ``[email] outbox_dir``.

    Raises :class:`EmailError` when SMTP fails after its retries (the caller logs it)."""
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
    if dry_run or not settings.email.host:
        stem = f"digest-{'week-' if recap.multi_session else ''}{session.date.isoformat()}"
        files = write_digest_files(msg, html, settings.email.outbox_dir, stem)
        return DigestResult(False, files)
    password = bot.secrets.smtp_password.get_secret_value() if bot.secrets.smtp_password else None
    sender = EmailSender(
        settings.email.host,
        settings.email.port,
        settings.email.security,
        settings.email.username,
        password,
    )
    await sender.send(msg)
    return DigestResult(True, ())


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
        try:
            result = await send_digest(bot, session, now, sessions=week)
        except EmailError as exc:
            if exc.permanent:
                # A refused login or recipient will not fix itself, and retrying a bad
                # password every minute can lock the mail account: give up for this session.
                log.error("digest for %s not sent, not retried: %s", session.date, exc)
                bot.store.mark_job_done("digest", session.date.isoformat(), now, detail=str(exc))
            else:
                log.error("digest for %s not sent: %s (retrying next minute)", session.date, exc)
            return
        bot.store.mark_job_done("digest", session.date.isoformat(), now)
        if result.files:
            log.info("digest written: %s", ", ".join(str(p) for p in result.files))
