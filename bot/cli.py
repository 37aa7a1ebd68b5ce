"""The ``flowbot`` command: run, once, check, demo, sim, recap, digest, replay.

A bad config exits with status 2 and one message naming the file and the key, before any
request is made.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from bot.calendar import Session
from bot.lock import StateLock, StateLocked

if TYPE_CHECKING:
    from bot.api.client import FlashAlphaClient
    from bot.app import Bot
    from bot.destinations import Destinations
    from bot.leader import Leadership
    from bot.store import Store
from bot.settings import ConfigError, Secrets, Settings, load_secrets, load_settings
from bot.sim.command import sim_command
from bot.startup import starting

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
        _config_error(exc)
    return settings, secrets


def _require_sources(settings: Settings) -> None:
    """Exit 2 when the plan serves none of the sources the config polls, naming the plan
    each one needs (the bot would run and poll nothing)."""
    from bot.api.sources import SOURCES
    from bot.budget import sources_for

    planned = sources_for(settings)
    if planned.symbol or planned.board:
        return
    needs = ", ".join(f"{s} needs {SOURCES[s.split(':')[0]].plan}" for s in planned.skipped)
    err.print(
        f"[bold red]config error:[/] [flashalpha] plan = {settings.flashalpha.plan!r} serves "
        f"nothing this config polls ({needs or 'no source configured'})",
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(2)


def _build(
    settings: Settings,
    secrets: Secrets,
    *,
    dry_run: bool = False,
    state: Path | None = None,
    client: FlashAlphaClient | None = None,
    built: Destinations | None = None,
) -> Bot:
    """The bot, or exit 2 when the plan serves nothing, a destination's secret is missing or
    a route is wrong. ``state`` replaces the configured store (``:memory:``: a check);
    ``client`` and ``built``: the API client and destinations, made already."""
    from bot.app import build_bot

    _require_sources(settings)
    try:
        return build_bot(
            settings, secrets, dry_run=dry_run, state_path=state, client=client, built=built
        )
    except ConfigError as exc:
        _config_error(exc)


def _destinations(settings: Settings, *, dry_run: bool) -> Destinations:
    """The config's destinations, built and checked against the routes, or exit 2."""
    from bot.deliver.base import BuildContext
    from bot.destinations import build_destinations

    try:
        return build_destinations(
            settings, BuildContext(secrets_dir=Path("/run/secrets")), dry_run=dry_run
        )
    except ConfigError as exc:
        _config_error(exc)


def _config_error(exc: ConfigError) -> NoReturn:
    """Print ``exc`` and exit 2. The key is written ``[section.key]``: escaped, or rich would
    read it as markup and drop it."""
    err.print(f"[bold red]config error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(2) from None


def _sqlite_path(settings: Settings) -> str:
    """The SQLite file ``[state]`` names (``path``, or a ``sqlite:///`` ``url``)."""
    from bot.store.db import to_url

    return to_url(settings.state.target()).database or ":memory:"


def _leadership(bot: Bot, lock: StateLock | None = None) -> Leadership:
    """Who polls on ``bot``'s state: the SQLite file's lock (``lock`` when this process
    made it already), or PostgreSQL's advisory lock."""
    from bot.leader import FileLeadership, PostgresLeadership

    if bot.store.shared:
        return PostgresLeadership(bot.store.engine)
    return FileLeadership(lock or StateLock(bot.store.url.database or ":memory:"))


def _not_run(refusal: str) -> int:
    """Say why ``flowbot once`` did not poll (another process polls this state); exit 1."""
    err.print(
        f"[red]not run:[/] {escape(refusal)} (a `flowbot run` polls it already)", soft_wrap=True
    )
    return 1


def _opens(state: Path) -> bool:
    """Whether the SQLite state file opens (made when missing) and reads as a database, so a
    path that is a directory, unwritable or not a database fails before any request is sent
    ahead of the store (the store then says why)."""
    import sqlite3
    from contextlib import closing

    try:
        with closing(sqlite3.connect(state, timeout=5)) as db:
            db.execute("select count(*) from sqlite_master").fetchone()
    except (sqlite3.Error, OSError):
        return False
    return True


def _prefetching_client(settings: Settings, secrets: Secrets) -> FlashAlphaClient:
    """A client for ``settings`` that has started every request of a first cycle
    (:func:`bot.budget.first_cycle`, :meth:`FlashAlphaClient.prefetch`)."""
    from functools import partial

    from bot.api.client import client_for
    from bot.api.sources import SOURCES
    from bot.budget import fetch_args, first_cycle

    client = client_for(settings, secrets)
    args = fetch_args(settings)
    client.prefetch(
        partial(SOURCES[source].fetch, client, key, args) for source, key in first_cycle(settings)
    )
    return client


async def _standby(lock: StateLock) -> bool:
    """Wait for the state file's lock (another `flowbot run` may hold it); ``False`` when a
    SIGINT / SIGTERM came first."""
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiting = asyncio.ensure_future(lock.wait())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        stopping.cancel()
    if not waiting.done():
        waiting.cancel()
        return False
    return True


def _logging(level: str, settings: Settings, secrets: Secrets, log_format: str = "auto") -> None:
    """Set up logging; every secret (the API key, each destination's token, URL or password
    named in the config) is scrubbed from every record."""
    from bot.logs import setup_logging

    try:
        from bot.deliver import destination_secrets
        from bot.deliver.base import BuildContext

        hidden = secrets.values() + destination_secrets(
            settings, BuildContext(secrets_dir=Path("/run/secrets"))
        )
        setup_logging(level.upper(), hidden, log_format.lower())
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
    _logging(log_level, settings, secrets, log_format)
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
        from bot.leader import FileLeadership

        # A config mistake stops here, standby or not (the state is not opened yet).
        with starting(collect=True):
            checked = _build(settings, secrets, state=Path(":memory:"))
        await checked.aclose()
        leadership: Leadership
        if settings.state.url.startswith("postgresql"):
            bot = _build(settings, secrets)  # migrates (replicas starting together take turns)
            leadership = _leadership(bot)
        else:
            # SQLite: the standby waits for the file's lock before it opens (and migrates)
            # the file, so a running older release keeps its schema until it stops.
            lock = StateLock(_sqlite_path(settings))
            if not await _standby(lock):
                return  # stopped while waiting
            bot = _build(settings, secrets)
            leadership = FileLeadership(lock)
        try:  # PostgreSQL: this replica delivers at once and polls while it holds the lock
            await run_forever(bot, budget, TradingCalendar(), leadership)
        finally:
            leadership.release()

    try:
        asyncio.run(main())
    except ConfigError as exc:  # e.g. [http] listen on an address in use
        _config_error(exc)


@app.command()
def once(
    config: ConfigOpt = None,
    dry_run: DryRunOpt = False,
    log_level: LogOpt = "INFO",
    log_format: LogFormatOpt = "auto",
) -> None:
    """Run one poll cycle (symbols and leaderboards) now, deliver, and exit."""
    settings, secrets = _load(config)
    _logging(log_level, settings, secrets, log_format)
    _require_sources(settings)

    async def main() -> int:
        with starting():
            built = _destinations(settings, dry_run=dry_run)
            lock = None if dry_run or settings.state.url else StateLock(settings.state.path)
            client = None
            if lock is not None:
                try:
                    lock.acquire()
                except StateLocked as exc:
                    return _not_run(str(exc))
            if dry_run or (lock is not None and _opens(settings.state.path)):
                # SQLite (or nothing remembered): the file's lock said at once that this
                # process may poll, and the file opens, so the first cycle's requests leave
                # before the store and the engine are imported and built, and their answers
                # wait for them.
                client = _prefetching_client(settings, secrets)
                # Until the first answer (a round trip: every first request is on its way
                # by then), or 50 ms; then each import holds the loop for up to ~0.15 s, and
                # in between it goes on connecting, sending and reading.
                await client.first_answer(timeout=0.05)
                for module in ("bot.store", "bot.engine", "bot.app"):
                    importlib.import_module(module)
                    await asyncio.sleep(0)
            try:
                bot = _build(settings, secrets, dry_run=dry_run, client=client, built=built)
            except BaseException:
                if client is not None:
                    await client.aclose()
                raise
        leadership = _leadership(bot, lock)
        if not leadership.try_acquire():
            await bot.aclose()
            return _not_run(leadership.refusal)
        bot.store.fence = leadership.fence
        try:
            now = datetime.now(UTC)
            # Both at once, as the scheduler runs them: the boards' requests go out with the
            # symbols' rather than after their commit (each cycle commits on its own).
            polls = await asyncio.gather(
                bot.engine.poll_symbols(now),
                bot.engine.poll_leaderboards(now),
                return_exceptions=True,  # both end before the lock is released
            )
            first, second = polls
            if isinstance(first, BaseException):
                raise first
            if isinstance(second, BaseException):
                raise second
            await bot.worker.flush()
        finally:
            leadership.release()
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
    _logging("WARNING", settings, secrets)
    from bot.engine import utcnow
    from bot.reports import build_session_recap, send_recap

    session = _session(date_)

    async def main() -> None:
        bot = _build(settings, secrets)
        try:
            if dry_run:
                from bot.deliver.console import ConsoleDestination

                recap_, _ = await build_session_recap(bot, session)
                message = bot.renderer.slack_template("recap", recap=recap_)
                await ConsoleDestination(None).post(message)
            else:
                # On demand is on purpose: a fresh dedupe key, so asking twice posts twice.
                now = utcnow()
                await send_recap(bot, session, now, key_suffix=now.isoformat())
                await bot.worker.flush()
        finally:
            await bot.aclose()

    asyncio.run(main())


@app.command()
def digest(config: ConfigOpt = None, date_: DateOpt = None, dry_run: DryRunOpt = False) -> None:
    """Build the email digest from stored history and send it (or write .eml + .html)."""
    settings, secrets = _load(config)
    _logging("WARNING", settings, secrets)
    from bot.engine import utcnow
    from bot.reports import send_digest

    session = _session(date_)

    async def main() -> int:
        bot = _build(settings, secrets)
        try:
            now = utcnow()
            suffix = now.strftime("%H%M%S")
            result = await send_digest(bot, session, now, dry_run=dry_run, key_suffix=suffix)
            await bot.worker.flush()
            failed = [
                item
                for item in bot.store.outbox()
                if item.category == "digest" and suffix in item.dedupe_key and item.state != "sent"
            ]
        finally:
            await bot.aclose()
        for path in result.files:
            print(path)
        if failed:
            reason = failed[0].last_error or failed[0].state
            err.print(f"[red]digest not sent:[/] {escape(reason)}")
            return 1
        if result.queued:
            print(f"digest for {session.date} sent via {', '.join(result.queued)}")
        return 0

    raise typer.Exit(asyncio.run(main()))


@app.command()
def replay(
    state: Annotated[
        Path, typer.Option("--state", help="The SQLite state file holding the session.")
    ],
    date_: Annotated[str, typer.Option("--date", help="Session date YYYY-MM-DD.")],
    config: ConfigOpt = None,
) -> None:
    """Re-run the rules and the policy over a recorded session with this config; send nothing.

    Prints each alert the config would raise, marked against the session's recorded alerts
    (same / new / gone), and per-rule counts."""
    settings, secrets = _load(config)
    _logging("WARNING", settings, secrets)
    try:  # no calendar lookup: the stored rows say whether the day was a session
        day = date.fromisoformat(date_).isoformat()
    except ValueError:
        err.print(f"[red]--date {date_!r}: not a date (YYYY-MM-DD)[/]")
        raise typer.Exit(2) from None
    if not state.is_file():
        err.print(f"[red]--state {escape(str(state))}: no such file[/]", soft_wrap=True)
        raise typer.Exit(2)
    from bot.render import Renderer
    from bot.replay import format_report
    from bot.replay import replay as run_replay
    from bot.rules import RULES
    from bot.store import Store

    store = Store(state)
    try:
        rows = store.history(day)
        recorded = store.alerts(day)
    finally:
        store.close()
    if not rows:
        err.print(f"[red]{escape(str(state))}: no stored responses for {day}[/]", soft_wrap=True)
        raise typer.Exit(1)
    result = run_replay(
        rows,
        recorded,
        rules={name: settings.rule_config(name) for name in RULES},
        watchlist=settings.watchlist.symbols,
        renderer=Renderer(settings.templates.dir, timezone=settings.schedule.timezone),
    )
    for line in format_report(result, settings.timezone):
        print(line)


outbox_app = typer.Typer(help="Inspect and repair the outbox: pending, dead and expired messages.")
app.add_typer(outbox_app, name="outbox")
StateOpt = Annotated[
    str | None, typer.Option("--state", help="pending, sent, dead or expired (default: all).")
]


def _store(config: Path | None) -> Store:
    settings, _ = _load(config)
    from bot.store import Store

    return Store(settings.state.target())  # PostgreSQL: libpq reads PGPASSWORD itself


@outbox_app.command("list")
def outbox_list(config: ConfigOpt = None, state: StateOpt = None) -> None:
    """List outbox rows, newest first: id, state, destination, kind, age, tries, last error."""
    from rich.table import Table

    from bot.store import OUTBOX_STATES

    if state is not None and state not in OUTBOX_STATES:
        err.print(f"[red]--state {escape(state)!r}: one of {', '.join(OUTBOX_STATES)}[/]")
        raise typer.Exit(2)
    store = _store(config)
    table = Table("id", "state", "destination", "kind", "queued (UTC)", "tries", "last error")
    for item in store.outbox(state):
        table.add_row(
            str(item.id),
            item.state,
            item.destination,
            item.category,
            item.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(item.attempts),
            escape(item.last_error or ""),
        )
    store.close()
    Console(width=160).print(table)


@outbox_app.command("retry")
def outbox_retry(
    item_id: Annotated[int | None, typer.Argument(help="Row id (see `outbox list`).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead and expired row.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Put a dead or expired row (or --all of them) back in the queue; a running bot sends it
    within seconds."""
    if (item_id is None) == (not all_):
        err.print("[red]give a row id or --all[/]")
        raise typer.Exit(2)
    store = _store(config)
    count = store.retry(None if all_ else item_id)
    store.close()
    print(f"{count} row(s) queued again")
    raise typer.Exit(0 if count or all_ else 1)


@outbox_app.command("purge")
def outbox_purge(
    older_than: Annotated[str, typer.Option("--older-than", help="Age: 7d, 12h or 30m.")],
    config: ConfigOpt = None,
) -> None:
    """Delete sent, dead and expired rows older than the given age (pending rows stay)."""
    from datetime import UTC, datetime, timedelta

    units = {"d": "days", "h": "hours", "m": "minutes"}
    amount, unit = older_than[:-1], older_than[-1:]
    if unit not in units or not amount.isdigit():
        err.print(f"[red]--older-than {escape(older_than)!r}: a number and d, h or m (7d)[/]")
        raise typer.Exit(2)
    store = _store(config)
    count = store.purge(datetime.now(UTC) - timedelta(**{units[unit]: int(amount)}))
    store.close()
    print(f"{count} row(s) purged")


silence_app = typer.Typer(help="Mute matching alerts for a while (they are recorded, not sent).")
app.add_typer(silence_app, name="silence")


@silence_app.command("add")
def silence_add(
    for_: Annotated[str, typer.Option("--for", help="How long: 2h, 90m, 1d, 1h30m.")],
    comment: Annotated[str, typer.Option("--comment", help="Why (shown in list and recap).")],
    rule: Annotated[
        list[str] | None, typer.Option("--rule", help="Rule name (repeatable).")
    ] = None,
    symbol: Annotated[
        list[str] | None, typer.Option("--symbol", help="Symbol (repeatable).")
    ] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="alert, follow_up, notice…")
    ] = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Board, e.g. zero_dte:heat.")
    ] = None,
    severity: Annotated[
        list[str] | None, typer.Option("--severity", help="info, warning, critical.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Silence alerts matching every key given (the same keys as routes) from now on; a
    running bot applies it from its next tick. Prints the silence id."""
    import getpass
    from datetime import UTC, datetime

    from bot.notices import NOTICES
    from bot.routes import RouteMatch
    from bot.rules import RULES
    from bot.silences import parse_duration

    known = [*RULES, *NOTICES]
    given = {"rule": rule, "symbol": symbol, "kind": kind, "source": source, "severity": severity}
    try:
        duration = parse_duration(for_)
        match = RouteMatch.model_validate({k: v for k, v in given.items() if v})
        unknown = sorted(set(match.rule or []) - set(known))
        if unknown:
            raise ValueError(f"--rule {unknown[0]!r}: known rules: {', '.join(known)}")
    except ValueError as exc:
        err.print(f"[red]silence not added:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    matchers = match.model_dump(exclude_none=True, mode="json")
    if not matchers:
        err.print(
            "[red]silence not added:[/] give at least one of --rule, --symbol, --kind, "
            "--source, --severity"
        )
        raise typer.Exit(2)
    store = _store(config)
    now = datetime.now(UTC)
    silence_id = store.add_silence(
        matchers,
        starts_at=now,
        ends_at=now + duration,
        comment=comment,
        created_by=getpass.getuser(),
    )
    store.close()
    print(silence_id)


def _matchers_text(matchers: dict[str, Any]) -> str:
    """``rule=candidate symbol=IWM,SPY`` for a table cell."""
    return " ".join(
        f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in matchers.items()
    )


@silence_app.command("list")
def silence_list(config: ConfigOpt = None) -> None:
    """Silences in force or still to come (stored and standing ones from the config)."""
    from datetime import UTC, datetime

    from rich.table import Table

    settings, _ = _load(config)
    store = _store(config)
    now = datetime.now(UTC)
    table = Table("id", "matches", "until (New York)", "by", "comment")
    zone = settings.timezone
    for s in store.silences(now):
        matches = _matchers_text(s.matchers)
        table.add_row(
            s.id,
            escape(matches),
            f"{s.ends_at.astimezone(zone):%Y-%m-%d %H:%M}",
            escape(s.created_by),
            escape(s.comment),
        )
    for i, standing in enumerate(settings.silences):
        matches = _matchers_text(standing.match.model_dump(exclude_none=True, mode="json"))
        table.add_row(
            f"config:{i}",
            escape(matches),
            f"daily {standing.start:%H:%M}-{standing.end:%H:%M}",
            "config",
            escape(standing.comment),
        )
    store.close()
    Console(width=160).print(table)


@silence_app.command("expire")
def silence_expire(
    silence_id: Annotated[int, typer.Argument(help="Silence id (see `silence list`).")],
    config: ConfigOpt = None,
) -> None:
    """End a silence now; a running bot alerts again from its next tick."""
    from datetime import UTC, datetime

    store = _store(config)
    ended = store.expire_silence(silence_id, datetime.now(UTC))
    store.close()
    if not ended:
        err.print(f"[red]no silence {silence_id} in force[/]")
        raise typer.Exit(1)
    print(f"silence {silence_id} expired")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
