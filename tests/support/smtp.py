"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 with STARTTLS (trustme certificates)
and AUTH required over TLS, recording every message it accepts.

Use :func:`running_smtp_server` as a context manager (or the ``smtp_server`` fixture pattern in
``tests/test_email.py``); connect with ``server.client_context``, which trusts the test CA.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

__all__ = ["SmtpServer", "running_smtp_server"]


@dataclass
class SmtpServer:
    """What a test needs to know about the running server.

    ``messages`` are the accepted messages parsed with the modern email policy;
    ``envelopes`` the raw (mail_from, rcpt_tos, bytes); ``auth_attempts`` counts AUTH tries.
    """

    host: str
    port: int
    username: str
    password: str
    client_context: ssl.SSLContext
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    auth_attempts: int = 0


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        self.server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), raw))
        self.server.messages.append(BytesParser(policy=policy.default).parsebytes(raw))
        return "250 OK message accepted"


def _free_port() -> int:
    # aiosmtpd 1.4's Controller checks readiness by connecting to its port, so it needs a
    # concrete port up front rather than 0.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_smtp_server(
    username: str = "flowbot", password: str = "correct horse battery staple"
) -> Iterator[SmtpServer]:
    """Start aiosmtpd on 127.0.0.1 (STARTTLS required, AUTH LOGIN/PLAIN required over TLS)
    and stop it on exit. Yields the :class:`SmtpServer` record."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    record = SmtpServer("127.0.0.1", _free_port(), username, password, client_ctx)

    def authenticator(server, session, envelope, mechanism, auth_data):
        record.auth_attempts += 1
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == username
            and auth_data.password.decode() == password
        )
        # handled=False: aiosmtpd then replies 535 itself (True would mean we already did).
        return AuthResult(success=ok, handled=False)

    controller = Controller(
        _Handler(record),
        hostname=record.host,
        port=record.port,
        tls_context=server_ctx,
        require_starttls=True,
        auth_require_tls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    controller.start()
    try:
        yield record
    finally:
        controller.stop()
