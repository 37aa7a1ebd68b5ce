"""Builds the bot's parts from a config: client, store, renderer, destination, engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.api.client import FlashAlphaClient
from bot.deliver.base import Destination
from bot.deliver.console import ConsoleDestination
from bot.engine import Engine
from bot.render import Renderer
from bot.settings import Secrets, Settings
from bot.store import Store

__all__ = ["Bot", "build_bot", "build_destination"]


def build_destination(
    settings: Settings, secrets: Secrets, *, dry_run: bool = False
) -> Destination:
    """Slack with a bot token, else an incoming webhook, else the console (and its JSONL file).

    ``dry_run`` prints to the console and writes nothing."""
    if dry_run:
        return ConsoleDestination(None)
    if secrets.slack_bot_token is not None:
        from bot.deliver.slack import SlackBotDestination

        return SlackBotDestination(
            token=secrets.slack_bot_token.get_secret_value(),
            channel=settings.slack.channel,
            api_url=settings.slack.api_url,
            max_posts_per_second=settings.slack.max_posts_per_second,
        )
    if secrets.slack_webhook_url is not None:
        from bot.deliver.slack import SlackWebhookDestination

        return SlackWebhookDestination(secrets.slack_webhook_url.get_secret_value())
    return ConsoleDestination(settings.console.jsonl_path)


@dataclass
class Bot:
    """The parts of one running bot; ``aclose()`` releases them."""

    settings: Settings
    secrets: Secrets
    client: FlashAlphaClient
    store: Store
    renderer: Renderer
    destination: Destination
    engine: Engine

    async def aclose(self) -> None:
        """Close the HTTP pool, the destination and the database."""
        await self.client.aclose()
        await self.destination.close()
        self.store.close()


def build_bot(
    settings: Settings,
    secrets: Secrets,
    *,
    dry_run: bool = False,
    state_path: Path | None = None,
    destination: Destination | None = None,
) -> Bot:
    """Wire a :class:`Bot` for ``settings``. ``dry_run`` uses an in-memory store and the
    console, so nothing is remembered and nothing is posted."""
    key = secrets.flashalpha_api_key.get_secret_value() if secrets.flashalpha_api_key else None
    client = FlashAlphaClient(
        settings.flashalpha.base_url,
        key,
        timeout=settings.flashalpha.timeout_seconds,
        max_concurrency=settings.flashalpha.max_concurrency,
        retries=settings.flashalpha.retries,
    )
    store = Store(":memory:" if dry_run else (state_path or settings.state.path))
    renderer = Renderer(settings.templates.dir, timezone=settings.schedule.timezone)
    destination = destination or build_destination(settings, secrets, dry_run=dry_run)
    engine = Engine(
        settings, client=client, store=store, renderer=renderer, destination=destination
    )
    return Bot(settings, secrets, client, store, renderer, destination, engine)
