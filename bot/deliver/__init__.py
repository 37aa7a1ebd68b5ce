"""Destination kinds, by the name users write as ``kind`` in ``[[destinations]]``.

Adding a kind is one module (a config model, a class with ``send`` and ``close``, and a
``KIND = DestinationKind(...)`` line; see :mod:`bot.deliver.slack`) and one line here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.deliver import console, discord, slack, smtp, teams, webhook
from bot.deliver.base import BuildContext, DestinationKind

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = ["DESTINATIONS", "destination_secrets"]

DESTINATIONS: dict[str, DestinationKind] = {
    kind.kind: kind
    for kind in (
        slack.BOT_KIND,
        slack.WEBHOOK_KIND,
        discord.KIND,
        teams.KIND,
        webhook.KIND,
        smtp.KIND,
        console.KIND,
    )
}
"""Every destination kind by its config name."""


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
