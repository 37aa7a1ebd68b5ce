"""One poll cycle of 200 symbols at 50 ms a request: ``flowbot once`` vs the SDK loop.

Both are whole processes (start-up included) against the same sandbox (``flowbot sim`` in its
own process, so its CPU is not the bench's; a ``latency`` fault of 50 ms on every endpoint,
frozen clock). The cycle is
summary + flow-anomaly per symbol plus five leaderboards (options, and the four 0DTE metrics):
405 requests. ``flowbot once --dry-run`` runs with the shipped client defaults; the loop is
``bench/sdk_loop.py`` (the official ``flashalpha`` SDK, one request at a time). Pairs are
alternated (loop, once, loop, once, ...) and the ratio is given per pair. Then ``flowbot once``
again against a sandbox that allows 100 requests/s per key, once advertising it in a
``RateLimit-Policy`` header and once not: its 429s (from the sandbox's log) and failed
requests (the bot's own count); that sandbox runs in this process, whose request log counts
them.

    .venv/bin/python bench/cycle.py [--symbols 200] [--pairs 3] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, ROOT, SandboxProcess, symbols, tempdir, write_scenario

from bot.sim import Sandbox

KEY = "sandbox-alpha"
LOOP = Path(__file__).resolve().parent / "sdk_loop.py"


def _config(tmp: Path, url: str, names: list[str]) -> Path:
    path = tmp / f"flowbot-{url.rsplit(':', 1)[1]}.toml"
    listed = ", ".join(f'"{s}"' for s in names)
    path.write_text(
        f'[flashalpha]\nbase_url = "{url}"\nplan = "alpha"\nstale_after_seconds = 0\n'
        f"[watchlist]\nsymbols = [{listed}]\n"
        '[rules.top_n]\nzero_dte_metrics = ["heat", "pin_risk", "abs_flow", "charm_intensity"]\n'
        f'[state]\npath = "{tmp}/state.sqlite3"\n'
    )
    return path


def _timed(argv: list[str]) -> tuple[float, str]:
    """Seconds the process took, and its stderr."""
    env = {**os.environ, "FLASHALPHA_API_KEY": KEY}
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{argv[2]} exited {done.returncode}: {done.stderr[-500:]}")
    return elapsed, done.stderr


def _once(config: Path) -> list[str]:
    return [PYTHON, "-m", "bot", "once", "--dry-run", "-c", str(config), "--log-level", "ERROR"]


def main(count: int = 200, pairs: int = 3, latency_ms: float = 50.0) -> list[float]:
    """Print the per-pair times and ratios, then the rate-limited run; return the ratios."""
    names = symbols(count)
    fault = f'[[faults]]\nkind = "latency"\nlatency_ms = {latency_ms}\n'
    ratios = []
    with tempdir() as tmp_name:
        tmp = Path(tmp_name)
        scenario = write_scenario(tmp, names, fault)
        with SandboxProcess("--speed", "0", "--scenario", str(scenario)) as sandbox:
            config = _config(tmp, sandbox.url, names)
            loop = [PYTHON, str(LOOP), sandbox.url, KEY, *names]
            rows = []
            for _ in range(pairs):
                sdk, _ = _timed(loop)
                bot, _ = _timed(_once(config))
                ratios.append(sdk / bot)
                rows.append(f"{sdk:.1f} s / {bot:.2f} s = {sdk / bot:.1f}x")
        print(
            f"cycle of {count} symbols at {latency_ms:g} ms ({2 * count + 5} requests), "
            f"SDK loop / flowbot once: {'; '.join(rows)}"
        )
        for advertised in (True, False):
            with Sandbox(
                scenario, speed=0, rate_limit=100, rate_limit_policy=advertised
            ) as limited:
                config = _config(tmp, limited.base_url, names)
                took, stderr = _timed(_once(config))
                statuses = [r.status for r in limited.request_log.snapshot()]
            found = re.search(r"(\d+) response\(s\), (\d+) failure\(s\)", stderr)
            failed = found.group(2) if found else "?"
            how = "advertised in RateLimit-Policy" if advertised else "not advertised"
            print(
                f"  with the sandbox limiting 100 req/s ({how}): {took:.2f} s, "
                f"{statuses.count(429)} x 429 of {len(statuses)} requests, "
                f"{failed} failed request(s)"
            )
    return ratios


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=200)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    a = ap.parse_args()
    main(a.symbols, a.pairs, a.latency_ms)
