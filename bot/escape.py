"""Slack mrkdwn escaping: the one place that turns untrusted text into text Slack shows as-is.

Slack gives ``&``, ``<`` and ``>`` a meaning in message text (``<!channel>`` pings,
``<@U123>`` mentions, ``<https://x|label>`` links). Escaping exactly those three makes any
string display literally and act on nothing. :class:`markupsafe.Markup` marks text that is
already mrkdwn-safe (built by :func:`slack_link`, or a macro's output) so it is not escaped twice.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup

__all__ = [
    "collapse_lines",
    "finish",
    "markdown_escape",
    "markdown_link",
    "mrkdwn_to_markdown",
    "mrkdwn_to_plain",
    "plain_link",
    "slack_escape",
    "slack_link",
    "slack_unescape",
    "to_markdown",
    "to_mrkdwn",
]

_NEWLINES = re.compile(r"\s*[\r\n\u2028\u2029]+\s*")


def slack_escape(text: str) -> str:
    """Escape ``&``, ``<``, ``>`` as ``&amp;``, ``&lt;``, ``&gt;`` (Slack's three control
    characters). Idempotence is deliberately *not* attempted: ``&amp;`` in the input becomes
    ``&amp;amp;`` and displays as the original ``&amp;``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_unescape(text: str) -> str:
    """Inverse of :func:`slack_escape`, for showing rendered mrkdwn on a terminal."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def collapse_lines(text: str) -> str:
    """Replace every run of line breaks (and the spaces around them) by one space.

    An API string is one line of a message: it can neither break a template's layout nor
    start a line the block assembler would read as structure.
    """
    return _NEWLINES.sub(" ", text)


def to_mrkdwn(value: Any) -> Markup:
    """Jinja ``finalize`` for Slack templates: any value printed by ``{{ ... }}`` becomes
    escaped, single-line mrkdwn. ``None`` prints as an em dash so a missing field is visible
    rather than the word "None". Values already marked safe (``Markup``) pass unchanged."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("—")
    return Markup(slack_escape(collapse_lines(str(value))))


def slack_link(url: Any, label: Any = None) -> Markup:
    """A mrkdwn link ``<url|label>`` with both parts escaped; only ``http``/``https`` URLs
    become links (anything else renders as the escaped label, so ``javascript:`` or
    ``slack://`` URLs from data cannot sneak in)."""
    url_text = collapse_lines(str(url or ""))
    label_text = slack_escape(collapse_lines(str(label if label is not None else url_text)))
    if urlsplit(url_text).scheme.lower() not in ("http", "https"):
        return Markup(label_text)
    # "|" ends the URL part of a Slack link; percent-encoding keeps the URL intact.
    safe_url = slack_escape(url_text.replace("|", "%7C").replace(" ", "%20"))
    return Markup(f"<{safe_url}|{label_text}>")


# ------------------------------------------------------------------ markdown and plain text
# Templates are written in Slack's mrkdwn (``*bold*``, ``_italic_``, ``~strike~``). For the other
# dialects the data is escaped with backslashes first, so every *unescaped* marker left in the
# rendered text is the template's own and can be translated (markdown) or dropped (plain).
# ``<`` and ``>`` from data become private-use characters until the block assembler has read the
# template's marker lines, so data can never forge a ``<section>``; :func:`finish` restores them.

_MD_SPECIAL = re.compile(r"([\\`*_~|\[\]()#])")
_LT, _GT = "\ue000", "\ue001"
_PAIRED = re.compile(r"(?<![\\*~_])([*~_])(?=\S)(.+?)(?<=\S)(?<!\\)\1(?![*~_])")
_BACKSLASHED = re.compile(r"\\(.)")


def markdown_escape(text: str) -> str:
    """Escape ``text`` so Discord / Teams markdown shows it literally: a backslash before
    each of ``\\ ` * _ ~ | [ ] ( ) #``; ``<`` / ``>`` are held as private-use characters
    until :func:`finish`. Line breaks are collapsed first (an API string is one line)."""
    escaped = _MD_SPECIAL.sub(r"\\\1", collapse_lines(text))
    return escaped.replace("<", _LT).replace(">", _GT)


def to_markdown(value: Any) -> Markup:
    """Jinja ``finalize`` for the markdown and plain dialects (see :func:`to_mrkdwn`)."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("—")
    return Markup(markdown_escape(str(value)))


def mrkdwn_to_markdown(text: str) -> str:
    """Translate the template's own mrkdwn markers: ``*b*`` → ``**b**``, ``~s~`` → ``~~s~~``
    (``_i_`` is the same in markdown). Escaped data is left alone."""

    def swap(match: re.Match[str]) -> str:
        mark, inner = match.group(1), match.group(2)
        return {"*": f"**{inner}**", "~": f"~~{inner}~~"}.get(mark, match.group(0))

    return _PAIRED.sub(swap, text)


def mrkdwn_to_plain(text: str) -> str:
    """Drop the template's own mrkdwn markers and the data's backslash escapes: plain text."""
    return _BACKSLASHED.sub(r"\1", _PAIRED.sub(r"\2", text))


def finish(text: str, dialect: str) -> str:
    """The last step for a non-Slack dialect (``markdown`` or ``plain``): translate the
    template's markers and restore the data's ``<`` / ``>``."""
    out = mrkdwn_to_markdown(text) if dialect == "markdown" else mrkdwn_to_plain(text)
    return out.replace(_LT, "<").replace(_GT, ">")


def markdown_link(url: Any, label: Any = None) -> Markup:
    """``[label](url)`` for http(s) URLs, else the escaped label (see :func:`slack_link`)."""
    url_text = collapse_lines(str(url or ""))
    label_text = markdown_escape(str(label if label is not None else url_text))
    if urlsplit(url_text).scheme.lower() not in ("http", "https"):
        return Markup(label_text)
    safe_url = url_text.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
    return Markup(f"[{label_text}]({safe_url.replace('<', '%3C').replace('>', '%3E')})")


def plain_link(url: Any, label: Any = None) -> Markup:
    """``label (url)`` for plain text; the label alone when there is no http(s) URL."""
    url_text = collapse_lines(str(url or ""))
    label_text = markdown_escape(str(label if label is not None else url_text))
    if urlsplit(url_text).scheme.lower() not in ("http", "https") or label is None:
        return Markup(label_text)
    return Markup(f"{label_text} ({markdown_escape(url_text)})")
