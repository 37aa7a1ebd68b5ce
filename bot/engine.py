"""The engine: the I/O around the pipeline of one tick.

fetch (the sources registry, concurrent, through the client) → parse (the client's models) →
:func:`bot.pipeline.run` (detect → silence → policy → route → group → render, pure) → the store
(snapshots, alerts and outbox rows in one transaction) → wake the outbox worker. Delivery is
never awaited here: a slow or failing destination cannot delay a poll. ``now`` is passed in by
the caller (the scheduler's tick, or the demo's simulated clock) and never read here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from bot.api.client import FlashAlphaClient
from bot.api.errors import outcome
from bot.api.models import DECISIONS, FLOW_DIRECTIONS, REGIMES, FlowAnomaly, FlowSummary
from bot.api.sources import SOURCES
from bot.autowatch import AutoWatchlist
from bot.budget import board_job, fetch_args, plan_budget, sources_for
from bot.drill import Drill, fetch_drills, wanted
from bot.events import Event
from bot.health import SourceHealth
from bot.humanize import human_duration
from bot.metrics import Metrics
from bot.notices import (
    Condition,
    dead_letter_conditions,
    health_conditions,
    notices,
    stale_conditions,
)
from bot.pipeline import Lookups, PipelineConfig, TickResult, run
from bot.policy import Decision
from bot.rules import DetectContext, Memory
from bot.rules.flow_inflection import FlowInflectionConfig
from bot.rules.memory import memory_from_rows, memory_rows
from bot.rules.top_n import TopNConfig
from bot.settings import Settings, plan_allows
from bot.silences import active
from bot.snapshot import MarketSnapshot, snapshot_from_models, snapshot_from_rows
from bot.store import SnapshotRow, Store

__all__ = ["CycleReport", "Engine", "Job", "session_of", "utcnow"]

log = logging.getLogger("flowbot.engine")
NEW_YORK = ZoneInfo("America/New_York")


def session_of(now: datetime) -> str:
    """The New York trading date (``YYYY-MM-DD``) that UTC ``now`` belongs to."""
    return now.astimezone(NEW_YORK).date().isoformat()


@dataclass(frozen=True, slots=True)
class Job:
    """One request of a cycle: the ``source`` name (:data:`bot.api.sources.SOURCES`) and its
    ``key`` (a symbol, a 0DTE metric, or ``-`` for the options board)."""

    source: str
    key: str


@dataclass(slots=True)
class CycleReport:
    """What one tick did: requests made, sources fetched and failed, events raised, and the
    policy decisions (``alerts`` queued, ``held`` back), each with its named reason."""

    fetched: int = 0
    failed: int = 0
    events: list[Event] = field(default_factory=list)
    alerts: list[Decision] = field(default_factory=list)
    held: list[Decision] = field(default_factory=list)


class Engine:
    """Runs ticks for one config. One engine per process; its methods must be awaited from the
    same event loop (the store is single-threaded).

    - ``pipeline``: the resolved stages' config (routes, destinations' dialects, renderer).
    - ``expires_at(session)``: when an alert of that session stops being worth sending (UTC;
      by default the session's close), or ``None``.
    - ``on_commit``: called after each commit that queued messages (wakes the outbox worker).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client: FlashAlphaClient,
        store: Store,
        pipeline: PipelineConfig,
        expires_at: Callable[[str, datetime], datetime | None] = lambda session, now: None,
        on_commit: Callable[[], None] = lambda: None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.store = store
        self.pipeline = pipeline
        self.expires_at = expires_at
        self.on_commit = on_commit
        self.metrics = metrics or Metrics()
        self.health = SourceHealth()
        self._cycle_lock = asyncio.Lock()
        self._running: set[asyncio.Task[object]] = set()
        self._session: str | None = None
        self._market = MarketSnapshot()
        self._memory: dict[str, Memory] = {}  # each rule's memory this session
        self._conditions: dict[tuple[str, str], Condition] = {}
        self._stale: dict[str, float] = {}  # symbol → seconds its flow feed lags
        self._dead_seen = max((i.id for i in store.outbox("dead", limit=1)), default=0)
        symbol_sources, board_sources, skipped = sources_for(settings)
        self._symbol_sources = symbol_sources
        self._board_sources = board_sources
        top_n = settings.rule_config("top_n", TopNConfig)
        inflection = settings.rule_config("flow_inflection", FlowInflectionConfig)
        self.auto = AutoWatchlist(
            settings.watchlist.auto_from,
            auto_max=settings.watchlist.auto_max,
            polled=plan_budget(settings).auto_symbols,
            top_n=top_n,
            watchlist=settings.watchlist.symbols,
        )
        """The session's auto-watched symbols (``[watchlist] auto_from``)."""
        self._args = fetch_args(settings)
        self._drill_minutes = (
            top_n.drill_minutes
            if top_n.enabled and top_n.drill and plan_allows(settings.flashalpha.plan, "alpha")
            else 0
        )  # 0: no drill-down (off, or the plan lacks `/v1/flow/zero-dte/strike-flow`)
        self.polls_cumulative = inflection.enabled and plan_allows(
            settings.flashalpha.plan, SOURCES["cumulative"].plan
        )
        """True when the flow_inflection rule is on and the plan serves `/cumulative`."""
        for source in skipped:
            self.health.once(
                logging.WARNING,
                ("plan", source),
                "%s is not in the %s plan: not polled",
                source,
                settings.flashalpha.plan,
            )

    # -- ticks --------------------------------------------------------------------------------

    def watched(self) -> list[str]:
        """The watchlist, then the session's auto-watched symbols the budget allows."""
        return [*self.settings.watchlist.symbols, *self.auto.symbols()]

    async def poll_symbols(
        self, now: datetime, symbols: Sequence[str] | None = None
    ) -> CycleReport:
        """Poll summary and anomaly for ``symbols`` (default: every watched symbol, see
        :meth:`watched`; the pacer passes those whose cache just refreshed), run the pipeline,
        queue."""
        self._previous(session_of(now))  # after a restart: the session's auto list first
        polled = self.watched() if symbols is None else symbols
        jobs = [Job(source, symbol) for symbol in polled for source in self._symbol_sources]
        return await self._cycle(now, jobs)

    async def poll_leaderboards(self, now: datetime) -> CycleReport:
        """Poll the options and 0DTE leaderboards the top_n rule watches."""
        jobs = [Job(*board_job(source)) for source in self._board_sources]
        return await self._cycle(now, jobs)

    async def poll_cumulative(self, now: datetime) -> CycleReport:
        """Poll each watchlist symbol's cumulative net flow (the flow_inflection rule's source,
        on that rule's ``cadence_minutes``); nothing when :attr:`polls_cumulative` is off."""
        if not self.polls_cumulative:
            return CycleReport()
        jobs = [Job("cumulative", symbol) for symbol in self.settings.watchlist.symbols]
        return await self._cycle(now, jobs)

    async def _cycle(self, now: datetime, jobs: list[Job]) -> CycleReport:
        first = jobs[0].source if jobs else "summary"
        job = (
            first
            if first == "cumulative"
            else ("symbols" if SOURCES[first].per_symbol else "leaderboards")
        )
        started = time.perf_counter()
        async with self.in_flight():
            report = await self._run_cycle(now, jobs)
        self.metrics.poll_duration.labels(job).observe(time.perf_counter() - started)
        remaining = self.client.rate_limit.remaining
        self.metrics.quota_remaining.set(-1 if remaining is None else remaining)
        return report

    @asynccontextmanager
    async def in_flight(self) -> AsyncIterator[None]:
        """Mark the current task as work that :meth:`settle` waits for on shutdown."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._running.discard(task)

    async def _fetch(
        self, now: datetime, jobs: list[Job]
    ) -> tuple[CycleReport, list[SnapshotRow], list[tuple[str, BaseModel]]]:
        report = CycleReport()
        runnable = [
            job
            for job in jobs
            if self.health.may_request(
                job.source, now, job.key if SOURCES[job.source].per_symbol else None
            )
        ]
        results = await asyncio.gather(
            *(SOURCES[j.source].fetch(self.client, j.key, self._args) for j in runnable),
            return_exceptions=True,
        )
        fetched: list[tuple[str, BaseModel]] = []
        rows: list[SnapshotRow] = []
        session = session_of(now)
        for job, result in zip(runnable, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                report.failed += 1
                self.metrics.requests.labels(job.source, outcome(result)).inc()
                self.health.failed(job.source, job.key, result, now)
                continue
            report.fetched += 1
            self.metrics.requests.labels(job.source, "ok").inc()
            self.metrics.last_success.labels(job.source).set(now.timestamp())
            self.health.ok(job.source, job.key)
            self._note(job.source, job.key, result, now)
            fetched.append((job.key, result))
            rows.append(
                SnapshotRow(
                    source=job.source,
                    key=job.key,
                    session=session,
                    observed_at=now,
                    payload=result.model_dump(mode="json", by_alias=True),
                )
            )
        return report, rows, fetched

    async def _run_cycle(self, now: datetime, jobs: list[Job]) -> CycleReport:
        report, rows, fetched = await self._fetch(now, jobs)
        session = session_of(now)
        async with self._cycle_lock:
            previous = self._previous(session)
            current = previous.merged(snapshot_from_models(fetched))
            own_notices = self._notices(now)
            silences = active(self.store.silences(now), self.settings.silences, now)

            def tick(drills: Mapping[str, Drill] | None = None) -> TickResult:
                return run(
                    previous,
                    current,
                    DetectContext(now=now, watchlist=self.watched(), memory=self._memory),
                    notices=own_notices,
                    session=session,
                    config=self.pipeline,
                    lookups=Lookups(
                        last_alerted=self.store.last_alerted,
                        parent_alerted=lambda key: self.store.has_alert(key, session),
                    ),
                    expires_at=lambda: self.expires_at(session, now),
                    silences=silences,
                    drills=drills,
                )

            result = tick()
            drill_symbols = wanted(result.decisions) if self._drill_minutes else []
            if drill_symbols:  # scan, then drill: the same pure tick again, with the strikes
                result = tick(await self._drill(drill_symbols, report))
            self.auto.update(current, now)
            self.store.commit_cycle(
                session=session,
                now=now,
                snapshots=rows
                + memory_rows(result.memory, session=session, now=now)
                + self.auto.rows(session, now),
                alerts=result.alerts,
                messages=result.messages,
            )
            self._market = _without_series(current)
            self._memory.update(result.memory)
        for decision in result.decisions:
            self.metrics.alerts.labels(decision.event.rule, decision.reason.value).inc()
        report.events = result.events
        report.alerts = [d for d in result.decisions if d.send]
        report.held = [d for d in result.decisions if not d.send]
        if result.messages:
            self.on_commit()
        return report

    async def _drill(self, symbols: list[str], report: CycleReport) -> dict[str, Drill]:
        """One strike-flow request per symbol (:mod:`bot.drill`), counted like any request."""
        drills, outcomes = await fetch_drills(self.client, symbols, self._drill_minutes)
        for error in outcomes.values():
            report.fetched += error is None
            report.failed += error is not None
            self.metrics.requests.labels("strike_flow", outcome(error) if error else "ok").inc()
        return drills

    def _notices(self, now: datetime) -> list[Event]:
        """Notice events for the bot's own conditions that opened or closed since last tick."""
        dead = [i for i in self.store.outbox("dead", limit=100) if i.id > self._dead_seen]
        self._dead_seen = max((i.id for i in dead), default=self._dead_seen)
        flashalpha = self.settings.flashalpha
        conditions = [
            *health_conditions(self.health, flashalpha.failing_after_polls, now),
            *stale_conditions(self._stale, flashalpha.stale_after_seconds),
            *dead_letter_conditions((i.destination, i.last_error) for i in dead),
        ]
        events = notices(self._conditions, conditions, now)
        self._conditions = {c.key: c for c in conditions}
        return events

    def forget(self) -> None:
        """Drop what this process holds of the session (last market, rule memory), so the
        next poll starts from the stored snapshots: a replica taking over the polling reads
        what the previous leader stored, exactly as a restart does."""
        self._session = None

    def _previous(self, session: str) -> MarketSnapshot:
        """This session's last market: in memory, or from the store after a restart."""
        if self._session != session:
            self._session = session
            stored = self.store.snapshots(session)
            self._market = _without_series(snapshot_from_rows(stored))
            self._memory = memory_from_rows(stored)
            self.auto.load(stored)
        return self._market

    def _note(self, source: str, key: str, model: BaseModel, now: datetime) -> None:
        """Labels the API page does not list, optional fields read as null, and a stale flow
        feed, are said once."""
        for nulled in getattr(model, "nulled_fields", ()):
            self.health.once(
                logging.WARNING,
                ("nulled", source, nulled.split(":", 1)[0]),
                "%s %s: %s; read as null, the rest of the body is used",
                source,
                key,
                nulled,
            )
        if isinstance(model, FlowSummary):
            self.health.note_label("flow_direction", model.flow_direction, FLOW_DIRECTIONS)
        elif isinstance(model, FlowAnomaly):
            self.health.note_label("decision", model.decision, DECISIONS)
            if model.decision != "insufficient_data":
                self.health.note_label("regime", model.regime, REGIMES)
        feeds = getattr(model, "data_as_of", None)
        flow_feed = feeds.flow_feed if feeds is not None else None
        limit = self.settings.flashalpha.stale_after_seconds
        if flow_feed is None or not SOURCES[source].per_symbol:
            return
        lag = (now - flow_feed).total_seconds()
        if limit and lag > limit:
            if key not in self._stale:
                log.warning("%s: flow feed %s behind: numbers are stale", key, human_duration(lag))
            self._stale[key] = lag
        elif self._stale.pop(key, None) is not None:
            log.info("%s: flow feed fresh again", key)

    async def settle(self) -> None:
        """Wait until every tick in flight has finished (for a clean shutdown)."""
        running = [t for t in self._running if t is not asyncio.current_task()]
        if running:
            await asyncio.gather(*running, return_exceptions=True)


def _without_series(market: MarketSnapshot) -> MarketSnapshot:
    """``market`` without its cumulative series, as kept between ticks. Only the tick that
    fetched a series reads it (flow_inflection takes every series it is given as new, and keeps
    its own state in its memory); kept, 50 symbols x 390 minutes of points would sit in memory
    all day, and twice over while the next ones are fetched."""
    return replace(market, cumulative={}) if market.cumulative else market


def utcnow() -> datetime:
    """The wall clock in UTC: read once per tick by the scheduler, never deeper."""
    return datetime.now(UTC)
