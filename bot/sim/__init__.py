"""FlashAlpha sandbox: a local, deterministic stand-in for the six flow endpoints the bot polls.

Public interface: ``Sandbox``, ``SimClock``, ``load_scenario``, ``default_scenario``
(plus ``Scenario``, ``FaultRule``, ``Market`` for tests that want the pure model).
"""

from bot.sim.clock import SimClock
from bot.sim.faults import FaultRule
from bot.sim.market import Market
from bot.sim.scenario import Scenario, default_scenario, load_scenario
from bot.sim.server import Sandbox

__all__ = [
    "FaultRule",
    "Market",
    "Sandbox",
    "Scenario",
    "SimClock",
    "default_scenario",
    "load_scenario",
]
