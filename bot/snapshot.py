"""The market as one cycle saw it: the latest parsed response per source and key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from bot.api.models import FlowAnomaly, FlowSummary, OptionsLeaderboard, ZeroDteLeaderboard

__all__ = ["MarketSnapshot"]


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """What the bot knows of the market at one tick.

    - ``summaries``: symbol → `/v1/flow/summary/{symbol}` response.
    - ``anomalies``: symbol → `/v1/strategies/flow-anomaly/{symbol}` response.
    - ``options_board``: `/v1/flow/options/leaderboard` response, or ``None`` before the first.
    - ``zero_dte``: metric (``heat``, ``pin_risk``…) → `/v1/flow/zero-dte/leaderboard` response.

    A source that failed this cycle keeps its previous value, so rules see no change for it.
    """

    summaries: Mapping[str, FlowSummary] = field(default_factory=dict)
    anomalies: Mapping[str, FlowAnomaly] = field(default_factory=dict)
    options_board: OptionsLeaderboard | None = None
    zero_dte: Mapping[str, ZeroDteLeaderboard] = field(default_factory=dict)

    def merged(self, newer: MarketSnapshot) -> MarketSnapshot:
        """This snapshot with every value ``newer`` has laid over it (keys it lacks stay)."""
        return replace(
            self,
            summaries={**self.summaries, **newer.summaries},
            anomalies={**self.anomalies, **newer.anomalies},
            options_board=newer.options_board or self.options_board,
            zero_dte={**self.zero_dte, **newer.zero_dte},
        )
