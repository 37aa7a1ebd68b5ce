"""Client CPU per request: ``FlashAlphaClient`` against the sandbox (its own process).

Marginal cost: CPU of a cycle of summary + anomaly for 400 symbols minus that for 12 symbols,
over the 776 extra requests, so fixed costs (event loop, pool set-up) cancel out. CPU is this
process's ``time.process_time()`` (user + system). ``--profile`` prints the top of a cProfile.

    .venv/bin/python bench/client_cpu.py [--profile] [--max-concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SandboxProcess, symbols, tempdir, write_scenario

from bot.api.client import FlashAlphaClient

KEY = "sandbox-alpha"


async def _cycle(client: FlashAlphaClient, names: list[str]) -> None:
    calls = [c for s in names for c in (client.flow_summary(s), client.flow_anomaly(s))]
    await asyncio.gather(*calls)


async def _measure(url: str, names: list[str], rounds: int, ceiling: int) -> float:
    """Median CPU seconds of one cycle over ``names`` (after one warm-up cycle)."""
    async with FlashAlphaClient(url, KEY, max_concurrency=ceiling) as client:
        await _cycle(client, names)
        samples = []
        for _ in range(rounds):
            start = time.process_time()
            await _cycle(client, names)
            samples.append(time.process_time() - start)
    samples.sort()
    return samples[len(samples) // 2]


def main(profile: bool = False, ceiling: int = 64) -> float:
    """Print the marginal client CPU per request (ms); return it."""
    names = symbols(400)
    with tempdir() as tmp:
        scenario = write_scenario(Path(tmp), names)
        with SandboxProcess("--speed", "0", "--scenario", str(scenario)) as sandbox:
            small = asyncio.run(_measure(sandbox.url, names[:12], 7, ceiling))
            large = asyncio.run(_measure(sandbox.url, names, 5, ceiling))
            if profile:
                prof = cProfile.Profile()
                prof.enable()
                asyncio.run(_measure(sandbox.url, names, 2, ceiling))
                prof.disable()
                pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    per_request_ms = (large - small) / (2 * (400 - 12)) * 1000
    print(
        f"client CPU per request: {per_request_ms:.3f} ms (marginal, 800 vs 24 requests: "
        f"{large * 1000:.0f} ms vs {small * 1000:.0f} ms of CPU per cycle; "
        f"max_concurrency {ceiling})"
    )
    return per_request_ms


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the 400 cycle")
    ap.add_argument("--max-concurrency", type=int, default=64)
    args = ap.parse_args()
    main(args.profile, args.max_concurrency)
