"""Peak RSS of ``flowbot run`` over a compressed full session of 50 symbols.

The sandbox (``bot.sim.Sandbox`` in this process) runs a seeded random-walk session of 50
symbols from the 09:30 open to the close at ``--speed`` x real time; ``flowbot run`` (Alpha plan)
polls every ``--poll`` wall seconds (a minute of the session at 240x) and posts to the local
Slack Web API server. The bot's clock follows the sandbox's (``bench/simclock.py``), and the run
goes on to 16:35 New York, past the recap (due at close + 5 min, its chart uploaded) and the
email digest (due at 16:30, written as files), as on a real day; the line counts both. Peak RSS is
the kernel's high-water mark (``VmHWM`` in ``/proc/<pid>/status``), read just before the bot
is stopped.

    .venv/bin/python bench/rss.py [--symbols 50] [--speed 240] [--poll 0.25]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, ROOT, symbols, tempdir

sys.path.insert(0, str(ROOT))

from bot.sim import Sandbox
from tests.support.slack_api import DEFAULT_TOKEN, SlackApiServer

SESSION_SECONDS = 390 * 60
AFTER_CLOSE_SECONDS = 35 * 60  # the recap is due at 16:05, the digest at 16:30 New York
SIMCLOCK = Path(__file__).resolve().parent / "simclock.py"


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (MB) so far, from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def _digests(tmp: Path) -> int:
    """How many digest messages the bot wrote as files (``[email] outbox_dir``)."""
    return len(list((tmp / "outbox").rglob("*.eml")))


def main(count: int = 50, speed: float = 240.0, poll: float = 0.25) -> float:
    """Run the session; print and return the bot's peak RSS in MB."""
    names = symbols(count)
    with tempdir() as tmp_name:
        tmp = Path(tmp_name)
        scenario = tmp / "scenario.toml"
        scenario.write_text(f'name = "rss"\nseed = 11\nsymbols = {json.dumps(names)}\n')
        with Sandbox(scenario, speed=speed) as sandbox, SlackApiServer() as slack:
            config = tmp / "flowbot.toml"
            config.write_text(
                f"""
[flashalpha]
base_url = "{sandbox.base_url}"
plan = "alpha"
stale_after_seconds = 0
[watchlist]
symbols = {json.dumps(names)}
[schedule]
poll_seconds = {poll}
leaderboard_seconds = {poll}
market_hours_only = false
[slack]
api_url = "{slack.api_url}"
max_posts_per_second = 50
[state]
path = "{tmp / "state.sqlite3"}"
[email]
outbox_dir = "{tmp / "outbox"}"
[http]
listen = ""
"""
            )
            env = {
                **os.environ,
                "FLASHALPHA_API_KEY": "sandbox-alpha",
                "SLACK_BOT_TOKEN": DEFAULT_TOKEN,
            }
            anchor = (sandbox.clock.now().isoformat(), repr(time.time()), repr(speed))
            bot = subprocess.Popen(
                [PYTHON, str(SIMCLOCK), *anchor, "run", "-c", str(config), "--log-level", "ERROR"],
                cwd=ROOT,
                env=env,
                stderr=subprocess.DEVNULL,
            )
            start = sandbox.clock.now()
            try:
                while (sandbox.clock.now() - start).total_seconds() < (
                    SESSION_SECONDS + AFTER_CLOSE_SECONDS
                ):
                    if bot.poll() is not None:
                        raise RuntimeError(f"flowbot run exited {bot.returncode}")
                    time.sleep(1)
                deadline = time.monotonic() + 30  # the chart's upload may still be under way
                while not (slack.uploads and _digests(tmp)) and time.monotonic() < deadline:
                    time.sleep(1)
                peak = _peak_rss_mb(bot.pid)
                requests = sandbox.request_log.count()
            finally:
                bot.send_signal(signal.SIGTERM)
                try:
                    bot.wait(20)
                except subprocess.TimeoutExpired:
                    bot.kill()
            posts = len(slack.posts)
            charts = len(slack.uploads)
            digests = _digests(tmp)
    print(
        f"flowbot run peak RSS: {peak:.0f} MB ({count} symbols, a 6.5 h session at {speed:g}x, "
        f"{requests} requests, {posts} Slack posts, {charts} chart upload(s), "
        f"{digests} digest file(s))"
    )
    return peak


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=50)
    ap.add_argument("--speed", type=float, default=240.0)
    ap.add_argument("--poll", type=float, default=0.25)
    a = ap.parse_args()
    main(a.symbols, a.speed, a.poll)
