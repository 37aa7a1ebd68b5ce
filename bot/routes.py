"""Routing and grouping: which destinations get an alert, and which alerts share a message.

The routing tree is plain data from the config (``[route]`` is the root, ``[[routes]]`` its
children, each with optional ``routes`` of its own), read depth-first as Alertmanager reads its
tree: the first route whose ``match`` fits takes the item, a matching child refines its parent,
children inherit ``destinations``, ``channel``, ``mention`` and ``group_min``, and ``continue =
true`` lets the next sibling match too. What nothing matched goes to the root's destinations.

Both stages are pure functions over frozen data, tested as tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.events import Category, Event, Severity

__all__ = [
    "MATCH_KEYS",
    "Batch",
    "RootRoute",
    "Routable",
    "RouteConfig",
    "RouteMatch",
    "Target",
    "group",
    "route",
    "validate_routes",
]

MATCH_KEYS = ("rule", "kind", "symbol", "source", "severity", "min_severity")


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class RouteMatch(BaseModel):
    """``match`` of a route: every key given must fit (a value or a list of values, any of
    which fits); an empty match fits everything.

    - ``rule``: rule name (``regime_flip``, ``candidate``, ``top_n``…) or notice name;
    - ``kind``: ``alert``, ``follow_up``, ``notice``, ``recap``, ``digest``;
    - ``symbol``: the underlying (upper case);
    - ``source``: the board (``options:buyers``, ``options:sellers``, ``zero_dte:<metric>``);
    - ``severity``: ``info``, ``warning``, ``critical``; ``min_severity``: that or above.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: list[str] | None = None
    kind: list[Category] | None = None
    symbol: list[str] | None = None
    source: list[str] | None = None
    severity: list[Severity] | None = None
    min_severity: Severity | None = None

    _lists = field_validator("rule", "kind", "symbol", "source", "severity", mode="before")(
        _as_list
    )

    @field_validator("symbol")
    @classmethod
    def _upper(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [s.strip().upper() for s in value]

    def fits(self, item: Routable) -> bool:
        """True when every key given fits ``item`` (a key ``item`` lacks does not fit)."""
        checks: list[tuple[Sequence[Any] | None, Any]] = [
            (self.rule, item.rule),
            (self.kind, item.kind),
            (self.symbol, item.symbol),
            (self.source, item.source),
            (self.severity, item.severity),
        ]
        if any(wanted is not None and value not in wanted for wanted, value in checks):
            return False
        if self.min_severity is not None:
            return item.severity is not None and item.severity.rank >= self.min_severity.rank
        return True


class RouteConfig(BaseModel):
    """One ``[[routes]]`` entry (or a child in its ``routes``). Unset options inherit from
    the parent: ``destinations`` (names from ``[[destinations]]``), ``channel`` (a Slack
    channel override), ``mention`` (e.g. ``"<!here>"``: the only way a mention reaches a
    message), ``group_min`` (alerts of one tick, route and rule that become one message)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    match: RouteMatch = RouteMatch()
    destinations: list[str] | None = None
    channel: str | None = None
    mention: str | None = None
    group_min: int | None = Field(None, ge=0)
    continue_: bool = Field(False, alias="continue")
    routes: list[RouteConfig] = Field(default_factory=list)


class RootRoute(BaseModel):
    """``[route]``: where what no ``[[routes]]`` entry matched goes, and the defaults every
    route inherits. Empty ``destinations`` = every configured destination."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    destinations: list[str] = Field(default_factory=list)
    channel: str | None = None
    mention: str | None = None
    group_min: int = Field(3, ge=0)


@dataclass(frozen=True, slots=True)
class Routable:
    """What routes look at. ``rule`` is ``None`` for the recap and digest; ``symbol``,
    ``source`` and ``severity`` are ``None`` where the item has none."""

    kind: Category
    rule: str | None = None
    symbol: str | None = None
    source: str | None = None
    severity: Severity | None = None

    @classmethod
    def of(cls, event: Event) -> Routable:
        """The routing facts of an event."""
        return cls(event.category, event.rule, event.symbol, event.source, event.severity)


@dataclass(frozen=True, slots=True)
class Target:
    """One place an item goes: the ``destination`` name, the Slack ``channel`` override,
    the ``mention`` to prefix, ``group_min``, and ``route`` (``root`` or a path such as
    ``routes[1].routes[0]``, for logs and tests)."""

    destination: str
    channel: str | None
    mention: str | None
    group_min: int
    route: str


@dataclass(frozen=True, slots=True)
class _Options:
    destinations: tuple[str, ...]
    channel: str | None
    mention: str | None
    group_min: int

    def under(self, r: RouteConfig) -> _Options:
        return _Options(
            tuple(r.destinations) if r.destinations is not None else self.destinations,
            r.channel if r.channel is not None else self.channel,
            r.mention if r.mention is not None else self.mention,
            r.group_min if r.group_min is not None else self.group_min,
        )

    def targets(self, path: str) -> list[Target]:
        return [
            Target(d, self.channel, self.mention or None, self.group_min, path)
            for d in self.destinations
        ]


def route(
    item: Routable,
    routes: Sequence[RouteConfig],
    root: RootRoute,
    all_destinations: Sequence[str],
) -> list[Target]:
    """The targets of ``item``: depth-first, first match wins unless ``continue``; a matching
    route with no matching child takes the item itself; nothing matched → the root.

    ``all_destinations`` stands in for an empty root ``destinations``. A destination reached
    twice (through ``continue``) gets the item once, with the first route's options.
    """
    base = _Options(
        tuple(root.destinations or all_destinations), root.channel, root.mention, root.group_min
    )
    targets, matched = _walk(item, routes, base, "routes")
    if not matched:
        targets = base.targets("root")
    seen: set[str] = set()
    unique = []
    for target in targets:
        if target.destination not in seen:
            seen.add(target.destination)
            unique.append(target)
    return unique


def _walk(
    item: Routable, routes: Sequence[RouteConfig], inherited: _Options, path: str
) -> tuple[list[Target], bool]:
    targets: list[Target] = []
    matched = False
    for i, r in enumerate(routes):
        if not r.match.fits(item):
            continue
        here = f"{path}[{i}]"
        options = inherited.under(r)
        child_targets, child_matched = _walk(item, r.routes, options, f"{here}.routes")
        targets += child_targets if child_matched else options.targets(here)
        matched = True
        if not r.continue_:
            break
    return targets, matched


def validate_routes(
    routes: Sequence[RouteConfig],
    root: RootRoute,
    destinations: Iterable[str],
    known: Mapping[str, Iterable[str]],
) -> None:
    """Check every destination name and match value against what exists.

    ``known`` maps a match key (``rule``, ``source``) to its known values. Raises
    ``ValueError("[routes[0].match.rule]: unknown rule 'x'; known: …")``: the key path, the
    bad value and the known names."""
    names = sorted(destinations)
    for name in root.destinations:
        if name not in names:
            raise ValueError(
                f"[route.destinations]: unknown destination {name!r}; known: {', '.join(names)}"
            )
    _check(routes, "routes", names, known)


def _check(
    routes: Sequence[RouteConfig],
    path: str,
    names: list[str],
    known: Mapping[str, Iterable[str]],
) -> None:
    for i, r in enumerate(routes):
        here = f"{path}[{i}]"
        for name in r.destinations or []:
            if name not in names:
                raise ValueError(
                    f"[{here}.destinations]: unknown destination {name!r}; "
                    f"known: {', '.join(names) or 'none'}"
                )
        for key, values in known.items():
            allowed = sorted(values)
            for value in getattr(r.match, key) or []:
                if value not in allowed:
                    raise ValueError(
                        f"[{here}.match.{key}]: unknown {key} {value!r}; "
                        f"known: {', '.join(allowed)}"
                    )
        _check(r.routes, f"{here}.routes", names, known)


# --------------------------------------------------------------------------------- grouping
@dataclass(frozen=True, slots=True)
class Batch:
    """The events of one tick that go to one ``target`` as one message: a single event, or a
    group of at least ``target.group_min`` top-level alerts of the same rule."""

    target: Target
    events: tuple[Event, ...]

    @property
    def grouped(self) -> bool:
        """True for a group message (more than one event)."""
        return len(self.events) > 1


def group(routed: Sequence[tuple[Event, Target]]) -> list[Batch]:
    """Batch one tick's routed events, keeping their order: top-level alerts of the same rule
    going to the same target become one batch when there are at least ``group_min`` of them
    (``group_min`` 0 or 1 never groups); follow-ups and the rest stay one batch each, placed
    where their first event was."""
    buckets: dict[tuple[Target, str], list[Event]] = {}
    for event, target in routed:
        if event.category is Category.ALERT:
            buckets.setdefault((target, event.rule), []).append(event)
    out: list[Batch] = []
    placed: set[tuple[Target, str]] = set()
    for event, target in routed:
        key = (target, event.rule)
        members = buckets.get(key, []) if event.category is Category.ALERT else []
        if len(members) >= max(target.group_min, 2):
            if key not in placed:
                placed.add(key)
                out.append(Batch(target, tuple(members)))
            continue
        out.append(Batch(target, (event,)))
    return out
