"""FlashAlpha Lab API client: one keep-alive ``httpx.AsyncClient``, bounded concurrency, typed
responses, documented errors mapped to exceptions, transient failures retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx
import stamina
from pydantic import BaseModel, ValidationError

from bot.api.aimd import AimdLimit
from bot.api.errors import (
    ApiError,
    AuthError,
    BadRequest,
    MalformedResponse,
    QuotaExceeded,
    SymbolNotFound,
    TierRestricted,
    Unavailable,
)
from bot.api.models import (
    CumulativeFlow,
    FlowAnomaly,
    FlowSummary,
    OptionsLeaderboard,
    StrikeFlow,
    ZeroDteLeaderboard,
)
from bot.api.pacer import RatePacer
from bot.api.transport import AdaptiveTransport
from bot.cadence import stamp_of

if TYPE_CHECKING:
    from bot.settings import Secrets, Settings

__all__ = ["FlashAlphaClient", "RateLimit", "client_for"]

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
Observer = Callable[[str, float, float, float], None]
"""``(path, sent, received, stamp)``: a 200 to ``path`` sent and received at those Unix
times (our clock) whose body was built at ``stamp`` (server clock, Unix seconds)."""
_MAX_PACED = 20  # 429s with a short Retry-After waited out for one call before it fails
_MAX_URLS = 4096  # parsed request URLs kept (symbols x endpoints x params)
_EARLY: contextvars.ContextVar[bool] = contextvars.ContextVar("flowbot_early", default=False)
"""True inside :meth:`FlashAlphaClient.prefetch`'s tasks."""
RequestKey = tuple[str, tuple[tuple[str, Any], ...]]
"""A GET's identity: its path and its query parameters in order."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The last ``X-RateLimit-*`` headers seen: ``limit`` (``None`` = unlimited), ``remaining``
    requests today, ``reset`` when the quota resets (UTC)."""

    limit: int | None
    remaining: int | None
    reset: datetime | None


class FlashAlphaClient:
    """Async client for the endpoints Flowbot polls.

    ``base_url`` is ``https://lab.flashalpha.com`` or the sandbox's URL; ``api_key`` is sent as
    ``X-Api-Key`` and appears in no message. Requests in flight adapt (:class:`AimdLimit`,
    ``self.concurrency``): from ``initial_concurrency`` up to ``max_concurrency``, halved on a
    429, reduced when latency climbs. Requests are sent no faster than ``self.pacer`` allows:
    ``max_requests_per_second`` when given, else the rate the API advertises in
    ``RateLimit-Policy`` or the one learnt from its first short 429 (:mod:`bot.api.pacer`).
    Each request has ``timeout`` seconds. A 429 whose ``Retry-After`` is at most
    ``max_pace_seconds`` is a rate limit, not the daily quota: every request pauses that long
    and this one is sent again (counted in ``throttled``). 5xx,
    timeouts, network errors and malformed bodies are retried ``retries`` times with
    exponential backoff inside the call, then raise :class:`Unavailable` /
    :class:`MalformedResponse`. Other statuses raise at once (:class:`AuthError`,
    :class:`TierRestricted`, :class:`SymbolNotFound`, :class:`BadRequest`,
    :class:`QuotaExceeded`). Each callable in ``observers`` hears of every parsed 200 with
    the time its body was built (:data:`Observer`), for :mod:`bot.cadence`. ``transport``
    replaces the adaptive transport, and with it the in-flight limit and the pacing (tests).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 10.0,
        max_concurrency: int = 64,
        initial_concurrency: int = 16,
        retries: int = 2,
        backoff_seconds: float = 0.5,
        max_pace_seconds: float = 30.0,
        max_requests_per_second: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "flowbot/0.1"}
        if api_key:
            headers["X-Api-Key"] = api_key
        self.concurrency = AimdLimit(
            maximum=max_concurrency, initial=min(initial_concurrency, max_concurrency)
        )
        # TLS only for https (the real API); the sandbox and local fakes speak plain HTTP.
        tls = httpx.create_ssl_context() if base_url.startswith("https:") else None
        self.pacer = RatePacer()
        if max_requests_per_second is not None:
            self.pacer.configure(max_requests_per_second)
        self._transport = (
            AdaptiveTransport(
                self.concurrency,
                pacer=self.pacer,
                short_retry_after=max_pace_seconds,
                ssl_context=tls,
            )
            if transport is None
            else None
        )
        self._base_url = base_url.rstrip("/")
        self._http = _CookielessClient(
            base_url=self._base_url,
            headers=headers,
            timeout=timeout,
            transport=transport or self._transport,
        )
        # Each request is built from a parsed URL kept per (path, params) and the client's
        # merged headers: httpx's build_request parses and merges every time (~40 µs).
        self._urls: dict[RequestKey, httpx.URL] = {}
        self._extensions = {"timeout": httpx.Timeout(timeout).as_dict()}
        self._attempts = retries + 1
        self._backoff = backoff_seconds
        self._max_pace = max_pace_seconds
        self.requests_made = 0
        self.throttled = 0
        self.rate_limit = RateLimit(None, None, None)
        self._rate_headers: tuple[str, str | None, str | None] | None = None
        self.observers: list[Observer] = []
        self._early: dict[RequestKey, asyncio.Future[Any]] = {}
        self._prefetching: set[asyncio.Task[None]] = set()

    def prefetch(self, calls: Iterable[Callable[[], Awaitable[object]]]) -> None:
        """Start each of ``calls`` now (each makes its requests through this client), ahead of
        the code that will make the same requests: the next GET of the same path and
        parameters takes the early answer, or its error, instead of asking again (once; a
        request still in flight is waited for). ``flowbot once`` sends its first cycle this
        way before it imports and builds the rest of the bot. Must be called on the loop
        that will use the client; :meth:`aclose` drops answers nobody took."""
        loop = asyncio.get_running_loop()
        for call in calls:
            context = contextvars.copy_context()
            context.run(_EARLY.set, True)
            task = loop.create_task(_quietly(call), context=context)
            self._prefetching.add(task)
            task.add_done_callback(self._prefetching.discard)

    async def first_answer(self, timeout: float) -> None:
        """Wait until one :meth:`prefetch` call has finished, at most ``timeout`` seconds
        (by then the others are sent too, or queued behind the in-flight limit)."""
        if self._prefetching:
            await asyncio.wait(
                self._prefetching, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )

    async def aclose(self) -> None:
        """Drop early answers nobody took and close the connection pool."""
        for task in list(self._prefetching):
            task.cancel()
        for early in self._early.values():
            if early.done() and not early.cancelled():
                early.exception()  # taken here: nobody else will
            early.cancel()
        self._early.clear()
        await self._http.aclose()

    async def __aenter__(self) -> FlashAlphaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- endpoints ---------------------------------------------------------------------------

    async def flow_summary(self, symbol: str, expiry: str | None = None) -> FlowSummary:
        """`GET /v1/flow/summary/{symbol}` (Growth+): ``flow_direction``, live GEX vs settled."""
        params = {"expiry": expiry} if expiry else None
        return await self._get(f"/v1/flow/summary/{_segment(symbol)}", params, FlowSummary)

    async def flow_anomaly(self, symbol: str, expiry: str | None = None) -> FlowAnomaly:
        """`GET /v1/strategies/flow-anomaly/{symbol}` (Growth+): the decision envelope."""
        params = {"expiry": expiry} if expiry else None
        path = f"/v1/strategies/flow-anomaly/{_segment(symbol)}"
        return await self._get(path, params, FlowAnomaly)

    async def options_leaderboard(
        self, n: int = 10, window_minutes: int = 240
    ) -> OptionsLeaderboard:
        """`GET /v1/flow/options/leaderboard` (Alpha): top ``n`` buyers and sellers (n ≤ 50)
        by net notional (dollars) over ``window_minutes`` (1..10080)."""
        params = {"n": n, "windowMinutes": window_minutes}
        return await self._get("/v1/flow/options/leaderboard", params, OptionsLeaderboard)

    async def zero_dte_leaderboard(self, metric: str = "heat", n: int = 20) -> ZeroDteLeaderboard:
        """`GET /v1/flow/zero-dte/leaderboard` (Alpha): top ``n`` (1..100) 0DTE names by
        ``metric`` (heat, pin_risk, abs_flow, charm_intensity)."""
        params = {"metric": metric, "n": n}
        return await self._get("/v1/flow/zero-dte/leaderboard", params, ZeroDteLeaderboard)

    async def cumulative(self, symbol: str, minutes: int = 240) -> CumulativeFlow:
        """`GET /v1/flow/options/{symbol}/cumulative` (Alpha): per-minute net volume
        (contracts) and its running sum over ``minutes`` (1..10080)."""
        return await self._get(
            f"/v1/flow/options/{_segment(symbol)}/cumulative", {"minutes": minutes}, CumulativeFlow
        )

    async def strike_flow(self, symbol: str, minutes: int = 30) -> StrikeFlow:
        """`GET /v1/flow/zero-dte/strike-flow/{symbol}?bar=1m&minutes=N` (Alpha): today's 0DTE
        per-strike signed flow in 1-minute bars over the last ``minutes`` (1..390); no 0DTE
        data is a 200 with empty ``strikes_grid`` and ``bars``."""
        path = f"/v1/flow/zero-dte/strike-flow/{_segment(symbol)}"
        return await self._get(path, {"bar": "1m", "minutes": minutes}, StrikeFlow)

    # -- transport ---------------------------------------------------------------------------

    async def _get(self, path: str, params: dict[str, Any] | None, model: type[M]) -> M:
        if _EARLY.get():
            early: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._early[_request_key(path, params)] = early
            try:
                result = await self._get_paced(path, params, model)
            except asyncio.CancelledError:
                early.cancel()
                raise
            except Exception as exc:
                early.set_exception(exc)
                raise
            early.set_result(result)
            return result
        taken = self._early.pop(_request_key(path, params), None) if self._early else None
        if taken is not None:
            answer: M = await taken
            return answer
        return await self._get_paced(path, params, model)

    async def _get_paced(self, path: str, params: dict[str, Any] | None, model: type[M]) -> M:
        paced = 0
        while True:
            try:
                return await self._get_retrying(path, params, model)
            except QuotaExceeded as exc:
                # A short Retry-After is a per-second limit: wait it out (every request does,
                # through the transport's pause) and send again. A long one is the daily quota.
                wait = exc.retry_after
                if wait is None or wait > self._max_pace or paced >= _MAX_PACED:
                    raise
                paced += 1
                self.throttled += 1
                if self._transport is not None:
                    self._transport.pause(wait)
                await asyncio.sleep(wait)

    async def _get_retrying(self, path: str, params: dict[str, Any] | None, model: type[M]) -> M:
        # The first attempt runs outside stamina: setting up a retry context costs about
        # 0.1 ms, and most requests succeed at once. A failed first attempt becomes stamina's
        # first attempt (re-raised, not sent again), so attempts, backoff and stamina's hooks
        # and testing mode are as if stamina had made it.
        try:
            return await self._get_once(path, params, model)
        except (Unavailable, MalformedResponse) as exc:
            first: ApiError | None = exc
        async for attempt in stamina.retry_context(
            on=(Unavailable, MalformedResponse),
            attempts=self._attempts,
            wait_initial=self._backoff,
            wait_max=self._backoff * 8,
            timeout=None,
        ):
            with attempt:
                if first is not None:
                    error, first = first, None
                    raise error
                return await self._get_once(path, params, model)
        raise AssertionError("unreachable: retry_context re-raises the last error")

    def _request(self, path: str, params: dict[str, Any] | None) -> httpx.Request:
        """A GET of ``path`` with ``params``, as ``self._http.build_request`` would build it
        (with one URL parse, not three)."""
        key = _request_key(path, params)
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) >= _MAX_URLS:
                self._urls.clear()
            query = f"?{httpx.QueryParams(params)}" if params else ""
            url = self._urls[key] = httpx.URL(f"{self._base_url}{path}{query}")
        return httpx.Request("GET", url, headers=self._http.headers, extensions=self._extensions)

    async def _get_once(self, path: str, params: dict[str, Any] | None, model: type[M]) -> M:
        sent = time.time()
        try:
            response = await self._http.send(self._request(path, params))
        except httpx.TimeoutException:
            raise Unavailable(f"{path}: timed out", path=path) from None
        except httpx.TransportError as exc:
            raise Unavailable(f"{path}: {type(exc).__name__}", path=path) from None
        self.requests_made += 1
        self._note_rate_limit(response.headers)
        if response.status_code != 200:
            raise _error_for(path, response)
        try:
            body = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise MalformedResponse(f"{path}: body is not JSON", path=path, status=200) from None
        if not isinstance(body, dict):
            raise MalformedResponse(f"{path}: body is not an object", path=path, status=200)
        try:
            parsed = model.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise MalformedResponse(
                f"{path}: {where}: {first['msg']}", path=path, status=200
            ) from None
        if self.observers:
            stamp = stamp_of(parsed)
            if stamp is not None:
                received = time.time()
                for observer in self.observers:
                    observer(path, sent, received, stamp.timestamp())
        return parsed

    def _note_rate_limit(self, headers: httpx.Headers) -> None:
        limit = headers.get("X-RateLimit-Limit")
        if limit is None:
            return
        remaining = headers.get("X-RateLimit-Remaining")
        last = self._rate_headers
        if last is not None and last == (limit, remaining, headers.get("X-RateLimit-Reset")):
            return  # unchanged (Alpha: "unlimited" on every response): nothing to parse
        self._rate_headers = (limit, remaining, headers.get("X-RateLimit-Reset"))
        self.rate_limit = RateLimit(
            limit=_int_or_none(limit),
            remaining=_int_or_none(headers.get("X-RateLimit-Remaining")),
            reset=_unix_or_none(headers.get("X-RateLimit-Reset")),
        )


def _request_key(path: str, params: dict[str, Any] | None) -> RequestKey:
    """The :data:`RequestKey` of a GET of ``path`` with ``params``."""
    return path, tuple(params.items()) if params else ()


def _segment(symbol: str) -> str:
    """``symbol`` as one URL path segment: ``/``, ``?``, ``#`` and ``%`` percent-encoded
    (auto-watched symbols come from API responses)."""
    return quote(symbol, safe="")


def client_for(
    settings: Settings, secrets: Secrets, *, retries: int | None = None
) -> FlashAlphaClient:
    """The client ``[flashalpha]`` describes (base URL, timeout, concurrency ceiling, request
    rate, retries unless ``retries`` is given), sending ``FLASHALPHA_API_KEY`` from
    ``secrets`` when set."""
    api = settings.flashalpha
    key = secrets.flashalpha_api_key
    return FlashAlphaClient(
        api.base_url,
        key.get_secret_value() if key else None,
        timeout=api.timeout_seconds,
        max_concurrency=api.max_concurrency,
        max_requests_per_second=api.max_requests_per_second,
        retries=api.retries if retries is None else retries,
    )


async def _quietly(call: Callable[[], Awaitable[object]]) -> None:
    """Run a prefetch call; its outcome goes to whoever takes its answers, not here."""
    try:
        await call()
    except Exception:
        return


class _NoCookies(httpx.Cookies):
    """Cookies that stay empty: the API sets none, and httpx would otherwise wrap every
    request and response in urllib objects to look for them (~15 µs a response)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None


_NO_COOKIES = _NoCookies()


class _CookielessClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` whose cookie store is :class:`_NoCookies` (setting it is
    ignored)."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        return None


def _error_for(path: str, response: httpx.Response) -> ApiError:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    text = str(body.get("message") or body.get("detail") or body.get("error") or "").strip()
    message = f"{path}: HTTP {status}" + (f": {text}" if text else "")
    if status == 401:
        return AuthError(message, path=path, status=401)
    if status == 403:
        return TierRestricted(
            message,
            path=path,
            current_plan=body.get("current_plan"),
            required_plan=body.get("required_plan"),
        )
    if status == 404:
        return SymbolNotFound(message, path=path, status=404)
    if status == 400:
        return BadRequest(message, path=path, status=400)
    if status == 429:
        return QuotaExceeded(
            message,
            path=path,
            retry_after=_float_or_none(response.headers.get("Retry-After")),
            reset_at=_iso_or_none(body.get("reset_at")),
        )
    if status >= 500:
        return Unavailable(message, path=path, status=status)
    return ApiError(message, path=path, status=status)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None  # "unlimited" on Alpha


def _float_or_none(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _unix_or_none(value: str | None) -> datetime | None:
    seconds = _float_or_none(value)
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


def _iso_or_none(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
