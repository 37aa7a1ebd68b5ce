"""Benchmark: one poll tick of the whole pipeline for a 12-symbol watchlist, over real HTTP.

The sandbox runs in its own process (as the real API would be elsewhere); the bot runs the
engine's ticks against it with a SQLite store in a temp dir and the console sink writing JSON
lines. Prints the median and 95th-percentile tick time and the bot-side request rate.
"""

from __future__ import annotations

import asyncio
import io
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
from rich.console import Console

from bot.app import build_bot
from bot.deliver.console import ConsoleDestination
from bot.settings import Secrets, load_settings

# The default scenario's whole universe.
SYMBOLS = [
    "SPY",
    "QQQ",
    "IWM",
    "AAPL",
    "NVDA",
    "TSLA",
    "AMD",
    "MSFT",
    "AMZN",
    "META",
    "GOOGL",
    "NFLX",
]
TICKS = 150


def _start_sandbox() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.sim", "--port", "0", "--speed", "0", "--admin"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "http://127.0.0.1:" in line:
            url = line[line.index("http://") :].split()[0].rstrip("/")
            return proc, url
    raise RuntimeError("sandbox did not print its URL")


async def _run(base_url: str, state: Path) -> tuple[list[float], int]:
    settings = load_settings(
        None,
        flashalpha={"base_url": base_url, "plan": "alpha"},
        watchlist={"symbols": SYMBOLS},
        state={"path": state / "bench.sqlite3"},
        rules={"top_n": {"zero_dte_metrics": ["heat", "pin_risk"]}},
    )
    sink = ConsoleDestination(state / "messages.jsonl", console=Console(file=io.StringIO()))
    bot = build_bot(
        settings, Secrets(flashalpha_api_key="sandbox-alpha"), destinations={"console": sink}
    )
    times = []
    async with httpx.AsyncClient(base_url=base_url) as admin:
        for _ in range(TICKS):
            await admin.post("/_sim/clock", json={"advance_seconds": 30})
            now = (await admin.get("/_sim/clock")).json()["now"]
            tick_now = datetime.fromisoformat(now.replace("Z", "+00:00"))
            start = time.perf_counter()
            await bot.engine.poll_symbols(tick_now)
            await bot.engine.poll_leaderboards(tick_now)
            times.append(time.perf_counter() - start)
    requests = bot.client.requests_made
    await bot.aclose()
    return times, requests


def main() -> float:
    """Run the benchmark; returns the median tick time in milliseconds."""
    proc, url = _start_sandbox()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ticks, requests = asyncio.run(_run(url, Path(tmp)))
    finally:
        proc.terminate()
        proc.wait(10)
    median = statistics.median(ticks) * 1000
    p95 = sorted(ticks)[int(len(ticks) * 0.95)] * 1000
    per_tick = requests / len(ticks)
    print(
        f"pipeline tick: median {median:.1f} ms, p95 {p95:.1f} ms "
        f"({per_tick:.0f} requests a tick, {len(ticks)} ticks, "
        f"{requests / sum(ticks):,.0f} req/s while ticking)"
    )
    return median


if __name__ == "__main__":
    main()
