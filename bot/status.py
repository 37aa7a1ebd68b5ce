"""What the HTTP listener reports about a running bot: readiness reasons and the status page's
view (today's alerts, source health, silences, outbox), read from the bot's parts, never
changing them. Times are UTC here; the page shows them in New York time.

Nothing secret reaches a view: the objects read hold no key, token or URL, and the one free
error text shown (a destination's last delivery error) passes through :func:`scrub`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bot.budget import sources_for
from bot.engine import session_of
from bot.events import AlertRecord
from bot.metrics import Metrics
from bot.render import duration, nytime
from bot.silences import Silence, active
from bot.store import DEAD

if TYPE_CHECKING:
    from bot.app import Bot

__all__ = [
    "FRESH_WITHIN",
    "STUCK_AFTER",
    "OutboxRow",
    "SourceRow",
    "Status",
    "last_answers",
    "readiness",
    "scrub",
    "status",
]

FRESH_WITHIN = timedelta(minutes=5)
"""Ready only if some source answered within this (while in session)."""
STUCK_AFTER = timedelta(minutes=10)
LEADER_SILENT_AFTER = timedelta(seconds=30)
"""A leader whose heartbeat (every 5 s) is older than this is taken for gone."""
"""A destination whose oldest pending outbox row is older than this is stuck."""
DEAD_SCAN_LIMIT = 1000
ERROR_CHARS = 200

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_TOKEN = re.compile(r"\bxox[a-z]-[A-Za-z0-9-]+")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` fit to show: every URL (a webhook URL is a secret) → ``<url>``, every Slack
    token and every value in ``secrets`` → ``***``, cut to 200 characters."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _TOKEN.sub("***", _URL.sub("<url>", text))
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def last_answers(metrics: Metrics) -> dict[str, datetime]:
    """Per source, the last successful response (UTC), from the
    ``flowbot_source_last_success_timestamp_seconds`` gauge the engine sets on each answer."""
    out: dict[str, datetime] = {}
    for family in metrics.last_success.collect():
        for sample in family.samples:
            out[sample.labels["source"]] = datetime.fromtimestamp(sample.value, UTC)
    return out


def readiness(
    bot: Bot,
    now: datetime,
    *,
    running: bool,
    in_session: bool = True,
    fresh_within: timedelta = FRESH_WITHIN,
    stuck_after: timedelta = STUCK_AFTER,
) -> list[str]:
    """Why the bot is not ready at ``now`` (UTC); an empty list means ready.

    Not ready when: the scheduler is not ``running``; FlashAlpha rejected the key (HTTP 401,
    :attr:`bot.health.SourceHealth.auth_failed`); while ``in_session``, no source answered
    within ``fresh_within`` (or the quota is paused); a destination's oldest pending outbox
    row is older than ``stuck_after``. A follower replica (it does not poll) is ready while
    a leader's heartbeat is fresh. Each reason is one short sentence for people."""
    reasons: list[str] = []
    health = bot.engine.health
    if not running:
        reasons.append("scheduler not running")
    if health.auth_failed:
        reasons.append("FlashAlpha rejected the API key (HTTP 401)")
    if not bot.leading:
        reasons.extend(_no_leader(bot, now))
    elif in_session and not health.auth_failed:
        if health.paused_until is not None and now < health.paused_until:
            reasons.append(f"API quota spent: paused until {nytime(health.paused_until)}")
        answers = last_answers(bot.metrics)
        latest = max(answers.values(), default=None)
        if latest is None:
            reasons.append("no source has answered yet")
        elif now - latest > fresh_within:
            reasons.append(
                f"no source answered in the last {duration(fresh_within)} "
                f"(last at {nytime(latest)}, {duration(now - latest)} ago)"
            )
    for name, (count, oldest) in sorted(bot.store.outbox_depth().items()):
        if oldest is not None and now - oldest > stuck_after:
            reasons.append(
                f"outbox stuck: {name} has {count} row(s) waiting, "
                f"the oldest for {duration(now - oldest)}"
            )
    return reasons


def _no_leader(bot: Bot, now: datetime) -> list[str]:
    """A follower is ready while some replica leads (its heartbeat is fresh)."""
    leaders = [r for r in bot.store.replicas() if r.role == "leader"]
    if any(now - r.seen_at <= LEADER_SILENT_AFTER for r in leaders):
        return []
    if not leaders:
        return ["no replica leads: nothing polls the API"]
    last = max(r.seen_at for r in leaders)
    return [f"no replica leads: the last leader was seen {duration(now - last)} ago"]


@dataclass(frozen=True, slots=True)
class ReplicaView:
    """One replica on the status page: ``role`` (``leader`` / ``follower``), how long it
    has led, ``seen_age`` since its last heartbeat, its outbox ``claims`` in flight,
    ``this`` for the replica serving the page, ``silent`` past :data:`LEADER_SILENT_AFTER`."""

    id: str
    role: str
    led_for: timedelta | None
    seen_age: timedelta
    claims: int
    this: bool
    silent: bool


def _replicas(bot: Bot, now: datetime) -> list[ReplicaView]:
    claims = bot.store.claims(now)
    return [
        ReplicaView(
            id=r.id,
            role=r.role,
            led_for=now - r.leader_since if r.leader_since else None,
            seen_age=max(now - r.seen_at, timedelta(0)),
            claims=claims.get(r.id, 0),
            this=r.id == bot.replica,
            silent=now - r.seen_at > LEADER_SILENT_AFTER,
        )
        for r in bot.store.replicas()
    ]


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One source (``summary``, ``anomaly``, ``options_leaderboard``,
    ``zero_dte_leaderboard``): ``last_answer`` UTC (``None`` = none this run), ``age`` since
    then, ``state`` in words (``ok``, ``failing …``, ``disabled: needs the Alpha plan``,
    ``not in the growth plan: not polled``) and its ``level`` for colour: ``ok``, ``warn``
    (failing, no answer yet), ``bad`` (disabled) or ``muted`` (not polled)."""

    source: str
    last_answer: datetime | None
    age: timedelta | None
    state: str
    level: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One destination's queue: ``depth`` pending rows, ``oldest_age`` of the oldest
    (``None`` when empty), ``dead`` rows in the dead letters, the head row's scrubbed
    ``last_error`` (``None`` when it has not failed), ``stuck`` past :data:`STUCK_AFTER`."""

    destination: str
    depth: int
    oldest_age: timedelta | None
    dead: int
    last_error: str | None
    stuck: bool


@dataclass(frozen=True, slots=True)
class Status:
    """Everything the status page shows, at ``now`` (UTC) for ``session`` (New York date).

    ``alerts``: the session's alert log, newest first; ``reasons``: :func:`readiness`;
    ``silences``: stored and standing silences in force; ``unknown_symbols``: symbols the
    API answered 404 for; ``paused_until``: quota pause end (UTC) if paused; ``replicas``:
    the cluster (one row with SQLite); ``state``: the database, password hidden."""

    now: datetime
    session: str
    reasons: list[str]
    alerts: list[AlertRecord]
    sources: list[SourceRow]
    auth_failed: bool
    paused_until: datetime | None
    unknown_symbols: list[str]
    silences: list[Silence]
    outbox: list[OutboxRow]
    outcomes: dict[str, int] = field(default_factory=dict)
    replicas: list[ReplicaView] = field(default_factory=list)
    state: str = ""

    @property
    def ready(self) -> bool:
        """True when :attr:`reasons` is empty."""
        return not self.reasons


def _sources(bot: Bot, now: datetime) -> list[SourceRow]:
    health = bot.engine.health
    symbol_sources, board_sources, skipped = sources_for(bot.settings)
    polled = dict.fromkeys([*symbol_sources, *(s.split(":")[0] for s in board_sources)])
    answers = last_answers(bot.metrics)
    rows: list[SourceRow] = []
    for source in [*polled, *dict.fromkeys(s.split(":")[0] for s in skipped)]:
        last = answers.get(source)
        failing = sorted(key for (src, key), n in health.failures.items() if src == source and n)
        if source not in polled:
            state, level = f"not in the {bot.settings.flashalpha.plan} plan: not polled", "muted"
        elif source in health.disabled:
            needs = health.disabled[source]  # a plan name, or "a config fix" after a 400
            needs = needs if needs.startswith("a ") else f"the {needs} plan"
            state, level = f"disabled: needs {needs}", "bad"
        elif failing:
            worst = max(health.failures[(source, k)] for k in failing)
            state = f"failing for {', '.join(failing)} ({worst} cycle(s) in a row)"
            level = "warn"
        elif last is None:
            state, level = "no answer yet", "warn"
        else:
            state, level = "ok", "ok"
        age = now - last if last is not None else None
        rows.append(SourceRow(source, last, age, state, level))
    return rows


def _outbox(bot: Bot, now: datetime, stuck_after: timedelta) -> list[OutboxRow]:
    depth = bot.store.outbox_depth()
    dead: dict[str, int] = {}
    for item in bot.store.outbox(DEAD, limit=DEAD_SCAN_LIMIT):
        dead[item.destination] = dead.get(item.destination, 0) + 1
    secrets = bot.secrets.values()
    rows = []
    for name in sorted({*bot.destinations.by_name, *depth, *dead}):
        count, oldest = depth.get(name, (0, None))
        head = bot.store.pending(name, limit=1) if count else []
        error = head[0].last_error if head else None
        age = now - oldest if oldest is not None else None
        rows.append(
            OutboxRow(
                destination=name,
                depth=count,
                oldest_age=age,
                dead=dead.get(name, 0),
                last_error=scrub(error, secrets) if error else None,
                stuck=age is not None and age > stuck_after,
            )
        )
    return rows


def status(
    bot: Bot,
    now: datetime,
    reasons: list[str],
    *,
    stuck_after: timedelta = STUCK_AFTER,
) -> Status:
    """The status page's view of ``bot`` at ``now`` (UTC), with the :func:`readiness`
    ``reasons``."""
    session = session_of(now)
    alerts = list(reversed(bot.store.alerts(session)))
    outcomes: dict[str, int] = {}
    for alert in alerts:
        outcomes[alert.outcome] = outcomes.get(alert.outcome, 0) + 1
    stored = bot.store.silences(now)
    health = bot.engine.health
    paused = health.paused_until if health.paused_until and now < health.paused_until else None
    return Status(
        now=now,
        session=session,
        reasons=reasons,
        alerts=alerts,
        sources=_sources(bot, now),
        auth_failed=health.auth_failed,
        paused_until=paused,
        unknown_symbols=sorted(health.unknown_symbols),
        silences=active(stored, bot.settings.silences, now),
        outbox=_outbox(bot, now, stuck_after),
        outcomes=outcomes,
        replicas=_replicas(bot, now),
        state=bot.store.describe(),
    )
