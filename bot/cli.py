"""The ``flowbot`` command: run, once, check, demo, sim, recap, digest.

A bad config exits with status 2 and one message naming the file and the key, before any
request is made.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from bot.calendar import Session
from bot.settings import ConfigError, Secrets, Settings, load_secrets, load_settings
from bot.sim.command import sim_command

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Flowbot: options-flow alerts from the FlashAlpha Lab API to Slack and email.",
)
app.command("sim")(sim_command)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file (default: $FLOWBOT_CONFIG)."),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Print instead of posting; remember nothing.")
]
DateOpt = Annotated[
    str | None, typer.Option("--date", help="Session date YYYY-MM-DD (default: the last one).")
]
LogOpt = Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")]
LogFormatOpt = Annotated[
    str,
    typer.Option(
        "--log-format",
        help="rich (terminal), plain (one line per record), json (one object per line, for "
        "containers) or auto: rich on a terminal, else plain.",
    ),
]

err = Console(stderr=True)


def _load(config: Path | None) -> tuple[Settings, Secrets]:
    try:
        settings = load_settings(config)
        secrets = load_secrets(Path("/run/secrets"))
    except ConfigError as exc:
        # The key is written [section.key]: escape it, or rich reads it as markup and drops it.
        err.print(f"[bold red]config error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    return settings, secrets


def _logging(level: str, secrets: Secrets, log_format: str = "auto") -> None:
    from bot.logs import setup_logging

    try:
        setup_logging(level.upper(), secrets.values(), log_format.lower())
    except ValueError as exc:
        err.print(f"[bold red]option error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"flowbot {version('flowbot')}")
        except PackageNotFoundError:
            print("flowbot (not installed: no version)")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Flowbot: options-flow alerts from the FlashAlpha Lab API to Slack and email."""


@app.command()
def run(
    config: ConfigOpt = None, log_level: LogOpt = "INFO", log_format: LogFormatOpt = "auto"
) -> None:
    """Poll the watchlist on schedule and post alerts until SIGINT / SIGTERM."""
    settings, secrets = _load(config)
    _logging(log_level, secrets, log_format)
    from bot.app import build_bot
    from bot.budget import plan_budget
    from bot.calendar import TradingCalendar
    from bot.schedule import run_forever

    budget = plan_budget(settings)
    if budget.stretched:
        err.print(
            f"[yellow]plan {settings.flashalpha.plan}: {budget.estimate:,} requests/session "
            f"exceed the daily quota of {budget.quota:,}; polling every "
            f"{budget.poll_seconds:.0f} s instead[/]"
        )

    async def main() -> None:
        bot = build_bot(settings, secrets)
        await run_forever(bot, budget, TradingCalendar())

    asyncio.run(main())


@app.command()
def once(
    config: ConfigOpt = None,
    dry_run: DryRunOpt = False,
    log_level: LogOpt = "INFO",
    log_format: LogFormatOpt = "auto",
) -> None:
    """Run one poll cycle (symbols and leaderboards) now, deliver, and exit."""
    settings, secrets = _load(config)
    _logging(log_level, secrets, log_format)
    from bot.app import build_bot
    from bot.engine import utcnow

    async def main() -> int:
        bot = build_bot(settings, secrets, dry_run=dry_run)
        try:
            now = utcnow()
            first = await bot.engine.poll_symbols(now)
            second = await bot.engine.poll_leaderboards(now)
        finally:
            await bot.aclose()
        alerts = len(first.alerts) + len(second.alerts)
        err.print(
            f"{first.fetched + second.fetched} response(s), "
            f"{first.failed + second.failed} failure(s), {alerts} alert(s)"
        )
        return 1 if bot.engine.health.auth_failed else 0

    raise typer.Exit(asyncio.run(main()))


@app.command()
def check(config: ConfigOpt = None) -> None:
    """Validate the config, reach the API and Slack, and print the plan's request budget."""
    settings, secrets = _load(config)
    from bot.check import run_check

    raise typer.Exit(asyncio.run(run_check(settings, secrets, Console())))


@app.command()
def demo(
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per real second (the session's pace).")
    ] = 0.0,
    out: Annotated[
        Path,
        typer.Option(
            help="Where the demo writes its files: a new or empty directory, or one an earlier "
            "demo made (marked by a .flowbot-demo file, and cleared). Others are refused."
        ),
    ] = Path("demo-output"),
) -> None:
    """Run the bot against the built-in sandbox over one simulated session: no key, no Slack.

    Reads no config file, no FLOWBOT_* variable and no secret: exported live credentials
    are never used."""
    from bot.sim import SimUnavailable, require_sim

    try:
        require_sim()
    except SimUnavailable as exc:
        err.print(f"[bold red]demo:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    from bot.demo import run_demo

    raise typer.Exit(run_demo(out_dir=out, pace=speed))


def _session(day: str | None) -> Session:
    from bot.calendar import TradingCalendar
    from bot.engine import utcnow

    calendar = TradingCalendar()
    if day is None:
        session = calendar.last_closed_session(utcnow())
    else:
        try:
            session = calendar.session_for(date.fromisoformat(day))
        except ValueError:
            err.print(f"[red]--date {day!r}: not a date (YYYY-MM-DD)[/]")
            raise typer.Exit(2) from None
    if session is None:
        err.print(f"[red]{day}: not an XNYS trading session[/]")
        raise typer.Exit(2)
    return session


@app.command()
def recap(config: ConfigOpt = None, date_: DateOpt = None, dry_run: DryRunOpt = False) -> None:
    """Build the end-of-session recap from stored history and post it (or print it)."""
    settings, secrets = _load(config)
    _logging("WARNING", secrets)
    from bot.app import build_bot, build_destination
    from bot.engine import utcnow
    from bot.reports import send_recap

    session = _session(date_)

    async def main() -> None:
        destination = build_destination(settings, secrets, dry_run=dry_run)
        bot = build_bot(settings, secrets, destination=destination)
        try:
            # On demand is on purpose: a fresh dedupe key, so asking twice posts twice.
            if dry_run:
                from bot.reports import build_session_recap

                recap_, _ = await build_session_recap(bot, session)
                message = bot.renderer.slack_template("recap", recap=recap_)
                await destination.post(message)
            else:
                await send_recap(bot, session, utcnow(), key_suffix=utcnow().isoformat())
        finally:
            await bot.aclose()

    asyncio.run(main())


@app.command()
def digest(config: ConfigOpt = None, date_: DateOpt = None, dry_run: DryRunOpt = False) -> None:
    """Build the email digest from stored history and send it (or write .eml + .html)."""
    settings, secrets = _load(config)
    _logging("WARNING", secrets)
    from bot.app import build_bot
    from bot.deliver.email import EmailError
    from bot.engine import utcnow
    from bot.reports import send_digest

    session = _session(date_)

    async def main() -> int:
        bot = build_bot(settings, secrets, dry_run=False)
        try:
            result = await send_digest(bot, session, utcnow(), dry_run=dry_run)
        except EmailError as exc:
            err.print(f"[red]digest not sent:[/] {escape(str(exc))}")
            return 1
        finally:
            await bot.aclose()
        if result.files:
            for path in result.files:
                print(path)
        else:
            print(f"digest for {session.date} sent to {', '.join(settings.email.recipients)}")
        return 0

    raise typer.Exit(asyncio.run(main()))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
