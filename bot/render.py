"""Rendering: Jinja templates → Slack messages (Block Kit + fallback text) and email parts.

Slack template format (``templates/slack/<kind>.j2``): the rendered output is mrkdwn text
split into parts by *marker lines*, a line holding only one of

- ``<text>``: the plain fallback text Slack shows in notifications;
- ``<header>``: a header block (plain text, one line);
- ``<section>``: a section block whose text is the following lines;
- ``<field>``: one field of the current section (a new section if none is open);
- ``<context>``: a context block, one mrkdwn element per line (at most 10);
- ``<divider>``: a divider.

Python builds the block dicts and JSON from these parts, so the JSON is valid whatever the data
holds. Every ``{{ value }}`` passes through :func:`bot.escape.to_mrkdwn` (Jinja ``finalize``
with autoescape on), so every string from the API is escaped for mrkdwn and collapsed to one
line: data can neither ping, link, nor forge a marker line (markers need a raw ``<``).
Output that is already mrkdwn-safe is a ``Markup`` (macros, :func:`bot.escape.slack_link`).
Slack's size limits are applied afterwards by :func:`enforce_limits`, for every message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import bot
from bot.escape import finish, markdown_link, plain_link, slack_link, to_markdown, to_mrkdwn
from bot.events import Dialect, Event, Message

if TYPE_CHECKING:
    from jinja2 import BaseLoader, Environment

__all__ = [
    "MAX_BLOCKS",
    "MAX_FALLBACK_TEXT",
    "MAX_HEADER_TEXT",
    "MAX_SECTION_TEXT",
    "Renderer",
    "assemble",
    "enforce_limits",
    "money",
    "num",
    "nytime",
    "packaged_templates_dir",
    "pct",
    "price",
    "signed",
    "strike",
    "truncate",
]

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_CONTEXT_TEXT = 3000
MAX_FALLBACK_TEXT = 4000
ELLIPSIS = "…"
MISSING = "—"


def packaged_templates_dir() -> Path:
    """The shipped templates: ``bot/templates`` in an installed wheel (pyproject force-includes
    the top-level ``templates/`` there), else the repository's top-level ``templates/``."""
    inside = Path(bot.__file__).parent / "templates"
    return inside if inside.is_dir() else Path(bot.__file__).parent.parent / "templates"


# ---------------------------------------------------------------------------------- filters
def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def money(value: Any) -> str:
    """Dollars, compact with three significant digits: ``3.12e9`` → ``"$3.12B"``,
    ``-4.8e7`` → ``"-$48.0M"``, ``950_000`` → ``"$950K"``, ``0.7`` → ``"$0.70"``.
    ``None`` → ``"—"``; a non-number is returned as text."""
    number = _number(value)
    if number is None:
        return MISSING if value is None else str(value)
    sign, amount = ("-" if number < 0 else ""), abs(number)
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        # 0.9995 so that 999,600 shows as "$1.00M", not "$1000K".
        if amount >= scale * 0.9995:
            scaled = amount / scale
            digits = 2 if round(scaled, 2) < 10 else 1 if round(scaled, 1) < 100 else 0
            return f"{sign}${scaled:.{digits}f}{suffix}"
    return f"{sign}${amount:,.2f}"


def price(value: Any) -> str:
    """A price in dollars with cents and thousands separators: ``5912.3`` → ``"$5,912.30"``."""
    number = _number(value)
    if number is None:
        return MISSING if value is None else str(value)
    return f"-${-number:,.2f}" if number < 0 else f"${number:,.2f}"


def strike(value: Any) -> str:
    """A strike or level without trailing zeros: ``588.0`` → ``"588"``, ``587.5`` → ``"587.5"``."""
    number = _number(value)
    if number is None:
        return MISSING if value is None else str(value)
    return f"{number:,.2f}".rstrip("0").rstrip(".")


def pct(value: Any, digits: int = 1, signed: bool = True) -> str:
    """A fraction as percent: ``0.094`` → ``"+9.4%"``; ``signed=False`` drops the ``+``
    (``pct(0.83, 0, False)`` → ``"83%"``). ``None`` → ``"—"``."""
    number = _number(value)
    if number is None:
        return MISSING if value is None else str(value)
    return f"{number * 100:{'+' if signed else ''},.{digits}f}%"


def num(value: Any, digits: int = 0) -> str:
    """A number with thousands separators: ``12450`` → ``"12,450"``. ``None`` → ``"—"``."""
    number = _number(value)
    if number is None:
        return MISSING if value is None else str(value)
    return f"{number:,.{digits}f}"


def signed(value: Any, digits: int = 0) -> str:
    """A number with an explicit sign: ``12450`` → ``"+12,450"``, ``-3310`` → ``"-3,310"``."""
    number = _number(value)
    if number is None:
        return MISSING if value is None else str(value)
    return f"{number:+,.{digits}f}"


def nytime(value: Any, tz: ZoneInfo | None = None, fmt: str = "%H:%M") -> str:
    """A UTC instant as wall-clock time in ``tz`` (New York by default): ``"10:32 ET"``.
    Naive datetimes are taken as UTC. ``None`` → ``"—"``."""
    if not isinstance(value, datetime):
        return MISSING if value is None else str(value)
    zone = tz or ZoneInfo("America/New_York")
    local = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(zone)
    label = "ET" if zone.key == "America/New_York" else local.strftime("%Z")
    return f"{local.strftime(fmt)} {label}"


def label(value: Any) -> str:
    """A machine label for people: ``"bullish_flow_imbalance"`` → ``"bullish flow imbalance"``.
    Unknown labels stay readable text; ``None`` → ``"—"``."""
    return MISSING if value is None else str(value).replace("_", " ").strip()


def duration(value: Any) -> str:
    """A ``timedelta`` (or seconds) as ``"42 min"`` / ``"1 h 05 min"`` / ``"<1 min"``."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else _number(value)
    if seconds is None:
        return MISSING if value is None else str(value)
    minutes = int(abs(seconds) // 60)
    if minutes < 1:
        return "<1 min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


# ---------------------------------------------------------------------------------- limits
def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``…`` when cut. The cut never
    splits an escape entity (``&amp;``/``&lt;``/``&gt;``), which would show as garbage."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    amp = cut.rfind("&", max(len(cut) - 4, 0))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut.rstrip() + ELLIPSIS


def _limit_block(block: dict[str, Any]) -> dict[str, Any]:
    kind = block.get("type")
    if kind == "header":
        text = dict(block["text"], text=truncate(block["text"]["text"], MAX_HEADER_TEXT))
        return dict(block, text=text)
    if kind == "section":
        out = dict(block)
        if "text" in block:
            body = truncate(block["text"]["text"], MAX_SECTION_TEXT)
            out["text"] = dict(block["text"], text=body)
        if "fields" in block:
            fields = [dict(f, text=truncate(f["text"], MAX_FIELD_TEXT)) for f in block["fields"]]
            out["fields"] = fields[:MAX_FIELDS]
        return out
    if kind == "context":
        elements = list(block["elements"])
        if len(elements) > MAX_CONTEXT_ELEMENTS:
            # Merge the overflow into the last element rather than dropping it.
            tail = " · ".join(e["text"] for e in elements[MAX_CONTEXT_ELEMENTS - 1 :])
            elements = [*elements[: MAX_CONTEXT_ELEMENTS - 1], dict(elements[-1], text=tail)]
        elements = [dict(e, text=truncate(e["text"], MAX_CONTEXT_TEXT)) for e in elements]
        return dict(block, elements=elements)
    return block


def enforce_limits(message: Message) -> Message:
    """Fit ``message`` into Slack's limits by truncating (never rejecting): at most 50 blocks
    (the 50th says how many were left out), section text ≤ 3,000 chars, fields ≤ 10 of
    ≤ 2,000, header ≤ 150, context ≤ 10 elements, fallback text ≤ 4,000."""
    blocks = [_limit_block(b) for b in message.blocks]
    if len(blocks) > MAX_BLOCKS:
        omitted = len(blocks) - (MAX_BLOCKS - 1)
        note = {"type": "context", "elements": [_mrkdwn(f"{ELLIPSIS} {omitted} more blocks")]}
        blocks = [*blocks[: MAX_BLOCKS - 1], note]
    return replace(message, text=truncate(message.text, MAX_FALLBACK_TEXT), blocks=blocks)


# ------------------------------------------------------------------------- block assembly
_MARKER = re.compile(r"^<([a-z_]+)>$")
_MARKERS = frozenset({"text", "header", "section", "field", "context", "divider"})
# A known marker anywhere on a line still counts: Jinja's trim_blocks eats the newline after
# a line ending in "{% endif %}", gluing the next marker to it. Data cannot produce "<".
_MARKER_ANYWHERE = re.compile(r"<(" + "|".join(sorted(_MARKERS)) + r")>")
_BLANK_RUNS = re.compile(r"\n{3,}")


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _join(lines: list[str]) -> str:
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def assemble(rendered: str) -> tuple[str, list[dict[str, Any]]]:
    """Split a rendered Slack template into ``(fallback_text, blocks)`` (see the module doc).

    A known marker also counts when glued to other text on its line.
    Lines are stripped of indentation; empty blocks are dropped, so a template may emit a
    part unconditionally and leave it empty when its data is missing. Without a ``<text>``
    part the fallback is the header and section texts. Raises
    :class:`jinja2.TemplateSyntaxError` for an unknown ``<marker>`` (a typo in a template).
    """
    parts: list[tuple[str, list[str]]] = []  # (marker, lines)
    rendered = _MARKER_ANYWHERE.sub(lambda m: f"\n<{m.group(1)}>\n", rendered)
    for lineno, raw in enumerate(rendered.splitlines(), start=1):
        line = raw.strip()
        match = _MARKER.match(line)
        if match:
            if match.group(1) not in _MARKERS:
                from jinja2 import TemplateSyntaxError

                raise TemplateSyntaxError(f"unknown block marker {line!r}", lineno)
            parts.append((match.group(1), []))
        elif parts:
            parts[-1][1].append(line)
        elif line:
            parts.append(("text", [line]))  # text before any marker is fallback text

    text_lines: list[str] = []
    blocks: list[dict[str, Any]] = []
    section: dict[str, Any] | None = None  # the open section, which <field> parts extend
    for marker, lines in parts:
        body = _join(lines)
        if marker == "text":
            text_lines.append(body)
        elif marker == "field":
            if section is None:
                section = {"type": "section"}
                blocks.append(section)
            if body:
                section.setdefault("fields", []).append(_mrkdwn(body))
            continue
        elif marker == "header" and body:
            blocks.append(
                {"type": "header", "text": {"type": "plain_text", "text": " ".join(body.split())}}
            )
        elif marker == "section":
            section = {"type": "section"}
            if body:
                section["text"] = _mrkdwn(body)
            blocks.append(section)
            continue
        elif marker == "context":
            elements = [_mrkdwn(line) for line in lines if line]
            if elements:
                blocks.append({"type": "context", "elements": elements})
        elif marker == "divider":
            blocks.append({"type": "divider"})
        section = None

    blocks = _tidy(blocks)
    text = _join(text_lines) or _fallback_from(blocks)
    return text, blocks


def _tidy(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop empty sections and dividers that separate nothing."""
    kept = [b for b in blocks if b["type"] != "section" or "text" in b or b.get("fields")]
    out: list[dict[str, Any]] = []
    for block in kept:
        if block["type"] == "divider" and (not out or out[-1]["type"] == "divider"):
            continue
        out.append(block)
    while out and out[-1]["type"] == "divider":
        out.pop()
    return out


def _fallback_from(blocks: list[dict[str, Any]]) -> str:
    texts = [
        b["text"]["text"] for b in blocks if b["type"] in ("header", "section") and "text" in b
    ]
    return "\n".join(texts) or ELLIPSIS


# -------------------------------------------------------------------------------- renderer
class Renderer:
    """Renders events and named templates with the user's overrides before the shipped ones.

    - ``override_dir``: the user's ``[templates] dir``, laid out like the shipped folder
      (``slack/<kind>.j2``, ``email/<name>.txt.j2``, ``email/<name>.html.j2``); any single
      file there replaces the shipped one of the same path.
    - ``timezone``: IANA zone for the ``nytime`` filter (``"10:32 ET"`` in New York).

    Undefined names raise :class:`jinja2.UndefinedError` (StrictUndefined), so a typo in a
    template fails loudly in tests instead of rendering blank.

    Jinja is imported and its environments are made on the first render, not here: a run
    that raises nothing (``flowbot once`` on a quiet market) never loads it.
    """

    def __init__(self, override_dir: Path | None = None, timezone: str = "America/New_York"):
        self.override_dir = override_dir
        self.templates_dir = packaged_templates_dir()
        self.zone = ZoneInfo(timezone)
        self._environments: dict[str, Environment] = {}

    def _env(self, name: str) -> Environment:
        """The Jinja environment ``name`` (a :class:`Dialect` value, ``email_text`` or
        ``email_html``), every one made on the first call."""
        if not self._environments:
            from jinja2 import ChoiceLoader, FileSystemLoader

            search = [str(p) for p in (self.override_dir, self.templates_dir) if p is not None]
            loader = ChoiceLoader([FileSystemLoader(path) for path in search])
            slack = self._environment(loader, autoescape=True, finalize=to_mrkdwn)
            slack.filters["link"] = slack_link
            markdown = self._environment(loader, autoescape=True, finalize=to_markdown)
            markdown.filters["link"] = markdown_link
            plain = self._environment(loader, autoescape=True, finalize=to_markdown)
            plain.filters["link"] = plain_link
            self._environments = {
                Dialect.SLACK.value: slack,
                Dialect.MARKDOWN.value: markdown,
                Dialect.PLAIN.value: plain,
                "email_text": self._environment(loader, autoescape=False, finalize=_blank_none),
                "email_html": self._environment(loader, autoescape=True, finalize=_blank_none),
            }
        return self._environments[name]

    def _environment(self, loader: BaseLoader, *, autoescape: bool, finalize: Any) -> Environment:
        from jinja2 import Environment, StrictUndefined

        env = Environment(
            loader=loader,
            autoescape=autoescape,
            finalize=finalize,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        zone = self.zone
        env.filters.update(
            money=money,
            price=price,
            pct=pct,
            num=num,
            signed=signed,
            strike=strike,
            label=label,
            duration=duration,
            nytime=lambda value, fmt="%H:%M": nytime(value, zone, fmt),
        )
        return env

    def slack(
        self,
        event: Event,
        reason: str | None = None,
        dialect: Dialect = Dialect.SLACK,
        *,
        finished: bool = True,
    ) -> Message:
        """Render ``slack/<event.kind>.j2`` with the event's context plus ``event`` and
        ``reason`` (the policy's named reason, e.g. ``"cooldown_elapsed"``), in ``dialect``;
        the message carries the event's severity. ``finished=False`` leaves a non-Slack
        dialect's text before its last step (:func:`bot.escape.finish`), for embedding in
        another template (a group message) that finishes it once.

        Raises :class:`jinja2.TemplateNotFound` for a kind without a template and
        :class:`jinja2.UndefinedError` when the context lacks a name the template uses."""
        context = {**dict(event.context), "event": event, "reason": reason}
        message = self._render_slack(event.kind, context, dialect, finished=finished)
        return replace(message, severity=event.severity)

    def slack_template(
        self, name: str, dialect: Dialect = Dialect.SLACK, **context: Any
    ) -> Message:
        """Render ``slack/<name>.j2`` (e.g. the session ``recap``) with ``context`` in
        ``dialect``; the message's ``kind`` is ``name``."""
        return self._render_slack(name, context, dialect)

    def email(self, name: str, **context: Any) -> tuple[str, str]:
        """Render ``email/<name>.txt.j2`` (no escaping) and ``email/<name>.html.j2`` (HTML
        autoescape on) with ``context``; returns ``(text, html)``."""
        text = self._env("email_text").get_template(f"email/{name}.txt.j2").render(context)
        html = self._env("email_html").get_template(f"email/{name}.html.j2").render(context)
        return text, html

    def _render_slack(
        self,
        name: str,
        context: Mapping[str, Any],
        dialect: Dialect = Dialect.SLACK,
        *,
        finished: bool = True,
    ) -> Message:
        rendered = self._env(dialect.value).get_template(f"slack/{name}.j2").render(context)
        text, blocks = assemble(rendered)
        if dialect is not Dialect.SLACK and finished:
            text, blocks = finish(text, dialect), [_finish_block(b, dialect) for b in blocks]
        return enforce_limits(Message(kind=name, text=text, blocks=blocks, dialect=dialect))


def _finish_block(block: dict[str, Any], dialect: str) -> dict[str, Any]:
    """Apply :func:`bot.escape.finish` to every text of one assembled block."""
    out = dict(block)
    if "text" in block:
        # A header is plain text everywhere (embed and card titles show no markup).
        kind = "plain" if block["type"] == "header" else dialect
        out["text"] = dict(block["text"], text=finish(block["text"]["text"], kind))
    if "fields" in block:
        out["fields"] = [dict(f, text=finish(f["text"], dialect)) for f in block["fields"]]
    if "elements" in block:
        out["elements"] = [dict(e, text=finish(e["text"], dialect)) for e in block["elements"]]
    return out


def _blank_none(value: Any) -> Any:
    return "" if value is None else value
