"""Sandbox throughput on loopback: requests/s over the six endpoints with an Alpha key.

The sandbox runs as a separate process (``python -m bot.sim``) so the server's CPU is not
shared with the client's event loop inside one interpreter (GIL); clients are asyncio
``httpx.AsyncClient`` processes (on uvloop). One httpx client process tops out near
800 req/s of client CPU, so the default is 3 processes x 2 connections (6 in flight): the
number then measures the server, not httpx. The simulated clock runs at 1x from 12:30 New York, so
the server-side caches turn over on their real 15 s / 30 s periods, as on the real API.

    .venv/bin/python bench/sandbox_throughput.py [--requests 6000] [--concurrency 6] [--clients 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
KEY = {"X-Api-Key": "sandbox-alpha"}
SYMBOLS = ("SPY", "QQQ", "NVDA", "TSLA", "AAPL", "AMD")


def _paths(count: int) -> list[str]:
    """``count`` request paths cycling through the six endpoints and several symbols."""
    out = []
    for i in range(count):
        s = SYMBOLS[i % len(SYMBOLS)]
        out.append([
            f"/v1/flow/summary/{s}",
            f"/v1/strategies/flow-anomaly/{s}",
            "/v1/flow/options/leaderboard?n=10",
            "/v1/flow/zero-dte/leaderboard?metric=heat&n=20",
            f"/v1/flow/zero-dte/strike-flow/{s}?bar=1m&minutes=15",
            f"/v1/flow/options/{s}/cumulative?minutes=60",
        ][i % 6])  # fmt: skip
    return out


async def _client(base_url: str, paths: list[str], concurrency: int) -> int:
    """Issue ``paths`` with ``concurrency`` workers; returns the number of 200 responses."""
    ok = 0
    it = iter(paths)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=KEY, limits=limits) as c:

        async def worker() -> None:
            nonlocal ok
            for p in it:
                r = await c.get(p)
                ok += r.status_code == 200

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


def _run(coro):
    """Run ``coro`` on uvloop when available (the client, not the server, is the bottleneck)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def _client_proc(base_url: str, paths: list[str], concurrency: int, q) -> None:
    q.put(_run(_client(base_url, paths, concurrency)))


def _start_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.sim", "--port", "0", "--admin"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    m = re.search(r"(http://\S+)", proc.stdout.readline())
    if not m:
        proc.kill()
        raise RuntimeError("sandbox did not print its URL")
    return proc, m.group(1)


def main(requests: int = 6000, concurrency: int = 6, clients: int = 3) -> float:
    """Run the benchmark; prints one line and returns requests per second."""
    proc, url = _start_server()
    try:
        httpx.post(f"{url}/_sim/clock", json={"now": "2026-06-05T16:30:00Z"})  # 12:30 NY
        _run(_client(url, _paths(300), 16))  # warm up caches and connections
        paths = _paths(requests)
        t0 = time.perf_counter()
        if clients == 1:
            ok = _run(_client(url, paths, concurrency))
        else:
            q: mp.Queue = mp.Queue()
            procs = [mp.Process(target=_client_proc,
                                args=(url, paths[i::clients], concurrency // clients, q))
                     for i in range(clients)]  # fmt: skip
            for p in procs:
                p.start()
            ok = sum(q.get() for _ in procs)
            for p in procs:
                p.join()
        elapsed = time.perf_counter() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    if ok != requests:
        raise RuntimeError(f"only {ok}/{requests} requests returned 200")
    rate = requests / elapsed
    print(f"sandbox throughput: {rate:,.0f} req/s ({requests} requests, {concurrency} "
          f"concurrency, {clients} client process(es), {os.cpu_count()} cores)")  # fmt: skip
    return rate


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=6000)
    ap.add_argument("--concurrency", type=int, default=6)
    ap.add_argument("--clients", type=int, default=3)
    a = ap.parse_args()
    main(a.requests, a.concurrency, a.clients)
