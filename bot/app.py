"""Builds the bot's parts from a config: client, store, renderer, destinations
(:mod:`bot.destinations`), pipeline, outbox worker and engine. A missing secret or a route
naming an unknown destination raises :class:`bot.settings.ConfigError` here, before anything
is polled or sent."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.api.client import FlashAlphaClient, client_for
from bot.deliver.base import BuildContext, Destination
from bot.destinations import Destinations, build_destinations
from bot.engine import Engine, utcnow
from bot.leader import replica_id
from bot.metrics import Metrics
from bot.outbox import OutboxWorker
from bot.pipeline import PipelineConfig
from bot.render import Renderer
from bot.rules import RULES
from bot.settings import Secrets, Settings
from bot.store import Store

if TYPE_CHECKING:
    from bot.calendar import TradingCalendar

__all__ = ["Bot", "build_bot", "expiry_for"]

NEW_YORK = ZoneInfo("America/New_York")
log = logging.getLogger("flowbot.app")


def expiry_for(
    settings: Settings, close_of: Callable[[date], datetime | None]
) -> Callable[[str, datetime], datetime | None]:
    """When an alert queued at ``now`` during ``session`` expires (UTC): ``now`` +
    ``[outbox] expire_after_minutes`` when set, else the session's close (``close_of``, from
    the exchange calendar), or midnight New York for an alert raised after the close or on a
    day without a session (when ``market_hours_only`` is off)."""
    minutes = settings.outbox.expire_after_minutes

    def expires_at(session: str, now: datetime) -> datetime | None:
        if minutes is not None:
            return now + timedelta(minutes=minutes)
        day = date.fromisoformat(session)
        midnight = datetime.combine(day + timedelta(days=1), time(0), NEW_YORK)
        if now >= datetime.combine(day, time(16), NEW_YORK):
            return midnight  # past any close (16:00, or 13:00 early): no calendar needed
        close = close_of(day)
        if close is not None and now < close:
            return close
        return midnight

    return expires_at


@dataclass
class Bot:
    """The parts of one running bot; ``aclose()`` releases them."""

    settings: Settings
    secrets: Secrets
    client: FlashAlphaClient
    store: Store
    renderer: Renderer
    destinations: Destinations
    worker: OutboxWorker
    engine: Engine
    metrics: Metrics
    replica: str
    """This process's name in a cluster (``host:pid:xxxx``): its outbox claims carry it."""
    leading: bool = True
    """Whether this replica polls (:mod:`bot.cluster` keeps it; always true with SQLite)."""

    async def aclose(self) -> None:
        """Close the HTTP pool, the destinations and the database."""
        await self.worker.stop()
        await self.client.aclose()
        for destination in self.destinations.by_name.values():
            await destination.close()
        self.store.close()


@cache
def _trading_calendar(today: date) -> TradingCalendar:
    """The XNYS calendar around ``today``, built once per day and process, on the first commit
    that needs a close (exchange_calendars runs in a short-lived child process, ~0.9 s, in the
    first process of the day; later ones read the session table from the on-disk cache, see
    :mod:`bot.calendar`; the scheduler's own calendar comes from the same cached sessions)."""
    from bot.calendar import TradingCalendar

    return TradingCalendar()


def _calendar_close(day: date) -> datetime | None:
    """The XNYS close of New York date ``day`` (UTC), ``None`` without a session, when ``day``
    is outside the calendar's range, or when the calendar cannot be built (logged as a
    warning; the alert then expires at midnight New York rather than never being queued)."""
    from bot.calendar import CalendarError, CalendarRangeError

    try:
        session = _trading_calendar(date.today()).session_for(day)
    except CalendarRangeError:
        return None
    except (CalendarError, RuntimeError) as exc:
        log.warning("no exchange calendar (%s): alerts expire at midnight New York", exc)
        return None
    return session.close_utc if session is not None else None


def build_bot(
    settings: Settings,
    secrets: Secrets,
    *,
    dry_run: bool = False,
    state_path: Path | None = None,
    context: BuildContext | None = None,
    destinations: Mapping[str, Destination] | None = None,
    clock: Callable[[], datetime] = utcnow,
    close_of: Callable[[date], datetime | None] = _calendar_close,
    client: FlashAlphaClient | None = None,
    built: Destinations | None = None,
) -> Bot:
    """Wire a :class:`Bot` for ``settings``. ``client`` and ``built``: the API client and the
    destinations, when already made by :func:`bot.api.client.client_for` and
    :func:`bot.destinations.build_destinations` (``flowbot once`` checks the destinations,
    then starts its requests, before the rest is built). ``dry_run`` uses an in-memory store
    and console stand-ins, so nothing is remembered and nothing is posted. ``context`` is
    what secrets are read from (the process environment by default: only ``run`` / ``once``
    / ``check`` may use that); ``destinations`` replaces built ones by name (tests).
    ``clock`` is the outbox worker's UTC clock (the demo's simulated one). Raises
    :class:`ConfigError`."""
    context = context or BuildContext(secrets_dir=Path("/run/secrets"))
    built = built or build_destinations(settings, context, dry_run=dry_run)
    if destinations:
        built = Destinations({**built.by_name, **destinations}, built.alerts, built.digest)
    client = client or client_for(settings, secrets)
    password = secrets.pgpassword.get_secret_value() if secrets.pgpassword else None
    store = Store(
        ":memory:" if dry_run else (state_path or settings.state.target()), password=password
    )
    renderer = Renderer(settings.templates.dir, timezone=settings.schedule.timezone)
    metrics = Metrics()
    replica = replica_id()
    worker = OutboxWorker(
        store,
        built.by_name,
        clock=clock,
        alert_max_age=timedelta(minutes=settings.outbox.alert_max_age_minutes),
        max_backoff=settings.outbox.max_backoff_seconds,
        zone=settings.timezone,
        metrics=metrics,
        owner=replica,
        lease=timedelta(seconds=settings.state.claim_seconds),
    )
    pipeline = PipelineConfig(
        rules={name: settings.rule_config(name) for name in RULES},
        routes=settings.routes,
        root=settings.route,
        alert_destinations=built.alerts,
        dialects={n: d.capabilities.dialect for n, d in built.by_name.items()},
        renderer=renderer,
    )
    engine = Engine(
        settings,
        client=client,
        store=store,
        pipeline=pipeline,
        expires_at=expiry_for(settings, close_of),
        on_commit=worker.wake,
        metrics=metrics,
    )
    return Bot(settings, secrets, client, store, renderer, built, worker, engine, metrics, replica)
