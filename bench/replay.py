"""``flowbot replay`` of a whole demo session: one ``flowbot demo`` records it, then the replay
command runs as a fresh process 3 times with the demo's config. Prints the median wall time
(goal: under 3 s) and the replay's totals line."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, ROOT, tempdir

SESSION = "2026-06-05"  # the default scenario's session


def main(runs: int = 3) -> float:
    """Print and return the median seconds of one ``flowbot replay`` process."""
    with tempdir() as tmp:
        out = Path(tmp) / "demo"
        subprocess.run(
            [PYTHON, "-m", "bot", "demo", "--out", str(out)],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        command = [
            PYTHON, "-m", "bot", "replay",
            "--state", str(out / "flowbot.sqlite3"),
            "--date", SESSION,
            "--config", str(out / "config.toml"),
        ]  # fmt: skip
        samples, last = [], ""
        for _ in range(runs):
            start = time.perf_counter()
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
            samples.append(time.perf_counter() - start)
            last = done.stdout.strip().splitlines()[-1]
    median = statistics.median(samples)
    print(f"flowbot replay of the demo session: {median:.2f} s (median of {runs}); {last}")
    return median


if __name__ == "__main__":
    main()
