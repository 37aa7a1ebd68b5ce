"""``flowbot check``: validate the config, reach the API and Slack, print the request budget."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.api.client import FlashAlphaClient, client_for
from bot.api.errors import ApiError, TierRestricted
from bot.budget import CACHE_SECONDS, RESERVE, SESSION_MINUTES, plan_budget
from bot.cadence import QuotaPace
from bot.pacer import Pacer, pacers_for
from bot.settings import PLAN_QUOTAS, Secrets, Settings

__all__ = ["run_check"]


async def run_check(settings: Settings, secrets: Secrets, console: Console) -> int:
    """Print what the config does and whether its services answer. Returns the exit status:
    0 when the API (and Slack, when configured) answered, 1 otherwise, 2 when the watchlist
    is empty (nothing to poll, nothing to probe the API with). Makes one API request."""
    if not settings.watchlist.symbols:
        console.print(
            "[bold red]config error:[/] \\[watchlist] symbols is empty: the bot would poll no "
            'symbol; list at least one, e.g. symbols = ["SPY"]',
            highlight=False,
        )
        return 2
    budget = plan_budget(settings)
    table = Table(title="Flowbot configuration", show_header=False)
    table.add_row("API", settings.flashalpha.base_url)
    table.add_row("plan", settings.flashalpha.plan)
    table.add_row("watchlist", ", ".join(settings.watchlist.symbols))
    if settings.watchlist.auto_from:
        table.add_row(
            "auto-watch",
            f"up to {budget.auto_symbols} of auto_max {settings.watchlist.auto_max} from "
            + ", ".join(settings.watchlist.auto_from),
        )
    table.add_row(
        "requests / poll",
        f"{budget.symbol_requests_per_poll} symbol, "
        f"{budget.leaderboard_requests_per_poll} leaderboard",
    )
    quota = "unlimited" if budget.quota is None else f"{budget.quota:,}"
    table.add_row("session estimate", f"{budget.estimate:,} requests (daily quota {quota})")
    pacers = pacers_for(budget)
    for job, pacer in pacers.items():
        note = " (slowed to fit the quota)" if budget.stretched and not pacer.auto else ""
        table.add_row(f"cadence: {job}", pacer.describe() + note)
    if budget.skipped:
        table.add_row("not in plan", ", ".join(budget.skipped))
    console.print(table)

    ok = True
    key = secrets.flashalpha_api_key.get_secret_value() if secrets.flashalpha_api_key else None
    if key is None:
        console.print("[yellow]FLASHALPHA_API_KEY is not set[/]")
    async with client_for(settings, secrets, retries=0) as client:
        symbol = settings.watchlist.symbols[0]
        answered = False
        try:
            summary = await client.flow_summary(symbol)
            answered = True
            console.print(f"[green]API ok[/]: {symbol} flow_direction {summary.flow_direction}")
            limit = client.rate_limit
            if limit.remaining is not None:
                console.print(f"quota left today: {limit.remaining:,}")
                _print_quota_cadence(console, pacers, limit.remaining)
        except TierRestricted as exc:
            console.print(f"[red]API error[/]: {escape(str(exc))}", highlight=False)
            ok = _compare_plan(console, settings.flashalpha.plan, exc.current_plan, "403 body")
            answered = False
        except ApiError as exc:
            ok = False
            console.print(f"[red]API error[/]: {escape(str(exc))}", highlight=False)
        if answered:
            plan, how = await key_plan(client)
            ok = _compare_plan(console, settings.flashalpha.plan, plan, how) and ok

    if secrets.slack_bot_token is not None:
        from slack_sdk.errors import SlackApiError
        from slack_sdk.web.async_client import AsyncWebClient

        web = AsyncWebClient(
            token=secrets.slack_bot_token.get_secret_value(), base_url=settings.slack.api_url
        )
        try:
            auth = await web.auth_test()
            console.print(
                f"[green]Slack ok[/]: team {auth.get('team')}, posting to {settings.slack.channel}"
            )
        except SlackApiError as exc:
            ok = False
            console.print(f"[red]Slack error[/]: {exc.response.get('error')}")
        except OSError as exc:
            ok = False
            console.print(f"[red]Slack unreachable[/]: {type(exc).__name__}")
    elif secrets.slack_webhook_url is not None:
        console.print("Slack: incoming webhook set (not tested: a test would post)")
    else:
        console.print(
            f"Slack: not configured; alerts go to the console and {settings.console.jsonl_path}"
        )
    if settings.email.host:
        console.print(
            f"email: {settings.email.host}:{settings.email.port} "
            f"({settings.email.security}) → {', '.join(settings.email.recipients)}"
        )
    else:
        console.print(f"email: no SMTP host; digests are written to {settings.email.outbox_dir}/")
    return 0 if ok else 1


def _print_quota_cadence(console: Console, pacers: dict[str, Pacer], remaining: int) -> None:
    """What the quota left allows over a full session, per auto-paced job, and why."""
    span = SESSION_MINUTES * 60
    for job, pacer in pacers.items():
        if not pacer.auto or not pacer.requests_per_poll:
            continue
        gap = QuotaPace(remaining, span, RESERVE).min_gap(0.0, pacer.requests_per_poll)
        period = CACHE_SECONDS[job]
        if gap <= period:
            why = f"the quota allows a poll every {gap:.1f} s, so every {period:g} s cache refresh"
        else:
            why = f"the quota allows a poll every {gap:.0f} s: the first refresh after that"
        console.print(f"{job}: {why} ({pacer.requests_per_poll} requests per poll)")


async def key_plan(client: FlashAlphaClient) -> tuple[str | None, str]:
    """The plan of the client's key, and how it was learned: the daily limit in the last
    ``X-RateLimit-Limit`` header (5 free, 250 basic, 2,500 growth, none alpha), else one
    Alpha-only request (`/v1/flow/options/leaderboard?n=1`): a 403 names ``current_plan``,
    an answer means Alpha. ``(None, why)`` when neither tells. Makes at most one request."""
    limit = client.rate_limit.limit
    by_quota = {quota: plan for plan, quota in PLAN_QUOTAS.items() if quota is not None}
    if limit is not None and limit in by_quota:
        return by_quota[limit], f"X-RateLimit-Limit {limit:,}"
    try:
        await client.options_leaderboard(1, 60)
    except TierRestricted as exc:
        return (exc.current_plan or "").lower() or None, "403 body of an Alpha endpoint"
    except ApiError as exc:
        return None, f"the Alpha probe failed ({exc.status or 'no answer'})"
    return "alpha", "an Alpha endpoint answered"


def _compare_plan(console: Console, configured: str, actual: str | None, how: str) -> bool:
    """Say whether ``[flashalpha] plan`` matches the key's real plan; False when it does not."""
    if actual is None:
        console.print(f"key's plan: unknown ({how})")
        return True
    actual = actual.lower()
    if actual.lower() == configured.lower():
        console.print(f"key's plan: {actual} ({how}), as configured")
        return True
    console.print(
        f"[red]key's plan is {actual}[/] ({how}) but \\[flashalpha] plan = {configured!r}: "
        f'set plan = "{actual.lower()}" so the budget and the sources polled match the key',
        highlight=False,
    )
    return False
