"""`make bench`: every benchmark, one line of numbers each (about 6 minutes on 2 cores).

1. the sandbox's own throughput (so it is known never to bound the others);
2. client CPU per request and ``flowbot once`` start-up to its first request;
3. one cycle of 200 symbols at 50 ms: ``flowbot once`` vs the ``flashalpha`` SDK loop, and the
   429s / failed requests against a sandbox limiting 100 req/s;
4. detection lag of ``flowbot run`` (shipped defaults) against a 15 s cache on a random phase;
5. peak RSS of ``flowbot run`` over a compressed full session of 50 symbols;
6. one pipeline tick for 12 symbols.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import client_cpu
import cycle
import lag
import pipeline
import replay
import rss
import sandbox_throughput
import startup

if __name__ == "__main__":
    began = time.perf_counter()
    sandbox_throughput.main()
    client_cpu.main()
    startup.main()
    cycle.main()
    lag.main()
    rss.main()
    pipeline.main()
    replay.main()
    print(f"(make bench took {time.perf_counter() - began:.0f} s)")
