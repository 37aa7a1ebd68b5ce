"""Typed, drift-tolerant models of the FlashAlpha responses the bot polls.

Every model ignores unknown fields, accepts missing optional fields and ``null``s, and keeps
labels (``flow_direction``, ``decision``, ``regime``, ``metric``) as plain text, so a value the
bot has never seen is carried through to the alert instead of failing validation. The sets of
documented labels live here so callers can tell a known label from a new one (and log it once).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DECISIONS",
    "FLOW_DIRECTIONS",
    "REGIMES",
    "ZERO_DTE_METRICS",
    "AnomalyLeg",
    "AnomalyStructure",
    "CumulativeFlow",
    "CumulativePoint",
    "DataAsOf",
    "DataQuality",
    "FlowAnomaly",
    "FlowSummary",
    "LeaderboardRow",
    "OptionsLeaderboard",
    "ZeroDteEntry",
    "ZeroDteLeaderboard",
]

FLOW_DIRECTIONS = frozenset({"no_flow", "neutral", "amplifying", "dampening", "regime_flip"})
"""`flow_direction` labels documented for /v1/flow/summary."""

DECISIONS = frozenset({"candidate", "neutral", "avoid", "insufficient_data"})
"""`decision` labels of the strategy envelope."""

REGIMES = frozenset({"bullish_flow_imbalance", "bearish_flow_imbalance", "neutral_flow"})
"""`regime` labels documented for the flow-anomaly strategy."""

ZERO_DTE_METRICS = ("heat", "pin_risk", "abs_flow", "charm_intensity")
"""`metric` values accepted by /v1/flow/zero-dte/leaderboard."""


class _Model(BaseModel):
    """Base: frozen, ignores unknown fields, tolerant of drift."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


def _upper_symbol(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


class DataAsOf(_Model):
    """When each upstream feed last delivered (UTC); ``None`` = unknown.

    Source: the ``data_as_of`` envelope of current responses (absent on older ones).
    ``flow_feed`` is the one every polled endpoint depends on.
    """

    node: str | None = None
    equity_feed: datetime | None = None
    equity_options_feed: datetime | None = None
    index_feed: datetime | None = None
    index_options_feed: datetime | None = None
    futures_feed: datetime | None = None
    futures_options_feed: datetime | None = None
    flow_feed: datetime | None = None
    oi_feed: datetime | None = None
    macro_feed: datetime | None = None


class _Enveloped(_Model):
    endpoint_version: str | None = None
    data_as_of: DataAsOf | None = None


class FlowSummary(_Enveloped):
    """`GET /v1/flow/summary/{symbol}`: intraday flow against the settled morning GEX.

    - ``flow_direction``: one of :data:`FLOW_DIRECTIONS`, or any new label kept as text.
    - ``live_gex``: net dealer GEX on effective (intraday) OI, dollars per 1% move.
    - ``flow_gex_pct_shift``: (live - settled) / |settled| as a *fraction* (0.094 = 9.4%);
      ``None`` when the settled baseline is zero (a regime appeared from nothing).
    - ``intraday_oi_delta``: net signed OI change, contracts. ``as_of``: UTC.
    """

    symbol: str
    as_of: datetime | None = None
    underlying_price: float | None = None
    expiry: str | None = None
    # Required: the one field the bot polls this endpoint for. Missing → malformed → skipped,
    # so a broken body never stands in for the last good label.
    flow_direction: str
    intraday_oi_delta: float | None = None
    contracts_with_flow: int | None = None
    contracts_total: int | None = None
    live_gex: float | None = None
    flow_gex_pct_shift: float | None = None

    _symbol = field_validator("symbol", mode="before")(_upper_symbol)

    @field_validator("flow_direction", mode="before")
    @classmethod
    def _label_text(cls, value: Any) -> Any:
        # A null label is not a crash: it becomes "unknown" text like any other new label.
        return "unknown" if value is None else str(value)


class AnomalyLeg(_Model):
    """One leg of a proposed structure: ``action`` buy/sell, ``type`` call/put, ``strike`` and
    ``premium`` in dollars per share, ``delta`` as a fraction, ``quantity`` in contracts."""

    action: str | None = None
    type: str | None = None
    strike: float | None = None
    delta: float | None = None
    premium: float | None = None
    quantity: int | None = None


class AnomalyStructure(_Model):
    """A ranked trade proposal of the strategy envelope (``best_structures[]``).

    ``credit`` / ``debit`` / ``max_profit`` / ``max_loss`` are dollars per share (×100 per
    contract); ``breakevens`` are underlying prices; ``expiry`` is yyyy-MM-dd.
    """

    rank: int | None = None
    structure: str | None = None
    expiry: str | None = None
    legs: list[AnomalyLeg] = Field(default_factory=list)
    credit: float | None = None
    debit: float | None = None
    max_profit: float | None = None
    max_loss: float | None = None
    breakevens: list[float] = Field(default_factory=list)
    edge_score: float | None = None
    liquidity_score: float | None = None


class DataQuality(_Model):
    """Data-quality block of the envelope: ``score`` 0..100, ``warnings`` as text."""

    score: float | None = None
    warnings: list[str] = Field(default_factory=list)


class FlowAnomaly(_Model):
    """`GET /v1/strategies/flow-anomaly/{symbol}`: the uniform strategy decision envelope.

    ``decision`` is one of :data:`DECISIONS` or new text; ``score`` 0..100 (server bands:
    >= 70 candidate, >= 40 neutral, else avoid); ``confidence`` a fraction 0..1;
    ``regime`` one of :data:`REGIMES` or strategy-specific text. Only ``strategy``,
    ``symbol``, ``decision`` and ``score`` are guaranteed.
    """

    strategy: str | None = None
    symbol: str
    timestamp: datetime | None = None
    decision: str  # required by the envelope, like strategy, symbol and score
    score: float | None = None
    confidence: float | None = None
    regime: str | None = None
    best_structures: list[AnomalyStructure] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    risk_flags: list[str] = Field(default_factory=list)
    why: list[str] = Field(default_factory=list)
    avoid_if: list[str] = Field(default_factory=list)
    data_quality: DataQuality | None = None
    endpoint_version: str | None = None
    data_as_of: DataAsOf | None = None

    _symbol = field_validator("symbol", mode="before")(_upper_symbol)

    @field_validator("decision", mode="before")
    @classmethod
    def _label_text(cls, value: Any) -> Any:
        return "unknown" if value is None else str(value)

    @field_validator("risk_flags", "why", "avoid_if", mode="before")
    @classmethod
    def _text_list(cls, value: Any) -> Any:
        # null lists arrive from older servers; non-string items stay readable as text.
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, list) else value

    @property
    def bias(self) -> str | None:
        """``bullish`` / ``bearish`` / ``neutral``: ``metrics.bias`` when given, else read
        from ``regime`` (``bullish_flow_imbalance`` → ``bullish``)."""
        bias = self.metrics.get("bias")
        if isinstance(bias, str) and bias:
            return bias
        if self.regime and self.regime.startswith(("bullish", "bearish")):
            return self.regime.split("_", 1)[0]
        return None

    @property
    def top_structure(self) -> AnomalyStructure | None:
        """The best-ranked structure (lowest ``rank``), or ``None`` when none is proposed."""
        if not self.best_structures:
            return None
        return min(self.best_structures, key=lambda s: s.rank if s.rank is not None else 1_000)


class LeaderboardRow(_Model):
    """A row of the options flow leaderboard (camelCase on the wire).

    ``net_notional`` dollars (buyers > 0, sellers < 0) ≈ ``net_volume`` × ``avg_premium`` × 100;
    volumes in contracts; ``avg_premium`` dollars per share.
    """

    symbol: str
    net_volume: float | None = Field(default=None, alias="netVolume")
    net_notional: float = Field(default=0.0, alias="netNotional")
    buy_volume: float | None = Field(default=None, alias="buyVolume")
    sell_volume: float | None = Field(default=None, alias="sellVolume")
    avg_premium: float | None = Field(default=None, alias="avgPremium")
    trade_count: int | None = Field(default=None, alias="tradeCount")
    last_trade_utc: datetime | None = Field(default=None, alias="lastTradeUtc")

    _symbol = field_validator("symbol", mode="before")(_upper_symbol)


class OptionsLeaderboard(_Enveloped):
    """`GET /v1/flow/options/leaderboard`: top buyers and sellers by net notional.

    Each side is sorted by |net notional| descending; ``window_minutes`` is the effective
    lookback; ``generated_utc`` is unchanged within the server's 30 s cache period.
    """

    generated_utc: datetime | None = Field(default=None, alias="generatedUtc")
    n: int | None = None
    window_minutes: int | None = Field(default=None, alias="windowMinutes")
    buyers: list[LeaderboardRow] = Field(default_factory=list)
    sellers: list[LeaderboardRow] = Field(default_factory=list)


class ZeroDteEntry(_Model):
    """One ranked 0DTE name: ``rank`` 1-based, ``value`` in the metric's own unit."""

    rank: int
    symbol: str
    value: float | None = None

    _symbol = field_validator("symbol", mode="before")(_upper_symbol)


class ZeroDteLeaderboard(_Enveloped):
    """`GET /v1/flow/zero-dte/leaderboard`: 0DTE names ranked by one ``metric``, descending."""

    metric: str = "unknown"
    n: int | None = None
    as_of: datetime | None = None
    market_open: bool | None = None
    entries: list[ZeroDteEntry] = Field(default_factory=list)


class CumulativePoint(_Model):
    """One minute of `cumulative`: ``net_volume`` and running ``cumulative`` in contracts,
    ``vwap`` dollars per share, ``ts`` UTC."""

    ts: datetime
    net_volume: float = Field(default=0.0, alias="netVolume")
    cumulative: float = 0.0
    vwap: float | None = None
    trade_count: int | None = Field(default=None, alias="tradeCount")


class CumulativeFlow(_Enveloped):
    """`GET /v1/flow/options/{symbol}/cumulative`: per-minute net option volume and its
    running sum over ``minutes``; used for the session chart."""

    symbol: str
    minutes: int | None = None
    count: int | None = None
    points: list[CumulativePoint] = Field(default_factory=list)

    _symbol = field_validator("symbol", mode="before")(_upper_symbol)
