"""Email destination: alerts (one mail per message, i.e. per group) and the digest, by SMTP.

With no ``host`` the mail is written as files into ``outbox_dir`` instead (``.eml`` + ``.html``),
which is how the digest reaches a reader without a mail server. Sending is one attempt: the
outbox retries, so :class:`bot.deliver.email.EmailSender` gets no retry delays here.
"""

from __future__ import annotations

import html
import re
import ssl
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from bot.deliver.base import (
    BuildContext,
    Capabilities,
    Delivered,
    DeliveryError,
    DestinationConfig,
    DestinationKind,
    Envelope,
)
from bot.deliver.email import EmailError, EmailSender, write_digest_files
from bot.events import Dialect, Message

__all__ = ["KIND", "EmailConfig", "EmailDestination", "alert_mail"]

_STEM_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class EmailConfig(DestinationConfig):
    """``kind = "email"``: SMTP ``host`` / ``port`` / ``security`` (``starttls``, ``tls``,
    ``none``) / ``username``, the password from the variable ``password_env`` (default
    ``SMTP_PASSWORD``), ``sender`` and ``recipients``. No ``host``: mails are written to
    ``outbox_dir`` as files. Unpaced by default."""

    kind: Literal["email"] = "email"
    host: str = ""
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password_env: str = "SMTP_PASSWORD"
    sender: str = "flowbot@localhost"
    recipients: list[str] = Field(default_factory=list)
    outbox_dir: Path = Path("outbox")
    max_posts_per_second: float = Field(0.0, ge=0)


def _block_html(block: dict[str, Any]) -> str:
    def para(text: str) -> str:
        return "<p>" + html.escape(text).replace("\n", "<br>") + "</p>"

    kind = block.get("type")
    if kind == "header":
        return f"<h2>{html.escape(block['text']['text'])}</h2>"
    if kind == "section":
        parts = [para(block["text"]["text"])] if "text" in block else []
        parts += [para(f["text"]) for f in block.get("fields", [])]
        return "".join(parts)
    if kind == "context":
        joined = " · ".join(e["text"] for e in block["elements"])
        return f'<p style="color:#666;font-size:12px">{html.escape(joined)}</p>'
    return "<hr>" if kind == "divider" else ""


def _block_text(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "header":
        return str(block["text"]["text"])
    if kind == "section":
        texts = [block["text"]["text"]] if "text" in block else []
        return "\n".join(
            texts + [f["text"].replace("\n", ": ", 1) for f in block.get("fields", [])]
        )
    if kind == "context":
        return " · ".join(e["text"] for e in block["elements"])
    return "—" * 20 if kind == "divider" else ""


def alert_mail(
    message: Message,
    *,
    sender: str,
    recipients: list[str],
    mention: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """One alert (or group) as an email: subject ``[SEVERITY] title``, a text part and an
    HTML part, both from the message's plain-dialect blocks (HTML escaped here, once).
    Raises ``ValueError`` without recipients."""
    if not recipients:
        raise ValueError("the email destination has no recipients")
    msg = EmailMessage()
    word = f"[{message.severity.value.upper()}] " if message.severity else ""
    msg["Subject"] = f"{word}{message.title}"
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "flowbot.local")
    lead = f"{mention}\n\n" if mention else ""
    blocks = message.blocks or [{"type": "section", "text": {"text": message.text}}]
    msg.set_content(lead + "\n\n".join(t for t in map(_block_text, blocks) if t) + "\n")
    body = "".join(_block_html(b) for b in blocks)
    lead_html = f"<p>{html.escape(mention)}</p>" if mention else ""
    msg.add_alternative(f"<html><body>{lead_html}{body}</body></html>", subtype="html")
    return msg


class EmailDestination:
    """Sends alert mails and the digest through one :class:`EmailSender` (no retries of its
    own), or writes them to ``outbox_dir`` when ``host`` is empty. ``EmailError`` becomes a
    :class:`DeliveryError`: permanent for 5xx replies and bad certificates. ``tls_context``
    verifies the server (``None``: the system's trust store)."""

    capabilities = Capabilities(Dialect.PLAIN, digest=True)

    def __init__(
        self, cfg: EmailConfig, password: str | None, tls_context: ssl.SSLContext | None = None
    ) -> None:
        self.name = cfg.name
        self.min_interval = cfg.min_interval
        self.cfg = cfg
        self._sender = (
            EmailSender(
                cfg.host,
                cfg.port,
                cfg.security,
                cfg.username,
                password,
                tls_context=tls_context,
                retry_delays=(),
            )
            if cfg.host
            else None
        )

    async def send(self, envelope: Envelope) -> Delivered:
        """Mail (or write) the digest or the message. Raises :class:`DeliveryError`."""
        if envelope.email is not None:
            msg = message_from_bytes(envelope.email, policy=policy.default)
            assert isinstance(msg, EmailMessage)
        elif envelope.message is not None:
            try:
                msg = alert_mail(
                    envelope.message,
                    sender=self.cfg.sender,
                    recipients=self.cfg.recipients,
                    mention=envelope.mention,
                    date=envelope.created_at,
                )
            except ValueError as exc:
                raise DeliveryError(f"email {self.name}: {exc}", recoverable=False) from None
        else:
            return Delivered()  # files (the chart) travel inside the digest mail
        if self._sender is None:
            body = msg.get_body(("html",))
            page = body.get_content() if body is not None else ""
            stem = _STEM_UNSAFE.sub("-", envelope.dedupe_key).strip("-.") or "message"
            try:
                write_digest_files(msg, page, self.cfg.outbox_dir, stem)
            except OSError as exc:
                raise DeliveryError(
                    f"email {self.name}: cannot write {self.cfg.outbox_dir}: {exc.strerror}",
                    recoverable=True,
                ) from None
            return Delivered()
        try:
            await self._sender.send(msg)
        except EmailError as exc:
            raise DeliveryError(str(exc), recoverable=not exc.permanent) from None
        return Delivered()

    async def close(self) -> None:
        """Nothing to release: one SMTP connection per mail."""


def _build(cfg: EmailConfig, ctx: BuildContext) -> EmailDestination:
    return EmailDestination(cfg, ctx.optional_secret(cfg.password_env))


KIND = DestinationKind(
    "email",
    EmailConfig,
    _build,
    EmailDestination.capabilities,
    "SMTP mail per alert message and the digest; files in outbox_dir without a host",
)
