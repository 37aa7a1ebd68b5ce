"""FlashAlpha sandbox: a local, deterministic stand-in for the six flow endpoints the bot polls.

Public interface: ``Sandbox``, ``SimClock``, ``load_scenario``, ``default_scenario``
(plus ``Scenario``, ``FaultRule``, ``Market`` for tests that want the pure model).

The HTTP server (``Sandbox``) needs the optional ``sim`` extra (starlette, uvicorn), which the
production image leaves out; it is imported on first use, and :func:`require_sim` says what
to install when it is missing. The market model, scenarios and clock need nothing extra.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
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
    "SIM_PACKAGES",
    "FaultRule",
    "Market",
    "Sandbox",
    "Scenario",
    "SimClock",
    "SimUnavailable",
    "default_scenario",
    "load_scenario",
    "require_sim",
]

SIM_PACKAGES = ("starlette", "uvicorn")
"""The packages of the ``sim`` extra: the sandbox's HTTP server."""


class SimUnavailable(ImportError):
    """The ``sim`` extra is not installed; ``str()`` says which packages and how to add them."""


def require_sim() -> None:
    """Raise :class:`SimUnavailable` unless starlette and uvicorn can be imported."""
    missing = [name for name in SIM_PACKAGES if find_spec(name) is None]
    if missing:
        raise SimUnavailable(
            f"the sandbox needs {' and '.join(missing)}, which this install leaves out: "
            "pip install 'flowbot[sim]'"
        )


def __getattr__(name: str) -> Any:
    # PEP 562: `from bot.sim import Sandbox` imports the server (and uvicorn) only when used;
    # without the sim extra it says what to install.
    if name == "Sandbox":
        require_sim()
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
