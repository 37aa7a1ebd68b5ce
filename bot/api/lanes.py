"""``Lanes``: an httpx transport of single-connection lanes, with an adaptive in-flight limit
and a shared pause after a 429.

Why not one ``httpx.AsyncHTTPTransport`` with N connections: httpcore's pool re-checks every
connection (a socket-readability probe through anyio) several times per request, so its CPU per
request grows with the pool (1.1 ms at 8 connections, 2.3 ms at 32 on the bench machine). A lane
is an ``AsyncHTTPTransport`` limited to one keep-alive connection, so that scan is one
connection long whatever the concurrency; a request takes a free lane and gives it back once
its body is read.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable

import httpx

from bot.api.aimd import AimdLimit

__all__ = ["Lanes"]


class Lanes(httpx.AsyncBaseTransport):
    """At most ``limiter.limit`` requests in flight (lanes opened on demand, up to
    ``limiter.maximum``). Each response's latency and status feed ``limiter``; after a 429,
    :meth:`pause` holds every new request until the server's ``Retry-After`` has passed.
    ``make_lane()`` builds one lane (default: ``httpx.AsyncHTTPTransport`` with one
    connection, all lanes sharing ``ssl_context``: loading the CA bundle costs ~20 ms, once,
    not once per lane)."""

    def __init__(
        self,
        limiter: AimdLimit,
        make_lane: Callable[[], httpx.AsyncBaseTransport] | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.limiter = limiter
        self._make = make_lane or _one_connection(ssl_context)
        self._free: list[httpx.AsyncBaseTransport] = []
        self._all: list[httpx.AsyncBaseTransport] = []
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

    async def _acquire(self) -> httpx.AsyncBaseTransport:
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
        if self._free:
            return self._free.pop()
        lane = self._make()
        self._all.append(lane)
        return lane

    async def _release(self, lane: httpx.AsyncBaseTransport) -> None:
        self._free.append(lane)
        async with self._changed:
            self._in_flight -= 1
            self._changed.notify(max(1, self.limiter.limit - self._in_flight))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on a free lane; the body is read before the lane is given back."""
        lane = await self._acquire()
        started = time.monotonic()
        try:
            response = await lane.handle_async_request(request)
            try:
                body = b"".join([part async for part in response.stream])  # type: ignore[union-attr]
            finally:
                await response.aclose()
        finally:
            await self._release(lane)
        throttled = response.status_code == 429
        self.limiter.on_response(started, time.monotonic() - started, throttled=throttled)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=body,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        """Close every lane's connection."""
        for lane in self._all:
            await lane.aclose()
        self._all.clear()
        self._free.clear()


def _one_connection(
    ssl_context: ssl.SSLContext | None,
) -> Callable[[], httpx.AsyncBaseTransport]:
    def make() -> httpx.AsyncBaseTransport:
        return httpx.AsyncHTTPTransport(
            verify=ssl_context if ssl_context is not None else False,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )

    return make
