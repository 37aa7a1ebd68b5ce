"""What every rule is: a config model and a pure ``detect(prev, curr, cfg, ctx) -> Detection``.

A rule may remember what it needs beyond the two snapshots (when a flip started, which symbols
already entered a board, whether a candidate is armed) as its *memory*: a small JSON-ready
mapping it receives in ``ctx.memory`` and returns, updated, in :class:`Detection`. The engine
keeps it per session next to the snapshots (see :mod:`bot.rules.memory`), so it survives a
restart; the rule itself stays a pure function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.events import Event
from bot.snapshot import MarketSnapshot

__all__ = ["DetectContext", "Detection", "Memory", "RuleConfig", "RuleSpec"]

Memory = Mapping[str, Any]
"""A rule's memory: JSON-ready (str keys; str / int / float / bool / None / lists / dicts)."""


class RuleConfig(BaseModel):
    """Options every rule has (``[rules.<name>]``): ``enabled`` and ``cooldown_minutes``
    (at most one alert per rule, symbol and state within that many minutes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    cooldown_minutes: float = Field(30.0, ge=0)


@dataclass(frozen=True, slots=True)
class DetectContext:
    """What a rule may know besides the two snapshots: the tick's time (UTC), the watchlist,
    and ``memory``, the memory this rule returned on the previous tick of the session (empty
    on the first tick, or when the rule never ran)."""

    now: datetime
    watchlist: Sequence[str]
    memory: Memory = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Detection:
    """What ``detect`` returns: the ``events`` raised and the rule's new ``memory`` (JSON-ready;
    the engine stores it with the cycle's snapshots and hands it back on the next tick)."""

    events: list[Event]
    memory: Memory = field(default_factory=dict)


Detect = Callable[[MarketSnapshot, MarketSnapshot, RuleConfig, DetectContext], Detection]


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A registered rule: ``name`` as written in the config, its config model, its detector.

    ``detect(prev, curr, cfg, ctx)`` must be pure: no I/O, no clock (``ctx.now`` only), state
    only through ``ctx.memory`` → ``Detection.memory``. ``prev`` holds only this session's
    data: a missing key means "first observation". A source not fetched this cycle is the
    same object in ``prev`` and ``curr`` (``MarketSnapshot.merged``), so ``curr.x is prev.x``
    tells a rule that nothing new was observed for it.
    """

    name: str
    config_model: type[RuleConfig]
    detect: Detect
    summary: str
