"""Starlette application: the six FlashAlpha endpoints plus the optional ``/_sim`` admin API.

Per request: auth (401) -> daily quota (429) -> plan (403) -> parameters (400/404) -> faults
(latency, 5xx, outage) -> body from a per-period cache (leaderboards 30 s, others 15 s of
simulated time, so polling faster returns the same snapshot) -> optional malformation.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, SupportsIndex, overload

from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.sim.auth import REQUIRED_PLAN, KeyStore, QuotaResult, next_utc_midnight, plan_rank
from bot.sim.clock import SimClock
from bot.sim.faults import FaultRule, FaultSet, rule_from_dict
from bot.sim.market import Market
from bot.sim.nytime import iso_z, parse_iso
from bot.sim.scenario import PLANS, ZERO_DTE_METRICS

ENDPOINT_VERSION = "2026.08.25"
CACHE_SECONDS = {"options_leaderboard": 30, "zero_dte_leaderboard": 30}  # others: 15
DEFAULT_CACHE_SECONDS = 15
_EXPIRY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Which field each endpoint loses / mislabels in the "malformed" fault modes.
_REQUIRED_FIELD = {
    "summary": "flow_direction",
    "anomaly": "decision",
    "options_leaderboard": "buyers",
    "zero_dte_leaderboard": "entries",
    "strike_flow": "strikes_grid",
    "cumulative": "points",
}
_LABEL_FIELD = {"summary": "flow_direction", "anomaly": "regime", "zero_dte_leaderboard": "metric"}
#: Validated query parameters of one request, part of its cache key (expiry, n, minutes...).
_Params = tuple[str | int | None, ...]
#: Cache key: (endpoint, symbol or None, params, start of the cache period).
_CacheKey = tuple[str, str | None, _Params, datetime]


@dataclass(frozen=True)
class RequestRecord:
    """One served request: path, endpoint name (or None for admin/unknown), upper-cased symbol
    or None, HTTP status, simulated time (aware UTC), API key sent (or None), and ``wall``: when
    the request arrived (``time.time()``, Unix seconds)."""

    path: str
    endpoint: str | None
    symbol: str | None
    status: int
    sim_time: datetime
    key: str | None
    wall: float = 0.0


class RequestLog:
    """Thread-safe bounded log of RequestRecord (newest last)."""

    def __init__(self, maxlen: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._items: deque[RequestRecord] = deque(maxlen=maxlen)

    def append(self, rec: RequestRecord) -> None:
        """Add one record."""
        with self._lock:
            self._items.append(rec)

    def snapshot(self) -> list[RequestRecord]:
        """A copy of all records."""
        with self._lock:
            return list(self._items)

    def count(self, path_prefix: str | None = None) -> int:
        """Number of records whose path starts with ``path_prefix`` (all when None)."""
        with self._lock:
            if path_prefix is None:
                return len(self._items)
            return sum(1 for r in self._items if r.path.startswith(path_prefix))

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return self.count()

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self.snapshot())

    @overload
    def __getitem__(self, i: SupportsIndex) -> RequestRecord: ...

    @overload
    def __getitem__(self, i: slice) -> list[RequestRecord]: ...

    def __getitem__(self, i: SupportsIndex | slice) -> RequestRecord | list[RequestRecord]:
        return self.snapshot()[i]


class CachePhase:
    """Where the sandbox's cache periods start, in seconds after the epoch's period grid.

    ``mode``: ``"epoch"`` (0, the default), ``"random"`` (one phase per period length drawn
    from ``seed``: every endpoint refreshes together), ``"per-symbol"`` (each symbol and each
    board on its own phase), or a number of seconds.
    """

    def __init__(self, mode: str | float = "epoch", seed: int = 0) -> None:
        if isinstance(mode, str) and mode not in ("epoch", "random", "per-symbol"):
            try:
                mode = float(mode)
            except ValueError:
                raise ValueError(
                    f"cache phase {mode!r}: epoch, random, per-symbol or seconds"
                ) from None
        self.mode = mode
        self.seed = seed

    def of(self, endpoint: str, symbol: str | None, period: int) -> float:
        """The phase (seconds, 0..period) of ``endpoint``'s cache for ``symbol``."""
        if self.mode == "epoch":
            return 0.0
        if isinstance(self.mode, float):
            return self.mode % period
        who = symbol or endpoint if self.mode == "per-symbol" else ""
        unit = zlib.crc32(f"{self.seed}|phase|{period}|{who}".encode()) / 2**32
        return round(unit * period, 3)


class RateLimiter:
    """Per-key requests per second (real time, not simulated): fixed one-second windows.
    ``check(key)`` returns ``None`` when the request may go on, else the ``Retry-After``
    seconds (whole, at least 1) to send with a 429. ``rps`` None or 0 = unlimited.
    ``advertise``: whether responses carry the limit as an IETF ``RateLimit-Policy`` header
    (:attr:`policy`); FlashAlpha documents none, so the bot must also cope without it."""

    def __init__(self, rps: float | None, advertise: bool = True) -> None:
        self.rps = rps
        self.policy = f'"per-second";q={math.ceil(rps)};w=1' if rps and advertise else None
        self._lock = threading.Lock()
        self._windows: dict[str | None, tuple[int, int]] = {}
        self.refused = 0

    def check(self, key: str | None) -> int | None:
        """Count one request of ``key``; the Retry-After when it is over the limit."""
        if not self.rps:
            return None
        now = time.monotonic()
        window = int(now)
        with self._lock:
            start, count = self._windows.get(key, (window, 0))
            if start != window:
                start, count = window, 0
            if count >= self.rps:
                self.refused += 1
                return 1
            self._windows[key] = (start, count + 1)
        return None


@dataclass
class SandboxState:
    """Everything a request handler needs; shared with the owning Sandbox."""

    market: Market
    clock: SimClock
    keys: KeyStore
    faults: FaultSet
    log: RequestLog
    admin: bool = False
    phase: CachePhase = field(default_factory=CachePhase)
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(None))


class _BadRequest(Exception):
    def __init__(self, status: int, body: dict[str, str]) -> None:
        self.status, self.body = status, body


def _int_param(q: QueryParams, name: str, default: int, lo: int, hi: int) -> int:
    """Integer query parameter clamped to lo..hi; missing or unparsable -> default."""
    raw = q.get(name)
    try:
        v = int(raw) if raw else default
    except ValueError:
        v = default
    return max(lo, min(hi, v))


def _expiry(q: QueryParams) -> str | None:
    raw = q.get("expiry")
    if not raw:
        return None
    try:
        if not _EXPIRY_RE.match(raw):
            raise ValueError
        date.fromisoformat(raw)
    except ValueError:
        raise _BadRequest(
            400, {"error": "invalid_expiry", "message": "expiry must be yyyy-MM-dd."}
        ) from None
    return raw


def _dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _rate_headers(q: QuotaResult | None, now: datetime) -> dict[str, str]:
    if q is None:  # no valid key: nothing to spend
        return {
            "X-RateLimit-Limit": "0",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(next_utc_midnight(now).timestamp())),
        }
    unlimited = q.limit is None
    return {
        "X-RateLimit-Limit": "unlimited" if unlimited else str(q.limit),
        "X-RateLimit-Remaining": "unlimited" if unlimited else str(q.remaining),
        "X-RateLimit-Reset": str(int(q.reset.timestamp())),
    }


class _Cache:
    """Bodies keyed by (endpoint, symbol, params, period start) -> (dict, bytes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._d: dict[_CacheKey, tuple[dict[str, Any], bytes]] = {}

    def get(
        self, key: _CacheKey, build: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, Any], bytes]:
        with self._lock:
            hit = self._d.get(key)
        if hit is not None:
            return hit
        body = build()
        val = (body, _dumps(body))
        with self._lock:
            if len(self._d) > 20_000:  # bounded: periods only move forward
                self._d.clear()
            self._d[key] = val
        return val


def snap(t: datetime, seconds: int, phase: float = 0.0) -> datetime:
    """Start of the ``seconds``-long cache period containing ``t``: periods start at the epoch
    plus ``phase`` seconds (0 <= phase < seconds) plus whole periods."""
    ts = math.floor((t.timestamp() - phase) / seconds) * seconds + phase
    return datetime.fromtimestamp(ts, UTC)


def _need_symbol(endpoint: str, symbol: str | None) -> str:
    """The path's symbol; every per-symbol endpoint's route has a ``{symbol}`` part.

    Raises ValueError when it is missing (a routing bug, not bad input).
    """
    if symbol is None:
        raise ValueError(f"endpoint {endpoint} was routed without a symbol")
    return symbol


def _malform(rule: FaultRule, endpoint: str, body: dict[str, Any]) -> bytes:
    """Apply a malformed-body rule to a copy of ``body``."""
    if rule.mode == "truncated":
        raw = _dumps(body)
        return raw[: max(1, len(raw) // 2)]
    body = dict(body)
    if rule.mode == "missing_field":
        body.pop(rule.field or _REQUIRED_FIELD[endpoint], None)
    else:  # unknown_label
        fld = rule.field or _LABEL_FIELD.get(endpoint)
        if fld:
            body[fld] = rule.label
    return _dumps(body)


def build_app(state: SandboxState) -> Starlette:
    """Build the Starlette app serving ``state`` (admin routes only when ``state.admin``)."""
    market, clock, keys, faults, log = (
        state.market,
        state.clock,
        state.keys,
        state.faults,
        state.log,
    )
    cache = _Cache()

    def body_for(
        endpoint: str, symbol: str | None, q: QueryParams, now: datetime
    ) -> tuple[_Params, Callable[[datetime], dict[str, Any]]]:
        """Validate params -> (cache key params, builder taking the snapped time)."""
        if endpoint == "summary":
            exp, sym = _expiry(q), _need_symbol(endpoint, symbol)
            return (exp,), lambda t: market.flow_summary(sym, t, exp)
        if endpoint == "anomaly":
            exp, sym = _expiry(q), _need_symbol(endpoint, symbol)
            return (exp,), lambda t: market.flow_anomaly(sym, t, exp)
        if endpoint == "options_leaderboard":
            n = _int_param(q, "n", 10, 1, 50)
            w = _int_param(q, "windowMinutes", 240, 1, 10080)
            return (n, w), lambda t: market.options_leaderboard(t, n, w)
        if endpoint == "zero_dte_leaderboard":
            metric = q.get("metric") or "heat"
            if metric not in ZERO_DTE_METRICS:
                raise _BadRequest(
                    400,
                    {
                        "error": "invalid_metric",
                        "message": f"metric must be one of {', '.join(ZERO_DTE_METRICS)}.",
                    },
                )
            n = _int_param(q, "n", 20, 1, 100)
            return (metric, n), lambda t: market.zero_dte_leaderboard(t, metric, n)
        if endpoint == "strike_flow":
            bar = q.get("bar")
            if bar not in (None, "", "1m"):
                raise _BadRequest(
                    400, {"error": "bar_unavailable", "message": "Only bar=1m is available."}
                )
            mins = _int_param(q, "minutes", 60, 1, 390)
            sym = _need_symbol(endpoint, symbol)
            return (mins,), lambda t: market.strike_flow(sym, t, mins)
        mins = _int_param(q, "minutes", 240, 1, 10080)
        sym = _need_symbol(endpoint, symbol)
        return (mins,), lambda t: market.cumulative(sym, t, mins)

    def make_handler(endpoint: str) -> Callable[[Request], Awaitable[Response]]:
        required = REQUIRED_PLAN[endpoint]
        period = CACHE_SECONDS.get(endpoint, DEFAULT_CACHE_SECONDS)

        async def handler(request: Request) -> Response:
            now = clock.now()
            key = request.headers.get("x-api-key")
            raw_sym = request.path_params.get("symbol")
            symbol = raw_sym.strip().upper() if raw_sym is not None else None
            plan = keys.plan(key)
            extra: dict[str, str] = {}
            content: bytes
            if key is None or plan is None:  # keys.plan is None for a missing key
                status, quota = 401, None
                content = _dumps(
                    {"title": "Unauthorized", "status": 401, "detail": "Invalid API key."}
                )
            elif (retry_after := state.limiter.check(key)) is not None:
                status, quota = 429, keys.status(key, now)  # not charged to the daily quota
                extra["Retry-After"] = str(retry_after)
                content = _dumps(
                    {
                        "status": "ERROR",
                        "error": "rate_limited",
                        "message": f"More than {state.limiter.rps:g} requests per second.",
                    }
                )
            else:
                # Like the real API, the daily quota counts every authenticated request,
                # including ones then refused for the plan (a Free key gets 429 on its 6th).
                quota = keys.charge(key, now)
                if not quota.allowed:
                    status = 429
                    retry = max(1, math.ceil((quota.reset - now).total_seconds()))
                    extra["Retry-After"] = str(retry)
                    upgrade = PLANS[min(len(PLANS) - 1, plan_rank(plan) + 1)]
                    content = _dumps(
                        {
                            "status": "ERROR",
                            "error": "Quota exceeded",
                            "message": f"You have exceeded your daily API quota of "
                            f"{quota.limit} requests on the {plan} plan.",
                            "current_plan": plan,
                            "limit": quota.limit,
                            "upgrade_to": upgrade,
                            "reset_at": iso_z(quota.reset),
                        }
                    )
                elif plan_rank(plan) < plan_rank(required):
                    status = 403
                    content = _dumps(
                        {
                            "status": "ERROR",
                            "error": "tier_restricted",
                            "message": f"This endpoint requires the {required} plan or higher.",
                            "current_plan": plan,
                            "required_plan": required,
                        }
                    )
                else:
                    status, content = await serve(endpoint, symbol, request, now, period)
            headers = _rate_headers(quota, now)
            headers.update(extra)
            if state.limiter.policy is not None and quota is not None:
                headers["RateLimit-Policy"] = state.limiter.policy
            log.append(
                RequestRecord(request.url.path, endpoint, symbol, status, now, key, time.time())
            )
            return Response(content, status, headers, media_type="application/json")

        return handler

    async def serve(
        endpoint: str, symbol: str | None, request: Request, now: datetime, period: int
    ) -> tuple[int, bytes]:
        try:
            if symbol is not None and not market.has_symbol(symbol):
                raise _BadRequest(
                    404, {"error": "symbol_not_found", "message": f"No data for {symbol}."}
                )
            params, build = body_for(endpoint, symbol, request.query_params, now)
        except _BadRequest as e:
            return e.status, _dumps(e.body)
        decision = faults.decide(endpoint, symbol, now)
        if decision.delay_s > 0:
            await asyncio.sleep(decision.delay_s)
        if decision.error_status is not None:
            return decision.error_status, b'{"error":"upstream_unavailable"}'
        t = snap(now, period, state.phase.of(endpoint, symbol, period))
        body, raw = cache.get(
            (endpoint, symbol, params, t),
            lambda: {
                **build(t),
                "endpoint_version": ENDPOINT_VERSION,
                "data_as_of": market.data_as_of(t),
            },
        )
        if decision.malformed is not None:
            return 200, _malform(decision.malformed, endpoint, body)
        return 200, raw

    routes = [
        Route("/v1/flow/summary/{symbol}", make_handler("summary")),
        Route("/v1/strategies/flow-anomaly/{symbol}", make_handler("anomaly")),
        Route("/v1/flow/options/leaderboard", make_handler("options_leaderboard")),
        Route("/v1/flow/zero-dte/leaderboard", make_handler("zero_dte_leaderboard")),
        Route("/v1/flow/zero-dte/strike-flow/{symbol}", make_handler("strike_flow")),
        Route("/v1/flow/options/{symbol}/cumulative", make_handler("cumulative")),
    ]
    if state.admin:
        routes += _admin_routes(state)
    return Starlette(routes=routes)


def _admin_routes(state: SandboxState) -> list[Route]:
    """``/_sim/clock`` (GET/POST) and ``/_sim/faults`` (GET/POST, DELETE /_sim/faults/{id})."""
    clock, faults = state.clock, state.faults

    def clock_json() -> Response:
        body = {"now": iso_z(clock.now()), "speed": clock.speed, "frozen": clock.frozen}
        return Response(_dumps(body), media_type="application/json")

    async def get_clock(request: Request) -> Response:
        return clock_json()

    async def post_clock(request: Request) -> Response:
        try:
            data = await request.json()
            if "frozen" in data:
                clock.freeze() if data["frozen"] else clock.unfreeze(data.get("speed"))
            if "now" in data:
                clock.set(parse_iso(str(data["now"])))
            if "advance_seconds" in data:
                clock.advance(float(data["advance_seconds"]))
        except (ValueError, TypeError, AttributeError) as e:
            return Response(
                _dumps({"error": "bad_request", "message": str(e)}),
                400,
                media_type="application/json",
            )
        return clock_json()

    def rules_json() -> Response:
        rules = [
            {
                "id": r.id,
                "kind": r.kind,
                "endpoint": r.endpoint,
                "symbol": r.symbol,
                "start": r.start and iso_z(r.start),
                "end": r.end and iso_z(r.end),
                "status": r.status,
                "rate": r.rate,
                "latency_ms": r.latency_ms,
                "jitter_ms": r.jitter_ms,
                "mode": r.mode,
                "field": r.field,
                "label": r.label,
            }
            for r in faults.rules()
        ]
        return Response(_dumps(rules), media_type="application/json")

    async def get_faults(request: Request) -> Response:
        return rules_json()

    async def post_faults(request: Request) -> Response:
        try:
            rule = rule_from_dict(await request.json(), state.market.scenario.session_date)
        except (ValueError, TypeError) as e:
            return Response(
                _dumps({"error": "bad_request", "message": str(e)}),
                400,
                media_type="application/json",
            )
        rid = faults.add(rule)
        return Response(_dumps({"id": rid}), 201, media_type="application/json")

    async def delete_fault(request: Request) -> Response:
        ok = faults.remove(int(request.path_params["rule_id"]))
        return Response(status_code=204 if ok else 404)

    return [
        Route("/_sim/clock", get_clock, methods=["GET"]),
        Route("/_sim/clock", post_clock, methods=["POST"]),
        Route("/_sim/faults", get_faults, methods=["GET"]),
        Route("/_sim/faults", post_faults, methods=["POST"]),
        Route("/_sim/faults/{rule_id:int}", delete_fault, methods=["DELETE"]),
    ]
