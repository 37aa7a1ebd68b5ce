"""Rate limits: the sandbox's per-key requests-per-second limit answers 429 with Retry-After, and
the client paces itself through it: a 200-symbol cycle loses no poll."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from bot.api.client import FlashAlphaClient
from bot.api.errors import QuotaExceeded, TierRestricted
from bot.app import build_bot
from bot.deliver.base import BuildContext
from bot.settings import Secrets, load_settings
from bot.sim import Sandbox

SYMBOLS = [f"S{i:03d}" for i in range(200)]
SCENARIO = f"""
seed = 3
quiet = true
symbols = [{", ".join(f'"{s}"' for s in SYMBOLS)}]
"""


def test_sandbox_refuses_over_the_limit_with_retry_after() -> None:
    """Past the per-key limit the sandbox answers 429 with Retry-After, and the refused request
    does not spend the daily quota."""
    with Sandbox(scenario=SCENARIO, speed=0, rate_limit=3) as sandbox:
        statuses = []
        with httpx.Client(base_url=sandbox.base_url) as http:
            for _ in range(6):
                r = http.get("/v1/flow/summary/S001", headers={"X-Api-Key": "sandbox-growth"})
                statuses.append((r.status_code, r.headers.get("Retry-After")))
            remaining = int(r.headers["X-RateLimit-Remaining"])
    refused = [s for s in statuses if s[0] == 429]
    assert refused and all(retry == "1" for _, retry in refused)
    assert remaining == 2500 - (6 - len(refused))


async def test_cycle_of_200_symbols_at_100_per_second_loses_no_poll(tmp_path: Path) -> None:
    """400 requests against a 100 req/s limit: 429s are waited out and sent again, so every
    poll succeeds and none is reported failed."""
    with Sandbox(scenario=SCENARIO, speed=0, rate_limit=100) as sandbox:
        settings = load_settings(
            None,
            flashalpha={"base_url": sandbox.base_url, "plan": "growth"},
            watchlist={"symbols": SYMBOLS},
            state={"path": tmp_path / "state.sqlite3"},
            console={"jsonl_path": tmp_path / "messages.jsonl"},
        )
        bot = build_bot(
            settings,
            Secrets(flashalpha_api_key="sandbox-alpha"),
            context=BuildContext(environ={}, console=Console(file=io.StringIO())),
            clock=sandbox.clock.now,
            close_of=lambda day: None,
        )
        try:
            report = await bot.engine.poll_symbols(sandbox.clock.now())
        finally:
            await bot.aclose()
        assert sandbox.limiter.refused > 0  # the limit was really hit
    assert (report.fetched, report.failed) == (400, 0)
    assert bot.client.throttled > 0
    assert bot.client.concurrency.limit < 64  # the 429s pulled concurrency down


async def test_a_long_retry_after_is_the_daily_quota_and_raises() -> None:
    """A Free key's quota is spent after 5 requests: the 429 says to wait until midnight UTC,
    which is not paced but raised as QuotaExceeded."""
    with Sandbox(scenario=SCENARIO, speed=0) as sandbox:
        async with FlashAlphaClient(sandbox.base_url, "sandbox-free") as client:
            for _ in range(5):
                # Free is below Growth: 403, but the daily quota still counts it.
                with pytest.raises(TierRestricted):
                    await client.flow_summary("S001")
            with pytest.raises(QuotaExceeded):
                await client.flow_summary("S001")
            assert client.throttled == 0
