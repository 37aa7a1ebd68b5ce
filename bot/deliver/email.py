"""The email digest: build the MIME message, send it over SMTP, or write it to files.

Config (``[email]``): ``host``, ``port = 587``, ``security = "starttls" | "tls" | "none"``,
``username``, ``sender``, ``recipients = [...]``, ``outbox_dir = "outbox"``; the password comes
from the ``SMTP_PASSWORD`` secret. With no ``host`` the scheduler (and ``--dry-run``) calls
:func:`write_digest_files` instead of :class:`EmailSender`.

Message layout (what mail clients expect for an HTML mail with an inline image)::

    multipart/alternative
    ├── text/plain                      the text part (digest.txt.j2)
    └── multipart/related
        ├── text/html                   digest.html.j2, CSS inlined, <img src="cid:...">
        └── image/png                   the chart, Content-ID <CHART_CONTENT_ID>, inline
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formatdate, make_msgid
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import css_inline

    from bot.recap import Recap
    from bot.render import Renderer

__all__ = [
    "CHART_CONTENT_ID",
    "CHART_SRC",
    "EmailError",
    "EmailSender",
    "Security",
    "build_digest_message",
    "digest_subject",
    "inline_css",
    "render_digest",
    "write_digest_files",
]

CHART_CONTENT_ID = "recap-chart@flowbot"
"""Content-ID of the chart inside the message. Fixed, not random: it only has to be unique
within one message, and a fixed id keeps rendered HTML reproducible for golden tests."""

CHART_SRC = f"cid:{CHART_CONTENT_ID}"
"""What the HTML template puts in ``<img src=...>`` (pass it as ``chart_src``)."""

Security = Literal["starttls", "tls", "none"]

_STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class EmailError(RuntimeError):
    """Sending the digest failed for good.

    The message names ``host:port``, the number of attempts and the server's reply (or the
    connection error), never the password. ``permanent`` is ``True`` for failures that are not
    retried (5xx reply such as bad credentials or a refused recipient, an untrusted
    certificate); ``attempts`` counts tries made.
    """

    def __init__(self, message: str, *, permanent: bool, attempts: int) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.attempts = attempts


@cache
def _inliner() -> css_inline.CSSInliner:
    """The inliner, built (and css_inline imported) on the first digest."""
    import css_inline

    # keep_at_rules: @media (narrow screens, dark mode) cannot be inlined; it stays in <style>.
    return css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)


def inline_css(html: str) -> str:
    """Move ``<style>`` rules into ``style=""`` attributes (many mail clients drop ``<style>``).
    Remote stylesheets are never loaded. Raises ``ValueError`` on CSS the inliner rejects."""
    import css_inline

    try:
        return _inliner().inline(html)
    except css_inline.InlineError as exc:  # its own type; callers know ValueError
        raise ValueError(f"cannot inline the digest CSS: {exc}") from exc


def digest_subject(recap: Recap) -> str:
    """The digest's subject line, headline first (see :attr:`bot.recap.Recap.subject`)."""
    return recap.subject


def render_digest(renderer: Renderer, recap: Recap, *, with_chart: bool) -> tuple[str, str]:
    """Render ``email/digest.txt.j2`` and ``email/digest.html.j2`` for ``recap``; returns
    ``(text, html)``. ``with_chart`` puts ``<img src="cid:...">`` for the attached chart in the
    HTML (pass ``True`` exactly when a chart PNG goes to :func:`build_digest_message`)."""
    return renderer.email("digest", recap=recap, chart_src=CHART_SRC if with_chart else None)


def build_digest_message(
    recap: Recap,
    *,
    text: str,
    html: str,
    chart_png: bytes | None,
    sender: str,
    recipients: list[str],
    subject: str,
    date: datetime | None = None,
) -> EmailMessage:
    """Assemble the digest email for ``recap`` (see the module docstring for the layout).

    - ``text`` / ``html``: the rendered ``digest.txt.j2`` / ``digest.html.j2``; the HTML's
      ``<style>`` is inlined here. Render the HTML with ``chart_src=CHART_SRC`` when there
      is a chart, so its ``<img>`` points at the attached PNG.
    - ``chart_png``: PNG bytes from :func:`bot.chart.render_cumulative_chart`, or ``None``
      (then the HTML part is a plain ``text/html`` alternative).
    - ``sender`` / ``recipients``: ``[email] sender`` and ``[email] recipients``.
    - ``date``: the ``Date`` header (aware); ``None`` → now.

    Raises ``ValueError`` when there is no recipient.
    """
    if not recipients:
        raise ValueError("the digest has no recipients: set [email] recipients")
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(date) if date else formatdate(localtime=False, usegmt=True)
    domain = sender.rpartition("@")[2] or "flowbot.local"
    msg["Message-ID"] = make_msgid(idstring=f"digest-{recap.session.date}", domain=domain)
    msg.set_content(text)
    msg.add_alternative(inline_css(html), subtype="html")
    if chart_png is not None:
        html_part = msg.get_body(("html",))
        assert isinstance(html_part, EmailMessage)  # add_alternative just made it
        # add_related turns the HTML part into multipart/related(html, png).
        html_part.add_related(
            chart_png,
            maintype="image",
            subtype="png",
            cid=f"<{CHART_CONTENT_ID}>",
            disposition="inline",
            filename=f"flow-{recap.session.date}.png",
        )
    return msg


def _chart_bytes(msg: EmailMessage) -> bytes | None:
    for part in msg.walk():
        if part.get("Content-ID", "").strip("<>") == CHART_CONTENT_ID:
            content = part.get_payload(decode=True)
            return content if isinstance(content, bytes) else None
    return None


def _write_atomic(path: Path, data: bytes) -> None:
    # A reader (or a crash) never sees half a file: write aside, then rename over.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_digest_files(
    msg: EmailMessage, html: str, outbox_dir: Path, stem: str
) -> tuple[Path, Path]:
    """Write the digest to ``outbox_dir`` (``[email] outbox_dir``) for a reader without SMTP.

    Writes ``<stem>.eml`` (the whole message, openable in a mail client), ``<stem>.html``
    (``html`` with CSS inlined and the chart's ``cid:`` reference replaced by the sibling
    file ``<stem>.png``, so a browser shows it) and ``<stem>.png`` when the message has a
    chart. Creates ``outbox_dir``; overwrites files of the same stem.
    Returns ``(eml_path, html_path)``. Raises ``ValueError`` on a stem that is not a plain
    file name (letters, digits, ``._-``), ``OSError`` when the directory is not writable.
    """
    if not _STEM.match(stem):
        raise ValueError(f"invalid digest file stem {stem!r}: use letters, digits, . _ -")
    outbox_dir.mkdir(parents=True, exist_ok=True)
    eml_path = outbox_dir / f"{stem}.eml"
    html_path = outbox_dir / f"{stem}.html"
    png = _chart_bytes(msg)
    page = inline_css(html)
    if png is not None:
        _write_atomic(outbox_dir / f"{stem}.png", png)
        page = page.replace(CHART_SRC, f"{stem}.png")
    _write_atomic(eml_path, bytes(msg))
    _write_atomic(html_path, page.encode("utf-8"))
    return eml_path, html_path


def _transient(exc: Exception) -> bool:
    import aiosmtplib

    # 4xx replies, dropped connections and timeouts may pass; 5xx replies (bad credentials,
    # refused addresses), certificate failures and anything unexpected will not.
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return 400 <= exc.code < 500
    if isinstance(exc, ssl.SSLCertVerificationError):
        return False
    return isinstance(exc, aiosmtplib.SMTPException | OSError | TimeoutError)


def _describe(exc: Exception) -> str:
    import aiosmtplib

    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}".strip()
    return f"{type(exc).__name__}: {exc}"


class EmailSender:
    """Sends messages over SMTP with aiosmtplib, with retries.

    - ``host`` / ``port``: the SMTP server (``[email] host`` / ``port``).
    - ``security``: ``"starttls"`` (plain connect, then STARTTLS, required), ``"tls"``
      (implicit TLS, usually port 465) or ``"none"`` (no TLS at all: only for a local relay).
    - ``username`` / ``password``: AUTH credentials, ``None`` to skip AUTH; the password is
      ``SMTP_PASSWORD`` and never appears in errors or ``repr``.
    - ``timeout``: seconds per connection attempt.
    - ``tls_context``: an SSL context to verify the server (e.g. trusting a private CA);
      ``None`` = the system's default trust.
    - ``retry_delays``: seconds to wait before each retry (default 2 s then 10 s, so three
      attempts); only transient failures (connection errors, timeouts, 4xx replies) retry.
    """

    def __init__(
        self,
        host: str,
        port: int,
        security: Security,
        username: str | None,
        password: str | None,
        timeout: float = 30,
        tls_context: ssl.SSLContext | None = None,
        *,
        retry_delays: Sequence[float] = (2.0, 10.0),
    ) -> None:
        if security not in ("starttls", "tls", "none"):
            raise ValueError(f"unknown [email] security {security!r}: starttls, tls or none")
        self.host = host
        self.port = port
        self.security = security
        self.username = username or None
        self._password = password or None
        self.timeout = timeout
        self.tls_context = tls_context
        self.retry_delays = tuple(retry_delays)

    def __repr__(self) -> str:
        return (
            f"EmailSender({self.host!r}, {self.port}, {self.security!r}, "
            f"username={self.username!r}, password={'***' if self._password else None})"
        )

    async def _send_once(self, msg: EmailMessage) -> None:
        import aiosmtplib  # ~0.05 s: paid by the first digest, not by start-up

        await aiosmtplib.send(
            msg,
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self._password if self.username else None,
            use_tls=self.security == "tls",
            # False, not None, for "none": aiosmtplib's None means "upgrade if offered".
            start_tls=self.security == "starttls",
            tls_context=self.tls_context,
            timeout=self.timeout,
        )

    async def send(self, msg: EmailMessage) -> None:
        """Send ``msg`` to the recipients in its ``To``/``Cc`` headers.

        Retries transient failures (4xx replies, connection errors, timeouts) after each of
        ``retry_delays``; a 5xx reply (wrong password, refused sender or recipient) or an
        untrusted certificate fails at once, since retrying cannot fix it and repeated bad
        logins can lock the account. Raises :class:`EmailError` when the message could not be
        delivered, whatever the cause: no other exception escapes, so a scheduler that logs
        EmailError keeps running.
        """
        for attempts, delay in enumerate((*self.retry_delays, None), start=1):
            try:
                await self._send_once(msg)
                return
            except Exception as exc:  # every failure becomes one EmailError
                permanent = not _transient(exc)
                if permanent or delay is None:
                    raise self._error(exc, permanent, attempts) from exc
            await asyncio.sleep(delay)

    def _error(self, exc: Exception, permanent: bool, attempts: int) -> EmailError:
        reply = _describe(exc)
        if self._password:  # a server echoing credentials must not put them in our logs
            reply = reply.replace(self._password, "***")
        kind = "rejected" if permanent else "failed"
        return EmailError(
            f"SMTP {self.security} to {self.host}:{self.port} {kind} after {attempts} "
            f"attempt{'s' if attempts > 1 else ''}: {reply}",
            permanent=permanent,
            attempts=attempts,
        )
