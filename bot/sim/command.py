"""``flowbot sim``: run the FlashAlpha sandbox in the foreground until Ctrl-C / SIGTERM."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from bot.sim import SimUnavailable, require_sim
from bot.sim.scenario import normalize_plan


def _parse_keys(pairs: list[str]) -> dict[str, str]:
    """``["KEY=Plan", ...]`` -> ``{"KEY": "Plan"}`` (plan names case-insensitive)."""
    out = {}
    for pair in pairs:
        key, sep, plan = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=Plan, got {pair!r}", param_hint="--key")
        try:
            out[key.strip()] = normalize_plan(plan)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--key") from None
    return out


def sim_command(
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.")] = 8765,
    scenario: Annotated[
        Path | None,
        typer.Option(
            help="Scenario TOML file (default: the packaged default scenario).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per real second (0 = frozen clock).")
    ] = 1.0,
    admin: Annotated[
        bool, typer.Option(help="Enable /_sim/clock and /_sim/faults admin routes.")
    ] = False,
    key: Annotated[
        list[str] | None, typer.Option(help="Extra API key as KEY=Plan (repeatable).")
    ] = None,
    cache_phase: Annotated[
        str,
        typer.Option(
            help="Where cache periods start: epoch, random (seeded), per-symbol, or seconds."
        ),
    ] = "epoch",
    rate_limit: Annotated[
        float | None,
        typer.Option(help="Requests per second per API key; more get 429 with Retry-After."),
    ] = None,
    rate_limit_policy: Annotated[
        bool,
        typer.Option(help="Advertise --rate-limit in a RateLimit-Policy header on responses."),
    ] = True,
) -> None:
    """Run a local FlashAlpha Lab API sandbox (the six flow endpoints) until interrupted.

    The simulated clock starts at 09:30 America/New_York on the scenario's session date and
    runs at --speed x real time. Prints the base URL and the accepted API keys.
    """
    try:
        require_sim()
    except SimUnavailable as exc:
        typer.echo(f"flowbot sim: {exc}", err=True)
        raise typer.Exit(2) from None
    from bot.sim.server import Sandbox

    keys = _parse_keys(key or [])
    from bot.sim.app import CachePhase

    try:
        CachePhase(cache_phase)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--cache-phase") from None
    sandbox = Sandbox(
        scenario=scenario,
        seed=seed,
        speed=speed,
        admin=admin,
        host=host,
        port=port,
        extra_keys=keys,
        cache_phase=cache_phase,
        rate_limit=rate_limit,
        rate_limit_policy=rate_limit_policy,
    )
    stop = threading.Event()
    # SIGTERM (and Ctrl-C) end the wait below; the sandbox then shuts down cleanly, exit 0.
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        sandbox.start()
        typer.echo(f"FlashAlpha sandbox listening on {sandbox.base_url}")
        typer.echo(
            f"scenario: {sandbox.scenario.name} (seed {sandbox.market.seed}), "
            f"sim time {sandbox.clock.now().isoformat()}, speed {speed}x, "
            f"cache phase {cache_phase}" + (f", {rate_limit:g} req/s per key" if rate_limit else "")
        )
        for k, plan in sandbox.keys.items():
            typer.echo(f"  API key {k} -> {plan}")
        if admin:
            typer.echo(f"admin: {sandbox.base_url}/_sim/clock")
        while not stop.wait(0.2):
            pass
    finally:
        sandbox.stop()
        for s, h in previous.items():
            signal.signal(s, h)
    typer.echo("sandbox stopped")
