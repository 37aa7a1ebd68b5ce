"""``Sandbox``: runs the sandbox app under uvicorn in a background thread with its own loop."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn

from bot.sim.app import (
    CachePhase,
    RateLimiter,
    RequestLog,
    RequestRecord,
    SandboxState,
    build_app,
)
from bot.sim.auth import KeyStore
from bot.sim.clock import SimClock
from bot.sim.faults import FaultRule, FaultSet
from bot.sim.market import Market
from bot.sim.nytime import session_open
from bot.sim.scenario import Scenario, default_scenario, load_scenario


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (uvicorn[standard] brings it: ~2x less CPU per request)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - plain asyncio works, just slower
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _run_loop(coro: Coroutine[Any, Any, None]) -> None:
    """Thread target: run ``coro`` on a fresh loop owned by this thread."""
    loop = _new_loop()
    try:
        loop.run_until_complete(coro)
    finally:
        loop.close()


class Sandbox:
    """A running FlashAlpha stand-in on ``host:port`` (port 0 = any free port).

    scenario: Scenario, path to a TOML file, or None for the packaged default. seed: overrides
    the scenario's seed. speed: simulated seconds per real second (0 = frozen clock; the clock
    starts at 09:30 New York on the scenario's session date). admin: mount ``/_sim/``.
    extra_keys: more ``{"key": "Plan"}`` on top of the built-ins and the scenario's ``[keys]``.
    faults: extra FaultRule objects on top of the scenario's ``[[faults]]``.
    cache_phase: where cache periods start (:class:`CachePhase`: ``"epoch"``, ``"random"``,
    ``"per-symbol"`` or seconds). rate_limit: requests per second per API key (real time);
    more get 429 with ``Retry-After: 1``, not charged to the daily quota (None = no limit);
    ``rate_limit_policy``: whether responses advertise it (``RateLimit-Policy: "per-second";
    q=N;w=1``).

    Use as ``with Sandbox(...) as sb:`` or ``start()``/``stop()``. Attributes: ``base_url``,
    ``clock`` (SimClock), ``request_log`` (RequestLog of RequestRecord), ``faults`` (FaultSet),
    ``keys`` (key -> plan), ``market``.
    """

    def __init__(
        self,
        scenario: Scenario | str | Path | None = None,
        seed: int | None = None,
        speed: float = 1.0,
        admin: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        extra_keys: dict[str, str] | None = None,
        faults: list[FaultRule] | None = None,
        cache_phase: str | float = "epoch",
        rate_limit: float | None = None,
        rate_limit_policy: bool = True,
    ) -> None:
        if scenario is None:
            scenario = default_scenario()
        elif not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario)
        self.scenario = scenario
        self.market = Market(scenario, seed)
        self.clock = SimClock(session_open(scenario.session_date), speed=speed)
        self._keys = KeyStore({**scenario.keys, **(extra_keys or {})})
        self.faults = FaultSet([*scenario.faults, *(faults or [])], seed=self.market.seed)
        self.request_log = RequestLog()
        self.host, self.port = host, port
        self.admin = admin
        self.cache_phase = CachePhase(cache_phase, self.market.seed)
        self.limiter = RateLimiter(rate_limit, advertise=rate_limit_policy)
        self._state = SandboxState(
            self.market,
            self.clock,
            self._keys,
            self.faults,
            self.request_log,
            admin,
            self.cache_phase,
            self.limiter,
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def keys(self) -> dict[str, str]:
        """Accepted API keys -> plan name."""
        return self._keys.keys

    @property
    def base_url(self) -> str:
        """``http://host:port`` with the real bound port (valid after ``start()``)."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> Sandbox:
        """Bind, start uvicorn in a daemon thread and wait until it accepts connections."""
        if self._thread is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto is TCP; with proto 0, keep-alive responses stall ~40 ms (Nagle + delayed ACK).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(2048)
        self.port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(
            build_app(self._state),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        # Signals belong to the host process (tests, the CLI), not to this thread: uvicorn
        # (>= 0.29, ``Server.capture_signals``) only installs handlers on the main thread.
        self._server = server
        self._thread = threading.Thread(
            target=_run_loop,
            args=(server.serve(sockets=[sock]),),
            name=f"flowbot-sim:{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = threading.Event()
        waited = 0.0
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError("sandbox server thread died during startup")
            if waited > timeout:
                self.stop()
                raise TimeoutError("sandbox did not start")
            deadline.wait(0.005)
            waited += 0.005
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask uvicorn to exit, join the thread and close the socket."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():  # stuck keep-alive connections: force it
                assert self._server is not None
                self._server.force_exit = True
                self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def request_count(self, path_prefix: str | None = None) -> int:
        """Requests served so far whose path starts with ``path_prefix`` (all when None)."""
        return self.request_log.count(path_prefix)

    def requests(self) -> list[RequestRecord]:
        """Snapshot of the request log."""
        return self.request_log.snapshot()

    def spend_quota(self, key: str, leave: int = 0) -> None:
        """Use up ``key``'s daily quota as of the sandbox's clock, leaving ``leave`` requests;
        it resets at the next UTC midnight of the simulated clock. Raises ``ValueError`` for
        a plan without a quota (Alpha)."""
        self._keys.spend(key, self.clock.now(), leave)

    def set_time_ny(self, hhmm: str) -> datetime:
        """Convenience: set the clock to New York ``"HH:MM[:SS]"`` on the session date."""
        from bot.sim.nytime import parse_ny_time

        t = parse_ny_time(hhmm, self.scenario.session_date)
        self.clock.set(t)
        return t

    def advance(self, seconds: float) -> datetime:
        """Advance the simulated clock by ``seconds``; returns the new simulated time."""
        return self.clock.advance(timedelta(seconds=seconds))
