"""APScheduler wiring: the poll and leaderboard jobs and the session-close job; the outbox
worker runs beside them on the same event loop and delivers on its own.

Every trigger gets the configured timezone explicitly. Each job reads the wall clock once
(its tick's ``now``) and passes it down. With ``market_hours_only`` a poll runs only while the
XNYS session is open (holidays, weekends and early closes come from the exchange calendar).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.interval import IntervalTrigger

from bot.app import Bot
from bot.budget import Budget
from bot.calendar import TradingCalendar
from bot.engine import utcnow
from bot.leader import CHECK_SECONDS, Leadership
from bot.pacer import Pacer, pacers_for
from bot.reports import due_reports
from bot.rules.flow_inflection import FlowInflectionConfig
from bot.settings import ConfigError
from bot.status import FRESH_WITHIN
from bot.store import NotLeader

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["build_scheduler", "run_forever"]

log = logging.getLogger("flowbot.schedule")
SHUTDOWN_FLUSH_SECONDS = 10
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}


def build_scheduler(
    bot: Bot,
    budget: Budget,
    calendar: TradingCalendar,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> AsyncIOScheduler:
    """An ``AsyncIOScheduler`` (not started) with these jobs:

    - ``poll``: summary + anomaly for the watchlist every ``budget.poll_seconds``, or with
      ``"auto"`` just after each refresh of the server's cache (:class:`bot.pacer.Pacer`);
    - ``leaderboards``: the boards top_n watches, likewise with ``budget.leaderboard_seconds``;
    - ``session_close``: once a minute, queues a recap / digest that is due and not yet sent
      (so a bot started after the close still sends that day's recap once).
    - ``retention``: once a day, deletes what is older than ``[state] keep_days``.

    Delivery is not a job: :class:`bot.outbox.OutboxWorker` drains each destination itself,
    so a slow destination never makes a poll wait or skip.
    """
    settings = bot.settings
    tz = settings.timezone
    market_hours_only = settings.schedule.market_hours_only
    scheduler = AsyncIOScheduler(timezone=tz, job_defaults=JOB_DEFAULTS)

    def in_session(now: datetime) -> bool:
        return not market_hours_only or calendar.is_open(now)

    pacers = pacers_for(budget, bot.client)

    def pace(job_id: str, pacer: Pacer, started: datetime) -> None:
        """Move the job's next run to just after the next cache refresh (``auto`` only); the
        interval trigger stays underneath as the fallback."""
        now = clock()
        session = calendar.session_at(now)
        end = session.close_utc if session is not None else now + timedelta(hours=1)
        when = pacer.next_run(started, now, bot.client.rate_limit.remaining, end)
        job = scheduler.get_job(job_id)
        # A follower's jobs stay paused: moving a paused job's next run would resume it.
        if when is not None and job is not None and bot.leading:
            job.modify(next_run_time=when)

    def _leader_only(job: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """Run ``job`` only while this replica leads. A commit fenced because another
        replica took over mid-cycle ends quietly: what it detected is the new leader's."""

        @functools.wraps(job)
        async def run() -> None:
            if not bot.leading:
                return
            try:
                await job()
            except NotLeader as exc:
                log.warning("%s: not committed: %s", job.__name__, exc)

        return run

    @_leader_only
    async def poll() -> None:
        now = clock()
        if in_session(now):
            due = pacers["symbols"].symbols_due(bot.engine.watched())
            report = await bot.engine.poll_symbols(now, due)
            _log_report("poll", report)
            pace("poll", pacers["symbols"], now)

    @_leader_only
    async def leaderboards() -> None:
        now = clock()
        if in_session(now):
            report = await bot.engine.poll_leaderboards(now)
            _log_report("leaderboards", report)
            pace("leaderboards", pacers["leaderboards"], now)

    @_leader_only
    async def cumulative() -> None:
        now = clock()
        if in_session(now):
            _log_report("cumulative", await bot.engine.poll_cumulative(now))

    @_leader_only
    async def retention() -> None:
        deleted = bot.store.prune(clock(), settings.state.keep_days)
        if deleted:
            log.info(
                "retention: %d row(s) older than %d days deleted", deleted, settings.state.keep_days
            )

    @_leader_only
    async def session_close() -> None:
        async with bot.engine.in_flight():  # a stop waits for a recap being sent
            await due_reports(bot, calendar, clock())

    scheduler.add_job(
        poll,
        IntervalTrigger(seconds=budget.poll_seconds, timezone=tz),
        id="poll",
        next_run_time=clock(),
    )
    if budget.leaderboard_requests_per_poll:
        scheduler.add_job(
            leaderboards,
            IntervalTrigger(seconds=budget.leaderboard_seconds, timezone=tz),
            id="leaderboards",
            next_run_time=clock(),
        )
    if bot.engine.polls_cumulative:
        minutes = bot.settings.rule_config("flow_inflection", FlowInflectionConfig).cadence_minutes
        scheduler.add_job(
            cumulative,
            IntervalTrigger(minutes=minutes, timezone=tz),
            id="cumulative",
            next_run_time=clock(),
        )
    scheduler.add_job(
        session_close,
        IntervalTrigger(minutes=1, timezone=tz),
        id="session_close",
        next_run_time=clock(),
    )
    scheduler.add_job(
        retention,
        IntervalTrigger(hours=24, timezone=tz),
        id="retention",
        next_run_time=clock(),
    )
    return scheduler


async def _start_http(
    bot: Bot, budget: Budget, calendar: TradingCalendar, scheduler: AsyncIOScheduler
) -> web.AppRunner | None:
    """The health / metrics / status listener on ``[http] listen`` (``None`` when off).
    Raises :class:`ConfigError` naming the key when the address cannot be bound.

    :mod:`bot.http` (aiohttp's server, Jinja, the status template) is imported only when the
    listener is on: about 30 ms of start-up and its memory otherwise."""
    listen = bot.settings.http.listen
    if not listen:
        return None
    from bot.http import start_http

    market_hours_only = bot.settings.schedule.market_hours_only
    try:
        return await start_http(
            bot,
            listen,
            is_running=lambda: scheduler.state == STATE_RUNNING,
            clock=utcnow,
            in_session=lambda now: not market_hours_only or calendar.is_open(now),
            fresh_within=max(FRESH_WITHIN, timedelta(seconds=2 * budget.poll_seconds)),
        )
    except OSError as exc:
        await bot.aclose()
        raise ConfigError(
            f"[http] listen {listen!r}: cannot listen there ({exc.strerror})"
        ) from None


def _step(what: str, action: Callable[[], object]) -> None:
    """One shutdown step; its failure (the database gone, say) does not skip the rest."""
    try:
        action()
    except Exception as exc:
        log.warning("stopping: %s failed (%s)", what, type(exc).__name__)


def _log_report(job: str, report: object) -> None:
    alerts = getattr(report, "alerts", [])
    failed = getattr(report, "failed", 0)
    if alerts or failed:
        log.info("%s: %d alert(s), %d source failure(s)", job, len(alerts), failed)


async def run_forever(
    bot: Bot, budget: Budget, calendar: TradingCalendar, leadership: Leadership
) -> None:
    """Run the scheduler until SIGINT / SIGTERM, then let in-flight work finish, deliver what
    is due, and close everything.

    ``leadership`` decides who polls (:mod:`bot.cluster`): with SQLite it is already held
    (the standby waited for it); on PostgreSQL this replica delivers at once and polls only
    while it holds the lock."""
    from bot.cluster import Cluster

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    scheduler = build_scheduler(bot, budget, calendar)
    cluster = Cluster(bot, leadership, scheduler, clock=utcnow)
    scheduler.add_job(
        cluster.tick,
        IntervalTrigger(seconds=CHECK_SECONDS, timezone=bot.settings.timezone),
        id="leadership",
    )
    http = await _start_http(bot, budget, calendar, scheduler)
    bot.worker.start()
    scheduler.start()
    cluster.start()
    log.info(
        "running: %d symbol(s), poll %s, leaderboards %s, state %s, %s",
        len(bot.settings.watchlist.symbols),
        "auto" if budget.poll_auto else f"every {budget.poll_seconds:g} s",
        "auto" if budget.leaderboard_auto else f"every {budget.leaderboard_seconds:g} s",
        bot.store.describe(),
        "leader" if cluster.leading else f"follower {bot.replica}",
    )
    try:
        await stop.wait()
    finally:
        log.info("stopping: finishing in-flight work")
        # AsyncIOExecutor.shutdown() cancels running job tasks (whatever ``wait`` says), so:
        # stop new runs, let just-submitted jobs start, wait for running ones, then shut down.
        scheduler.pause()
        await asyncio.sleep(0)
        # Running jobs hold the engine's locks: taking them waits for those jobs to finish.
        await bot.engine.settle()
        scheduler.shutdown(wait=False)
        # Nothing polls here any more: hand the polling over now, not after the flush.
        _step("leadership release", cluster.stop)
        # One last pass for what is due (a destination still waiting out a failure keeps
        # its rows for the next start), bounded so a hung destination cannot hold the stop.
        await bot.worker.stop()
        try:
            await asyncio.wait_for(bot.worker.flush(), SHUTDOWN_FLUSH_SECONDS)
        except TimeoutError:
            # A send cut short may have reached the destination: its claim is kept and
            # lapses after its lease, rather than being handed to another replica now.
            log.warning(
                "stopping: delivery still busy after %d s; rows stay queued", SHUTDOWN_FLUSH_SECONDS
            )
        else:
            _step("claim release", bot.worker.release)
        if http is not None:
            from bot.http import stop_http

            await stop_http(http)  # before the store closes: its pages read it
        await bot.aclose()
