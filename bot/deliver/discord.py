"""Discord destination: a channel webhook executed with one embed per message.

The message arrives rendered in Discord's markdown (API text already escaped): the header
becomes the embed title, section texts its description, section fields inline embed fields
(name = the field's first line, value = the rest), context lines the footer (plain text:
Discord shows no markdown there), the severity the embed colour. Discord's embed limits are
enforced here by truncating, never by failing: title ≤ 256, description ≤ 4,096, ≤ 25 fields
(name ≤ 256, value ≤ 1,024), footer ≤ 2,048 and ≤ 6,000 characters over the whole embed;
what is left out is counted in the message.

Nothing in the payload can ping: ``allowed_mentions`` always has ``parse: []``; only the
route's ``mention`` (config, never data) goes into ``content``, and only a user (``<@id>``)
or role (``<@&id>``) named there is allowed to be pinged; ``@here`` / ``@everyone`` (or
Slack's ``<!here>`` / ``<!channel>`` / ``<!everyone>``) add ``"everyone"`` to ``parse``.
Embeds never ping, so API text in them stays inert whatever it holds.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import httpx
from pydantic import Field, field_validator

from bot.deliver.base import (
    SEVERITY_COLOURS,
    BuildContext,
    Capabilities,
    Delivered,
    DeliveryError,
    DestinationConfig,
    DestinationKind,
    Envelope,
)
from bot.deliver.webhook import (
    http_client,
    json_body,
    post_json,
    retry_after_header,
    safe_code,
    split_field,
)
from bot.events import Dialect, Message

__all__ = [
    "KIND",
    "MAX_DESCRIPTION",
    "MAX_EMBED_TOTAL",
    "MAX_FIELDS",
    "DiscordConfig",
    "DiscordDestination",
    "build_execute_payload",
]

MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_EMBED_TOTAL = 6000
MAX_CONTENT = 2000
MIN_FIELDS_SHARE = 1500  # characters kept for fields when the description would take all
ELLIPSIS = "…"
BLANK = "\u200b"  # Discord refuses an empty field name or value; a zero-width space shows none

_USER = re.compile(r"^<@!?(\d{1,20})>$")
_ROLE = re.compile(r"^<@&(\d{1,20})>$")
_EVERYONE = {"@here": "@here", "@everyone": "@everyone", "<!here>": "@here"}
_EVERYONE.update({"<!channel>": "@everyone", "<!everyone>": "@everyone"})
# The template's own markdown markers (unescaped), and the data's backslash escapes.
_MARKERS = re.compile(r"(?<!\\)(\*\*|~~|__|\*|_)(?=\S)(.+?)(?<=\S)(?<!\\)\1")
_ESCAPED = re.compile(r"\\([\\`*_~|\[\]()#])")


def _cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, ending in ``…`` when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + ELLIPSIS if limit > 0 else ""


def _plain(markdown: str) -> str:
    """Markdown as plain text (for the footer, which Discord shows without markdown): the
    template's markers dropped, the data's escapes undone."""
    return _ESCAPED.sub(r"\1", _MARKERS.sub(r"\2", markdown))


def _fit_sections(sections: list[str], budget: int) -> str:
    """The sections joined by blank lines within ``budget`` characters: whole sections
    while they fit, then a line counting the ones left out (the first one is cut rather
    than dropped when even it does not fit)."""
    whole = "\n\n".join(sections)
    if len(whole) <= budget or len(sections) == 1:
        return _cut(whole, budget)
    for kept in range(len(sections) - 1, 0, -1):
        note = f"{ELLIPSIS} {len(sections) - kept} more sections left out"
        text = "\n\n".join([*sections[:kept], note])
        if len(text) <= budget:
            return text
    note = f"{ELLIPSIS} {len(sections) - 1} more sections left out"
    room = budget - len(note) - 2
    if room <= 16:  # no useful room for a cut first section: just count them all
        return _cut(f"{ELLIPSIS} {len(sections)} sections left out", budget)
    return f"{_cut(sections[0], room)}\n\n{note}"


def _fit_fields(fields: list[tuple[str, str]], budget: int) -> list[tuple[str, str]]:
    """At most 25 fields whose names and values add up to ≤ ``budget`` characters: fields
    from the end are dropped and one last field counts them."""

    def size(items: list[tuple[str, str]]) -> int:
        return sum(len(n) + len(v) for n, v in items)

    if len(fields) <= MAX_FIELDS and size(fields) <= budget:
        return fields
    for kept in range(min(len(fields), MAX_FIELDS - 1), -1, -1):
        note = (ELLIPSIS, f"{len(fields) - kept} more fields left out")
        chosen = [*fields[:kept], note]
        if size(chosen) <= budget:
            return chosen
    return []


def _embed(message: Message) -> dict[str, Any]:
    """The message as one embed within Discord's limits (see the module doc)."""
    blocks = message.blocks
    sections: list[str] = []
    fields: list[tuple[str, str]] = []
    footer_lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "section":
            if "text" in block:
                sections.append(str(block["text"]["text"]))
            for item in block.get("fields", []):
                name, value = split_field(str(item.get("text", "")))
                fields.append((_cut(name, MAX_FIELD_NAME) or BLANK, _cut(value, MAX_FIELD_VALUE)))
        elif kind == "context":
            texts = [_plain(str(e.get("text", ""))) for e in block.get("elements", [])]
            footer_lines.append(" · ".join(t for t in texts if t))
    fields = [(n, v or BLANK) for n, v in fields]
    if not blocks:
        sections = [message.text]
    title = _cut(message.title, MAX_TITLE) if blocks else ""
    footer = _cut("\n".join(line for line in footer_lines if line), MAX_FOOTER)
    fixed = len(title) + len(footer)
    wanted = min(len("\n\n".join(sections)), MAX_DESCRIPTION, MAX_EMBED_TOTAL - fixed)
    # The description comes first, but fields keep a share of the 6,000 (the numbers).
    share = min(sum(len(n) + len(v) for n, v in fields), MIN_FIELDS_SHARE)
    fields = _fit_fields(fields, max(MAX_EMBED_TOTAL - fixed - wanted, share))
    used = fixed + sum(len(n) + len(v) for n, v in fields)
    description = _fit_sections(sections, min(MAX_DESCRIPTION, MAX_EMBED_TOTAL - used))

    embed: dict[str, Any] = {}
    if title:
        embed["title"] = title
    if description:
        embed["description"] = description
    if fields:
        embed["fields"] = [{"name": n, "value": v, "inline": True} for n, v in fields]
    if footer:
        embed["footer"] = {"text": footer}
    if message.severity is not None:
        embed["color"] = int(SEVERITY_COLOURS[message.severity].lstrip("#"), 16)
    return embed


def build_execute_payload(
    message: Message, mention: str | None = None, username: str | None = None
) -> dict[str, Any]:
    """The JSON body of Discord's "Execute Webhook" for ``message``: one embed,
    ``allowed_mentions`` limited to what ``mention`` (the route's config) names, which is
    the whole ``content``; ``username`` overrides the webhook's name when set."""
    allowed: dict[str, Any] = {"parse": []}
    payload: dict[str, Any] = {"embeds": [_embed(message)], "allowed_mentions": allowed}
    if mention:
        mention = mention.strip()
        if user := _USER.match(mention):
            allowed["users"] = [user.group(1)]
        elif role := _ROLE.match(mention):
            allowed["roles"] = [role.group(1)]
        elif mention in _EVERYONE:
            mention = _EVERYONE[mention]
            allowed["parse"] = ["everyone"]
        payload["content"] = _cut(mention, MAX_CONTENT)
    if username:
        payload["username"] = username
    return payload


def _code(response: httpx.Response) -> str | None:
    """Discord's numeric JSON error ``code`` (``50035`` invalid form body, ``10015``
    unknown webhook), when the body has one."""
    try:
        data = response.json()
    except ValueError:
        return None
    if not isinstance(data, dict) or "code" not in data:
        return None
    code = safe_code(data.get("code"))
    return f"code {code}" if code else None


def _retry_after(response: httpx.Response) -> float | None:
    """The longer of the ``Retry-After`` header and the JSON body's ``retry_after``
    (seconds, fractional), so nothing is sent before either has passed."""
    waits = [retry_after_header(response.headers)]
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("retry_after"), int | float):
        waits.append(max(float(data["retry_after"]), 0.0))
    known = [w for w in waits if w is not None]
    return max(known) if known else None


class DiscordConfig(DestinationConfig):
    """``kind = "discord"``: a channel webhook whose URL is in the variable ``url_env``
    (default ``DISCORD_WEBHOOK_URL``); ``username`` overrides the name the webhook posts as
    (1-80 characters; Discord refuses names containing "discord" or "clyde")."""

    kind: Literal["discord"] = "discord"
    url_env: str = "DISCORD_WEBHOOK_URL"
    username: str | None = Field(None, min_length=1, max_length=80)

    @field_validator("username")
    @classmethod
    def _discord_accepts(cls, value: str | None) -> str | None:
        if value is not None and any(w in value.lower() for w in ("discord", "clyde")):
            raise ValueError('Discord refuses usernames containing "discord" or "clyde"')
        return value


class DiscordDestination:
    """Executes a Discord webhook with ``?wait=true`` (so Discord answers the message).

    - ``url``: ``https://discord.com/api/webhooks/<id>/<token>`` (a secret: never in errors
      or logs).
    - ``username``: optional display name for the posts.
    - ``min_interval``: seconds between sends, applied by the outbox worker (Discord allows
      about 5 posts per 2 s per webhook).

    Returns ``Delivered(channel=<channel id>, ts=<message id>)``. A 429 is recoverable with
    the longer of ``Retry-After`` and the body's ``retry_after``; 5xx and network errors are
    recoverable; any other 4xx (``50035`` invalid form body, ``10015`` unknown webhook) is
    permanent.
    """

    capabilities = Capabilities(Dialect.MARKDOWN, colour=True)

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        name: str = "discord",
        min_interval: float = 1.0,
        timeout: float = 30.0,
    ):
        self.name = name
        self.min_interval = min_interval
        self.username = username
        self._url = url
        self._client = http_client(timeout)

    async def send(self, envelope: Envelope) -> Delivered:
        """Post the message as one embed (the route's mention as content). Raises
        :class:`DeliveryError`."""
        if envelope.message is None:
            raise DeliveryError("discord cannot send a file or an email", recoverable=False)
        payload = build_execute_payload(envelope.message, envelope.mention, self.username)
        response = await post_json(
            self._client,
            self._url,
            json_body(payload),
            service="discord webhook",
            params={"wait": "true"},
            code_of=_code,
            retry_after_of=_retry_after,
        )
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return Delivered()
        message_id, channel_id = data.get("id"), data.get("channel_id")
        return Delivered(
            channel=str(channel_id) if channel_id is not None else None,
            ts=str(message_id) if message_id is not None else None,
        )

    async def close(self) -> None:
        """Close the HTTP client's connections."""
        await self._client.aclose()


def _build(cfg: DiscordConfig, ctx: BuildContext) -> DiscordDestination:
    return DiscordDestination(
        ctx.secret(cfg.url_env, cfg.name),
        username=cfg.username,
        name=cfg.name,
        min_interval=cfg.min_interval,
    )


KIND = DestinationKind(
    "discord",
    DiscordConfig,
    _build,
    DiscordDestination.capabilities,
    "Discord channel webhook: one embed per message, severity colour, no pings from data",
)
