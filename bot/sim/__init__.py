"""FlashAlpha sandbox: a local, deterministic stand-in for the six flow endpoints the bot polls.

Public interface: ``Sandbox``, ``SimClock``, ``load_scenario``, ``default_scenario``
(plus ``Scenario``, ``FaultRule``, ``Market`` for tests that want the pure model).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.sim.clock import SimClock
    from bot.sim.faults import FaultRule
    from bot.sim.market import Market
    from bot.sim.scenario import Scenario, default_scenario, load_scenario
    from bot.sim.server import Sandbox

# Loaded on first use: ``flowbot`` imports ``bot.sim.command`` for its ``sim`` subcommand, and
# the server (uvicorn, starlette) would otherwise be paid by every command's start-up.
_WHERE = {
    "FaultRule": "bot.sim.faults",
    "Market": "bot.sim.market",
    "Sandbox": "bot.sim.server",
    "Scenario": "bot.sim.scenario",
    "SimClock": "bot.sim.clock",
    "default_scenario": "bot.sim.scenario",
    "load_scenario": "bot.sim.scenario",
}

__all__ = [
    "FaultRule",
    "Market",
    "Sandbox",
    "Scenario",
    "SimClock",
    "default_scenario",
    "load_scenario",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'bot.sim' has no attribute {name!r}")
