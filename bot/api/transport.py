"""``AdaptiveTransport``: httpx's transport for the FlashAlpha client, with an adaptive
in-flight limit and a shared pause after a 429, over aiohttp's connection pool.

httpx stays the client API; the bytes travel through ``httpx_aiohttp.AiohttpTransport``
(aiohttp's C HTTP parser and connection pool). Measured on the bench machine against the
sandbox: about 0.4 ms of client CPU per request, against 1.2–1.5 ms through httpcore, whose
pool re-checks every connection (a socket-readability probe through anyio) several times per
request.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from bot.api.aimd import AimdLimit
from bot.api.pacer import RatePacer

__all__ = ["AdaptiveTransport"]

log = logging.getLogger("flowbot.api")

KEEPALIVE_SECONDS = 30.0


class AdaptiveTransport(httpx.AsyncBaseTransport):
    """At most ``limiter.limit`` requests in flight (aiohttp keeps up to ``limiter.maximum``
    keep-alive connections), sent no faster than ``pacer`` allows. Each response's latency and
    status feed ``limiter``; its ``RateLimit-Policy`` header, when present, sets ``pacer``'s
    rate; a 429 whose ``Retry-After`` is at most ``short_retry_after`` seconds teaches
    ``pacer`` a rate when none is known (:mod:`bot.api.pacer`). After a 429, :meth:`pause`
    holds every new request until the server's ``Retry-After`` has passed. ``ssl_context`` is
    used for https (the real API); ``inner`` replaces the aiohttp transport (tests)."""

    def __init__(
        self,
        limiter: AimdLimit,
        *,
        pacer: RatePacer | None = None,
        short_retry_after: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.limiter = limiter
        self.pacer = pacer or RatePacer()
        self._short_retry_after = short_retry_after
        self._pacing = asyncio.Lock()
        self._inner = inner or _aiohttp(limiter.maximum, ssl_context)
        self._in_flight = 0
        self._changed = asyncio.Condition()
        self._resume_at = 0.0  # time.monotonic() before which nothing is sent

    @property
    def in_flight(self) -> int:
        """Requests being sent or read now."""
        return self._in_flight

    def pause(self, seconds: float) -> None:
        """Send nothing more for ``seconds`` (from now), e.g. a 429's ``Retry-After``."""
        self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    async def _acquire(self) -> None:
        async with self._changed:
            while True:
                wait = self._resume_at - time.monotonic()
                if wait > 0:
                    self._changed.release()
                    try:
                        await asyncio.sleep(wait)
                    finally:
                        await self._changed.acquire()
                    continue
                if self._in_flight < self.limiter.limit:
                    break
                await self._changed.wait()
            self._in_flight += 1

    async def _admit(self) -> None:
        """Wait for an in-flight slot and, when a rate is known, for the pacer's turn."""
        pacer = self.pacer
        if pacer.rate is None:
            await self._acquire()
            if pacer.rate is None:
                pacer.sent()
                return
            await self._release()  # a rate was learnt while this request waited: pace it
        async with self._pacing:  # one waiter at a time: sends leave in order, evenly
            while (wait := pacer.delay()) > 0:
                await asyncio.sleep(wait)
            await self._acquire()
            pacer.sent()

    async def _release(self) -> None:
        async with self._changed:
            self._in_flight -= 1
            self._changed.notify(max(1, self.limiter.limit - self._in_flight))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` once a slot is free; the body is read before the slot is given
        back. Raises what httpx raises (``httpx.TransportError`` and its kind)."""
        await self._admit()
        started = time.monotonic()
        try:
            response = await self._inner.handle_async_request(request)
            try:
                body = b"".join([part async for part in response.stream])  # type: ignore[union-attr]
            finally:
                await response.aclose()
        finally:
            await self._release()
        throttled = response.status_code == 429
        self.limiter.on_response(started, time.monotonic() - started, throttled=throttled)
        headers, pacer = response.headers, self.pacer
        policy = headers.get("RateLimit-Policy")
        if policy is not None and (rate := pacer.advertise(policy)) is not None:
            log.info("API rate limit %s: sending at most %s", policy, rate)
        if (
            throttled
            and _short(headers.get("Retry-After"), self._short_retry_after)
            and (rate := pacer.learn(started)) is not None
        ):
            log.warning("API refused requests past its rate limit: sending at most %s", rate)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=body,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._inner.aclose()


def _short(retry_after: str | None, limit: float) -> bool:
    """Whether a 429's ``Retry-After`` (seconds) is a per-second limit, not the daily quota."""
    try:
        return retry_after is not None and float(retry_after) <= limit
    except ValueError:
        return False


def _aiohttp(connections: int, ssl_context: ssl.SSLContext | None) -> httpx.AsyncBaseTransport:
    """aiohttp's pool: ``connections`` at most, the shared TLS context (loading the CA bundle
    costs ~20 ms, once), no cookie jar (the API sets none)."""

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=connections,
            keepalive_timeout=KEEPALIVE_SECONDS,
            ssl=ssl_context if ssl_context is not None else False,
        )
        return aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
        )

    return AiohttpTransport(client=session)
