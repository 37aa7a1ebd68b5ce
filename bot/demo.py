"""``flowbot demo``: the whole bot over one simulated session on the built-in sandbox.

No key, no Slack, no mail server: the sandbox runs in-process on 127.0.0.1, the bot polls it
over real HTTP with the simulated clock as every tick's ``now``, alerts go to the console (and
a JSONL file), and the session ends with the recap on the console and the digest written as
``.eml`` + ``.html`` files.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from bot.app import build_bot
from bot.calendar import TradingCalendar
from bot.deliver.base import BuildContext
from bot.reports import send_digest, send_recap
from bot.settings import Secrets, load_settings
from bot.sim import Sandbox

__all__ = ["DEMO_WATCHLIST", "run_demo"]

DEMO_WATCHLIST = ["SPY", "QQQ", "IWM", "NVDA", "TSLA", "AMD"]
STEP = timedelta(seconds=30)
CUMULATIVE_EVERY = timedelta(
    minutes=5
)  # flow_inflection's default cadence  # the API's cache period: polling faster sees nothing new


def run_demo(out_dir: Path, pace: float = 0.0, console: Console | None = None) -> int:
    """Play the sandbox's default session through the bot and print what happened.

    ``pace``: simulated seconds per real second (0 = as fast as the machine allows).
    Returns 0 when the session produced a regime_flip, a candidate and a leaderboard alert.
    """
    console = console or Console()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    return asyncio.run(_demo(out_dir, pace, console))


async def _demo(out_dir: Path, pace: float, console: Console) -> int:
    started = time.monotonic()
    with Sandbox(speed=0) as sandbox:
        settings = load_settings(
            None,
            flashalpha={"base_url": sandbox.base_url, "plan": "alpha", "retries": 0},
            watchlist={"symbols": DEMO_WATCHLIST},
            schedule={"market_hours_only": False},
            state={"path": out_dir / "flowbot.sqlite3"},
            console={"jsonl_path": out_dir / "messages.jsonl"},
            email={"outbox_dir": out_dir, "recipients": ["desk@example.com"]},
            # The whole market churns at the open; a desk watches its own names on the boards.
            rules={"top_n": {"zero_dte_metrics": ["heat", "pin_risk"], "watchlist_only": True}},
        )
        secrets = Secrets(flashalpha_api_key="sandbox-alpha")  # type: ignore[arg-type]
        calendar = TradingCalendar()
        day = sandbox.scenario.session_date
        session = calendar.session_for(day)
        assert session is not None, f"the demo scenario's date {day} is no XNYS session"
        console.rule(f"Flowbot demo · sandbox {sandbox.base_url} · session {day}")
        # No secret is read: the demo's destinations come from its own (empty) environment.
        bot = build_bot(
            settings, secrets, context=BuildContext(environ={}), clock=sandbox.clock.now
        )
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
    kinds = Counter(a.rule for a in alerts)
    console.rule("Demo finished")
    console.print(
        f"{len(alerts)} alerts: "
        + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
        + f" · {sandbox.request_count():,} API requests in {time.monotonic() - started:.0f} s"
    )
    console.print(f"Slack messages as JSON lines: {out_dir / 'messages.jsonl'}")
    for path in digest.files:
        console.print(f"digest: {path}")
    missing = {"regime_flip", "candidate", "top_n"} - set(kinds)
    if missing:
        console.print(f"[red]the session produced no {', '.join(sorted(missing))} alert[/]")
        return 1
    return 0
