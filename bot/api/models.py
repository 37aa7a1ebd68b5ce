"""Typed, drift-tolerant models of the FlashAlpha responses the bot polls.

Every model ignores unknown fields and keeps labels (``flow_direction``, ``decision``,
``regime``, ``metric``) as plain text, so a label the bot has never seen is carried through to
the alert instead of failing validation. The sets of documented labels live here so callers can
tell a known label from a new one (and log it once).

Drift has two outcomes, never a third:

- A field a rule depends on (``flow_direction``, ``decision``, the leaderboards' ``buyers`` /
  ``sellers`` / ``entries``, a row's ``symbol`` / ``netNotional``, an entry's ``rank``) that
  is missing, ``null`` or of the wrong type fails validation: the client raises
  ``MalformedResponse`` and the engine keeps the previous snapshot. A renamed key therefore never
  parses as an empty board or an "unknown" state a rule would compare against.
- An *optional* field with an invalid value (``"flow_gex_pct_shift": "n/a"``) becomes its default
  (``None``, or ``[]`` for lists) and is listed in :attr:`nulled_fields`; the rest of the body is
  used.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

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
    "RiskFlag",
    "StrikeFlow",
    "StrikeFlowBar",
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
    """Base: frozen, ignores unknown fields; an invalid optional field becomes its default."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    # Not a pydantic private attribute: those cost an __init__ hook on every nested model
    # (a cumulative body has hundreds), and only a drifted body ever sets it (per instance).
    _nulled: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="wrap")
    @classmethod
    def _null_invalid_optionals(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # Retry once without the optional fields that failed; a required one re-raises.
        try:
            return _share_fields_set(handler(data))
        except ValidationError as exc:
            if not isinstance(data, dict):
                raise
            keys = {}
            for name, info in cls.model_fields.items():
                if not info.is_required():
                    keys[name] = name
                    if info.alias:
                        keys[info.alias] = name
            bad: dict[str, str] = {}
            for error in exc.errors():
                top = error["loc"][0] if error["loc"] else None
                if not isinstance(top, str) or top not in keys:
                    raise
                bad.setdefault(top, f"{'.'.join(map(str, error['loc']))}: {error['msg']}")
            model = _share_fields_set(handler({k: v for k, v in data.items() if k not in bad}))
            object.__setattr__(model, "_nulled", tuple(bad.values()))
            return model

    @property
    def nulled_fields(self) -> tuple[str, ...]:
        """Optional fields (as ``path: reason``) whose invalid value was replaced by the default
        (``None`` / ``[]``), this model's and its nested models'. Empty for a clean body."""
        out = list(self._nulled)
        for name in type(self).model_fields:
            value = getattr(self, name)
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                if isinstance(item, _Model):
                    where = f"{name}.{i}" if isinstance(value, list) else name
                    out += [f"{where}.{text}" for text in item.nulled_fields]
        return tuple(out)


_FIELDS_SETS: dict[frozenset[str], set[str]] = {}


def _share_fields_set(model: Any) -> Any:
    """Point ``model``'s set of the fields its body gave at one set shared by every model with
    the same fields. Pydantic makes one set per instance: 728 bytes for five names, two thirds
    of a cumulative point's size (50 symbols x 390 minutes of points stay in memory all day).
    Sharing is safe because the models are frozen: nothing changes the set in place
    (``model_copy`` copies it before an update)."""
    if isinstance(model, BaseModel):
        given = model.__pydantic_fields_set__
        shared = _FIELDS_SETS.setdefault(frozenset(given), given)
        if shared is not given:
            object.__setattr__(model, "__pydantic_fields_set__", shared)
    return model


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
    # Required: the one field the bot polls this endpoint for. Missing or null → malformed →
    # skipped, so a broken body never stands in for the last good label.
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
        # A new label is text; null stays null and fails (required), like a missing key.
        return value if value is None or isinstance(value, (dict, list)) else str(value)


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


RISK_SEVERITIES: dict[str, str] = {
    "info": "info",
    "low": "info",
    "warning": "warning",
    "warn": "warning",
    "medium": "warning",
    "moderate": "warning",
    "critical": "critical",
    "high": "critical",
    "severe": "critical",
}
"""Severity words a risk flag may carry → the bot's ``info`` / ``warning`` / ``critical``."""


class RiskFlag(_Model):
    """One entry of the envelope's ``risk_flags[]``. The API page documents only ``[]``; a flag
    arrives as plain text (``"no_session_flow"``) or as an object such as
    ``{"code": "wide_spreads", "severity": "high", "message": "..."}`` (``flag`` / ``name`` /
    ``id`` are read as ``code``, ``level`` as ``severity``). ``severity`` is kept as text;
    :attr:`level` maps it to ``info`` / ``warning`` / ``critical`` (``None`` when unrated or
    unknown)."""

    code: str
    severity: str | None = None
    message: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text_or_object(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"code": value}
        if isinstance(value, dict):
            out = dict(value)
            for alias in ("flag", "name", "id", "type"):
                if "code" not in out and out.get(alias) is not None:
                    out["code"] = out[alias]
            if "severity" not in out and "level" in out:
                out["severity"] = out["level"]
            if isinstance(out.get("code"), (int, float)):
                out["code"] = str(out["code"])
            return out
        return {"code": str(value)}

    @property
    def level(self) -> str | None:
        """``info`` / ``warning`` / ``critical`` from :data:`RISK_SEVERITIES`, else ``None``."""
        return RISK_SEVERITIES.get((self.severity or "").strip().lower())


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
    decision: str  # required by the envelope; missing or null → malformed → skipped
    score: float | None = None
    confidence: float | None = None
    regime: str | None = None
    best_structures: list[AnomalyStructure] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    risk_flags: list[RiskFlag] = Field(default_factory=list)
    why: list[str] = Field(default_factory=list)
    avoid_if: list[str] = Field(default_factory=list)
    data_quality: DataQuality | None = None
    endpoint_version: str | None = None
    data_as_of: DataAsOf | None = None

    _symbol = field_validator("symbol", mode="before")(_upper_symbol)

    @field_validator("decision", mode="before")
    @classmethod
    def _label_text(cls, value: Any) -> Any:
        return value if value is None or isinstance(value, (dict, list)) else str(value)

    @field_validator("why", "avoid_if", mode="before")
    @classmethod
    def _text_list(cls, value: Any) -> Any:
        # null lists arrive from older servers; non-string items stay readable as text.
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, list) else value

    @field_validator("risk_flags", mode="before")
    @classmethod
    def _flag_list(cls, value: Any) -> Any:
        return [] if value is None else value

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
    net_notional: float = Field(alias="netNotional")  # the ranking: required
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
    # Required (an empty list is a real, empty side): a renamed key must not read as empty.
    buyers: list[LeaderboardRow]
    sellers: list[LeaderboardRow]


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
    entries: list[ZeroDteEntry]  # required, like the options board's sides


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
    points: list[CumulativePoint]  # required: flow_inflection reads it

    _symbol = field_validator("symbol", mode="before")(_upper_symbol)


class StrikeFlowBar(_Model):
    """One bar of strike flow: ``t`` (UTC bar start), ``spot`` (dollars), and per strike of the
    grid (index-aligned) ``signed_delta_dollars`` (> 0 = bullish-delta aggressor flow),
    ``signed_gamma_dollars`` (dollars) and ``contracts``."""

    t: datetime | None = None
    spot: float | None = None
    signed_delta_dollars: list[float | None]
    signed_gamma_dollars: list[float | None] = Field(default_factory=list)
    contracts: list[float | None] = Field(default_factory=list)


class StrikeFlow(_Enveloped):
    """`GET /v1/flow/zero-dte/strike-flow/{symbol}?bar=1m&minutes=N` (Alpha): 0DTE per-strike
    signed aggressor flow per bar. ``strikes_grid`` are strike prices; no 0DTE data → empty
    ``strikes_grid`` and ``bars`` (a 200). ``underlying_price`` dollars, ``as_of`` UTC."""

    symbol: str
    underlying_price: float | None = None
    expiration: str | None = None
    bar_size: str | None = None
    as_of: datetime | None = None
    tier_used: str | None = None
    strikes_grid: list[float]
    bars: list[StrikeFlowBar]

    _symbol = field_validator("symbol", mode="before")(_upper_symbol)
