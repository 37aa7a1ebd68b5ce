"""What every rule is: a config model and a pure ``detect(prev, curr, cfg, ctx) -> [Event]``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from bot.events import Event
from bot.snapshot import MarketSnapshot

__all__ = ["DetectContext", "RuleConfig", "RuleSpec"]


class RuleConfig(BaseModel):
    """Options every rule has (``[rules.<name>]``): ``enabled`` and ``cooldown_minutes``
    (at most one alert per rule, symbol and state within that many minutes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    cooldown_minutes: float = Field(30.0, ge=0)


@dataclass(frozen=True, slots=True)
class DetectContext:
    """What a rule may know besides the two snapshots: the tick's time (UTC) and the watchlist."""

    now: datetime
    watchlist: Sequence[str]


Detect = Callable[[MarketSnapshot, MarketSnapshot, RuleConfig, DetectContext], list[Event]]


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A registered rule: ``name`` as written in the config, its config model, its detector.

    ``detect(prev, curr, cfg, ctx)`` must be pure: no I/O, no clock (``ctx.now`` only).
    ``prev`` holds only this session's data: a missing key means "first observation".
    """

    name: str
    config_model: type[RuleConfig]
    detect: Detect
    summary: str
