"""Generic webhook destination: a documented, versioned JSON POST for anything else, signed.

Payload v1 (``PAYLOAD_VERSION``), one POST per message, ``Content-Type: application/json``::

    {"version": 1, "kind": "alert", "rule": "regime_flip", "symbol": "SPY",
     "state": "regime_flip", "severity": "critical", "title": "...", "text": "...",
     "fields": [{"name": "Live GEX (per 1% move)", "value": "-$1.2B"}],
     "as_of": "2026-06-05T14:32:00+00:00", "session": "2026-06-05",
     "dedupe_key": "...", "alerts": [AlertRef.to_json(), ...], "delayed": false}

Headers: ``Idempotency-Key: <dedupe_key>`` (the same on every retry of one outbox row, so a
receiver can drop a duplicate); with ``secret_env`` set, ``X-Flowbot-Timestamp: <unix
seconds>`` and ``X-Flowbot-Signature: sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>``
over the exact body bytes sent. :func:`verify_signature` is the receiver's side (the README
snippet is the same logic).

This module also holds the small HTTP helpers the other JSON-over-HTTPS destinations
(:mod:`bot.deliver.discord`, :mod:`bot.deliver.teams`) share: one ``httpx.AsyncClient`` per
destination, no retries inside (the outbox retries), and failures classified for the outbox
(429, 408, 5xx and network errors recoverable with the server's ``Retry-After``; any other
status permanent). Error messages name the status and a code, never the URL or the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
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
from bot.events import Dialect, Message

__all__ = [
    "IDEMPOTENCY_HEADER",
    "KIND",
    "PAYLOAD_VERSION",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookConfig",
    "WebhookDestination",
    "build_payload",
    "http_client",
    "json_body",
    "post_json",
    "retry_after_header",
    "safe_code",
    "sign",
    "split_field",
    "verify_signature",
]

PAYLOAD_VERSION = 1
"""The ``version`` of the JSON payload; it changes only when a field changes meaning or goes
away (new fields may be added within a version)."""

IDEMPOTENCY_HEADER = "Idempotency-Key"
TIMESTAMP_HEADER = "X-Flowbot-Timestamp"
SIGNATURE_HEADER = "X-Flowbot-Signature"
USER_AGENT = "flowbot-webhook/1"

_SAFE_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


# ------------------------------------------------------------------ shared HTTP helpers
def http_client(timeout: float = 30.0) -> httpx.AsyncClient:
    """The client one destination keeps until ``close()``: ``timeout`` seconds per request,
    no redirects followed (a webhook that moved is a config error, not something to chase
    with the payload), our ``User-Agent``."""
    return httpx.AsyncClient(
        timeout=timeout, follow_redirects=False, headers={"User-Agent": USER_AGENT}
    )


def retry_after_header(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds (``"3"``, ``"1.5"``) or an
    HTTP date (seconds from ``now``, UTC). ``None`` when absent or unreadable; never
    negative."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def safe_code(value: object) -> str | None:
    """``value`` as a short error code to quote in an error message (``InvalidRequest``,
    ``50035``), or ``None`` when it looks like anything else (free text might echo the
    payload or the URL)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if _SAFE_CODE.match(text) else None


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    service: str,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    code_of: Callable[[httpx.Response], str | None] | None = None,
    retry_after_of: Callable[[httpx.Response], float | None] | None = None,
) -> httpx.Response:
    """POST ``body`` (JSON bytes, sent as they are) to ``url`` once and return a 2xx response.

    Raises :class:`DeliveryError` named ``"<service> failed: <code> (HTTP <status>)"``:
    recoverable for 408, 429, 5xx and network errors (with ``retry_after`` from
    ``retry_after_of(response)``, default the ``Retry-After`` header), permanent for any
    other status and for a URL that is not http(s). ``code_of`` picks a short code from an
    error body (default none). The URL never appears in the message, and the client's
    exception is not chained (its text or a traceback could show the URL).
    """
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    try:
        response = await client.post(url, content=body, headers=all_headers, params=params)
    except (httpx.UnsupportedProtocol, httpx.InvalidURL):
        raise DeliveryError(
            f"{service} failed: the URL is not http(s)", recoverable=False
        ) from None
    except httpx.TransportError as exc:
        raise DeliveryError(
            f"{service} failed: connection error ({type(exc).__name__})", recoverable=True
        ) from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{service} failed: {type(exc).__name__}", recoverable=True) from None
    status = response.status_code
    if 200 <= status < 300:
        return response
    code = (code_of(response) if code_of else None) or "http_error"
    recoverable = status in (408, 429) or status >= 500
    wait = (retry_after_of or _header_retry_after)(response) if recoverable else None
    raise DeliveryError(
        f"{service} failed: {code} (HTTP {status})", recoverable=recoverable, retry_after=wait
    )


def _header_retry_after(response: httpx.Response) -> float | None:
    return retry_after_header(response.headers)


def json_body(data: Any) -> bytes:
    """Compact UTF-8 JSON (non-ASCII kept as is): the exact bytes that are sent and signed."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def split_field(text: str) -> tuple[str, str]:
    """A rendered section field (``"label\\nvalue"``) as ``(name, value)``, split on the
    first line break; a field without one is all name and an empty value."""
    name, _, value = text.partition("\n")
    return name.strip(), value.strip()


# ------------------------------------------------------------------ payload and signature
def build_payload(envelope: Envelope, message: Message) -> dict[str, Any]:
    """Payload v1 for one message (see the module doc).

    ``rule``, ``symbol``, ``state`` come from the first alert the message carries (``null``
    for a message without alerts: a notice, the recap); ``severity`` is the message's (for
    a group, the one its colour shows), else the first alert's, else ``null``; ``as_of`` is
    the first alert's ``as_of`` (UTC, ISO-8601), else when the row was queued. ``title``,
    ``text`` and ``fields`` are plain text (the message is rendered in the plain dialect)."""
    first = envelope.alerts[0] if envelope.alerts else None
    severity = message.severity or (first.severity if first else None)
    fields = [
        {"name": name, "value": value}
        for block in message.blocks
        if block.get("type") == "section"
        for name, value in (split_field(str(f.get("text", ""))) for f in block.get("fields", []))
    ]
    return {
        "version": PAYLOAD_VERSION,
        "kind": envelope.category.value,
        "rule": first.rule if first else None,
        "symbol": first.symbol if first else None,
        "state": first.state if first else None,
        "severity": severity.value if severity else None,
        "title": message.title,
        "text": message.text,
        "fields": fields,
        "as_of": (first.as_of if first else envelope.created_at).isoformat(),
        "session": envelope.session,
        "dedupe_key": envelope.dedupe_key,
        "alerts": [alert.to_json() for alert in envelope.alerts],
        "delayed": envelope.delayed,
    }


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with key ``secret`` (UTF-8) over
    ``b"{timestamp}." + body``, the value of ``X-Flowbot-Signature``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """The receiver's check of a signed request: ``True`` when ``header``
    (``X-Flowbot-Signature``) is ``sha256=`` + the HMAC-SHA256 of ``"{timestamp}.{body}"``
    under ``secret`` (compared in constant time) and ``timestamp`` (``X-Flowbot-Timestamp``,
    unix seconds) is within ``tolerance_s`` seconds of ``now`` (unix seconds, default the
    clock), which refuses a replayed old request. ``body`` must be the raw bytes received,
    before any JSON parsing. Never raises on malformed input: it answers ``False``."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_s:
        return False
    try:
        expected = sign(secret, timestamp, body)
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected.encode("ascii"), header.strip().encode("utf-8"))


# ------------------------------------------------------------------ destination
class WebhookConfig(DestinationConfig):
    """``kind = "webhook"``: POST payload v1 to the URL in the variable ``url_env`` (default
    ``WEBHOOK_URL``); with ``secret_env`` (the name of a variable holding a shared secret)
    every request is signed (``X-Flowbot-Timestamp`` / ``X-Flowbot-Signature``)."""

    kind: Literal["webhook"] = "webhook"
    url_env: str = "WEBHOOK_URL"
    secret_env: str | None = None


class WebhookDestination:
    """Posts payload v1 (see the module doc) to one URL.

    - ``url``: the receiver's URL (a secret: never in errors or logs).
    - ``secret``: the HMAC key; ``None`` sends unsigned requests.
    - ``min_interval``: seconds between sends, applied by the outbox worker.
    - ``clock``: unix seconds for ``X-Flowbot-Timestamp`` (tests pin it).

    Any 2xx is delivered (``Delivered()``: a webhook returns no message id). Files and email
    payloads are refused (permanent); the outbox skips uploads for this kind anyway.
    """

    capabilities = Capabilities(Dialect.PLAIN)

    def __init__(
        self,
        url: str,
        secret: str | None = None,
        *,
        name: str = "webhook",
        min_interval: float = 1.0,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ):
        self.name = name
        self.min_interval = min_interval
        self._url = url
        self._secret = secret
        self._clock = clock
        self._client = http_client(timeout)

    async def send(self, envelope: Envelope) -> Delivered:
        """POST the payload with ``Idempotency-Key`` (and the signature headers when a secret
        is set). Raises :class:`DeliveryError` (see :func:`post_json`)."""
        if envelope.message is None:
            raise DeliveryError("webhook cannot send a file or an email", recoverable=False)
        body = json_body(build_payload(envelope, envelope.message))
        headers = {IDEMPOTENCY_HEADER: envelope.dedupe_key}
        if self._secret is not None:
            timestamp = str(int(self._clock()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        await post_json(self._client, self._url, body, service="webhook", headers=headers)
        return Delivered()

    async def close(self) -> None:
        """Close the HTTP client's connections."""
        await self._client.aclose()


def _build(cfg: WebhookConfig, ctx: BuildContext) -> WebhookDestination:
    secret = ctx.secret(cfg.secret_env, cfg.name) if cfg.secret_env else None
    return WebhookDestination(
        ctx.secret(cfg.url_env, cfg.name), secret, name=cfg.name, min_interval=cfg.min_interval
    )


KIND = DestinationKind(
    "webhook",
    WebhookConfig,
    _build,
    WebhookDestination.capabilities,
    "generic JSON POST (payload v1), Idempotency-Key, optional HMAC signature",
)
