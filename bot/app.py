"""Builds the bot's parts from a config: client, store, renderer, destinations, pipeline, outbox
worker and engine. A missing secret or a route naming an unknown destination raises
:class:`bot.settings.ConfigError` here, before anything is polled or sent."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.api.client import FlashAlphaClient
from bot.api.models import ZERO_DTE_METRICS
from bot.api.sources import SOURCES
from bot.deliver import DESTINATIONS
from bot.deliver.base import BuildContext, Destination, DestinationConfig, MissingSecret
from bot.deliver.console import ConsoleConfig, ConsoleDestination
from bot.deliver.slack import SlackConfig, SlackWebhookConfig
from bot.deliver.smtp import EmailConfig
from bot.engine import Engine, utcnow
from bot.events import Category
from bot.leader import replica_id
from bot.metrics import Metrics
from bot.notices import NOTICES
from bot.outbox import OutboxWorker
from bot.pipeline import PipelineConfig
from bot.render import Renderer
from bot.routes import Routable, route, validate_routes
from bot.rules import RULES
from bot.settings import ConfigError, Secrets, Settings
from bot.store import Store

if TYPE_CHECKING:
    from bot.calendar import TradingCalendar

__all__ = [
    "Bot",
    "Destinations",
    "build_bot",
    "build_destinations",
    "destination_configs",
    "destination_secrets",
    "expiry_for",
]

NEW_YORK = ZoneInfo("America/New_York")


def destination_configs(settings: Settings, context: BuildContext) -> list[DestinationConfig]:
    """The ``[[destinations]]`` of the config; without any, the implicit one of earlier
    versions: Slack with ``SLACK_BOT_TOKEN`` (``[slack]`` channel and api_url), else the
    webhook in ``SLACK_WEBHOOK_URL``, else the console (``[console] jsonl_path``); both Slack
    ones are named ``slack``, the console ``console``."""
    if settings.destinations:
        return list(settings.destinations)
    slack = settings.slack
    if context.optional_secret("SLACK_BOT_TOKEN"):
        return [
            SlackConfig(
                name="slack",
                channel=slack.channel,
                api_url=slack.api_url,
                max_posts_per_second=slack.max_posts_per_second,
            )
        ]
    if context.optional_secret("SLACK_WEBHOOK_URL"):
        return [SlackWebhookConfig(name="slack", max_posts_per_second=slack.max_posts_per_second)]
    return [ConsoleConfig(name="console", jsonl_path=settings.console.jsonl_path)]


def destination_secrets(settings: Settings, context: BuildContext) -> list[str]:
    """The values of every variable a destination names (``token_env``, ``url_env``,
    ``secret_env``, ``password_env``) that is set: what log scrubbing must hide."""
    names = {"SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL", "SMTP_PASSWORD"}
    for cfg in settings.destinations:
        for key in ("token_env", "url_env", "secret_env", "password_env"):
            value = getattr(cfg, key, None)
            if isinstance(value, str) and value:
                names.add(value)
    return [v for name in sorted(names) if (v := context.optional_secret(name))]


def _digest_config(settings: Settings, taken: set[str]) -> EmailConfig:
    """The implicit email destination for the digest, from ``[email]`` (files without host)."""
    email = settings.email
    name = "email" if "email" not in taken else "digest-email"
    return EmailConfig(
        name=name,
        host=email.host,
        port=email.port,
        security=email.security,
        username=email.username,
        sender=email.sender,
        recipients=email.recipients or ["desk@localhost"],
        outbox_dir=email.outbox_dir,
    )


@dataclass(frozen=True)
class Destinations:
    """The built destinations by name; ``alerts``: the names an empty root route means (every
    configured destination); ``digest``: the email destination the digest falls back to."""

    by_name: Mapping[str, Destination]
    alerts: tuple[str, ...]
    digest: str

    def targets(self, settings: Settings, kind: Category) -> list[str]:
        """Destination names a recap or digest (no rule, no symbol) is routed to. A digest
        goes only to destinations that can carry it, else to :attr:`digest`."""
        names = [
            t.destination
            for t in route(Routable(kind), settings.routes, settings.route, self.alerts)
        ]
        if kind is Category.DIGEST:
            names = [n for n in names if self.by_name[n].capabilities.digest] or [self.digest]
        return names


def build_destinations(
    settings: Settings, context: BuildContext, *, dry_run: bool = False
) -> Destinations:
    """Build every destination and check the routes against them.

    ``dry_run`` replaces each destination by a console that prints only (same names, so the
    routes still apply). Raises :class:`ConfigError` naming the missing variable, the unknown
    destination or the unknown match value."""
    configs = destination_configs(settings, context)
    names = {c.name for c in configs}
    digest = _digest_config(settings, names)
    built: dict[str, Destination] = {}
    for cfg in [*configs, digest]:
        if dry_run:
            built[cfg.name] = ConsoleDestination(None, context.console, name=cfg.name)
            continue
        try:
            built[cfg.name] = DESTINATIONS[cfg.kind].build(cfg, context)
        except MissingSecret as exc:
            raise ConfigError(f"environment: {exc}") from None
    boards = ["options:buyers", "options:sellers", *(f"zero_dte:{m}" for m in ZERO_DTE_METRICS)]
    try:
        validate_routes(
            settings.routes,
            settings.route,
            [*names, digest.name],
            {"rule": [*RULES, *NOTICES], "source": [*boards, *SOURCES]},
        )
    except ValueError as exc:
        raise ConfigError(f"{settings.toml_path or 'environment'}: {exc}") from None
    return Destinations(built, tuple(c.name for c in configs), digest.name)


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
    """The XNYS close of New York date ``day`` (UTC), ``None`` without a session or when
    ``day`` is outside the calendar's range."""
    from bot.calendar import CalendarRangeError

    try:
        session = _trading_calendar(date.today()).session_for(day)
    except CalendarRangeError:
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
) -> Bot:
    """Wire a :class:`Bot` for ``settings``. ``dry_run`` uses an in-memory store and console
    stand-ins, so nothing is remembered and nothing is posted. ``context`` is what secrets
    are read from (the process environment by default: only ``run`` / ``once`` / ``check``
    may use that); ``destinations`` replaces built ones by name (tests). ``clock`` is the
    outbox worker's UTC clock (the demo's simulated one). Raises :class:`ConfigError`."""
    context = context or BuildContext(secrets_dir=Path("/run/secrets"))
    built = build_destinations(settings, context, dry_run=dry_run)
    if destinations:
        built = Destinations({**built.by_name, **destinations}, built.alerts, built.digest)
    key = secrets.flashalpha_api_key.get_secret_value() if secrets.flashalpha_api_key else None
    client = FlashAlphaClient(
        settings.flashalpha.base_url,
        key,
        timeout=settings.flashalpha.timeout_seconds,
        max_concurrency=settings.flashalpha.max_concurrency,
        max_requests_per_second=settings.flashalpha.max_requests_per_second,
        retries=settings.flashalpha.retries,
    )
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
