"""Start-up of ``flowbot once``: process start to its first request reaching the sandbox.

The sandbox runs in this process (a thread) and logs each request's arrival (``wall``); the
bot is a fresh ``flowbot once --dry-run`` process each time. Prints the median of 5.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, tempdir

from bot.sim import Sandbox


def main(runs: int = 5) -> float:
    """Print and return the median seconds from process start to first request."""
    samples = []
    with Sandbox(speed=0) as sandbox, tempdir() as tmp:
        config = Path(tmp) / "flowbot.toml"
        config.write_text(
            f'[flashalpha]\nbase_url = "{sandbox.base_url}"\nplan = "alpha"\n'
            f'[state]\npath = "{tmp}/state.sqlite3"\n'
        )
        env = {**os.environ, "FLASHALPHA_API_KEY": "sandbox-alpha"}
        for _ in range(runs):
            sandbox.request_log.clear()
            start = time.time()
            subprocess.run(
                [sys.executable, "-m", "bot", "once", "--dry-run", "-c", str(config)],
                cwd=ROOT,
                env=env,
                capture_output=True,
                check=True,
            )
            samples.append(min(r.wall for r in sandbox.requests()) - start)
    median = statistics.median(samples)
    print(f"flowbot once start-up to first request: {median:.3f} s (median of {runs})")
    return median


if __name__ == "__main__":
    main()
