"""A local Slack Web API server for tests: real HTTP on 127.0.0.1, the methods the bot calls.

The real slack_sdk clients talk to it (``base_url=server.api_url``), so tests exercise the
same requests, retries and parsing as production. It speaks ``auth.test``,
``chat.postMessage``, ``chat.getPermalink``, ``conversations.info``,
``files.getUploadURLExternal`` + the upload POST + ``files.completeUploadExternal``, and an
incoming webhook at ``/services/T000/B000/XXXX``. Bodies may be JSON or form-encoded (slack_sdk
sends both); the token comes from ``Authorization: Bearer`` or a ``token`` parameter.

Fault injection: ``fail_next("chat.postMessage", status=429, retry_after=1)`` answers the next
call(s) of that method (``"upload"`` and ``"webhook"`` name the non-API paths) with the fault.

Usage::

    with SlackApiServer() as server:
        client = AsyncWebClient(token=server.token, base_url=server.api_url)
        ...
        server.wait_for_posts(1)

Run ``python -m tests.support.slack_api`` to serve in the foreground (prints the URLs).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["DEFAULT_TOKEN", "WEBHOOK_PATH", "Call", "Post", "SlackApiServer", "Upload"]

DEFAULT_TOKEN = "xoxb-test-0000-flowbot"
WEBHOOK_PATH = "/services/T000/B000/XXXX"


@dataclass(frozen=True)
class Call:
    """Any request the server saw: ``method`` (API method, ``"upload"`` or ``"webhook"``),
    the HTTP ``status`` it answered, ``at`` = ``time.monotonic()`` on arrival."""

    method: str
    status: int
    at: float


@dataclass(frozen=True)
class Post:
    """A recorded ``chat.postMessage``: ``channel`` as sent, ``channel_id`` answered,
    ``blocks`` as the reader sees them (top-level blocks, then those of each attachment;
    ``None`` when absent), ``colours`` the attachments' bar colours, ``at`` = monotonic
    arrival time."""

    channel: str
    channel_id: str
    text: str | None
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None
    ts: str
    at: float
    params: dict[str, Any] = field(repr=False)
    colours: tuple[str, ...] = ()


@dataclass(frozen=True)
class Upload:
    """A completed three-step file upload: the bytes POSTed to the upload URL and what
    ``files.completeUploadExternal`` said (channel, thread, comment, title)."""

    file_id: str
    filename: str
    title: str | None
    content: bytes
    channel_id: str | None
    thread_ts: str | None
    initial_comment: str | None


@dataclass
class _Fault:
    method: str
    status: int
    retry_after: int | None
    count: int
    error: str


class SlackApiServer:
    """The server: start/stop explicitly or use as a context manager.

    - ``token``: the only token accepted (others get ``invalid_auth``).
    - ``missing_channels``: channel names/ids answered with ``channel_not_found``.
    Recorded calls (``posts``, ``uploads``, ``webhook_posts``, ``calls``) are thread-safe
    snapshots (copies).
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        missing_channels: frozenset[str] = frozenset(),
    ):
        self.token = token
        self.missing_channels = missing_channels
        self._latency: dict[str, float] = {}
        self.held = 0  # calls that arrived while slow_down was on (counted on arrival)
        self._windows: dict[str, tuple[float, int]] = {}
        self._host, self._port = host, port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._posts: list[Post] = []
        self._uploads: list[Upload] = []
        self._webhook_posts: list[dict[str, Any]] = []
        self._calls: list[Call] = []
        self._faults: list[_Fault] = []
        self._pending_files: dict[str, dict[str, Any]] = {}
        self._counter = 0
        self._ts_base = int(time.time())

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SlackApiServer:
        """Bind (port 0 = any free port) and serve in a daemon thread."""
        handler = type("Handler", (_Handler,), {"slack": self})
        self._httpd = ThreadingHTTPServer((self._host, self._port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            # A short poll interval makes stop() (shutdown) return promptly.
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="slack-api-server",
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

    def __enter__(self) -> SlackApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        """Web API base for slack_sdk's ``base_url``; ends with ``/api/``."""
        return f"{self.base_url}/api/"

    @property
    def webhook_url(self) -> str:
        """The incoming-webhook URL this server accepts."""
        return f"{self.base_url}{WEBHOOK_PATH}"

    # ------------------------------------------------------------------ faults and records
    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: int | None = 1,
        count: int = 1,
        error: str | None = None,
    ) -> None:
        """Answer the next ``count`` calls of ``method`` with HTTP ``status`` (429 carries
        ``Retry-After: retry_after``) and ``{"ok": false, "error": error}``; ``error``
        defaults to ``ratelimited`` for 429, ``internal_error`` otherwise. ``status=200``
        with an ``error`` injects an API-level failure (e.g. ``not_in_channel``)."""
        default = "ratelimited" if status == 429 else "internal_error"
        with self._cond:
            self._faults.append(_Fault(method, status, retry_after, count, error or default))

    @property
    def posts(self) -> list[Post]:
        """Recorded ``chat.postMessage`` calls that succeeded, in arrival order."""
        with self._cond:
            return list(self._posts)

    @property
    def uploads(self) -> list[Upload]:
        """Completed file uploads, in completion order."""
        with self._cond:
            return list(self._uploads)

    @property
    def webhook_posts(self) -> list[dict[str, Any]]:
        """JSON bodies accepted on the webhook path."""
        with self._cond:
            return list(self._webhook_posts)

    @property
    def calls(self) -> list[Call]:
        """Every request seen (including faulted ones), in arrival order."""
        with self._cond:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of one method."""
        return [c for c in self.calls if c.method == method]

    def wait_for_posts(self, n: int, timeout: float = 5.0) -> list[Post]:
        """Block until at least ``n`` posts arrived; returns them. Raises ``TimeoutError``."""
        return self._wait(lambda: self._posts, n, timeout, "posts")

    def wait_for_uploads(self, n: int, timeout: float = 5.0) -> list[Upload]:
        """Block until at least ``n`` uploads completed. Raises ``TimeoutError``."""
        return self._wait(lambda: self._uploads, n, timeout, "uploads")

    def wait_for_webhook_posts(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until at least ``n`` webhook posts arrived. Raises ``TimeoutError``."""
        return self._wait(lambda: self._webhook_posts, n, timeout, "webhook posts")

    def _wait(self, items: Any, n: int, timeout: float, what: str) -> list[Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(items()) >= n, timeout=timeout):
                raise TimeoutError(f"{len(items())} {what} after {timeout}s, wanted {n}")
            return list(items())

    def reset(self) -> None:
        """Forget all records and pending faults (between phases of one test)."""
        with self._cond:
            self._posts.clear()
            self._uploads.clear()
            self._webhook_posts.clear()
            self._calls.clear()
            self._faults.clear()

    # ------------------------------------------------------------------ internals (locked)
    def slow_down(self, method: str, seconds: float) -> None:
        """Answer every call of ``method`` only after ``seconds`` (0 = at once again)."""
        with self._cond:
            self._latency[method] = seconds

    def fail_for(self, method: str, seconds: float, status: int = 500) -> None:
        """Answer every call of ``method`` with ``status`` for the next ``seconds`` of wall
        time (an outage window); 429s carry ``Retry-After`` of the time left."""
        with self._cond:
            self._windows[method] = (time.monotonic() + seconds, status)

    def _take_fault(self, method: str) -> _Fault | None:
        with self._cond:
            window = self._windows.get(method)
            if window is not None:
                until, status = window
                left = until - time.monotonic()
                if left > 0:
                    error = "ratelimited" if status == 429 else "internal_error"
                    return _Fault(method, status, max(int(left) + 1, 1), 1, error)
                del self._windows[method]
            for fault in self._faults:
                if fault.method == method and fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _record_call(self, method: str, status: int, at: float) -> None:
        with self._cond:
            self._calls.append(Call(method, status, at))
            self._cond.notify_all()

    def _next_ts(self) -> str:
        with self._cond:
            self._counter += 1
            return f"{self._ts_base}.{self._counter:06d}"

    def _next_id(self, prefix: str) -> str:
        with self._cond:
            self._counter += 1
            return f"{prefix}{self._counter:08d}"

    @staticmethod
    def channel_id(channel: str) -> str:
        """The id this server gives a channel: ids (``C…``) as-is, names → ``C`` + stable hex."""
        name = channel.lstrip("#")
        if name[:1] in ("C", "G", "D") and name.isupper():
            return name
        return "C" + format(sum((i + 1) * ord(ch) for i, ch in enumerate(name)), "08X")

    # ------------------------------------------------------------------ API methods
    def api(self, method: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        """Answer one Web API call (already past fault injection)."""
        if method not in _METHODS:
            return {"ok": False, "error": "unknown_method"}
        if token != self.token:
            return {"ok": False, "error": "invalid_auth"}
        return getattr(self, _METHODS[method])(params)

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://flowbot-test.slack.com/",
            "team": "Flowbot Test",
            "user": "flowbot",
            "team_id": "T000",
            "user_id": "U000",
            "bot_id": "B000",
        }

    def _channel_or_error(self, params: dict[str, Any], key: str) -> str | dict[str, Any]:
        channel = params.get(key)
        if not channel or channel in self.missing_channels:
            return {"ok": False, "error": "channel_not_found"}
        return str(channel)

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_or_error(params, "channel")
        if isinstance(channel, dict):
            return channel
        blocks = params.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return {"ok": False, "error": "invalid_blocks_format"}
        if blocks is not None and not (
            isinstance(blocks, list) and all(isinstance(b, dict) and "type" in b for b in blocks)
        ):
            return {"ok": False, "error": "invalid_blocks"}
        attachments = params.get("attachments")
        if isinstance(attachments, str):
            try:
                attachments = json.loads(attachments)
            except ValueError:
                return {"ok": False, "error": "invalid_attachments"}
        colours: list[str] = []
        for attachment in attachments or []:
            inner = attachment.get("blocks") if isinstance(attachment, dict) else None
            if not isinstance(inner, list) or not all(
                isinstance(b, dict) and "type" in b for b in inner
            ):
                return {"ok": False, "error": "invalid_attachments"}
            blocks = [*(blocks or []), *inner]
            colours.append(str(attachment.get("color", "")))
        if blocks is not None and len(blocks) > 50:
            return {"ok": False, "error": "invalid_blocks"}
        if not params.get("text") and not blocks:
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        post = Post(
            channel=channel,
            channel_id=self.channel_id(channel),
            text=params.get("text"),
            blocks=blocks,
            thread_ts=params.get("thread_ts") or None,
            ts=ts,
            at=params["_at"],
            params={k: v for k, v in params.items() if k != "_at"},
            colours=tuple(colours),
        )
        with self._cond:
            self._posts.append(post)
            self._cond.notify_all()
        message = {"type": "message", "text": post.text, "ts": ts, "bot_id": "B000"}
        if post.thread_ts:
            message["thread_ts"] = post.thread_ts
        return {"ok": True, "channel": post.channel_id, "ts": ts, "message": message}

    def _chat_get_permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_or_error(params, "channel")
        if isinstance(channel, dict):
            return channel
        ts = str(params.get("message_ts", ""))
        link = f"https://flowbot-test.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        return {"ok": True, "channel": channel, "permalink": link}

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_or_error(params, "channel")
        if isinstance(channel, dict):
            return channel
        cid = self.channel_id(channel)
        return {"ok": True, "channel": {"id": cid, "name": channel.lstrip("#"), "is_member": True}}

    def _files_get_upload_url(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("filename") or not str(params.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = self._next_id("F")
        with self._cond:
            self._pending_files[file_id] = {"filename": params["filename"], "content": None}
        return {"ok": True, "file_id": file_id, "upload_url": f"{self.base_url}/upload/{file_id}"}

    def _files_complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        files = params.get("files")
        if isinstance(files, str):
            try:
                files = json.loads(files)
            except ValueError:
                return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        channel_id = params.get("channel_id") or None
        if channel_id is not None and channel_id in self.missing_channels:
            return {"ok": False, "error": "channel_not_found"}
        done: list[Upload] = []
        with self._cond:
            for item in files:
                pending = self._pending_files.get(str(item.get("id")))
                if pending is None or pending["content"] is None:
                    return {"ok": False, "error": "file_not_found"}
            for item in files:
                pending = self._pending_files.pop(str(item["id"]))
                done.append(
                    Upload(
                        file_id=str(item["id"]),
                        filename=pending["filename"],
                        title=item.get("title"),
                        content=pending["content"],
                        channel_id=channel_id,
                        thread_ts=params.get("thread_ts") or None,
                        initial_comment=params.get("initial_comment") or None,
                    )
                )
            self._uploads.extend(done)
            self._cond.notify_all()
        return {
            "ok": True,
            "files": [{"id": u.file_id, "name": u.filename, "title": u.title} for u in done],
        }

    def upload(self, file_id: str, content: bytes) -> tuple[int, str]:
        """Step 2 of a file upload: store the bytes for ``file_id``."""
        with self._cond:
            pending = self._pending_files.get(file_id)
            if pending is None:
                return 404, "file not found"
            pending["content"] = content
        return 200, f"OK - {len(content)}"

    def webhook(self, body: bytes) -> tuple[int, str]:
        """An incoming-webhook post: JSON with ``text`` or ``blocks``."""
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            return 400, "invalid_payload"
        if not isinstance(payload, dict) or not (payload.get("text") or payload.get("blocks")):
            return 400, "no_text"
        with self._cond:
            self._webhook_posts.append(payload)
            self._cond.notify_all()
        return 200, "ok"


_METHODS = {
    "auth.test": "_auth_test",
    "chat.postMessage": "_chat_post_message",
    "chat.getPermalink": "_chat_get_permalink",
    "conversations.info": "_conversations_info",
    "files.getUploadURLExternal": "_files_get_upload_url",
    "files.completeUploadExternal": "_files_complete_upload",
}


class _Handler(BaseHTTPRequestHandler):
    """One request: route, inject faults, answer. Never lets an exception kill the server."""

    slack: SlackApiServer
    server_version = "SlackApiTest/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        at = time.monotonic()
        path = urlsplit(self.path)
        method = self._method_name(path.path)
        try:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            delay = self.slack._latency.get(method, 0.0)
            if delay:
                with self.slack._cond:
                    self.slack.held += 1
                    self.slack._cond.notify_all()
                time.sleep(delay)
            fault = self.slack._take_fault(method)
            if fault is not None:
                headers = {}
                if fault.status == 429 and fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
                if method in ("webhook", "upload"):  # Slack answers these in plain text
                    self._send(
                        method, fault.status, fault.error.encode(), "text/plain", headers, at
                    )
                else:
                    error = {"ok": False, "error": fault.error}
                    self._json(method, fault.status, error, headers, at)
                return
            if path.path.startswith("/api/"):
                params = self._params(path.query, body)
                params["_at"] = at
                self._json(method, 200, self.slack.api(method, params, self._token(params)), {}, at)
            elif path.path.startswith("/upload/"):
                status, text = self.slack.upload(path.path.rsplit("/", 1)[-1], body)
                self._text(method, status, text, at)
            elif path.path == WEBHOOK_PATH:
                status, text = self.slack.webhook(body)
                self._text(method, status, text, at)
            else:
                self._text(method, 404, "not found", at)
        except Exception as exc:  # a test server bug must answer, not hang the client
            self._json(method, 500, {"ok": False, "error": f"server_bug:{exc!r}"}, {}, at)

    @staticmethod
    def _method_name(path: str) -> str:
        if path.startswith("/api/"):
            return path[len("/api/") :]
        if path.startswith("/upload/"):
            return "upload"
        if path.startswith("/services/"):
            return "webhook"
        return path

    def _params(self, query: str, body: bytes) -> dict[str, Any]:
        params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query).items()}
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype == "application/json" and body:
            data = json.loads(body)
            if isinstance(data, dict):
                params.update(data)
        elif body:
            params.update({k: v[-1] for k, v in parse_qs(body.decode("utf-8")).items()})
        return params

    def _token(self, params: dict[str, Any]) -> str | None:
        auth = self.headers.get("Authorization") or ""
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        token = params.get("token")
        return str(token) if token else None

    def _json(
        self, method: str, status: int, data: dict[str, Any], headers: dict[str, str], at: float
    ) -> None:
        payload = json.dumps(data).encode()
        self._send(method, status, payload, "application/json; charset=utf-8", headers, at)

    def _text(self, method: str, status: int, text: str, at: float) -> None:
        self._send(method, status, text.encode(), "text/plain; charset=utf-8", {}, at)

    def _send(
        self,
        method: str,
        status: int,
        payload: bytes,
        ctype: str,
        headers: dict[str, str],
        at: float,
    ) -> None:
        # Record before answering, so a client that got its answer also sees the record.
        self.slack._record_call(method, status, at)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)


def main() -> None:
    """Serve in the foreground until Ctrl-C; prints the API and webhook URLs."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    args = parser.parse_args()
    with SlackApiServer(args.token, port=args.port) as server:
        print(f"api_url={server.api_url}\nwebhook_url={server.webhook_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
