"""Console destination: prints each message readably and appends it to a JSONL log.

The local stand-in for Slack in ``flowbot demo`` and dry runs: what a trader would read, in the
terminal, and a machine-readable record of every message (including thread links) on disk.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from bot.deliver.base import (
    BuildContext,
    Capabilities,
    Delivered,
    DestinationConfig,
    DestinationKind,
    Envelope,
)
from bot.escape import slack_unescape
from bot.events import Dialect, Message

__all__ = ["KIND", "ConsoleConfig", "ConsoleDestination"]


class ConsoleConfig(DestinationConfig):
    """``kind = "console"``: print each message and append it to ``jsonl_path`` (JSON lines;
    ``""`` = print only). Unpaced by default."""

    kind: Literal["console"] = "console"
    jsonl_path: Path | None = Path("outbox/messages.jsonl")
    max_posts_per_second: float = Field(0.0, ge=0)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ConsoleDestination:
    """Prints messages with rich and logs them as JSON lines.

    - ``jsonl_path``: file that gets one line per message,
      ``{"at", "kind", "text", "blocks", "thread_ts", "ts"}`` (parents created); ``None`` = print
      only. Files from :meth:`upload_file` go to ``<jsonl dir>/files/``.
    - ``console``: where to print (a fresh stdout console by default).
    - ``clock``: UTC "now" for the ``at`` field (injected by tests and replays).

    :meth:`post` returns ``Delivered("console", ts, None)`` with a synthetic, strictly
    increasing Slack-style ts (``"1700000000.000001"``) so thread replies link up in the log.
    """

    capabilities = Capabilities(Dialect.SLACK, threads=True, files=True)
    min_interval = 0.0

    def __init__(
        self,
        jsonl_path: Path | None,
        console: Console | None = None,
        *,
        name: str = "console",
        clock: Callable[[], datetime] = _utcnow,
    ):
        self.name = name
        self.jsonl_path = jsonl_path
        self.console = console or Console()
        self._clock = clock
        self._last_us = 0

    def _next_ts(self) -> str:
        # Wall-clock microseconds, bumped when needed: unique and increasing within a run
        # and (clock permitting) across restarts that append to the same log.
        self._last_us = max(time.time_ns() // 1000, self._last_us + 1)
        seconds, micros = divmod(self._last_us, 1_000_000)
        return f"{seconds}.{micros:06d}"

    async def send(self, envelope: Envelope) -> Delivered:
        """Print a message (or write a file, see :meth:`upload_file`); an email payload is
        printed as its subject line."""
        if envelope.file is not None:
            await self.upload_file(
                filename=envelope.file.filename,
                content=envelope.file.content,
                title=envelope.file.title,
                thread_ts=envelope.thread_ts,
            )
            return Delivered(channel="console")
        if envelope.message is None:
            self.console.print(Text(f"✉ {envelope.category} {envelope.dedupe_key}"))
            return Delivered(channel="console")
        message = envelope.message
        if envelope.mention:
            message = Message(
                kind=message.kind,
                text=f"{envelope.mention} {message.text}",
                blocks=message.blocks,
                severity=message.severity,
            )
        return await self.post(message, thread_ts=envelope.thread_ts)

    async def post(self, message: Message, *, thread_ts: str | None = None) -> Delivered:
        """Print ``message`` as a panel and append its JSON line. Never raises for content;
        an unwritable ``jsonl_path`` raises :class:`OSError`."""
        ts = self._next_ts()
        self.console.print(_panel(message, ts, thread_ts))
        self._append(
            {
                "at": self._clock().isoformat(),
                "kind": message.kind,
                "text": message.text,
                "blocks": message.blocks,
                "thread_ts": thread_ts,
                "ts": ts,
            }
        )
        return Delivered(channel="console", ts=ts, permalink=None)

    async def upload_file(
        self,
        *,
        filename: str,
        content: bytes,
        title: str,
        thread_ts: str | None,
        initial_comment: str | None = None,
    ) -> None:
        """Write ``content`` to ``<jsonl dir>/files/<filename>`` (the current directory's
        ``files/`` without a log) and print where it went."""
        folder = (self.jsonl_path.parent if self.jsonl_path else Path.cwd()) / "files"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / Path(filename).name  # no directories from the caller's name
        target.write_bytes(content)
        line = Text(f"📎 {title}: {target}")
        if initial_comment:
            line.append(f"\n{initial_comment}")
        if thread_ts:
            line.append(f"  (thread {thread_ts})", style="dim")
        self.console.print(line)

    async def close(self) -> None:
        """Nothing to release: the log is opened per message."""

    def _append(self, record: dict[str, Any]) -> None:
        if self.jsonl_path is None:
            return
        self.jsonl_path.parent.mkdir(parents=True, exist_ok=True)
        with self.jsonl_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")


def _panel(message: Message, ts: str, thread_ts: str | None) -> Panel:
    """The message as a trader reads it: header as title, section and field texts, context
    dimmed. Text objects (not markup strings) so "[bold]" in data prints literally."""
    title = message.kind
    parts: list[Text] = []
    for block in message.blocks:
        kind = block.get("type")
        if kind == "header":
            title = slack_unescape(block["text"]["text"])
        elif kind == "section":
            if "text" in block:
                parts.append(Text(slack_unescape(block["text"]["text"])))
            fields = [slack_unescape(f["text"]).replace("\n", " ") for f in block.get("fields", [])]
            if fields:
                parts.append(Text("   ".join(fields), style="cyan"))
        elif kind == "context":
            joined = " · ".join(slack_unescape(e.get("text", "")) for e in block["elements"])
            parts.append(Text(joined, style="dim"))
        elif kind == "divider":
            parts.append(Text("─" * 20, style="dim"))
    if not parts:
        parts.append(Text(slack_unescape(message.text)))
    subtitle = f"↳ thread {thread_ts}" if thread_ts else f"ts {ts}"
    return Panel(Group(*parts), title=Text(title), subtitle=subtitle, expand=False)


def _build(cfg: ConsoleConfig, ctx: BuildContext) -> ConsoleDestination:
    destination = ConsoleDestination(cfg.jsonl_path, ctx.console, name=cfg.name)
    destination.min_interval = cfg.min_interval
    return destination


KIND = DestinationKind(
    "console",
    ConsoleConfig,
    _build,
    ConsoleDestination.capabilities,
    "prints each message and appends it to a JSON-lines file",
)
