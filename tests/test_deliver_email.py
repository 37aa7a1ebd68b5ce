"""The email destination against aiosmtpd (STARTTLS + AUTH): an alert group is one mail, API
text is shown as is in the text part and escaped once in the HTML part; a refused login is
a dead letter; the digest travels through the same outbox; no host writes files."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.deliver.smtp import EmailConfig, EmailDestination
from bot.events import Dialect
from bot.outbox import OutboxWorker, email_payload
from bot.pipeline import PipelineConfig, render
from bot.render import Renderer
from bot.routes import RootRoute, Routable, group, route
from bot.rules import RULES
from bot.settings import Settings
from bot.store import NewMessage, Store
from tests.support.smtp import SmtpServer, running_smtp_server
from tests.test_render import CASES

NOW = datetime(2026, 6, 5, 13, 31, tzinfo=UTC)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp_server() as server:
        yield server


def destination(server: SmtpServer, password: str | None = None) -> EmailDestination:
    cfg = EmailConfig(
        name="mail",
        host=server.host,
        port=server.port,
        username=server.username,
        sender="flowbot@example.com",
        recipients=["desk@example.com"],
    )
    secret = server.password if password is None else password
    return EmailDestination(cfg, secret, tls_context=server.client_context)


def queue_burst(store: Store, symbols: list[str]) -> None:
    """A burst of leaderboard entries in one tick, routed, grouped and rendered for "mail"."""
    base, _ = CASES["leaderboard_entry_options"]
    events = [replace(base, symbol=s) for s in symbols]
    cfg = PipelineConfig(
        rules={n: Settings().rule_config(n) for n in RULES},
        routes=[],
        root=RootRoute(),
        alert_destinations=["mail"],
        dialects={"mail": Dialect.PLAIN},
        renderer=Renderer(),
    )
    routed = [(e, t) for e in events for t in route(Routable.of(e), [], cfg.root, ["mail"])]
    reasons = {id(e): "first_notification" for e in events}
    index = {id(e): i for i, e in enumerate(events)}
    rows = [
        render(b, cfg, reasons, index, session="2026-06-05", now=NOW, expires_at=None)
        for b in group(routed)
    ]
    for row in rows:
        store.enqueue(replace(row, alerts=()), NOW)


async def test_a_group_is_one_mail_and_api_text_is_escaped_once(smtp: SmtpServer) -> None:
    """Three entries in one tick: one mail; a symbol with <b>&amp; stays literal in both parts."""
    store = Store(":memory:")
    queue_burst(store, ["AMD", "NV<b>&amp;", "TSLA"])
    worker = OutboxWorker(store, {"mail": destination(smtp)}, clock=lambda: NOW)
    assert await worker.flush() == 1
    (mail,) = smtp.messages
    assert mail["Subject"] == "[INFO] 3 leaderboard moves"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "NV<b>&amp; enters" in text  # shown exactly as the API sent it
    assert "NV&lt;b&gt;&amp;amp; enters" in html  # escaped once by the HTML part


async def test_refused_login_is_a_dead_letter_not_a_retry(smtp: SmtpServer) -> None:
    """A wrong password (535) is permanent: the row is dead after one try."""
    store = Store(":memory:")
    queue_burst(store, ["AMD"])
    worker = OutboxWorker(store, {"mail": destination(smtp, "wrong")}, clock=lambda: NOW)
    assert await worker.flush() == 0
    (dead,) = store.outbox("dead")
    assert dead.attempts == 1 and "535" in (dead.last_error or "")
    assert "wrong" not in (dead.last_error or "")
    assert smtp.messages == []


async def test_digest_goes_through_the_outbox(smtp: SmtpServer) -> None:
    """A queued digest mail arrives whole (subject and parts as built)."""
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"] = "Flowbot Fri 05 Jun 2026: 1 flip (SPY)"
    msg["From"], msg["To"] = "flowbot@example.com", "desk@example.com"
    msg.set_content("digest text")
    msg.add_alternative("<p>digest</p>", subtype="html")
    store = Store(":memory:")
    row = NewMessage("digest-2026-06-05-mail", "mail", "digest", email_payload(bytes(msg)), "d")
    store.enqueue(row, NOW)
    assert await OutboxWorker(store, {"mail": destination(smtp)}, clock=lambda: NOW).flush() == 1
    (mail,) = smtp.messages
    assert mail["Subject"] == "Flowbot Fri 05 Jun 2026: 1 flip (SPY)"
    assert mail.get_body(("plain",)).get_content().strip() == "digest text"


async def test_without_a_host_mails_are_written_as_files(tmp_path: Path) -> None:
    """No SMTP host: the alert mail is written as .eml and .html into outbox_dir."""
    store = Store(":memory:")
    queue_burst(store, ["AMD"])
    cfg = EmailConfig(name="mail", outbox_dir=tmp_path, recipients=["desk@example.com"])
    worker = OutboxWorker(store, {"mail": EmailDestination(cfg, None)}, clock=lambda: NOW)
    assert await worker.flush() == 1
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".eml", ".html"]
