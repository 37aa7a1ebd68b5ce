"""The ``flowbot sim`` command as a real process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def test_sim_command_prints_url_serves_and_exits_0_on_sigterm():
    """``python -m bot.sim --port 0`` prints its URL and keys, serves, and exits 0 on SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.sim", "--port", "0", "--speed", "0", "--admin",
         "--key", "team=growth"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        assert m, line
        url = m.group(1)
        keys = [proc.stdout.readline() for _ in range(6)]
        assert any("team -> Growth" in k for k in keys)
        r = httpx.get(f"{url}/v1/flow/summary/SPY", headers={"X-Api-Key": "team"})
        assert r.status_code == 200
        assert httpx.get(f"{url}/_sim/clock").json()["frozen"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "sandbox stopped" in out


def test_sim_command_rejects_bad_key_option():
    """A malformed --key exits non-zero with a usage error."""
    proc = subprocess.run(
        [sys.executable, "-m", "bot.sim", "--port", "0", "--key", "nokeyplan"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode != 0 and "KEY=Plan" in proc.stderr
