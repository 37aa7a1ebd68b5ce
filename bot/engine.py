"""The pipeline of one tick: fetch → parse → detect → policy → render → outbox → deliver.

Side effects stay at the edges (the client, the store, the destination); ``now`` is passed in
by the caller (the scheduler's tick, or the demo's simulated clock) and never read here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from bot.api.client import FlashAlphaClient
from bot.api.models import (
    DECISIONS,
    FLOW_DIRECTIONS,
    REGIMES,
    FlowAnomaly,
    FlowSummary,
)
from bot.budget import sources_for
from bot.deliver.base import Delivered, DeliveryError, Destination
from bot.escape import slack_escape
from bot.events import Event, SlackMessage
from bot.health import SourceHealth
from bot.policy import decide
from bot.render import Renderer
from bot.rules import RULES, DetectContext, Memory
from bot.rules.memory import memory_from_rows, memory_rows
from bot.rules.top_n import TopNConfig, rows_needed
from bot.settings import Settings
from bot.snapshot import MarketSnapshot, snapshot_from_models, snapshot_from_rows
from bot.store import SnapshotRow, Store

__all__ = ["CycleReport", "Engine", "session_of"]

PER_SYMBOL = frozenset({"summary", "anomaly"})  # sources keyed by symbol (others: by board)

log = logging.getLogger("flowbot.engine")
NEW_YORK = ZoneInfo("America/New_York")


def session_of(now: datetime) -> str:
    """The New York trading date (``YYYY-MM-DD``) that UTC ``now`` belongs to."""
    return now.astimezone(NEW_YORK).date().isoformat()


@dataclass(slots=True)
class CycleReport:
    """What one tick did: requests made, sources fetched and failed, events raised, alerts
    queued (with their policy reasons), messages delivered."""

    fetched: int = 0
    failed: int = 0
    events: list[Event] = field(default_factory=list)
    alerts: list[tuple[Event, str]] = field(default_factory=list)
    held: list[tuple[Event, str]] = field(default_factory=list)
    delivered: int = 0


class Engine:
    """Runs ticks for one config. One engine per process; its methods must be awaited from the
    same event loop (the store is single-threaded)."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: FlashAlphaClient,
        store: Store,
        renderer: Renderer,
        destination: Destination,
    ) -> None:
        self.settings = settings
        self.client = client
        self.store = store
        self.renderer = renderer
        self.destination = destination
        self.health = SourceHealth()
        self._cycle_lock = asyncio.Lock()
        self._running: set[asyncio.Task[object]] = set()
        self._deliver_lock = asyncio.Lock()
        self._session: str | None = None
        self._market = MarketSnapshot()
        self._memory: dict[str, Memory] = {}  # rule memory of this session (signal issue)
        symbol_sources, board_sources, skipped = sources_for(settings)
        self._symbol_sources = symbol_sources
        self._board_sources = board_sources
        for source in skipped:
            self.health.once(
                logging.WARNING,
                ("plan", source),
                "%s is not in the %s plan: not polled",
                source,
                settings.flashalpha.plan,
            )

    # -- ticks --------------------------------------------------------------------------------

    async def poll_symbols(self, now: datetime) -> CycleReport:
        """Poll summary and anomaly for every watchlist symbol, detect, queue, deliver."""
        expiry = self.settings.watchlist.expiry
        jobs: list[tuple[str, str, Callable[[], Awaitable[BaseModel]]]] = []
        for symbol in self.settings.watchlist.symbols:
            if "summary" in self._symbol_sources:
                jobs.append(
                    ("summary", symbol, lambda s=symbol: self.client.flow_summary(s, expiry))
                )
            if "anomaly" in self._symbol_sources:
                jobs.append(
                    ("anomaly", symbol, lambda s=symbol: self.client.flow_anomaly(s, expiry))
                )
        return await self._cycle(now, jobs)

    async def poll_leaderboards(self, now: datetime) -> CycleReport:
        """Poll the options and 0DTE leaderboards the top_n rule watches."""
        top_n = self.settings.rule_config("top_n")
        assert isinstance(top_n, TopNConfig)
        options_rows, zero_dte_rows = rows_needed(top_n)  # N + margin, for the hysteresis
        jobs: list[tuple[str, str, Callable[[], Awaitable[BaseModel]]]] = []
        for source in self._board_sources:
            if source == "options_leaderboard":
                jobs.append(
                    (
                        source,
                        "-",
                        lambda: self.client.options_leaderboard(options_rows, top_n.window_minutes),
                    )
                )
            else:
                metric = source.split(":", 1)[1]
                jobs.append(
                    (
                        "zero_dte_leaderboard",
                        metric,
                        lambda m=metric: self.client.zero_dte_leaderboard(m, zero_dte_rows),
                    )
                )
        return await self._cycle(now, jobs)

    async def _cycle(
        self, now: datetime, jobs: list[tuple[str, str, Callable[[], Awaitable[BaseModel]]]]
    ) -> CycleReport:
        async with self.in_flight():
            return await self._run_cycle(now, jobs)

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

    async def _run_cycle(
        self, now: datetime, jobs: list[tuple[str, str, Callable[[], Awaitable[BaseModel]]]]
    ) -> CycleReport:
        report = CycleReport()
        runnable = [
            (source, key, call)
            for source, key, call in jobs
            if self.health.may_request(source, now, key if source in PER_SYMBOL else None)
        ]
        results = await asyncio.gather(*(call() for _, _, call in runnable), return_exceptions=True)
        fetched: list[tuple[str, BaseModel]] = []
        rows: list[SnapshotRow] = []
        session = session_of(now)
        for (source, key, _), result in zip(runnable, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                report.failed += 1
                self.health.failed(source, key, result, now)
                continue
            report.fetched += 1
            self.health.ok(source, key)
            self._note(source, key, result, now)
            fetched.append((key, result))
            rows.append(
                SnapshotRow(
                    source=source,
                    key=key,
                    session=session,
                    observed_at=now,
                    payload=result.model_dump(mode="json", by_alias=True),
                )
            )

        async with self._cycle_lock:
            previous = self._previous(session)
            current = previous.merged(snapshot_from_models(fetched))
            memory: dict[str, Memory] = {}
            for name, spec in RULES.items():
                cfg = self.settings.rule_config(name)
                if cfg.enabled:
                    # -- rule memory (signal issue): in from the last tick, out with the rows
                    ctx = DetectContext(
                        now=now,
                        watchlist=self.settings.watchlist.symbols,
                        memory=self._memory.get(name, {}),
                    )
                    detection = spec.detect(previous, current, cfg, ctx)
                    report.events += detection.events
                    memory[name] = detection.memory
            rows += memory_rows(memory, session=session, now=now)
            decisions = decide(
                report.events,
                now=now,
                cooldown_minutes={
                    name: self.settings.rule_config(name).cooldown_minutes for name in RULES
                },
                last_alerted=self.store.last_alerted,
                parent_alerted=lambda key: self.store.has_alert(key, session),
            )
            queued = []
            for decision in decisions:
                if decision.send:
                    message = self._render(decision.event, decision.reason)
                    queued.append((decision.event, decision.reason, message, self.destination.name))
                    report.alerts.append((decision.event, decision.reason))
                else:
                    report.held.append((decision.event, decision.reason))
                    log.info(
                        "held %s %s (%s)",
                        decision.event.kind,
                        decision.event.symbol,
                        decision.reason,
                    )
            self.store.commit_cycle(session=session, now=now, snapshots=rows, alerts=queued)
            self._market = current
            self._memory.update(memory)
        report.delivered = await self.deliver(now)
        return report

    def _previous(self, session: str) -> MarketSnapshot:
        """This session's last market: in memory, or from the store after a restart."""
        if self._session != session:
            self._session = session
            stored = self.store.snapshots(session)
            self._market = snapshot_from_rows(stored)
            self._memory = memory_from_rows(stored)  # rule memory (signal issue)
        return self._market

    def _note(self, source: str, key: str, model: BaseModel, now: datetime) -> None:
        """Labels the API page does not list, and a stale flow feed, are said once."""
        for nulled in getattr(model, "nulled_fields", ()):  # invalid optional → None (signal)
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
        if flow_feed is not None and limit and (now - flow_feed).total_seconds() > limit:
            self.health.once(
                logging.WARNING,
                ("stale", source, key, flow_feed.isoformat()),
                "%s %s: flow_feed last delivered %s, %d s behind: numbers are stale",
                source,
                key,
                flow_feed.isoformat(),
                int((now - flow_feed).total_seconds()),
            )

    def _render(self, event: Event, reason: str) -> SlackMessage:
        try:
            return self.renderer.slack(event, reason)
        except Exception:
            # A broken (user-overridden) template must not lose the alert: send plain text.
            log.exception("template %s failed; sending the plain fallback", event.kind)
            text = slack_escape(f"{event.kind.replace('_', ' ')}: {event.symbol} ({event.state})")
            return SlackMessage(kind=event.kind, text=text)

    async def settle(self) -> None:
        """Wait until every tick in flight has finished (for a clean shutdown)."""
        running = [t for t in self._running if t is not asyncio.current_task()]
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        async with self._deliver_lock:
            return

    # -- delivery -------------------------------------------------------------------------------

    async def deliver(self, now: datetime) -> int:
        """Send every due outbox row; mark each sent only after the destination confirmed.

        Recoverable failures are retried with backoff (30 s doubling to 10 min); others are
        retried every 10 min and logged, so nothing queued is ever dropped.
        """
        sent = 0
        async with self._deliver_lock:
            for item in self.store.pending(now, self.destination.name):
                thread_ts = None
                if item.thread_parent:
                    parent_sent, thread_ts = self.store.thread_ts(item.thread_parent, item.session)
                    if not parent_sent:
                        continue  # the parent goes first; this waits for its ts
                try:
                    delivered: Delivered = await self.destination.post(
                        item.message, thread_ts=thread_ts
                    )
                except DeliveryError as exc:
                    backoff = min(30 * 2**item.attempts, 600) if exc.recoverable else 600
                    self.store.mark_failed(
                        item.id, error=str(exc), retry_at=now + timedelta(seconds=backoff)
                    )
                    log.warning(
                        "delivery of %s failed (%s); retry in %d s", item.dedupe_key, exc, backoff
                    )
                    if not exc.recoverable:
                        break  # the same cause (bad token, missing channel) fails the rest too
                    continue
                self.store.mark_sent(
                    item.id,
                    now=now,
                    channel=delivered.channel,
                    ts=delivered.ts,
                    permalink=delivered.permalink,
                )
                sent += 1
        return sent


def utcnow() -> datetime:
    """The wall clock in UTC: read once per tick by the scheduler, never deeper."""
    return datetime.now(UTC)
