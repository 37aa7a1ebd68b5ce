"""Routing and grouping as tables: (config, item) → destinations; routed events → messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.events import Category, Event, Severity
from bot.routes import RootRoute, Routable, RouteConfig, Target, group, route, validate_routes

ALL = ["slack", "discord", "ops", "mail"]

DESK = [
    # candidates to their own channel with @here, and on to Discord as well
    {
        "match": {"rule": "candidate"},
        "destinations": ["slack"],
        "channel": "#candidates",
        "mention": "<!here>",
        "continue": True,
    },
    {"match": {"rule": "candidate"}, "destinations": ["discord"]},
    # flips: critical ones page, the rest to the desk channel
    {
        "match": {"rule": "regime_flip"},
        "destinations": ["slack"],
        "channel": "#flips",
        "routes": [{"match": {"min_severity": "critical"}, "mention": "<!channel>"}],
    },
    # the bot's own notices go to ops only
    {"match": {"kind": "notice"}, "destinations": ["ops"]},
    # SPY and QQQ 0DTE boards, whatever the rule
    {"match": {"symbol": ["spy", "QQQ"], "source": "zero_dte:heat"}, "destinations": ["discord"]},
]


def _routes(raw: list[dict[str, Any]]) -> list[RouteConfig]:
    return [RouteConfig.model_validate(r) for r in raw]


def _summary(targets: list[Target]) -> list[tuple[str, str | None, str | None]]:
    return [(t.destination, t.channel, t.mention) for t in targets]


ROUTE_CASES: dict[str, tuple[Routable, list[tuple[str, str | None, str | None]]]] = {
    # continue: the candidate reaches both routes, in order, each with its route's options
    # (options a route does not set, like the channel, come from the root)
    "candidate-continues-to-discord": (
        Routable(Category.ALERT, "candidate", "NVDA", None, Severity.WARNING),
        [("slack", "#candidates", "<!here>"), ("discord", "#desk", None)],
    ),
    # a matching child refines its parent and inherits destinations and channel
    "critical-flip-child-adds-mention": (
        Routable(Category.ALERT, "regime_flip", "SPY", None, Severity.CRITICAL),
        [("slack", "#flips", "<!channel>")],
    ),
    # no child matched: the parent itself takes it
    "warning-flip-parent-takes-it": (
        Routable(Category.ALERT, "regime_flip", "SPY", None, Severity.WARNING),
        [("slack", "#flips", None)],
    ),
    # a follow-up of a flip matches the rule route too (kind is not part of that match)
    "flip-follow-up-same-channel": (
        Routable(Category.FOLLOW_UP, "regime_flip", "SPY", None, Severity.INFO),
        [("slack", "#flips", None)],
    ),
    "notice-to-ops-only": (
        Routable(Category.NOTICE, "api_auth", None, None, Severity.CRITICAL),
        [("ops", "#desk", None)],
    ),
    # symbols are compared upper case; every key given must fit
    "zero-dte-spy-to-discord": (
        Routable(Category.ALERT, "top_n", "SPY", "zero_dte:heat", Severity.INFO),
        [("discord", "#desk", None)],
    ),
    "zero-dte-other-board-falls-to-root": (
        Routable(Category.ALERT, "top_n", "SPY", "zero_dte:pin_risk", Severity.INFO),
        [("slack", "#desk", None)],
    ),
    # nothing matched: the root's destinations and options
    "recap-falls-to-root": (Routable(Category.RECAP), [("slack", "#desk", None)]),
}


@pytest.mark.parametrize("case", sorted(ROUTE_CASES))
def test_route_table(case: str) -> None:
    """Each item reaches exactly the destinations its route names, with that route's options."""
    item, expected = ROUTE_CASES[case]
    root = RootRoute(destinations=["slack"], channel="#desk")
    assert _summary(route(item, _routes(DESK), root, ALL)) == expected


def test_empty_root_means_every_destination() -> None:
    """With no routes and an empty root, an alert goes to every configured destination."""
    item = Routable(Category.ALERT, "candidate", "SPY", None, Severity.INFO)
    assert [t.destination for t in route(item, [], RootRoute(), ALL)] == ALL


def test_a_destination_reached_twice_gets_the_item_once() -> None:
    """Two continuing routes to the same destination: one target, the first route's options."""
    routes = _routes(
        [
            {"match": {}, "destinations": ["slack"], "channel": "#a", "continue": True},
            {"match": {}, "destinations": ["slack", "ops"], "channel": "#b"},
        ]
    )
    item = Routable(Category.ALERT, "top_n", "AMD", "options:buyers", Severity.INFO)
    assert _summary(route(item, routes, RootRoute(), ALL)) == [
        ("slack", "#a", None),
        ("ops", "#b", None),
    ]


VALIDATION_CASES = {
    "unknown-destination": (
        [{"match": {"rule": "candidate"}, "destinations": ["slak"]}],
        "[routes[0].destinations]: unknown destination 'slak'; known: discord, mail, ops, slack",
    ),
    "unknown-rule-in-a-child": (
        [{"match": {}, "routes": [{"match": {"rule": "regime"}}]}],
        "[routes[0].routes[0].match.rule]: unknown rule 'regime'; known: candidate, regime_flip",
    ),
}


@pytest.mark.parametrize("case", sorted(VALIDATION_CASES))
def test_validation_names_the_key_and_the_known_values(case: str) -> None:
    """A typo in a route is refused at start with the key path and the known names."""
    raw, message = VALIDATION_CASES[case]
    with pytest.raises(ValueError) as info:
        validate_routes(_routes(raw), RootRoute(), ALL, {"rule": ["candidate", "regime_flip"]})
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"match": {"kind": "alerts"}}, "kind"),
        ({"match": {"severity": "urgent"}}, "severity"),
        ({"match": {"rulez": "candidate"}}, "rulez"),
    ],
    ids=["unknown-kind", "unknown-severity", "unknown-match-key"],
)
def test_bad_match_values_are_rejected_by_the_model(raw: dict[str, Any], fragment: str) -> None:
    """Unknown kinds, severities and match keys fail validation naming the field."""
    with pytest.raises(ValueError, match=fragment):
        RouteConfig.model_validate(raw)


# ------------------------------------------------------------------------------- grouping
AT = datetime(2026, 6, 5, 13, 31, tzinfo=UTC)
SLACK = Target("slack", None, None, 3, "root")
DISCORD = Target("discord", None, None, 2, "routes[0]")


def ev(rule: str, symbol: str, follow_up: bool = False) -> Event:
    return Event(
        rule=rule, kind=rule, symbol=symbol, state="s", occurred_at=AT, follow_up=follow_up
    )


def _shape(batches: list[Any]) -> list[tuple[str, list[str]]]:
    return [(b.target.destination, [e.symbol for e in b.events]) for b in batches]


GROUP_CASES: dict[str, tuple[list[tuple[Event, Target]], list[tuple[str, list[str]]]]] = {
    # three top_n alerts to Slack in one tick: one message, placed where the first was
    "three-of-a-rule-group": (
        [(ev("top_n", s), SLACK) for s in ("AMD", "NVDA", "TSLA")]
        + [(ev("candidate", "SPY"), SLACK)],
        [("slack", ["AMD", "NVDA", "TSLA"]), ("slack", ["SPY"])],
    ),
    # two are below group_min 3: each its own message
    "two-stay-single": (
        [(ev("top_n", "AMD"), SLACK), (ev("top_n", "NVDA"), SLACK)],
        [("slack", ["AMD"]), ("slack", ["NVDA"])],
    ),
    # per target: Discord's group_min 2 groups what Slack's 3 does not
    "group-min-per-route": (
        [(ev("top_n", s), t) for s in ("AMD", "NVDA") for t in (SLACK, DISCORD)],
        [("slack", ["AMD"]), ("discord", ["AMD", "NVDA"]), ("slack", ["NVDA"])],
    ),
    # follow-ups thread under their parent: never grouped
    "follow-ups-never-group": (
        [(ev("regime_flip", s, follow_up=True), SLACK) for s in ("SPY", "QQQ", "IWM")],
        [("slack", ["SPY"]), ("slack", ["QQQ"]), ("slack", ["IWM"])],
    ),
}


@pytest.mark.parametrize("case", sorted(GROUP_CASES))
def test_group_table(case: str) -> None:
    """A burst of one rule for one route becomes one message; the rest keep their order."""
    routed, expected = GROUP_CASES[case]
    assert _shape(group(routed)) == expected
