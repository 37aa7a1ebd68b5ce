"""Short-lived child processes of our own modules (``python -m bot.<module>``).

Libraries that are large and needed briefly (exchange_calendars with pandas for the session
table, matplotlib for the recap chart) load in such a child and never into the long-running
``flowbot run``, whose peak memory they would otherwise raise for the rest of its life.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["child_command"]

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


def child_command(module: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """``(argv, env)`` that run ``python -m <module> <args>`` with this interpreter and the
    ``bot`` package this process imported (its directory goes first on ``PYTHONPATH``, so a
    source checkout works like an installed package). ``env`` is this process's environment
    otherwise unchanged."""
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": _PACKAGE_ROOT + (os.pathsep + path if path else "")}
    return [sys.executable, "-m", module, *args], env
