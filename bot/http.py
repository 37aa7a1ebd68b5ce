"""The operator's HTTP listener (``[http] listen``, aiohttp on the bot's own event loop):

- ``GET /healthz``: ``200 ok`` while the process (its event loop) is alive: Docker HEALTHCHECK.
- ``GET /readyz``: ``200`` when ready, else ``503``; body ``{"ready": bool, "reasons": [..]}``
  (see :func:`bot.status.readiness`).
- ``GET /metrics``: the bot's Prometheus registry (:mod:`bot.metrics`), outbox gauges
  refreshed first.
- ``GET /``: a self-contained status page (today's alerts, sources, silences, outbox) in New
  York time, refreshing every 30 s; Jinja with HTML autoescape, no external assets.

Handlers only read the bot's state (on the loop that owns the store), never change it. Access
logging is off: a scrape every 15 s would fill the log.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.render import duration, label, nytime, packaged_templates_dir
from bot.settings import split_listen
from bot.status import FRESH_WITHIN, STUCK_AFTER, readiness, status

if TYPE_CHECKING:
    from bot.app import Bot

__all__ = ["REFRESH_SECONDS", "render_status", "start_http", "stop_http"]

REFRESH_SECONDS = 30
NEW_YORK = ZoneInfo("America/New_York")
_ENV = Environment(
    loader=FileSystemLoader(str(packaged_templates_dir())),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: datetime, now: datetime) -> str:
    """A UTC instant in New York time: ``"10:32 ET"`` on ``now``'s New York day, else
    ``"Jun 08 10:32 ET"``."""
    same_day = value.astimezone(NEW_YORK).date() == now.astimezone(NEW_YORK).date()
    return nytime(value, NEW_YORK, "%H:%M" if same_day else "%b %d %H:%M")


_ENV.filters.update(
    nytime=lambda value, fmt="%H:%M": nytime(value, NEW_YORK, fmt),
    when=_when,
    duration=duration,
    label=label,
)


def render_status(
    bot: Bot,
    now: datetime,
    reasons: list[str],
    *,
    stuck_after: timedelta = STUCK_AFTER,
) -> str:
    """The status page's HTML for ``bot`` at ``now`` (UTC) with the readiness ``reasons``
    (``templates/http/status.html.j2``, autoescaped)."""
    view = status(bot, now, reasons, stuck_after=stuck_after)
    return _ENV.get_template("http/status.html.j2").render(s=view, refresh=REFRESH_SECONDS)


async def start_http(
    bot: Bot,
    listen: str,
    *,
    is_running: Callable[[], bool],
    clock: Callable[[], datetime],
    in_session: Callable[[datetime], bool] = lambda now: True,
    fresh_within: timedelta = FRESH_WITHIN,
    stuck_after: timedelta = STUCK_AFTER,
) -> web.AppRunner:
    """Serve the endpoints for ``bot`` on ``listen`` (``host:port``; port 0 = any free one,
    read it from ``runner.addresses``) and return the started runner; stop it with
    :func:`stop_http`.

    - ``is_running()``: the scheduler runs (e.g. ``scheduler.state == STATE_RUNNING``);
    - ``clock()``: UTC now (the bot's clock, so tests and the demo can move it);
    - ``in_session(now)``: polling is expected now; outside (market closed with
      ``market_hours_only``) a quiet API does not make the bot unready;
    - ``fresh_within`` / ``stuck_after``: see :func:`bot.status.readiness` (pass at least
      twice the poll interval when the budget stretched it past 2.5 min).

    Must be awaited inside the bot's running event loop. Raises ``ValueError`` for a
    ``listen`` that is not ``host:port`` and ``OSError`` when the address is taken."""
    host, port = split_listen(listen)

    def reasons() -> list[str]:
        now = clock()
        return readiness(
            bot,
            now,
            running=is_running(),
            in_session=in_session(now),
            fresh_within=fresh_within,
            stuck_after=stuck_after,
        )

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        why = reasons()
        return web.json_response({"ready": not why, "reasons": why}, status=503 if why else 200)

    async def metrics(request: web.Request) -> web.Response:
        bot.worker.observe_depth()
        body = generate_latest(bot.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def page(request: web.Request) -> web.Response:
        html = render_status(bot, clock(), reasons(), stuck_after=stuck_after)
        return web.Response(
            text=html, content_type="text/html", headers={"Cache-Control": "no-store"}
        )

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def stop_http(runner: web.AppRunner) -> None:
    """Stop listening and close open connections (idempotent)."""
    await runner.cleanup()
