"""`make bench`: every benchmark, one line of numbers each."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import client_cpu
import pipeline
import replay
import sandbox_throughput
import startup

if __name__ == "__main__":
    sandbox_throughput.main()
    client_cpu.main()
    startup.main()
    pipeline.main()
    replay.main()
