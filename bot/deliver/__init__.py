"""Destination kinds, by the name users write as ``kind`` in ``[[destinations]]``.

Adding a kind is one module (a config model, a class with ``send`` and ``close``, and a
``KIND = DestinationKind(...)`` line; see :mod:`bot.deliver.slack`) and one line here.
"""

from __future__ import annotations

from bot.deliver import console, discord, slack, smtp, teams, webhook
from bot.deliver.base import DestinationKind

__all__ = ["DESTINATIONS"]

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
