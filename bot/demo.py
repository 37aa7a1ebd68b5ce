"""``flowbot demo``: the whole bot over one simulated session on the built-in sandbox.

No key, no Slack, no mail server: the sandbox runs in-process on 127.0.0.1, the bot polls it
over real HTTP with the simulated clock as every tick's ``now``, alerts go to the console (and
a JSONL file), and the session ends with the recap on the console and the digest written as
``.eml`` + ``.html`` files.

Nothing from the shell reaches it: the config is built from values here only (no TOML, no
``FLOWBOT_*`` variable, ``FLOWBOT_CONFIG`` included), the only secret is the sandbox's key, and
the sink is the console, so exported live tokens, webhooks or SMTP passwords are never read.
The output directory is never deleted unless the demo made it (see :func:`prepare_out_dir`).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from bot.app import build_bot
from bot.calendar import TradingCalendar
from bot.deliver.base import BuildContext
from bot.notices import NOTICES
from bot.reports import send_digest, send_recap
from bot.settings import Settings, isolated_secrets, isolated_settings
from bot.sim import Sandbox

__all__ = [
    "DEMO_WATCHLIST",
    "MARKER",
    "OutDirError",
    "demo_settings",
    "prepare_out_dir",
    "run_demo",
]

DEMO_WATCHLIST = ["SPY", "QQQ", "IWM", "NVDA", "TSLA", "AMD"]
STEP = timedelta(seconds=30)  # the API's cache period: polling faster sees nothing new
CUMULATIVE_EVERY = timedelta(minutes=5)  # flow_inflection's default cadence
MARKER = ".flowbot-demo"
"""The file that marks a directory as made by ``flowbot demo`` (and so safe to clear)."""
SANDBOX_KEY = "sandbox-alpha"  # the sandbox's built-in Alpha-plan key, not a secret


class OutDirError(Exception):
    """``--out`` names something the demo will not write into; ``str()`` says why."""


def prepare_out_dir(out_dir: Path) -> None:
    """Make ``out_dir`` an empty directory holding only the :data:`MARKER` file.

    A missing or empty directory is created / used; one with the marker (an earlier demo's)
    is cleared. Anything else (a file, a directory with other content and no marker, such
    as ``--out .``) raises :class:`OutDirError` and nothing is touched.
    """
    if out_dir.exists() or out_dir.is_symlink():
        if not out_dir.is_dir() or out_dir.is_symlink():
            raise OutDirError(f"{out_dir} is not a directory the demo made; choose another --out")
        if (out_dir / MARKER).is_file():
            shutil.rmtree(out_dir)
        elif any(out_dir.iterdir()):
            raise OutDirError(
                f"{out_dir} is not empty and was not made by flowbot demo (no {MARKER} file); "
                "choose a new or empty --out directory"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text("made by flowbot demo; the next demo run clears this directory\n")


def demo_settings(base_url: str, out_dir: Path) -> Settings:
    """The demo's whole config, from values only: the sandbox at ``base_url``, the demo
    watchlist, every file under ``out_dir``; no TOML file or ``FLOWBOT_*`` variable is read."""
    return isolated_settings(
        flashalpha={"base_url": base_url, "plan": "alpha", "retries": 0},
        watchlist={"symbols": DEMO_WATCHLIST},
        schedule={"market_hours_only": False},
        state={"path": out_dir / "flowbot.sqlite3"},
        console={"jsonl_path": out_dir / "messages.jsonl"},
        email={"outbox_dir": out_dir, "recipients": ["desk@example.com"]},
        rules=DEMO_RULES,
    )


DEMO_RULES = {"top_n": {"zero_dte_metrics": ["heat", "pin_risk"], "watchlist_only": True}}
"""The demo's rule settings beyond the defaults: the whole market churns at the open; a desk
watches its own names on the boards."""

REPLAY_CONFIG = f"""# The rule settings `flowbot demo` ran with: replay its session with
#   flowbot replay --state flowbot.sqlite3 --date <session> --config config.toml
# and edit a threshold here to see which alerts it adds or removes.
[watchlist]
symbols = {DEMO_WATCHLIST!r}

[rules.top_n]
zero_dte_metrics = ["heat", "pin_risk"]
watchlist_only = true
""".replace("'", '"')
"""``config.toml`` written next to the demo's state file (same watchlist and rules)."""


def run_demo(out_dir: Path, pace: float = 0.0, console: Console | None = None) -> int:
    """Play the sandbox's default session through the bot and print what happened.

    ``pace``: simulated seconds per real second (0 = as fast as the machine allows).
    Returns 0 when the session produced a regime_flip, a candidate and a leaderboard alert,
    1 when one is missing, 2 when ``out_dir`` is refused (see :func:`prepare_out_dir`).
    """
    console = console or Console()
    try:
        prepare_out_dir(out_dir)
    except OutDirError as exc:
        Console(stderr=True).print(f"[bold red]demo:[/] {escape(str(exc))}", highlight=False)
        return 2
    return asyncio.run(_demo(out_dir, pace, console))


async def _demo(out_dir: Path, pace: float, console: Console) -> int:
    started = time.monotonic()
    with Sandbox(speed=0) as sandbox:
        settings = demo_settings(sandbox.base_url, out_dir)
        secrets = isolated_secrets(flashalpha_api_key=SANDBOX_KEY)
        calendar = TradingCalendar()
        day = sandbox.scenario.session_date
        session = calendar.session_for(day)
        assert session is not None, f"the demo scenario's date {day} is no XNYS session"
        (out_dir / "config.toml").write_text(REPLAY_CONFIG)
        console.rule(f"Flowbot demo · sandbox {sandbox.base_url} · session {day}")
        # No secret is read: the demo's one destination is the console, built from its own
        # (empty) environment, and the outbox runs on the sandbox's simulated clock.
        context = BuildContext(environ={}, secrets_dir=None, console=console)
        bot = build_bot(settings, secrets, context=context, clock=sandbox.clock.now)
        try:
            now = session.open_utc
            while now <= session.close_utc:
                sandbox.clock.set(now)
                await bot.engine.poll_symbols(now)
                await bot.engine.poll_leaderboards(now)
                if (now - session.open_utc) % CUMULATIVE_EVERY == timedelta(0):
                    await bot.engine.poll_cumulative(now)
                await bot.worker.flush()
                now += STEP
                if pace > 0:
                    await asyncio.sleep(STEP.total_seconds() / pace)
            now = session.close_utc + timedelta(minutes=settings.recap.delay_minutes)
            sandbox.clock.set(now)
            console.rule("End-of-session recap")
            await send_recap(bot, session, now)
            await bot.worker.flush()
            digest = await send_digest(bot, session, now, dry_run=True)
            alerts = bot.store.alerts(day.isoformat())
        finally:
            await bot.aclose()
    told = [a for a in alerts if a.rule not in NOTICES]
    kinds = Counter(a.rule for a in told)
    notices = Counter(a.rule for a in alerts if a.rule in NOTICES)
    console.rule("Demo finished")
    console.print(
        f"{len(told)} alerts: "
        + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
        + (f" · {sum(notices.values())} notices: " if notices else "")
        + ", ".join(f"{kind} {count}" for kind, count in sorted(notices.items()))
        + f" · {sandbox.request_count():,} API requests in {time.monotonic() - started:.0f} s"
    )
    console.print(f"Slack messages as JSON lines: {out_dir / 'messages.jsonl'}")
    console.print(
        f"replay it: flowbot replay --state {out_dir / 'flowbot.sqlite3'} --date {day} "
        f"--config {out_dir / 'config.toml'}"
    )
    for path in digest.files:
        console.print(f"digest: {path}")
    missing = {"regime_flip", "candidate", "top_n"} - set(kinds)
    if missing:
        console.print(f"[red]the session produced no {', '.join(sorted(missing))} alert[/]")
        return 1
    return 0
