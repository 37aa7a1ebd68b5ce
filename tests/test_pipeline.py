"""The pure stages after policy: route → group → render into each destination's dialect.

Events come from the render tests' golden cases (real API example bodies); no server runs."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.escape import finish, markdown_escape, mrkdwn_to_plain
from bot.events import Dialect, Event, Message, Severity
from bot.outbox import envelope_of
from bot.pipeline import GROUP_MAX_LINES, PipelineConfig, render, route_all
from bot.render import Renderer
from bot.routes import RootRoute, RouteConfig, group
from bot.rules import RULES
from bot.settings import Settings
from bot.store import OutboxItem
from tests.test_render import CASES, HOSTILE, assert_inert, assert_slack_valid, hostile_events

NOW = datetime(2026, 6, 5, 13, 31, tzinfo=UTC)
RENDERER = Renderer()


def config(routes: list[dict[str, object]] | None = None, **dialects: Dialect) -> PipelineConfig:
    return PipelineConfig(
        rules={name: Settings().rule_config(name) for name in RULES},
        routes=[RouteConfig.model_validate(r) for r in routes or []],
        root=RootRoute(),
        alert_destinations=list(dialects),
        dialects=dialects,
        renderer=RENDERER,
    )


def messages(events: list[Event], cfg: PipelineConfig) -> list[tuple[str, Message]]:
    """Route, group and render ``events`` as :func:`bot.pipeline.run` does."""
    reasons = {id(e): "first_notification" for e in events}
    index = {id(e): i for i, e in enumerate(events)}
    rows = [
        render(b, cfg, reasons, index, session="2026-06-05", now=NOW, expires_at=None)
        for b in group(route_all(events, cfg))
    ]
    return [(row.destination, Message.from_json(row.payload["message"])) for row in rows]


def entries(n: int) -> list[Event]:
    """``n`` leaderboard entries in one tick (the burst at the open), distinct symbols."""
    base, _ = CASES["leaderboard_entry_options"]
    return [replace(base, symbol=f"S{i:02d}") for i in range(n)]


def test_burst_at_the_open_is_one_slack_message_within_limits() -> None:
    """30 entries in one tick become one Block Kit message that counts them, shows 20 lines
    and says how many more, within Slack's limits."""
    ((dest, message),) = messages(entries(30), config(slack=Dialect.SLACK))
    assert dest == "slack" and message.kind == "group"
    assert message.title == "30 leaderboard moves"
    bullets = [
        line
        for b in message.blocks
        if b["type"] == "section"
        for line in b["text"]["text"].splitlines()
    ]
    assert len(bullets) == GROUP_MAX_LINES
    assert message.blocks[-1]["elements"][0]["text"] == "…and 10 more"
    assert message.text.startswith("30 leaderboard moves: S00, S01")
    assert message.severity is Severity.INFO
    assert_slack_valid(message)


def test_group_min_and_routes_apply_per_destination() -> None:
    """Candidates routed to Discord only; 2 entries stay single for Slack (group_min 3)."""
    cfg = config(
        [{"match": {"rule": "candidate"}, "destinations": ["discord"]}],
        slack=Dialect.SLACK,
        discord=Dialect.MARKDOWN,
    )
    candidate, _ = CASES["candidate"]
    out = messages([*entries(2), candidate], cfg)
    assert [(d, m.kind) for d, m in out] == [
        ("slack", "leaderboard_entry"),
        ("discord", "leaderboard_entry"),
        ("slack", "leaderboard_entry"),
        ("discord", "leaderboard_entry"),
        ("discord", "candidate"),
    ]
    discord = out[-1][1]
    assert discord.dialect is Dialect.MARKDOWN and discord.severity is candidate.severity
    # template bold is markdown's **bold**, and Slack's entities never appear
    assert "**Score**" in str(discord.blocks)
    assert "&lt;" not in str(discord.blocks) and "&amp;" not in discord.text


@pytest.mark.parametrize("case", sorted(hostile_events(HOSTILE)))
@pytest.mark.parametrize("dialect", [Dialect.MARKDOWN, Dialect.PLAIN], ids=str)
def test_hostile_api_text_is_shown_once_and_literally(case: str, dialect: Dialect) -> None:
    """In the markdown and plain dialects, API text is never Slack-escaped (no &lt;), never
    turned into formatting, and forges no block marker."""
    event = hostile_events(HOSTILE)[case]
    message = RENDERER.slack(event, "first_notification", dialect)
    text = message.text + str(message.blocks)
    assert "&lt;" not in text and "&amp;" not in text
    assert "<section>" not in text.replace("</section>", "")  # data stays data
    if dialect is Dialect.PLAIN:
        assert "<!channel>" in message.text  # shown literally, once
    else:
        assert r"\<" not in message.text  # < needs no escape in Discord: shown as is


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=1, max_size=60))
def test_markdown_escaping_round_trips_any_string(text: str) -> None:
    """Any string escaped for markdown reads back, as plain text, exactly as it was (one
    line): the template's markers are translated, the data's characters never are."""
    one_line = re.sub(r"\s*[\r\n\u2028\u2029]+\s*", " ", text)
    assert mrkdwn_to_plain(finish(markdown_escape(text), "plain")) == one_line or (
        finish(markdown_escape(text), "plain") == one_line
    )


def test_slack_group_keeps_each_alerts_escaping() -> None:
    """Hostile symbols in a group message are escaped exactly once in Slack mrkdwn."""
    base, _ = CASES["leaderboard_entry_options"]
    burst = [replace(base, symbol=f"<!here>{i}") for i in range(3)]
    ((_, message),) = messages(burst, config(slack=Dialect.SLACK))
    assert_inert(message)
    assert "&lt;!here&gt;0" in message.text and "&amp;lt;" not in str(message.blocks)


def test_delayed_marker_and_routing_facts_reach_the_envelope() -> None:
    """The envelope a destination gets carries the route's mention and channel and the
    alerts; a late row gets the delayed line."""
    cfg = config(
        [{"match": {"rule": "regime_flip"}, "mention": "<!here>", "channel": "#flips"}],
        slack=Dialect.SLACK,
    )
    flip, _ = CASES["regime_flip_with_shift"]
    (row,) = [
        render(
            b,
            cfg,
            {id(flip): "first_notification"},
            {id(flip): 0},
            session="d",
            now=NOW,
            expires_at=None,
        )
        for b in group(route_all([flip], cfg))
    ]
    item = OutboxItem(
        1,
        row.dedupe_key,
        row.destination,
        row.category,
        row.payload,
        row.meta,
        row.thread_parent,
        row.session,
        NOW,
        None,
        "pending",
        0,
        None,
    )
    envelope = envelope_of(item, thread_ts=None, delayed_note="⏱ delayed: detected 10:32 ET")
    assert (envelope.mention, envelope.channel) == ("<!here>", "#flips")
    assert [a.symbol for a in envelope.alerts] == [flip.symbol]
    assert envelope.message is not None and envelope.delayed
    assert envelope.message.blocks[-1]["elements"][0]["text"] == "⏱ delayed: detected 10:32 ET"
