"""Playing a sequence of snapshots through one rule as the engine does: memory carried from tick
to tick, a body that does not parse leaves the previous snapshot, and the policy's cooldown
and follow-up gating decide which events become alerts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from bot.events import Event
from bot.policy import decide
from bot.rules import RULES, DetectContext, Memory, RuleConfig
from bot.snapshot import MarketSnapshot, snapshot_from_models


def parse(model: type[BaseModel], body: dict[str, Any]) -> BaseModel | None:
    """The model, or ``None`` where the client would raise MalformedResponse."""
    try:
        return model.model_validate(body)
    except ValidationError:
        return None


@dataclass
class Player:
    """One rule over a session: :meth:`tick` with the parsed responses of a cycle."""

    rule: str
    cfg: RuleConfig
    watchlist: Sequence[str] = ("SPY", "QQQ", "IWM", "NVDA", "TSLA", "AMD")
    market: MarketSnapshot = field(default_factory=MarketSnapshot)
    memory: Memory = field(default_factory=dict)
    log: dict[tuple[str, str], datetime] = field(default_factory=dict)
    alerts: list[Event] = field(default_factory=list)

    def tick(self, now: datetime, fetched: Iterable[tuple[str, BaseModel | None]]) -> list[Event]:
        """Run one cycle at ``now``; ``fetched`` holds ``(key, model or None)``. Returns the
        events that became alerts."""
        ok = [(key, model) for key, model in fetched if model is not None]
        current = self.market.merged(snapshot_from_models(ok))
        ctx = DetectContext(now=now, watchlist=self.watchlist, memory=self.memory)
        detection = RULES[self.rule].detect(self.market, current, self.cfg, ctx)
        self.market, self.memory = current, detection.memory
        sent = []
        for decision in decide(
            detection.events,
            now=now,
            cooldown_minutes={self.rule: self.cfg.cooldown_minutes},
            last_alerted=lambda key, state: self.log.get((key, state)),
            parent_alerted=lambda key: any(k == key for k, _ in self.log),
        ):
            if decision.send:
                self.log[(decision.event.alert_key, decision.event.state)] = now
                sent.append(decision.event)
        self.alerts += sent
        return sent
