"""The market as one cycle saw it: the latest parsed response per source and key."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from bot.api.models import (
    CumulativeFlow,
    FlowAnomaly,
    FlowSummary,
    OptionsLeaderboard,
    ZeroDteLeaderboard,
)
from bot.api.sources import SOURCES

if TYPE_CHECKING:
    from bot.store import SnapshotRow

__all__ = ["MODELS", "MarketSnapshot", "snapshot_from_models", "snapshot_from_rows"]

log = logging.getLogger(__name__)

MODELS: dict[str, type[BaseModel]] = {name: source.model for name, source in SOURCES.items()}
"""The response model of each stored source (the store's ``source`` column)."""


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """What the bot knows of the market at one tick.

    - ``summaries``: symbol → `/v1/flow/summary/{symbol}` response.
    - ``anomalies``: symbol → `/v1/strategies/flow-anomaly/{symbol}` response.
    - ``options_board``: `/v1/flow/options/leaderboard` response, or ``None`` before the first.
    - ``zero_dte``: metric (``heat``, ``pin_risk``…) → `/v1/flow/zero-dte/leaderboard` response.
    - ``cumulative``: symbol → `/v1/flow/options/{symbol}/cumulative` response (rule
      ``flow_inflection``; polled at its own cadence).

    A source that failed this cycle keeps its previous value, so rules see no change for it.
    """

    summaries: Mapping[str, FlowSummary] = field(default_factory=dict)
    anomalies: Mapping[str, FlowAnomaly] = field(default_factory=dict)
    options_board: OptionsLeaderboard | None = None
    zero_dte: Mapping[str, ZeroDteLeaderboard] = field(default_factory=dict)
    cumulative: Mapping[str, CumulativeFlow] = field(default_factory=dict)

    def merged(self, newer: MarketSnapshot) -> MarketSnapshot:
        """This snapshot with every value ``newer`` has laid over it (keys it lacks stay)."""
        return replace(
            self,
            summaries={**self.summaries, **newer.summaries},
            anomalies={**self.anomalies, **newer.anomalies},
            options_board=newer.options_board or self.options_board,
            zero_dte={**self.zero_dte, **newer.zero_dte},
            cumulative={**self.cumulative, **newer.cumulative},
        )


def snapshot_from_models(items: Iterable[tuple[str, BaseModel]]) -> MarketSnapshot:
    """A snapshot of ``(key, model)`` pairs, placed by the model's type; a later pair replaces
    an earlier one. ``key`` is the symbol of a summary / anomaly / cumulative flow, the metric
    of a 0DTE board, and ignored for the options board. Other models are ignored."""
    summaries: dict[str, FlowSummary] = {}
    anomalies: dict[str, FlowAnomaly] = {}
    zero_dte: dict[str, ZeroDteLeaderboard] = {}
    cumulative: dict[str, CumulativeFlow] = {}
    options_board: OptionsLeaderboard | None = None
    for key, model in items:
        if isinstance(model, FlowSummary):
            summaries[key] = model
        elif isinstance(model, FlowAnomaly):
            anomalies[key] = model
        elif isinstance(model, OptionsLeaderboard):
            options_board = model
        elif isinstance(model, ZeroDteLeaderboard):
            zero_dte[key] = model
        elif isinstance(model, CumulativeFlow):
            cumulative[key] = model
    return MarketSnapshot(summaries, anomalies, options_board, zero_dte, cumulative)


def snapshot_from_rows(rows: Iterable[SnapshotRow]) -> MarketSnapshot:
    """Parse stored rows (``bot.store.SnapshotRow``) back into a snapshot. A row that no longer
    parses (the model changed since it was stored) is logged and left out."""
    items = []
    for row in rows:
        model = MODELS.get(row.source)
        if model is None:
            continue
        try:
            items.append((row.key, model.model_validate(row.payload)))
        except ValidationError:
            log.warning("stored %s %s no longer parses: ignored", row.source, row.key)
    return snapshot_from_models(items)
