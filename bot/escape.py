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

__all__ = ["collapse_lines", "slack_escape", "slack_link", "slack_unescape", "to_mrkdwn"]

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
