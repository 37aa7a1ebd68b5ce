"""``flowbot replay``: re-run the rules and the policy over a recorded session, send nothing.

The store keeps each distinct response of a session with the UTC time it was observed
(``snapshot_history``, :meth:`bot.store.Store.history`). Replay plays those rows back in
observed order as the engine's ticks would have seen them (per time: the watchlist sources,
then the leaderboards, then the cumulative flow, each one tick of
:func:`bot.pipeline.detect` → :func:`bot.policy.decide`), with rule memory fresh from the
session's start, no silence, and cooldowns looked up in an in-memory alert log of the replay
itself. The alerts it would raise are then marked against those the session recorded:

- ``same``: raised by both (same kind, rule, board, symbol, state and time);
- ``new``: raised only by the replay (the config given lets it through);
- ``gone``: recorded only (the config given would have held it).

Notices (the bot's own trouble) and silenced alerts are left out of both sides: replay has no
network and no silence. A poll whose response was identical to the previous one is not stored,
so replay sees no observation for it (rules treat that as "nothing new", as after a failed poll).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from zoneinfo import ZoneInfo

from bot.api.sources import SOURCES
from bot.autowatch import auto_from_rows
from bot.events import AlertRecord, Dialect, Event
from bot.notices import NOTICES
from bot.pipeline import detect
from bot.policy import decide
from bot.render import Renderer
from bot.rules import DetectContext, Memory, RuleConfig
from bot.snapshot import MarketSnapshot, snapshot_from_rows
from bot.store import SnapshotRow

__all__ = ["Mark", "Marked", "ReplayResult", "format_report", "replay", "ticks"]

log = logging.getLogger("flowbot.replay")

_GROUPS = ("symbols", "leaderboards", "cumulative")
"""The engine's jobs, in the order a tick runs them (``poll_symbols``, ``poll_leaderboards``,
``poll_cumulative``)."""


def _group(source: str) -> str | None:
    spec = SOURCES.get(source)
    if spec is None:
        return None  # rule memory, the auto-watch list: state, not responses
    if source == "cumulative":
        return "cumulative"
    return "symbols" if spec.per_symbol else "leaderboards"


def ticks(rows: Iterable[SnapshotRow]) -> list[tuple[datetime, list[SnapshotRow]]]:
    """The engine cycles ``rows`` came from: ``(observed_at UTC, the rows of one job)``, in
    time order and, at one time, in the engine's job order (watchlist sources, leaderboards,
    cumulative). Rows that are no response (``memory:<rule>``, ``auto:-``) are left out."""
    out: list[tuple[datetime, list[SnapshotRow]]] = []
    ordered = sorted(rows, key=lambda r: r.observed_at)
    for at, same_time in groupby(ordered, key=lambda r: r.observed_at):
        jobs: dict[str, list[SnapshotRow]] = defaultdict(list)
        for row in same_time:
            group = _group(row.source)
            if group is not None:
                jobs[group].append(row)
        out += [(at, jobs[g]) for g in _GROUPS if jobs.get(g)]
    return out


class Mark:
    """How a replayed or recorded alert compares: ``same``, ``new`` (replay only) or ``gone``
    (recorded only)."""

    SAME = "same"
    NEW = "new"
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class Marked:
    """One line of the comparison: ``mark``, the alert's ``rule``, ``kind``, ``symbol``,
    ``board`` (``None`` for per-symbol rules), ``state``, ``at`` (the event's time, UTC) and
    its one-line ``summary`` (the replay's rendering for same/new, the recorded one for gone)."""

    mark: str
    rule: str
    kind: str
    symbol: str
    board: str | None
    state: str
    at: datetime
    summary: str


@dataclass(frozen=True)
class ReplayResult:
    """What a replay found: ``lines`` (every alert of either side, in time order, marked),
    ``ticks`` (engine cycles replayed) and ``counts``: rule → mark → number."""

    lines: list[Marked]
    ticks: int
    counts: Mapping[str, Counter[str]] = field(default_factory=dict)


def replay(
    rows: Sequence[SnapshotRow],
    recorded: Sequence[AlertRecord],
    *,
    rules: Mapping[str, RuleConfig],
    watchlist: Sequence[str],
    renderer: Renderer,
) -> ReplayResult:
    """Replay one session's stored ``rows`` (:meth:`bot.store.Store.history`) with ``rules``
    (rule name → config, every registered rule) and ``watchlist``, and mark what it raises
    against ``recorded`` (:meth:`bot.store.Store.alerts` of the session). The session's
    auto-watched symbols (its stored ``auto`` row) join the watchlist from the tick after
    they joined, as they did live. Pure but for logging: no clock, no network, nothing
    stored."""
    auto = auto_from_rows(rows)
    market = MarketSnapshot()
    memory: dict[str, Memory] = {}
    last: dict[tuple[str, str], datetime] = {}  # the replay's own alert log, for cooldowns
    parents: set[str] = set()
    cooldowns = {name: cfg.cooldown_minutes for name, cfg in rules.items()}
    raised: list[tuple[Event, str]] = []
    cycles = ticks(rows)
    for now, job in cycles:
        current = market.merged(snapshot_from_rows(job))
        joined = [a.symbol for a in auto if a.since < now]
        ctx = DetectContext(now=now, watchlist=[*watchlist, *joined], memory=memory)
        events, new_memory = detect(market, current, rules, ctx)
        for decision in decide(
            events,
            now=now,
            cooldown_minutes=cooldowns,
            last_alerted=lambda key, state: last.get((key, state)),
            parent_alerted=lambda key: key in parents,
        ):
            if not decision.send:
                continue
            event = decision.event
            last[(event.alert_key, event.state)] = now
            if not event.follow_up:
                parents.add(event.alert_key)
            raised.append((event, decision.reason.value))
        market = current
        memory.update(new_memory)
    return _compare(raised, recorded, renderer, len(cycles))


def _compare(
    raised: Sequence[tuple[Event, str]],
    recorded: Sequence[AlertRecord],
    renderer: Renderer,
    cycles: int,
) -> ReplayResult:
    def key(kind: str, alert_key: str, state: str, at: datetime) -> tuple[str, str, str, str]:
        return (kind, alert_key, state, at.isoformat())

    told = [a for a in recorded if a.rule not in NOTICES and a.outcome != "silenced"]
    remaining = Counter(key(a.kind, a.alert_key, a.state, a.occurred_at) for a in told)
    lines: list[Marked] = []
    for event, reason in raised:
        k = key(event.kind, event.alert_key, event.state, event.occurred_at)
        mark = Mark.SAME if remaining[k] > 0 else Mark.NEW
        remaining[k] -= 1
        lines.append(
            Marked(
                mark,
                event.rule,
                event.kind,
                event.symbol,
                event.board,
                event.state,
                event.occurred_at,
                _summary(renderer, event, reason),
            )
        )
    for alert in told:
        k = key(alert.kind, alert.alert_key, alert.state, alert.occurred_at)
        if remaining[k] > 0:
            remaining[k] -= 1
            lines.append(
                Marked(
                    Mark.GONE,
                    alert.rule,
                    alert.kind,
                    alert.symbol,
                    alert.board,
                    alert.state,
                    alert.occurred_at,
                    alert.summary,
                )
            )
    lines.sort(key=lambda m: m.at)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        counts[line.rule][line.mark] += 1
    return ReplayResult(lines, cycles, dict(sorted(counts.items())))


def _summary(renderer: Renderer, event: Event, reason: str) -> str:
    try:
        return renderer.slack(event, reason, Dialect.PLAIN).text
    except Exception:  # a broken (user-overridden) template: the replay still compares
        log.exception("template %s failed", event.kind)
        return f"{event.kind.replace('_', ' ')}: {event.symbol} ({event.state})"


def format_report(result: ReplayResult, zone: ZoneInfo) -> list[str]:
    """The replay as plain text lines: one per alert (``same`` / ``new`` / ``gone``, the time in
    ``zone``, the rule and the alert's first line), then per-rule counts and the totals."""
    out: list[str] = []
    for line in result.lines:
        first = line.summary.strip().splitlines()[0] if line.summary.strip() else line.kind
        at = line.at.astimezone(zone).strftime("%H:%M:%S")
        out.append(f"{line.mark:<4}  {at}  {line.rule:<15} {first}")
    out.append("")
    total: Counter[str] = Counter()
    for rule, counts in result.counts.items():
        total.update(counts)
        out.append(f"{rule:<15} {_counts(counts)}")
    out.append(f"{'all':<15} {_counts(total)} · {result.ticks} ticks replayed")
    return out


def _counts(counts: Counter[str]) -> str:
    recorded = counts[Mark.SAME] + counts[Mark.GONE]
    replayed = counts[Mark.SAME] + counts[Mark.NEW]
    return (
        f"recorded {recorded}, replayed {replayed} "
        f"(same {counts[Mark.SAME]}, new {counts[Mark.NEW]}, gone {counts[Mark.GONE]})"
    )
