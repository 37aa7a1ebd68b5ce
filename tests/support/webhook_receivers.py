"""Local webhook receivers for tests: Discord, Teams Workflows and a generic signed webhook.

Real HTTP on 127.0.0.1 (a ``ThreadingHTTPServer`` in a daemon thread, as
:mod:`tests.support.slack_api`), so the destinations' real httpx clients are exercised. Each
receiver checks a payload the way the real service would and answers as it does:

- :class:`DiscordReceiver` — "Execute Webhook" at ``/api/webhooks/<id>/<token>``: content
  ≤ 2,000; ≤ 10 embeds; title ≤ 256, description ≤ 4,096, ≤ 25 fields with non-empty name
  ≤ 256 and value ≤ 1,024, footer ≤ 2,048, ≤ 6,000 characters over all embeds; ``color`` an
  int; ``allowed_mentions`` present with ``parse`` empty (unless the test allows more);
  username rules. ``?wait=true`` answers the message object (``id``), else 204. Errors are
  Discord's JSON (``50035`` invalid form body, ``10015`` unknown webhook); 429 carries
  ``Retry-After`` and the JSON ``retry_after``.
- :class:`TeamsReceiver` — a Workflows trigger URL (``…/invoke?sig=<secret>``): body ≤ 28 KB,
  ``type: message`` with an Adaptive Card attachment whose ``type``, ``version`` and ``body``
  are present and whose elements carry their required properties. Answers 202.
- :class:`WebhookReceiver` — ``/hooks/<token>``: an ``Idempotency-Key`` is required, payload
  ``version`` 1, and with a ``secret`` the signature is checked by :func:`readme_verify`
  (the README snippet, stdlib only, independent of the bot's code); 401 when it fails.

Fault injection on every receiver: ``fail_next(status, count=, retry_after=)`` for the next N
requests, ``fail_for(seconds, status, retry_after=)`` for a time window. Every request is
recorded (:class:`Call`: monotonic arrival time, path, query, headers, raw body, status).

Usage::

    with DiscordReceiver() as discord:
        dest = DiscordDestination(discord.url)
        ...
        (call,) = discord.wait_for(1)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "Call",
    "DiscordReceiver",
    "TeamsReceiver",
    "WebhookReceiver",
    "markdown_texts",
    "readme_verify",
    "would_ping",
]


def readme_verify(
    secret: str, timestamp: str, body: bytes, signature: str, tolerance_s: int = 300
) -> bool:
    """The README's receiver snippet (keep the two identical): ``True`` when ``signature``
    (``X-Flowbot-Signature``) is the HMAC-SHA256 of ``"{timestamp}.{body}"`` and the
    timestamp (``X-Flowbot-Timestamp``) is within ``tolerance_s`` seconds of now."""
    try:
        if abs(time.time() - int(timestamp)) > tolerance_s:
            return False
    except ValueError:
        return False
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(("sha256=" + mac.hexdigest()).encode(), signature.encode())


@dataclass(frozen=True)
class Call:
    """One request as it arrived: ``at`` = ``time.monotonic()``, ``path`` without the
    query, ``query`` (last value per name), ``headers`` (names in lower case), the raw
    ``body`` bytes, the ``status`` answered and the ``answer`` body sent back."""

    at: float
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int
    answer: bytes = b""

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class _Fault:
    status: int
    retry_after: float | None
    count: int | None  # requests left, or None for a time window
    until: float | None  # monotonic end of the window


_Answer = tuple[int, bytes, dict[str, str]]


class _Receiver:
    """Lifecycle, recording and fault injection shared by the three receivers."""

    name = "receiver"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0):
        self._host, self._port = host, port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._calls: list[Call] = []
        self._faults: list[_Fault] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> _Receiver:
        """Bind (port 0 = any free port) and serve in a daemon thread."""
        handler = type("Handler", (_Handler,), {"receiver": self})
        self._httpd = ThreadingHTTPServer((self._host, self._port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-receiver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._httpd is None:
            raise RuntimeError("receiver not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # ------------------------------------------------------------------ faults and records
    def fail_next(self, status: int = 429, count: int = 1, retry_after: float | None = 1) -> None:
        """Answer the next ``count`` requests with HTTP ``status`` (a 429 carries
        ``retry_after`` seconds; ``None`` leaves the header out)."""
        with self._cond:
            self._faults.append(_Fault(status, retry_after, count, None))

    def fail_for(self, seconds: float, status: int = 500, retry_after: float | None = None) -> None:
        """Answer every request for the next ``seconds`` with HTTP ``status``."""
        with self._cond:
            self._faults.append(_Fault(status, retry_after, None, time.monotonic() + seconds))

    def _take_fault(self) -> _Fault | None:
        with self._cond:
            now = time.monotonic()
            self._faults = [f for f in self._faults if f.until is None or f.until > now]
            for fault in self._faults:
                if fault.count is None:
                    return fault
                if fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    @property
    def calls(self) -> list[Call]:
        """Every request seen (faulted and refused ones too), in arrival order."""
        with self._cond:
            return list(self._calls)

    @property
    def accepted(self) -> list[Call]:
        """The requests answered 2xx, in arrival order."""
        return [c for c in self.calls if 200 <= c.status < 300]

    @property
    def payloads(self) -> list[Any]:
        """The JSON bodies of the accepted requests."""
        return [c.json() for c in self.accepted]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Call]:
        """Block until ``count`` requests were accepted; return them. Raises
        ``AssertionError`` (with what was seen) after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                done = [c for c in self._calls if 200 <= c.status < 300]
                if len(done) >= count:
                    return done
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(c.path, c.status) for c in self._calls]
                    raise AssertionError(f"{self.name}: {len(done)}/{count} accepted; saw {seen}")
                self._cond.wait(left)

    def _record(self, call: Call) -> None:
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    # ------------------------------------------------------------------ answering
    def answer(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> _Answer:
        """Check one request as the real service would; ``(status, body, headers)``."""
        raise NotImplementedError

    def fault_answer(self, fault: _Fault) -> _Answer:
        """What the service sends with an injected fault (a 429 with ``Retry-After``)."""
        headers = {"Content-Type": "application/json"}
        if fault.status == 429 and fault.retry_after is not None:
            headers["Retry-After"] = _header_seconds(fault.retry_after)
        return fault.status, _dumps({"error": {"code": f"HTTP{fault.status}"}}), headers


def _header_seconds(seconds: float) -> str:
    return str(math.ceil(seconds))


def _dumps(data: Any) -> bytes:
    return json.dumps(data).encode()


def _json_answer(status: int, data: Any) -> _Answer:
    return status, _dumps(data), {"Content-Type": "application/json"}


class _Handler(BaseHTTPRequestHandler):
    """One request: fault, else the receiver's checks. Never lets an exception kill it."""

    receiver: _Receiver
    server_version = "WebhookReceiverTest/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_POST(self) -> None:
        self._handle("POST")

    def do_GET(self) -> None:
        self._handle("GET")

    def _handle(self, method: str) -> None:
        at = time.monotonic()
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            fault = self.receiver._take_fault()
            if fault is not None:
                status, payload, extra = self.receiver.fault_answer(fault)
            else:
                status, payload, extra = self.receiver.answer(
                    method, split.path, query, headers, body
                )
        except Exception as exc:  # a receiver bug must answer, not hang the client
            status, payload, extra = _json_answer(500, {"error": f"receiver bug: {exc!r}"})
        # Record before answering, so a client that got its answer also sees the record.
        self.receiver._record(Call(at, method, split.path, query, headers, body, status, payload))
        self.send_response(status)
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _is_json(headers: dict[str, str]) -> bool:
    return headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


# ====================================================================== Discord
DISCORD_WEBHOOK_ID = "1234567890123456789"
DISCORD_TOKEN = "tok-SECRET-discord-0000"
_MENTION = re.compile(r"<@(!?|&)(\d+)>|@(everyone|here)")


def would_ping(payload: dict[str, Any]) -> set[str]:
    """Who Discord would notify for this execute payload: mentions in ``content`` only
    (embeds never ping), filtered by ``allowed_mentions``. Items: ``user:<id>``,
    ``role:<id>``, ``everyone``."""
    allowed = payload.get("allowed_mentions")
    if not isinstance(allowed, dict):  # Discord's default without it: everything pings
        allowed = {"parse": ["users", "roles", "everyone"]}
    parse = set(allowed.get("parse", []))
    users, roles = set(allowed.get("users", [])), set(allowed.get("roles", []))
    pinged: set[str] = set()
    for match in _MENTION.finditer(str(payload.get("content") or "")):
        sigil, ident, everyone = match.groups()
        if everyone and "everyone" in parse:
            pinged.add("everyone")
        elif sigil == "&" and ident and ("roles" in parse or ident in roles):
            pinged.add(f"role:{ident}")
        elif sigil in ("", "!") and ident and ("users" in parse or ident in users):
            pinged.add(f"user:{ident}")
    return pinged


def _embed_errors(embed: Any, index: int) -> tuple[list[str], int]:
    """Discord's per-embed checks: ``(errors, characters counted towards 6,000)``."""
    if not isinstance(embed, dict):
        return [f"embeds.{index}: not an object"], 0
    errors: list[str] = []
    size = 0

    def text(value: Any, where: str, limit: int, required: bool = False) -> None:
        nonlocal size
        if value is None and not required:
            return
        if not isinstance(value, str) or (required and not value.strip()):
            errors.append(f"{where}: BASE_TYPE_REQUIRED")
            return
        if len(value) > limit:
            errors.append(f"{where}: BASE_TYPE_MAX_LENGTH {len(value)} > {limit}")
        size += len(value)

    text(embed.get("title"), f"embeds.{index}.title", 256)
    text(embed.get("description"), f"embeds.{index}.description", 4096)
    fields = embed.get("fields", [])
    if not isinstance(fields, list) or len(fields) > 25:
        errors.append(f"embeds.{index}.fields: at most 25")
        fields = fields if isinstance(fields, list) else []
    for i, field in enumerate(fields):
        if not isinstance(field, dict):
            errors.append(f"embeds.{index}.fields.{i}: not an object")
            continue
        text(field.get("name"), f"embeds.{index}.fields.{i}.name", 256, required=True)
        text(field.get("value"), f"embeds.{index}.fields.{i}.value", 1024, required=True)
        if not isinstance(field.get("inline", False), bool):
            errors.append(f"embeds.{index}.fields.{i}.inline: BASE_TYPE_BOOLEAN")
    footer = embed.get("footer")
    if footer is not None:
        text(footer.get("text") if isinstance(footer, dict) else None, "footer.text", 2048, True)
    author = embed.get("author")
    if author is not None:
        text(author.get("name") if isinstance(author, dict) else None, "author.name", 256, True)
    colour = embed.get("color")
    if colour is not None and (
        isinstance(colour, bool) or not isinstance(colour, int) or not 0 <= colour <= 0xFFFFFF
    ):
        errors.append(f"embeds.{index}.color: NUMBER_TYPE_COERCE")
    return errors, size


class DiscordReceiver(_Receiver):
    """Discord's "Execute Webhook" (see the module doc). ``allow_parse`` lists the
    ``allowed_mentions.parse`` values a test accepts (none by default: a payload whose
    text could ping anyone is refused with 400)."""

    name = "discord"

    def __init__(self, *, allow_parse: frozenset[str] = frozenset(), **kwargs: Any):
        super().__init__(**kwargs)
        self.allow_parse = allow_parse
        self._next_id = 1_300_000_000_000_000_000

    @property
    def url(self) -> str:
        """The webhook URL, token included (what ``DISCORD_WEBHOOK_URL`` holds)."""
        return f"{self.base_url}/api/webhooks/{DISCORD_WEBHOOK_ID}/{DISCORD_TOKEN}"

    def fault_answer(self, fault: _Fault) -> _Answer:
        if fault.status == 429:
            wait = 1.0 if fault.retry_after is None else fault.retry_after
            body = {"message": "You are being rate limited.", "retry_after": wait, "global": False}
            headers = {"Content-Type": "application/json", "Retry-After": _header_seconds(wait)}
            return 429, _dumps(body), headers
        if fault.status >= 500:
            return _json_answer(fault.status, {"message": "500: Internal Server Error", "code": 0})
        if fault.status == 404:
            return _json_answer(404, {"message": "Unknown Webhook", "code": 10015})
        return _json_answer(fault.status, {"message": "Invalid Form Body", "code": 50035})

    def answer(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> _Answer:
        if path != f"/api/webhooks/{DISCORD_WEBHOOK_ID}/{DISCORD_TOKEN}":
            return _json_answer(404, {"message": "Unknown Webhook", "code": 10015})
        if method != "POST":
            return _json_answer(405, {"message": "405: Method Not Allowed", "code": 0})
        try:
            payload = json.loads(body) if _is_json(headers) else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return _json_answer(400, {"message": "Invalid JSON body", "code": 50109})
        errors = self.check(payload)
        if errors:
            return _json_answer(
                400, {"message": "Invalid Form Body", "code": 50035, "errors": errors}
            )
        if query.get("wait", "false").lower() != "true":
            return 204, b"", {}
        with self._cond:
            self._next_id += 1
            message_id = str(self._next_id)
        message = {
            "id": message_id,
            "channel_id": "1100000000000000001",
            "webhook_id": DISCORD_WEBHOOK_ID,
            "content": payload.get("content", ""),
            "embeds": payload.get("embeds", []),
        }
        return _json_answer(200, message)

    def check(self, payload: dict[str, Any]) -> list[str]:
        """Every reason Discord (and this test's mention rule) would refuse ``payload``."""
        errors: list[str] = []
        content = payload.get("content")
        embeds = payload.get("embeds") or []
        if not content and not embeds:
            errors.append("Cannot send an empty message (50006)")
        if content is not None and (not isinstance(content, str) or len(content) > 2000):
            errors.append("content: BASE_TYPE_MAX_LENGTH 2000")
        if not isinstance(embeds, list) or len(embeds) > 10:
            errors.append("embeds: at most 10")
            embeds = []
        total = 0
        for index, embed in enumerate(embeds):
            embed_errors, size = _embed_errors(embed, index)
            errors += embed_errors
            total += size
        if total > 6000:
            errors.append(f"embeds: {total} characters > 6000 (MAX_EMBED_SIZE_EXCEEDED)")
        allowed = payload.get("allowed_mentions")
        if not isinstance(allowed, dict) or not isinstance(allowed.get("parse"), list):
            errors.append("allowed_mentions: missing (payload text could ping)")
        else:
            extra = set(allowed["parse"]) - self.allow_parse
            if extra:
                errors.append(f"allowed_mentions.parse: {sorted(extra)} not allowed here")
            for kind in ("users", "roles"):
                ids = allowed.get(kind, [])
                if kind in allowed["parse"] and ids:
                    errors.append(f"allowed_mentions: parse {kind} with {kind} list")
                if not isinstance(ids, list) or len(ids) > 100:
                    errors.append(f"allowed_mentions.{kind}: at most 100 ids")
        username = payload.get("username")
        if username is not None and (
            not isinstance(username, str)
            or not 1 <= len(username) <= 80
            or any(w in username.lower() for w in ("discord", "clyde"))
        ):
            errors.append("username: USERNAME_INVALID")
        return errors


# ====================================================================== Teams
TEAMS_FLOW_ID = "a1b2c3d4e5f6"
TEAMS_SIG = "sig-SECRET-teams-0000"
TEAMS_MAX_BYTES = 28 * 1024
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
_CONTAINER_STYLES = {"default", "emphasis", "good", "attention", "warning", "accent"}
_COLOURS = {"default", "dark", "light", "accent", "good", "warning", "attention"}
# Required properties per element type (Adaptive Cards 1.4 schema), for the ones we accept.
_REQUIRED = {
    "TextBlock": ("text",),
    "RichTextBlock": ("inlines",),
    "TextRun": ("text",),
    "Container": ("items",),
    "ColumnSet": (),
    "Column": (),
    "FactSet": ("facts",),
    "Image": ("url",),
}


def _walk(element: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(element, dict):
        yield where, {}
        return
    yield where, element
    for key in ("items", "columns", "inlines"):
        for i, child in enumerate(element.get(key) or []):
            if key == "inlines" and isinstance(child, str):
                continue  # a bare string is TextRun shorthand
            yield from _walk(child, f"{where}.{key}[{i}]")


def card_errors(card: Any) -> list[str]:
    """What makes Teams refuse (or fail to render) an Adaptive Card: ``type``, ``version``
    and ``body`` present; every element of a known type with its required properties; valid
    container styles and text colours."""
    if not isinstance(card, dict):
        return ["content: not an object"]
    errors = []
    if card.get("type") != "AdaptiveCard":
        errors.append("content.type must be AdaptiveCard")
    if not isinstance(card.get("version"), str):
        errors.append("content.version missing")
    body = card.get("body")
    if not isinstance(body, list) or not body:
        return [*errors, "content.body missing or empty"]
    for i, element in enumerate(body):
        for where, item in _walk(element, f"body[{i}]"):
            kind = item.get("type")
            if kind not in _REQUIRED:
                errors.append(f"{where}: unknown element type {kind!r}")
                continue
            errors += [f"{where}.{p} missing" for p in _REQUIRED[kind] if item.get(p) in (None, "")]
            style = item.get("style")
            if kind == "Container" and style is not None and style not in _CONTAINER_STYLES:
                errors.append(f"{where}.style {style!r}")
            colour = item.get("color")
            if colour is not None and str(colour).lower() not in _COLOURS:
                errors.append(f"{where}.color {colour!r}")
    return errors


def markdown_texts(card: dict[str, Any]) -> list[str]:
    """The card's texts that Teams reads as markdown (``TextBlock`` text, ``FactSet``
    titles and values); ``TextRun`` text is never markdown."""
    out: list[str] = []
    for i, element in enumerate(card.get("body", [])):
        for _, item in _walk(element, f"body[{i}]"):
            if item.get("type") == "TextBlock":
                out.append(str(item.get("text")))
            elif item.get("type") == "FactSet":
                for fact in item.get("facts", []):
                    out += [str(fact.get("title")), str(fact.get("value"))]
    return out


def card_texts(card: dict[str, Any]) -> list[str]:
    """Every text the card shows, in order (TextRun, TextBlock and fact texts)."""
    out: list[str] = []
    for i, element in enumerate(card.get("body", [])):
        for _, item in _walk(element, f"body[{i}]"):
            if item.get("type") in ("TextRun", "TextBlock"):
                out.append(str(item.get("text")))
            for inline in item.get("inlines", []) if item.get("type") == "RichTextBlock" else []:
                if isinstance(inline, str):
                    out.append(inline)
            for fact in item.get("facts", []) if item.get("type") == "FactSet" else []:
                out += [str(fact.get("title")), str(fact.get("value"))]
    return out


class TeamsReceiver(_Receiver):
    """A Power Automate Workflows "When a Teams webhook request is received" trigger that
    posts the card to a channel (see the module doc). Answers 202 with an empty body."""

    name = "teams"

    @property
    def url(self) -> str:
        """The trigger URL, signature included (what ``TEAMS_WEBHOOK_URL`` holds)."""
        return (
            f"{self.base_url}/workflows/{TEAMS_FLOW_ID}/triggers/manual/paths/invoke"
            f"?api-version=1&sig={TEAMS_SIG}"
        )

    def answer(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> _Answer:
        if path != f"/workflows/{TEAMS_FLOW_ID}/triggers/manual/paths/invoke":
            return _json_answer(404, {"error": {"code": "WorkflowNotFound"}})
        if query.get("sig") != TEAMS_SIG:
            return _json_answer(401, {"error": {"code": "DirectApiAuthorizationRequired"}})
        if len(body) > TEAMS_MAX_BYTES:
            return _json_answer(413, {"error": {"code": "RequestEntityTooLarge"}})
        try:
            payload = json.loads(body) if _is_json(headers) else None
        except ValueError:
            payload = None
        errors = self.check(payload)
        if errors:
            return _json_answer(
                400, {"error": {"code": "InvalidRequestContent", "details": errors}}
            )
        return 202, b"", {}

    @staticmethod
    def check(payload: Any) -> list[str]:
        """Every reason the Workflow's "post card" step would refuse ``payload``."""
        if not isinstance(payload, dict) or payload.get("type") != "message":
            return ["body must be {type: message, attachments: [...]}"]
        attachments = payload.get("attachments")
        if not isinstance(attachments, list) or not attachments:
            return ["attachments missing"]
        errors: list[str] = []
        for attachment in attachments:
            if not isinstance(attachment, dict):
                errors.append("attachment: not an object")
            elif attachment.get("contentType") != CARD_CONTENT_TYPE:
                errors.append(f"contentType {attachment.get('contentType')!r}")
            else:
                errors += card_errors(attachment.get("content"))
        return errors


# ====================================================================== generic webhook
WEBHOOK_TOKEN = "tok-SECRET-hook-0000"
_PAYLOAD_KEYS = {
    "version", "kind", "rule", "symbol", "state", "severity", "title", "text", "fields",
    "as_of", "session", "dedupe_key", "alerts", "delayed",
}  # fmt: skip


class WebhookReceiver(_Receiver):
    """A receiver of the generic webhook's payload v1 (see the module doc). With
    ``secret``, an unsigned or wrongly signed request is answered 401; ``verify`` is the
    check used (the README snippet by default). Answers 200 ``{"ok": true}``; a repeated
    ``Idempotency-Key`` is answered 200 ``{"ok": true, "duplicate": true}`` and counted
    in :attr:`duplicates`."""

    name = "webhook"

    def __init__(
        self,
        secret: str | None = None,
        *,
        verify: Callable[[str, str, bytes, str], bool] = readme_verify,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.secret = secret
        self.verify = verify
        self.duplicates = 0
        self._keys: set[str] = set()

    @property
    def url(self) -> str:
        """The receiver URL, token included (what ``WEBHOOK_URL`` holds)."""
        return f"{self.base_url}/hooks/{WEBHOOK_TOKEN}"

    def answer(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> _Answer:
        if path != f"/hooks/{WEBHOOK_TOKEN}":
            return _json_answer(404, {"error": "not_found"})
        if method != "POST":
            return _json_answer(405, {"error": "method_not_allowed"})
        if self.secret is not None:
            timestamp = headers.get("x-flowbot-timestamp", "")
            signature = headers.get("x-flowbot-signature", "")
            if not self.verify(self.secret, timestamp, body, signature):
                return _json_answer(401, {"error": "bad_signature"})
        key = headers.get("idempotency-key")
        if not key:
            return _json_answer(400, {"error": "idempotency_key_required"})
        try:
            payload = json.loads(body) if _is_json(headers) else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or payload.get("version") != 1:
            return _json_answer(422, {"error": "unsupported_payload"})
        missing = _PAYLOAD_KEYS - payload.keys()
        if missing:
            return _json_answer(422, {"error": "missing_keys", "keys": sorted(missing)})
        with self._cond:
            duplicate = key in self._keys
            self._keys.add(key)
            self.duplicates += duplicate
        return _json_answer(200, {"ok": True, "duplicate": True} if duplicate else {"ok": True})
