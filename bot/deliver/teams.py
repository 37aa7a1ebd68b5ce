"""Microsoft Teams destination: a Power Automate "Workflows" webhook carrying an Adaptive Card.

The message arrives rendered as plain text. Every text goes into a ``RichTextBlock`` of
``TextRun`` elements, which Adaptive Cards never read as markdown (a ``TextBlock`` or a
``FactSet`` would turn ``**x**`` or ``[label](url)`` from API text into formatting or a
link), so API text stays inert. The card:

- a ``Container`` styled by severity (``attention`` critical, ``warning`` warning,
  ``accent`` info; none for messages without one) holding the header (bold, medium) and the
  severity as a coloured word;
- each section's text, then its fields as label/value rows (a ``ColumnSet`` per field:
  bold label, value beside it);
- context lines small and subtle; a divider is a separator line before the next part.

Teams refuses cards over 28 KB, so the whole request body is kept within
:data:`MAX_BODY_BYTES`: parts are dropped from the end (the header is always kept) and a
last line counts the sections left out. A route's ``mention`` is not shown: a Workflows
card cannot ping, and Slack's ``<!here>`` would only show as text.
Workflows answer ``202 Accepted`` (some flows ``200``); both count as delivered.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx

from bot.deliver.base import (
    BuildContext,
    Capabilities,
    Delivered,
    DeliveryError,
    DestinationConfig,
    DestinationKind,
    Envelope,
)
from bot.deliver.webhook import http_client, json_body, post_json, safe_code, split_field
from bot.events import Dialect, Message, Severity

__all__ = [
    "CARD_CONTENT_TYPE",
    "KIND",
    "MAX_BODY_BYTES",
    "TeamsConfig",
    "TeamsDestination",
    "build_card_payload",
]

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"
MAX_BODY_BYTES = 28_000
"""Bytes of the whole POST body (Teams' limit is 28 KB of message; a margin is kept)."""
MAX_TEXT = 3000
MAX_TITLE = 500
ELLIPSIS = "…"

STYLES: dict[Severity, str] = {
    Severity.CRITICAL: "attention",
    Severity.WARNING: "warning",
    Severity.INFO: "accent",
}
"""Container style (and the severity word's colour) per severity."""


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def _run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": _cut(text), **style}


def _rich(*runs: dict[str, Any], separator: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "RichTextBlock", "inlines": list(runs)}
    if separator:
        block["separator"] = True
    return block


def _field_row(text: str) -> dict[str, Any]:
    name, value = split_field(text)
    return {
        "type": "ColumnSet",
        "spacing": "None",
        "columns": [
            {"type": "Column", "width": 2, "items": [_rich(_run(name, weight="Bolder"))]},
            {"type": "Column", "width": 3, "items": [_rich(_run(value or "—"))]},
        ],
    }


def _header(message: Message) -> dict[str, Any]:
    title = _cut(message.title, MAX_TITLE)
    items = [_rich(_run(title, weight="Bolder", size="Medium"))]
    container: dict[str, Any] = {"type": "Container", "items": items}
    if message.severity is not None:
        style = STYLES[message.severity]
        word = _run(message.severity.value.upper(), color=style, size="Small", weight="Bolder")
        items.append(_rich(word))
        container["style"] = style
        container["bleed"] = True
    return container


def _parts(message: Message) -> list[tuple[bool, list[dict[str, Any]]]]:
    """The card elements after the header, one list per block, each marked whether it is
    a section or context (what the "left out" note counts)."""
    parts: list[tuple[bool, list[dict[str, Any]]]] = []
    separator = False
    for block in message.blocks:
        kind = block.get("type")
        elements: list[dict[str, Any]] = []
        if kind == "divider":
            separator = True
            continue
        if kind == "section":
            if "text" in block:
                elements.append(_rich(_run(str(block["text"]["text"]))))
            elements += [_field_row(str(f.get("text", ""))) for f in block.get("fields", [])]
        elif kind == "context":
            runs = [str(e.get("text", "")) for e in block.get("elements", [])]
            elements.append(_rich(_run(" · ".join(runs), size="Small", isSubtle=True)))
        if elements:
            if separator:
                elements[0] = dict(elements[0], separator=True)
                separator = False
            parts.append((True, elements))
    if not message.blocks:
        parts.append((True, [_rich(_run(message.text))]))
    return parts


def _wrap(body: list[dict[str, Any]]) -> dict[str, Any]:
    card = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def build_card_payload(message: Message, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The Workflows request body for ``message``: a ``message`` with one Adaptive Card
    attachment (see the module doc) whose JSON (UTF-8, as sent) is ≤ ``max_bytes``; parts
    beyond that are left out and counted in a last line."""
    header = _header(message)
    parts = _parts(message)
    for kept in range(len(parts), -1, -1):
        body = [header]
        for _, elements in parts[:kept]:
            body += elements
        left_out = len(parts) - kept
        if left_out:
            note = f"{ELLIPSIS} {left_out} more sections left out (Teams card size limit)"
            body.append(_rich(_run(note, isSubtle=True, italic=True)))
        payload = _wrap(body)
        if len(json_body(payload)) <= max_bytes:
            return payload
    return payload  # the header alone is far under the limit (title ≤ 500 characters)


def _code(response: httpx.Response) -> str | None:
    """The Workflows error code (``{"error": {"code": "..."}}``) when the body has one."""
    try:
        data = response.json()
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    return safe_code(error.get("code")) if isinstance(error, dict) else None


class TeamsConfig(DestinationConfig):
    """``kind = "teams"``: a Teams Workflows webhook ("Post to a channel when a webhook
    request is received") whose URL is in the variable ``url_env`` (default
    ``TEAMS_WEBHOOK_URL``)."""

    kind: Literal["teams"] = "teams"
    url_env: str = "TEAMS_WEBHOOK_URL"


class TeamsDestination:
    """Posts each message as an Adaptive Card to a Workflows webhook URL (a secret: it
    carries its own signature, and never appears in errors or logs).

    Returns ``Delivered()`` (Workflows give no message id). 429 (with ``Retry-After``), 408,
    5xx and network errors are recoverable; any other 4xx is permanent.
    """

    capabilities = Capabilities(Dialect.PLAIN, colour=True)

    def __init__(
        self, url: str, *, name: str = "teams", min_interval: float = 1.0, timeout: float = 30.0
    ):
        self.name = name
        self.min_interval = min_interval
        self._url = url
        self._client = http_client(timeout)

    async def send(self, envelope: Envelope) -> Delivered:
        """POST the card. Raises :class:`DeliveryError`."""
        if envelope.message is None:
            raise DeliveryError("teams cannot send a file or an email", recoverable=False)
        body = json_body(build_card_payload(envelope.message))
        await post_json(self._client, self._url, body, service="teams workflow", code_of=_code)
        return Delivered()

    async def close(self) -> None:
        """Close the HTTP client's connections."""
        await self._client.aclose()


def _build(cfg: TeamsConfig, ctx: BuildContext) -> TeamsDestination:
    return TeamsDestination(
        ctx.secret(cfg.url_env, cfg.name), name=cfg.name, min_interval=cfg.min_interval
    )


KIND = DestinationKind(
    "teams",
    TeamsConfig,
    _build,
    TeamsDestination.capabilities,
    "Microsoft Teams Workflows webhook: an Adaptive Card per message, severity style",
)
