"""Console destination: readable terminal output and a valid JSONL log with thread links."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from bot.deliver.base import Destination
from bot.deliver.console import ConsoleDestination
from bot.events import Message

AT = datetime(2026, 5, 12, 18, 42, 10, tzinfo=UTC)
MESSAGE = Message(
    kind="candidate",
    text="SPY candidate &lt;!channel&gt; [bold]x[/bold]",
    blocks=[
        {
            "type": "header",
            "text": {"type": "plain_text", "text": "🟢 SPY · bullish flow candidate"},
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*Why* &lt;@U1&gt; &amp; [red]x[/red]"},
            "fields": [{"type": "mrkdwn", "text": "*Score*\n72/100"}],
        },
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "as of 10:32 ET"}]},
    ],
)


def destination(tmp_path: Path) -> tuple[ConsoleDestination, io.StringIO, Path]:
    out = io.StringIO()
    path = tmp_path / "deep" / "logs" / "alerts.jsonl"
    console = Console(file=out, width=100, color_system=None)
    return ConsoleDestination(path, console, clock=lambda: AT), out, path


async def test_prints_readable_panel(tmp_path: Path) -> None:
    """The panel shows header, unescaped section text, fields and context, not JSON."""
    dest, out, _ = destination(tmp_path)
    assert isinstance(dest, Destination)
    await dest.post(MESSAGE)
    printed = out.getvalue()
    for expected in ("SPY · bullish flow candidate", "*Why* <@U1> & [red]x[/red]", "72/100"):
        assert expected in printed
    assert "as of 10:32 ET" in printed
    assert '"type"' not in printed and "mrkdwn" not in printed


async def test_jsonl_lines_link_threads(tmp_path: Path) -> None:
    """Each post appends one JSON line; a reply's thread_ts is its parent's synthetic ts."""
    dest, _, path = destination(tmp_path)
    parent = await dest.post(MESSAGE)
    reply = await dest.post(MESSAGE, thread_ts=parent.ts)
    assert parent.channel == "console" and parent.permalink is None
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2
    assert lines[0] == {
        "at": AT.isoformat(),
        "kind": "candidate",
        "text": MESSAGE.text,
        "blocks": MESSAGE.blocks,
        "thread_ts": None,
        "ts": parent.ts,
    }
    assert lines[1]["thread_ts"] == parent.ts and lines[1]["ts"] == reply.ts


async def test_synthetic_ts_strictly_increase(tmp_path: Path) -> None:
    """Synthetic ts look like Slack's ("1700000000.000001") and strictly increase."""
    dest, _, _ = destination(tmp_path)
    stamps = [(await dest.post(MESSAGE)).ts for _ in range(20)]
    assert all(ts is not None and len(ts.split(".")[1]) == 6 for ts in stamps)
    values = [float(ts) for ts in stamps if ts]
    assert values == sorted(values) and len(set(stamps)) == 20


async def test_without_log_only_prints(tmp_path: Path) -> None:
    """jsonl_path None: prints, writes nothing."""
    out = io.StringIO()
    dest = ConsoleDestination(None, Console(file=out, width=80))
    await dest.post(Message("k", "plain text only"))
    assert "plain text only" in out.getvalue()
    assert list(tmp_path.iterdir()) == []


async def test_upload_writes_file_next_to_log(tmp_path: Path) -> None:
    """upload_file writes <log dir>/files/<name> (no directories from the name) and prints it."""
    dest, out, path = destination(tmp_path)
    await dest.upload_file(
        filename="../../escape.png", content=b"\x89PNG", title="Chart", thread_ts="1.000001"
    )
    target = path.parent / "files" / "escape.png"
    assert target.read_bytes() == b"\x89PNG"
    assert str(target) in out.getvalue().replace("\n", "")
    await dest.close()
