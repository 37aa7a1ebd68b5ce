"""Detection lag: a flip's first cache period on the API → its alert reaching Slack.

The sandbox (``bot.sim.Sandbox`` in this process, so its clock is readable; the bot is its own
process) runs at speed 1 and caches 15 s on a phase drawn at random here and never told to the
bot. Each of 16 symbols flips (``flow_direction`` → ``regime_flip``) once at a random second
in a window that opens 45 s in (the bot learns the phase first). The real ``flowbot run`` runs
with the shipped polling defaults (Alpha plan, ``poll_seconds = "auto"``, ``max_concurrency``,
Slack at 1 post/s, grouping) and posts to the local Slack Web API server
(``tests/support/slack_api.py``). Lag = the Slack server's receive time − the start of the first
cache period whose body showed the flip. Only what the sandbox cannot match is set: the market
hours check (the wall clock is not the sandbox's session), the stale-feed warning, the HTTP
listener, recap and digest.

    .venv/bin/python bench/lag.py [--symbols 16] [--window 80] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, ROOT, symbols, tempdir, write_scenario

sys.path.insert(0, str(ROOT))

from bot.sim import Sandbox
from bot.sim.nytime import NY
from tests.support.slack_api import DEFAULT_TOKEN, SlackApiServer

PERIOD = 15.0
LEAD = 45.0  # seconds before the first flip: the bot's start-up and phase learning
TAIL = 20.0  # seconds after the last flip for its alert to arrive
_SYMBOL = re.compile(r"\b(S\d{3})\b")


def _config(tmp: Path, sandbox: Sandbox, slack: SlackApiServer, names: list[str]) -> Path:
    path = tmp / "flowbot.toml"
    path.write_text(
        f"""
[flashalpha]
base_url = "{sandbox.base_url}"
plan = "alpha"
stale_after_seconds = 0      # the sandbox's session date is not today's
[watchlist]
symbols = {json.dumps(names)}
[schedule]
market_hours_only = false    # the wall clock is not in the sandbox's session
[slack]
api_url = "{slack.api_url}"
[state]
path = "{tmp / "state.sqlite3"}"
[http]
listen = ""
[recap]
enabled = false
[digest]
enabled = false
"""
    )
    return path


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def main(
    count: int = 16, window: float = 80.0, seed: int | None = None, verbose: bool = False
) -> list[float]:
    """Run the scenario; print lag p50 / p95 / max and return the lags (seconds)."""
    seed = random.randrange(10**6) if seed is None else seed
    rng = random.Random(seed)
    phase = round(rng.uniform(0, PERIOD), 3)
    names = symbols(count)
    with tempdir() as tmp_name:
        tmp = Path(tmp_name)
        # Flips at whole seconds (the scenario's HH:MM:SS) after the 09:30 open.
        offsets = {s: int(LEAD + rng.uniform(0, window)) for s in names}
        open_ny = "2026-06-05T09:30:00"
        events = "".join(
            f'[[events]]\nat = "{(_ny(open_ny) + timedelta(seconds=o)).strftime("%H:%M:%S")}"\n'
            f'symbol = "{s}"\nkind = "flow_direction"\nvalue = "regime_flip"\n'
            for s, o in offsets.items()
        )
        scenario = write_scenario(tmp, names, f'session_date = "2026-06-05"\n{events}')
        with (
            Sandbox(scenario, speed=1.0, cache_phase=phase) as sandbox,
            SlackApiServer() as slack,
        ):
            # Simulated instant → this process's monotonic clock (speed 1: a fixed offset).
            to_mono = time.monotonic() - sandbox.clock.now().timestamp()
            config = _config(tmp, sandbox, slack, names)
            env = {
                **os.environ,
                "FLASHALPHA_API_KEY": "sandbox-alpha",
                "SLACK_BOT_TOKEN": DEFAULT_TOKEN,
            }
            bot = subprocess.Popen(
                [PYTHON, "-m", "bot", "run", "-c", str(config), "--log-level", "WARNING"],
                cwd=ROOT,
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                flips_sim = {s: _ny(open_ny).timestamp() + o for s, o in offsets.items()}
                deadline = time.monotonic() + LEAD + window + TAIL
                while time.monotonic() < deadline and len(_first_posts(slack)) < count:
                    time.sleep(0.5)
            finally:
                bot.send_signal(signal.SIGTERM)
                try:
                    _, stderr = bot.communicate(timeout=20)
                except subprocess.TimeoutExpired:
                    bot.kill()
                    _, stderr = bot.communicate()
            seen = _first_posts(slack)
    lags = []
    for s, flip in flips_sim.items():
        if s not in seen:
            continue
        period_start = phase + math.ceil((flip - phase) / PERIOD) * PERIOD
        lags.append(seen[s] - (period_start + to_mono))
        if verbose:
            print(f"  {s} flip at +{offsets[s]} s: alert {lags[-1]:.2f} s after its period")
    if not lags:
        print(f"detection lag: no alert arrived (bot stderr: {stderr[-400:]!r})")
        return []
    print(
        f"detection lag: p50 {_percentile(lags, 0.5):.2f} s, p95 {_percentile(lags, 0.95):.2f} s, "
        f"max {max(lags):.2f} s ({len(lags)}/{count} flips alerted; {PERIOD:g} s cache on phase "
        f"{phase:.2f} s, Alpha, poll_seconds auto, {window:g} s window, --seed {seed})"
    )
    return lags


def _ny(text: str) -> datetime:
    """A naive ISO New York time as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=NY)


def _first_posts(slack: SlackApiServer) -> dict[str, float]:
    """Symbol → monotonic arrival of the first post naming it (grouped posts name several)."""
    first: dict[str, float] = {}
    for post in slack.posts:
        text = (post.text or "") + json.dumps(post.blocks or [])
        if "regime flip" not in text:
            continue
        for symbol in set(_SYMBOL.findall(text)):
            first.setdefault(symbol, post.at)
    return first


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=16)
    ap.add_argument("--window", type=float, default=80.0, help="seconds the flips spread over")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--verbose", action="store_true", help="print each flip's lag")
    a = ap.parse_args()
    main(a.symbols, a.window, a.seed, a.verbose)
