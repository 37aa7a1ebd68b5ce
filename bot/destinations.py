"""The destinations a config names, built and checked: ``[[destinations]]`` (or the implicit
Slack / console one of earlier configs), the digest's email, and the routes against them.
A missing secret or a route naming an unknown destination raises
:class:`bot.settings.ConfigError`, before anything is polled or sent; importing this does not
import the store or the engine, so ``flowbot once`` checks it before its first request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.api.models import ZERO_DTE_METRICS
from bot.api.sources import SOURCES
from bot.deliver import DESTINATIONS
from bot.deliver.base import BuildContext, Destination, DestinationConfig, MissingSecret
from bot.deliver.console import ConsoleConfig, ConsoleDestination
from bot.deliver.slack import SlackConfig, SlackWebhookConfig
from bot.deliver.smtp import EmailConfig
from bot.events import Category
from bot.notices import NOTICES
from bot.routes import Routable, route, validate_routes
from bot.rules import RULES
from bot.settings import ConfigError, Settings

__all__ = ["Destinations", "build_destinations", "destination_configs"]


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
