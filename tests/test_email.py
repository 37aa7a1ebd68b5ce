"""Tests for bot.deliver.email: the digest MIME layout, SMTP delivery over STARTTLS + AUTH to a
real aiosmtpd server on 127.0.0.1, failures as EmailError, and the outbox files."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

import pytest
from support.smtp import SmtpServer, running_smtp_server
from test_recap import EVIL, sample_recap

from bot.deliver.email import (
    CHART_CONTENT_ID,
    EmailError,
    EmailSender,
    build_digest_message,
    digest_subject,
    render_digest,
    write_digest_files,
)
from bot.render import Renderer

PNG = b"\x89PNG\r\n\x1a\n" + b"fake chart bytes" * 10
FAST = (0.01, 0.01)  # retry delays for tests: three attempts, no waiting


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1: STARTTLS required, AUTH required over TLS, trustme certs."""
    with running_smtp_server() as server:
        yield server


def digest(chart: bool = True):
    """A digest message for the sample recap, with or without the chart."""
    recap = sample_recap()
    text, html = render_digest(Renderer(), recap, with_chart=chart)
    msg = build_digest_message(
        recap,
        text=text,
        html=html,
        chart_png=PNG if chart else None,
        sender="flowbot@example.com",
        recipients=["desk@example.com", "pm@example.com"],
        subject=digest_subject(recap),
        date=datetime(2026, 11, 27, 21, 30, tzinfo=UTC),
    )
    return msg, html


def sender_for(server: SmtpServer, password: str | None = None) -> EmailSender:
    """An EmailSender pointed at the test server, trusting its CA."""
    return EmailSender(
        server.host,
        server.port,
        "starttls",
        server.username,
        server.password if password is None else password,
        timeout=5,
        tls_context=server.client_context,
        retry_delays=FAST,
    )


def test_message_layout():
    """The digest is alternative(text, related(html, png)), the HTML img pointing at the cid."""
    msg, _ = digest()
    assert msg.get_content_type() == "multipart/alternative"
    text_part, related = msg.get_payload()
    assert text_part.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, image = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    assert image.get_content_type() == "image/png"
    assert image["Content-ID"] == f"<{CHART_CONTENT_ID}>"
    assert image.get_content_disposition() == "inline"
    assert f'src="cid:{CHART_CONTENT_ID}"' in html_part.get_content()
    assert msg["Subject"] == (
        f"Flowbot Fri 27 Nov 2026: 1 flip (SPY) · 2 candidates (QQQ held, {EVIL} held) · 11 alerts"
    )


def test_without_chart_no_image():
    """Without a chart the HTML is a plain alternative part and has no <img>."""
    msg, _ = digest(chart=False)
    assert [p.get_content_type() for p in msg.get_payload()] == ["text/plain", "text/html"]
    assert "<img" not in msg.get_payload()[1].get_content()


def test_css_is_inlined():
    """The HTML part has its CSS inlined into style attributes; only the @media rules (narrow
    screens, dark mode), which cannot be inlined, stay in a <style> block."""
    msg, _ = digest()
    html = msg.get_body(("html",)).get_content()
    assert 'style="' in html and "border-collapse: collapse" in html
    (kept,) = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert kept.lstrip().startswith("@media") and "prefers-color-scheme: dark" in kept
    assert "border-collapse" not in kept


def test_no_recipients_is_rejected():
    """A digest without recipients is a ValueError naming the config key."""
    recap = sample_recap()
    with pytest.raises(ValueError, match=r"\[email\] recipients"):
        build_digest_message(
            recap,
            text="t",
            html="<p>h</p>",
            chart_png=None,
            sender="a@b",
            recipients=[],
            subject="s",
        )


async def test_digest_arrives_over_starttls_with_auth(smtp_server):
    """The digest reaches the SMTP server and parses into text, HTML and the inline image."""
    msg, _ = digest()
    await sender_for(smtp_server).send(msg)

    assert len(smtp_server.messages) == 1
    mail_from, rcpts, _raw = smtp_server.envelopes[0]
    assert (mail_from, rcpts) == ("flowbot@example.com", ["desk@example.com", "pm@example.com"])
    got = smtp_server.messages[0]
    text = got.get_body(("plain",)).get_content()
    html = got.get_body(("html",)).get_content()
    images = [p for p in got.walk() if p.get_content_type() == "image/png"]
    assert "WATCHLIST AT THE CLOSE" in text and f"{EVIL} candidate" in text
    assert "https://acme.slack.com/archives/C1/p1" in text
    assert 'href="https://acme.slack.com/archives/C1/p1"' in html
    assert "&lt;SCRIPT&gt;&amp;X" in html and "<SCRIPT>" not in html
    assert len(images) == 1 and images[0].get_content() == PNG
    cid = images[0]["Content-ID"].strip("<>")
    assert f"cid:{cid}" in html


async def test_wrong_password_is_a_clear_error(smtp_server):
    """A wrong password raises EmailError naming host:port and the reply, never the password."""
    secret = "hunter2-wrong-password"
    msg, _ = digest()
    sender = sender_for(smtp_server, password=secret)
    with pytest.raises(EmailError) as info:
        await sender.send(msg)
    err = info.value
    text = str(err)
    assert f"{smtp_server.host}:{smtp_server.port}" in text
    assert "535" in text
    assert secret not in text and secret not in repr(sender)
    # A 5xx is permanent: one connection, so a bad password does not hammer (or lock) the
    # account; on it aiosmtplib tries each advertised mechanism (PLAIN, LOGIN) once.
    assert (err.permanent, err.attempts, smtp_server.auth_attempts) == (True, 1, 2)
    assert smtp_server.messages == []


async def test_unreachable_server_retries_then_fails():
    """A refused connection is retried (three attempts) and ends in EmailError, not a crash."""
    with running_smtp_server() as server:
        host, port, ctx = server.host, server.port, server.client_context
    # The server is stopped: connections to its port are refused now.
    sender = EmailSender(
        host, port, "starttls", "u", "p", timeout=2, tls_context=ctx, retry_delays=FAST
    )
    started = time.monotonic()
    with pytest.raises(EmailError) as info:
        await sender.send(digest()[0])
    assert (info.value.permanent, info.value.attempts) == (False, 3)
    assert f"{host}:{port}" in str(info.value)
    assert time.monotonic() - started < 5


async def test_untrusted_certificate_fails():
    """An untrusted certificate is a permanent EmailError at once (retrying cannot fix it)."""
    with running_smtp_server() as server:
        sender = EmailSender(
            server.host,
            server.port,
            "starttls",
            server.username,
            server.password,
            timeout=5,
            retry_delays=FAST,
        )
        with pytest.raises(EmailError, match=r"rejected after 1 attempt: .*certificate") as info:
            await sender.send(digest()[0])
        assert info.value.permanent
        assert server.messages == []


def test_unknown_security_rejected():
    """An unknown [email] security value is rejected up front."""
    with pytest.raises(ValueError, match="security"):
        EmailSender("h", 25, "ssl", None, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("chart", [True, False], ids=["with-chart", "no-chart"])
def test_write_digest_files(tmp_path, chart):
    """write_digest_files writes .eml and .html (+ .png); the HTML points at the sibling PNG."""
    msg, html = digest(chart)
    eml, page = write_digest_files(msg, html, tmp_path / "outbox", "digest-2026-11-27")
    assert (eml.name, page.name) == ("digest-2026-11-27.eml", "digest-2026-11-27.html")
    parsed = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert parsed["Subject"] == msg["Subject"]
    body = page.read_text(encoding="utf-8")
    assert "cid:" not in body
    png = tmp_path / "outbox" / "digest-2026-11-27.png"
    assert png.exists() is chart
    if chart:
        assert 'src="digest-2026-11-27.png"' in body and png.read_bytes() == PNG


@pytest.mark.parametrize("stem", ["../escape", "a/b", "", ".hidden"])
def test_write_digest_files_rejects_bad_stems(tmp_path, stem):
    """A stem that is not a plain file name is rejected."""
    msg, html = digest(False)
    with pytest.raises(ValueError, match="stem"):
        write_digest_files(msg, html, tmp_path, stem)
