"""Helpers shared by the benchmarks: a sandbox in its own process, scenarios with N symbols."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def symbols(count: int) -> list[str]:
    """``count`` made-up tickers (``S000``, ``S001`` …) the sandbox seeds on its own."""
    return [f"S{i:03d}" for i in range(count)]


def write_scenario(directory: Path, names: list[str], extra: str = "") -> Path:
    """A quiet scenario (volatility 0: only scripted events change a label) over ``names``."""
    path = directory / "scenario.toml"
    listed = ", ".join(f'"{s}"' for s in names)
    path.write_text(f'name = "bench"\nseed = 7\nquiet = true\nsymbols = [{listed}]\n{extra}')
    return path


class SandboxProcess:
    """``flowbot sim`` in its own process (so its CPU is not the bot's), on a free port."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "bot.sim", "--port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            found = re.search(r"(http://\S+)", line)
            if found:
                self.url = found.group(1)
                break
        else:
            raise RuntimeError("sandbox did not print its URL")

    def close(self) -> None:
        """SIGTERM and wait."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tempdir() -> tempfile.TemporaryDirectory[str]:
    """A temporary directory for state files and scenarios."""
    return tempfile.TemporaryDirectory(prefix="flowbot-bench-")
