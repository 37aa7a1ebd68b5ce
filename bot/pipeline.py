"""The alert pipeline of one tick, in order, as pure functions over frozen data:

    detect → silence → policy → enrich → route → group → render

:func:`run` is the one place that lists the stages. Fetching before it and the outbox after it
are the engine's edges (:mod:`bot.engine`, :mod:`bot.store`); delivery is the outbox worker's
(:mod:`bot.outbox`). Nothing here reads a clock, a file or the network: ``now`` comes from the
tick and what the store remembers comes in as two lookups, so a test, the demo or a replay can
drive every stage with a fixed or simulated clock. ``enrich`` adds what the engine fetched for
the alerts about to be sent (the 0DTE drill-down, :mod:`bot.drill`) to their events' context.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from markupsafe import Markup

from bot.deliver.base import AlertRef
from bot.drill import Drill, enrich
from bot.escape import finish, markdown_escape, slack_escape
from bot.events import Category, Dialect, Event, Message, Severity
from bot.outbox import message_payload
from bot.policy import Decision, Reason, decide
from bot.render import Renderer
from bot.routes import Batch, RootRoute, Routable, RouteConfig, Target, group, route
from bot.rules import RULES, DetectContext, Memory, RuleConfig
from bot.silences import Silence, matching
from bot.snapshot import MarketSnapshot
from bot.store import NewAlert, NewMessage

__all__ = [
    "GROUP_MAX_LINES",
    "Lookups",
    "PipelineConfig",
    "TickResult",
    "detect",
    "render",
    "route_all",
    "run",
    "silence",
]

log = logging.getLogger("flowbot.pipeline")

GROUP_MAX_LINES = 20
"""Alert lines one group message shows; the rest are counted ("and N more")."""


@dataclass(frozen=True, slots=True)
class Lookups:
    """What the policy stage may ask the store: ``last_alerted(alert_key, state)`` → UTC or
    ``None``; ``parent_alerted(alert_key)`` → whether that alert exists this session."""

    last_alerted: Callable[[str, str], datetime | None]
    parent_alerted: Callable[[str], bool]


@dataclass(frozen=True)
class PipelineConfig:
    """What the stages need from the config, resolved once at start.

    - ``rules``: rule name → validated config (every registered rule).
    - ``routes`` / ``root``: the routing tree; ``alert_destinations``: what an empty root
      means; ``dialects``: destination name → the dialect it is rendered in.
    - ``renderer``: the Jinja renderer (templates are data, rendering is pure).
    """

    rules: Mapping[str, RuleConfig]
    routes: Sequence[RouteConfig]
    root: RootRoute
    alert_destinations: Sequence[str]
    dialects: Mapping[str, Dialect]
    renderer: Renderer


@dataclass(frozen=True)
class TickResult:
    """What one tick decided: every ``event`` raised, the policy ``decisions`` (sent and
    held, with named reasons), the ``alerts`` to record, the outbox ``messages`` and each
    rule's new ``memory`` (stored with the tick's snapshots)."""

    events: list[Event] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    alerts: list[NewAlert] = field(default_factory=list)
    messages: list[NewMessage] = field(default_factory=list)
    memory: dict[str, Memory] = field(default_factory=dict)


def run(
    prev: MarketSnapshot,
    curr: MarketSnapshot,
    ctx: DetectContext,
    *,
    notices: Sequence[Event] = (),
    session: str,
    config: PipelineConfig,
    lookups: Lookups,
    expires_at: Callable[[], datetime | None],
    silences: Sequence[Silence] = (),
    drills: Mapping[str, Drill] | None = None,
) -> TickResult:
    """The whole pipeline for one tick, stage by stage. ``ctx.memory`` holds every rule's
    memory from the last tick (rule name → memory); ``notices``: the bot's own events of this
    tick (:mod:`bot.notices`), which follow the rules' events; ``silences``: those in force;
    ``drills``: symbol → drill-down for the 0DTE alerts sent this tick (the engine fetches
    them for :func:`bot.drill.wanted` of a first run, then runs again with them);
    ``expires_at()``: when this tick's messages stop being worth sending (UTC), asked only
    when there is a message (it may need the exchange calendar)."""
    detected, memory = detect(prev, curr, config.rules, ctx)
    events = detected + list(notices)
    events, silenced = silence(events, silences, ctx.now)
    decisions = decide(
        events,
        now=ctx.now,
        cooldown_minutes={name: cfg.cooldown_minutes for name, cfg in config.rules.items()},
        last_alerted=lookups.last_alerted,
        parent_alerted=lookups.parent_alerted,
    )
    decisions = enrich(decisions, drills or {})
    sent = [d for d in decisions if d.send]
    decisions += silenced
    for d in decisions:
        if not d.send:
            log.info("held %s %s (%s)", d.event.kind, d.event.symbol, d.reason)
    batches = group(route_all([d.event for d in sent], config))
    alerts = [
        NewAlert(d.event, d.reason, _summary(config.renderer, d.event, d.reason)) for d in sent
    ]
    alerts += [  # recorded with the silence's id, never sent
        NewAlert(d.event, d.reason, _summary(config.renderer, d.event, d.reason), d.silence_id)
        for d in silenced
    ]
    reasons = {id(d.event): d.reason for d in sent}
    index = {id(d.event): i for i, d in enumerate(sent)}
    expiry = expires_at() if batches else None
    messages = [
        render(batch, config, reasons, index, session=session, now=ctx.now, expires_at=expiry)
        for batch in batches
    ]
    return TickResult(events, decisions, alerts, messages, memory)


# ------------------------------------------------------------------------------------ stages
def detect(
    prev: MarketSnapshot,
    curr: MarketSnapshot,
    rules: Mapping[str, RuleConfig],
    ctx: DetectContext,
) -> tuple[list[Event], dict[str, Memory]]:
    """Every enabled rule's events for (``prev``, ``curr``), in registry order, and each
    rule's new memory. ``ctx.memory`` maps rule name → that rule's memory of the last tick;
    each rule sees only its own."""
    events: list[Event] = []
    memory: dict[str, Memory] = {}
    for name, spec in RULES.items():
        cfg = rules[name]
        if cfg.enabled:
            own = replace(ctx, memory=ctx.memory.get(name, {}))
            detection = spec.detect(prev, curr, cfg, own)
            events += detection.events
            memory[name] = detection.memory
    return events, memory


def silence(
    events: list[Event], silences: Sequence[Silence], now: datetime
) -> tuple[list[Event], list[Decision]]:
    """Split ``events`` into those no silence covers at ``now`` and, held, the rest: each a
    :class:`Decision` with reason ``silenced`` and the covering silence's id."""
    kept: list[Event] = []
    held: list[Decision] = []
    for event in events:
        covering = matching(event, silences, now)
        if covering is None:
            kept.append(event)
        else:
            held.append(Decision(event, Reason.SILENCED, covering.id))
    return kept, held


def route_all(events: Sequence[Event], config: PipelineConfig) -> list[tuple[Event, Target]]:
    """Each event with each of its targets (see :func:`bot.routes.route`), in event order."""
    return [
        (event, target)
        for event in events
        for target in route(
            Routable.of(event), config.routes, config.root, config.alert_destinations
        )
    ]


def render(
    batch: Batch,
    config: PipelineConfig,
    reasons: Mapping[int, str],
    index: Mapping[int, int],
    *,
    session: str,
    now: datetime,
    expires_at: datetime | None,
) -> NewMessage:
    """The outbox row of one batch: the message in its destination's dialect (a group
    message for several alerts), the alerts it carries and the routing facts."""
    target = batch.target
    dialect = config.dialects[target.destination]
    first = batch.events[0]
    if batch.grouped:
        message = _group_message(config.renderer, batch.events, reasons, dialect)
        key = f"group:{first.rule}:{now.isoformat()}:{target.destination}"
    else:
        message = _event_message(config.renderer, first, reasons.get(id(first)), dialect)
        key = f"alert:{first.alert_key}:{first.state}:{now.isoformat()}:{target.destination}"
    refs = [_ref(e).to_json() for e in batch.events]
    return NewMessage(
        dedupe_key=key,
        destination=target.destination,
        category=first.category.value,
        payload=message_payload(message),
        session=session,
        alerts=tuple(index[id(e)] for e in batch.events),
        meta={"alerts": refs, "mention": target.mention, "channel": target.channel},
        thread_parent=first.thread_parent if first.follow_up else None,
        expires_at=expires_at,
    )


# ---------------------------------------------------------------------------------- helpers
def _ref(event: Event) -> AlertRef:
    return AlertRef(
        rule=event.rule,
        symbol=event.symbol,
        state=event.state,
        severity=event.severity,
        board=event.board,
        as_of=event.occurred_at,
        key=event.alert_key,
    )


def _event_message(
    renderer: Renderer,
    event: Event,
    reason: str | None,
    dialect: Dialect,
    *,
    finished: bool = True,
) -> Message:
    try:
        return renderer.slack(event, reason, dialect, finished=finished)
    except Exception:
        # A broken (user-overridden) template must not lose the alert: send plain text.
        log.exception("template %s failed; sending the plain fallback", event.kind)
        plain = f"{event.kind.replace('_', ' ')}: {event.symbol} ({event.state})"
        text = slack_escape(plain) if dialect is Dialect.SLACK else markdown_escape(plain)
        if finished and dialect is not Dialect.SLACK:
            text = finish(text, dialect)
        return Message(kind=event.kind, text=text, severity=event.severity, dialect=dialect)


def _summary(renderer: Renderer, event: Event, reason: str) -> str:
    """The alert's one-line plain text, for the recap and digest lists (escaped by them)."""
    return _event_message(renderer, event, reason, Dialect.PLAIN).text


def _group_message(
    renderer: Renderer,
    events: Sequence[Event],
    reasons: Mapping[int, str],
    dialect: Dialect,
) -> Message:
    """One message for several alerts of one rule: a header that counts them and one line
    each (the alert's own one-line text), ``and N more`` beyond :data:`GROUP_MAX_LINES`."""
    lines = [
        Markup(_event_message(renderer, e, reasons.get(id(e)), dialect, finished=False).text)
        for e in events[:GROUP_MAX_LINES]
    ]
    severity = max((e.severity for e in events), key=lambda s: s.rank, default=Severity.INFO)
    context: dict[str, Any] = {
        "rule": events[0].rule,
        "count": len(events),
        "lines": lines,
        "more": max(len(events) - GROUP_MAX_LINES, 0),
        "symbols": sorted({e.symbol for e in events}),
        "severity": severity.value,
        "category": Category.ALERT.value,
    }
    message = renderer.slack_template("group", dialect, **context)
    return Message(
        kind="group",
        text=message.text,
        blocks=message.blocks,
        severity=severity,
        dialect=dialect,
    )
