"""Rendering: golden Slack output per event kind, Block Kit validity, mrkdwn escaping, limits,
filters, template overrides and the email / generic template entry points.

Golden files live in tests/golden/render/ next to the API example payloads they are built
from; regenerate them with ``FLOWBOT_UPDATE_GOLDEN=1 pytest tests/test_render.py``.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import TemplateSyntaxError, UndefinedError
from slack_sdk.models.blocks import Block

from bot.api.models import (
    CumulativeFlow,
    FlowAnomaly,
    FlowSummary,
    LeaderboardRow,
    OptionsLeaderboard,
    ZeroDteLeaderboard,
)
from bot.events import Event, Message
from bot.render import (
    MAX_BLOCKS,
    MAX_FALLBACK_TEXT,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    Renderer,
    assemble,
    enforce_limits,
    money,
    num,
    nytime,
    packaged_templates_dir,
    pct,
    price,
    signed,
    strike,
    truncate,
)

GOLDEN = Path(__file__).parent / "golden" / "render"
T0 = datetime(2026, 5, 12, 18, 42, 10, tzinfo=UTC)
HOSTILE = '<!channel> <@U123> <https://evil.example|click> & <script>"\\\n</section>'


def payload(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / name).read_text())


def summary(**changes: Any) -> FlowSummary:
    return FlowSummary.model_validate({**payload("flow-summary.SPY.json"), **changes})


def anomaly(**changes: Any) -> FlowAnomaly:
    return FlowAnomaly.model_validate({**payload("flow-anomaly.SPY.json"), **changes})


def flip_event(s: FlowSummary, previous: str | None = None) -> Event:
    return Event(
        "regime_flip",
        "regime_flip",
        s.symbol,
        "regime_flip",
        T0,
        {"summary": s, "previous": previous},
    )


def candidate_event(a: FlowAnomaly, **context: Any) -> Event:
    ctx = {"anomaly": a, "previous_decision": None, "previous_bias": None, "switched": False}
    return Event("candidate", "candidate", a.symbol, "candidate:x", T0, {**ctx, **context})


def board_event(kind: str, symbol: str, **context: Any) -> Event:
    lb = OptionsLeaderboard.model_validate(payload("options-leaderboard.json"))
    ctx = {
        "board": "options:buyers",
        "board_title": "Options flow · top buyers (240 min)",
        "source": "options",
        "side": "buyers",
        "metric": None,
        "n": 10,
        "rank": 2,
        "previous_rank": None,
        "previous_leader": None,
        "row": lb.buyers[0],
        "as_of": lb.generated_utc,
    }
    ctx.update(context)
    return Event("top_n", kind, symbol, "top", T0, ctx, board=ctx["board"])


def zero_dte_event(kind: str, **context: Any) -> Event:
    z = ZeroDteLeaderboard.model_validate(payload("zero-dte-leaderboard.heat.json"))
    ctx = {
        "board": "zero_dte:heat",
        "board_title": "0DTE · heat",
        "source": "zero_dte",
        "side": None,
        "metric": "heat",
        "n": 3,
        "rank": 1,
        "row": z.entries[0],
        "as_of": z.as_of,
        **context,
    }
    return board_event(kind, z.entries[0].symbol, **ctx)


def golden_cases() -> dict[str, tuple[Event, str | None]]:
    """One fixed event per kind (and per notable variant), with the policy reason."""
    iwm = FlowSummary.model_validate(payload("flow-summary.regime_flip_no_baseline.json"))
    ended = Event(
        "regime_flip",
        "regime_flip_ended",
        "SPY",
        "ended:amplifying",
        T0,
        {"summary": summary(), "previous": "regime_flip", "flipped_at": T0 - timedelta(minutes=42)},
        thread_parent="regime_flip:-:SPY",
        follow_up=True,
    )
    cumulative = CumulativeFlow.model_validate(payload("options-cumulative.SPY.json"))
    minimal = FlowAnomaly.model_validate(
        {"strategy": "flow_anomaly", "symbol": "TSLA", "decision": "watch", "score": 55}
    )
    return {
        "regime_flip_no_baseline": (flip_event(iwm), "first_notification"),
        "regime_flip_with_shift": (flip_event(summary(), "dampening"), "cooldown_elapsed"),
        "regime_flip_unknown_label": (
            flip_event(summary(flow_direction="turbulent", as_of=None, expiry=None), "neutral"),
            None,
        ),
        "regime_flip_ended": (ended, "state_changed"),
        "candidate": (
            candidate_event(anomaly(), previous_decision="neutral", previous_bias="bullish"),
            "first_notification",
        ),
        "candidate_switched": (
            candidate_event(
                anomaly(
                    regime="bearish_flow_imbalance",
                    metrics={"bias": "bearish"},
                    risk_flags=["earnings_within_expiry", "wide_spreads"],
                ),
                previous_decision="candidate",
                previous_bias="bullish",
                switched=True,
            ),
            "state_changed",
        ),
        "candidate_minimal": (candidate_event(minimal), None),
        "candidate_rated_flags": (
            candidate_event(
                anomaly(
                    risk_flags=[
                        {"code": "earnings_within_expiry", "severity": "high", "message": "Jun 10"},
                        {"code": "wide_spreads", "severity": "medium"},
                        "thin_oi",
                    ]
                )
            ),
            "first_notification",
        ),
        "regime_flip_again": (
            Event(
                "regime_flip",
                "regime_flip_again",
                "SPY",
                "again:x",
                T0,
                {
                    "summary": summary(
                        flow_direction="regime_flip", live_gex=-1.1e9, flow_gex_pct_shift=-1.35
                    ),
                    "previous": "amplifying",
                    "ended_at": T0 - timedelta(minutes=4),
                },
                thread_parent="regime_flip:-:SPY",
                follow_up=True,
            ),
            "follow_up",
        ),
        "gex_shift": (
            Event(
                "gex_shift",
                "gex_shift",
                "SPY",
                "beyond:up",
                T0,
                {
                    "summary": summary(flow_gex_pct_shift=0.31),
                    "threshold": 0.25,
                    "previous": "calm",
                },
            ),
            "first_notification",
        ),
        "gex_shift_no_baseline": (
            Event(
                "gex_shift",
                "gex_shift",
                "IWM",
                "no_baseline",
                T0,
                {"summary": iwm, "threshold": 0.25, "previous": "calm"},
            ),
            None,
        ),
        "flow_inflection": (
            Event(
                "flow_inflection",
                "flow_inflection",
                "SPY",
                "inflection:bearish",
                T0,
                {"flow": cumulative, "cumulative": -480.0, "at": T0, "was_side": "bullish"},
            ),
            "first_notification",
        ),
        "flow_inflection_drift": (
            Event(
                "flow_inflection",
                "flow_inflection",
                "SPY",
                "drift:bullish",
                T0,
                {
                    "flow": cumulative,
                    "cumulative": 3490.0,
                    "at": T0,
                    "typical": 1820.0,
                    "multiple": 31.4,
                },
            ),
            None,
        ),
        "leaderboard_entry_options": (
            board_event("leaderboard_entry", "NVDA", rank=3),
            "first_notification",
        ),
        "leaderboard_lead_zero_dte": (
            zero_dte_event("leaderboard_lead", previous_rank=2, previous_leader="SPY"),
            "state_changed",
        ),
        "leaderboard_exit_sellers": (
            board_event(
                "leaderboard_exit",
                "AAPL",
                board="options:sellers",
                board_title="Options flow · top sellers (240 min)",
                side="sellers",
                rank=None,
                previous_rank=4,
                row=None,
            ),
            "state_changed",
        ),
    }


CASES = golden_cases()


def dump(message: Message) -> str:
    blocks = json.dumps(message.blocks, indent=2, ensure_ascii=False)
    return f"kind: {message.kind}\n\ntext:\n{message.text}\n\nblocks:\n{blocks}\n"


def all_strings(message: Message) -> list[str]:
    """Every string a Slack client would read: the fallback and every text in the blocks."""
    found = [message.text]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            found.append(node)

    walk(message.blocks)
    return found


def assert_slack_valid(message: Message) -> None:
    """Every block parses with slack_sdk and passes its JSON validation (limits included)."""
    assert len(message.blocks) <= MAX_BLOCKS
    assert len(message.text) <= MAX_FALLBACK_TEXT
    json.loads(json.dumps(message.blocks))
    for raw in message.blocks:
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()
        assert block.to_dict()["type"] == raw["type"]


def assert_inert(message: Message) -> None:
    """No raw control character survives: nothing pings, mentions or links."""
    for text in all_strings(message):
        assert "<" not in text and ">" not in text, text
        assert not re.search(r"&(?!amp;|lt;|gt;)", text), text


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


# ------------------------------------------------------------------------------ golden
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_output(renderer: Renderer, case: str) -> None:
    """Each kind renders exactly the reviewed fallback text and Block Kit JSON."""
    event, reason = CASES[case]
    got = dump(renderer.slack(event, reason))
    path = GOLDEN / f"{case}.txt"
    if os.environ.get("FLOWBOT_UPDATE_GOLDEN"):
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", sorted(CASES))
def test_blocks_are_valid_block_kit(renderer: Renderer, case: str) -> None:
    """Every template's output parses and validates as Block Kit and is escaped."""
    event, reason = CASES[case]
    message = renderer.slack(event, reason)
    assert message.kind == event.kind
    assert message.text.strip()
    assert_slack_valid(message)
    assert_inert(message)


def test_every_kind_has_a_golden_case() -> None:
    """Every shipped Slack template of an event kind is covered by a golden case."""
    kinds = {p.stem for p in (packaged_templates_dir() / "slack").glob("*.j2") if p.stem[0] != "_"}
    kinds -= {"recap", "group", "notice"}  # tested in test_recap*, test_pipeline, test_notices
    assert kinds <= {event.kind for event, _ in CASES.values()}


# ------------------------------------------------------------------------------ escaping
def hostile_events(text: str) -> dict[str, Event]:
    """The same hostile text in every API-sourced string a template shows."""
    s = summary(symbol=text, flow_direction=text, expiry=text)
    a = anomaly(
        symbol=text,
        regime=text,
        decision=text,
        why=[text, "fine"],
        risk_flags=[text],
        avoid_if=[text],
        data_quality={"score": 10, "warnings": [text]},
        best_structures=[
            {"rank": 1, "structure": text, "expiry": text, "legs": [{"action": text, "type": text}]}
        ],
    )
    row = LeaderboardRow.model_validate({"symbol": text, "netNotional": 1e6})
    return {
        "regime_flip.symbol_and_label": flip_event(s, previous=text),
        "regime_flip_ended.labels": Event(
            "regime_flip", "regime_flip_ended", text, "x", T0, {"summary": s, "flipped_at": None}
        ),
        "candidate.why_flags_regime": candidate_event(
            a, previous_decision=text, previous_bias=text, switched=True
        ),
        "leaderboard_entry.symbol_title": board_event(
            "leaderboard_entry", text, board=text, board_title=text, row=row
        ),
        "leaderboard_lead.previous_leader": board_event(
            "leaderboard_lead", text, previous_leader=text, metric=text, row=row
        ),
        "leaderboard_exit.symbol": board_event("leaderboard_exit", text, board_title=text),
    }


@pytest.mark.parametrize("case", sorted(hostile_events(HOSTILE)))
def test_api_strings_are_escaped_in_text_and_blocks(renderer: Renderer, case: str) -> None:
    """<!channel>, <@U…>, <url|label>, & and <script> from the API come out as inert text."""
    message = renderer.slack(hostile_events(HOSTILE)[case], HOSTILE)
    assert_inert(message)
    assert_slack_valid(message)
    joined = "\n".join(all_strings(message))
    assert "&lt;!channel&gt;" in joined
    assert "&lt;https://evil.example|click&gt;" in joined


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(min_size=1, max_size=80))
def test_any_string_yields_valid_inert_json(text: str) -> None:
    """Whatever a string holds (quotes, backslashes, newlines, markers), the JSON stays valid
    Block Kit and nothing in it is a Slack control sequence."""
    renderer = Renderer()
    for event in hostile_events(text).values():
        message = renderer.slack(event, None)
        assert_slack_valid(message)
        assert_inert(message)
        assert json.loads(json.dumps({"text": message.text, "blocks": message.blocks}))


def test_data_cannot_forge_block_markers(renderer: Renderer) -> None:
    """A newline plus a marker in data neither breaks the line nor starts a new block."""
    event = candidate_event(anomaly(why=["ok\n<divider>\n<header>\nPWNED"]))
    message = renderer.slack(event)
    assert sum(b["type"] == "header" for b in message.blocks) == 1
    assert not any(b["type"] == "divider" for b in message.blocks)
    assert any("ok &lt;divider&gt; &lt;header&gt; PWNED" in s for s in all_strings(message))


# ------------------------------------------------------------------------------ limits
def test_long_why_list_is_cut_in_the_template(renderer: Renderer) -> None:
    """A 60-reason why[] shows the first six and says how many more there are."""
    message = renderer.slack(candidate_event(anomaly(why=[f"reason {i}" for i in range(60)])))
    why = next(b for b in message.blocks if b.get("text", {}).get("text", "").startswith("*Why*"))
    assert "reason 5" in why["text"]["text"] and "reason 6" not in why["text"]["text"]
    assert "54 more" in why["text"]["text"]
    assert_slack_valid(message)


def test_huge_strings_are_truncated_not_rejected(renderer: Renderer) -> None:
    """A 5,000-char why and symbol are truncated with … to the section/header/text limits."""
    huge = "x" * 5000
    message = renderer.slack(candidate_event(anomaly(symbol="Q" * 400, why=[huge])))
    assert_slack_valid(message)
    why = next(b for b in message.blocks if b.get("text", {}).get("text", "").startswith("*Why*"))
    assert len(why["text"]["text"]) == MAX_SECTION_TEXT and why["text"]["text"].endswith("…")
    header = message.blocks[0]["text"]["text"]
    assert len(header) <= MAX_HEADER_TEXT and header.endswith("…")


@pytest.mark.parametrize(
    ("blocks", "text", "check"),
    [
        # 60 sections: 49 kept plus a note of how many were left out.
        (
            [{"type": "section", "text": {"type": "mrkdwn", "text": f"s{i}"}} for i in range(60)],
            "t",
            lambda m: (
                len(m.blocks) == 50 and "11 more blocks" in m.blocks[-1]["elements"][0]["text"]
            ),
        ),
        # fallback text over 4,000 chars
        ([], "y" * 5000, lambda m: len(m.text) == 4000 and m.text.endswith("…")),
        # header over 150 chars
        (
            [{"type": "header", "text": {"type": "plain_text", "text": "h" * 300}}],
            "t",
            lambda m: len(m.blocks[0]["text"]["text"]) == 150,
        ),
        # 12 fields of 2,500 chars: 10 kept, each ≤ 2,000
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2500}] * 12}],
            "t",
            lambda m: (
                len(m.blocks[0]["fields"]) == 10
                and all(len(f["text"]) == 2000 for f in m.blocks[0]["fields"])
            ),
        ),
        # 14 context elements: merged into 10
        (
            [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 14}],
            "t",
            lambda m: len(m.blocks[0]["elements"]) == 10,
        ),
    ],
    ids=["blocks>50", "text>4000", "header>150", "fields", "context"],
)
def test_enforce_limits(blocks: list[dict[str, Any]], text: str, check: Any) -> None:
    """Over-limit messages are truncated to Slack's limits and stay valid."""
    message = enforce_limits(Message("k", text, blocks))
    assert check(message)
    assert_slack_valid(message)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),  # under the limit: unchanged
        ("abcdefghij", 5, "abcd…"),  # cut with an ellipsis
        ("abc &amp; def", 6, "abc…"),  # never split an entity
        ("ab &lt;xy", 8, "ab &lt;…"),  # a whole entity before the cut is kept
    ],
)
def test_truncate(text: str, limit: int, expected: str) -> None:
    """truncate() cuts to the limit with … and never leaves half an escape entity."""
    assert truncate(text, limit) == expected
    assert len(truncate(text, limit)) <= limit


# ------------------------------------------------------------------------------ filters
@pytest.mark.parametrize(
    ("func", "args", "expected"),
    [
        (money, (3.12e9,), "$3.12B"),
        (money, (-48_000_000,), "-$48.0M"),
        (money, (950_000,), "$950K"),
        (money, (999_600,), "$1.00M"),  # rounding rolls over to the next unit
        (money, (99_960,), "$100K"),
        (money, (0.7,), "$0.70"),
        (money, (2.5e12,), "$2.50T"),
        (money, (None,), "—"),
        (money, ("n/a",), "n/a"),  # non-numbers pass through as text
        (pct, (0.094,), "+9.4%"),
        (pct, (-1.8,), "-180.0%"),
        (pct, (0.83, 0, False), "83%"),
        (pct, (None,), "—"),
        (num, (12450,), "12,450"),
        (num, (9.42, 2), "9.42"),
        (signed, (12450,), "+12,450"),
        (signed, (-3310,), "-3,310"),
        (price, (5912.3,), "$5,912.30"),
        (strike, (588.0,), "588"),
        (strike, (587.5,), "587.5"),
        (nytime, (datetime(2026, 5, 12, 14, 32, tzinfo=UTC),), "10:32 ET"),
        (nytime, (datetime(2026, 1, 12, 14, 32, tzinfo=UTC),), "09:32 ET"),  # EST
        (nytime, (datetime(2026, 5, 12, 14, 32),), "10:32 ET"),  # naive = UTC
        (nytime, (None,), "—"),
    ],
)
def test_filters(func: Any, args: tuple[Any, ...], expected: str) -> None:
    """Formatting filters give the compact trader-facing forms."""
    assert func(*args) == expected


def test_nytime_in_another_timezone() -> None:
    """A non-New-York renderer shows its own zone's abbreviation."""
    renderer = Renderer(timezone="Europe/London")
    message = renderer.slack(flip_event(summary()))
    assert "19:42 BST" in message.blocks[-1]["elements"][0]["text"]


# ------------------------------------------------------------------------------ assembly
@pytest.mark.parametrize(
    ("source", "text", "types"),
    [
        ("<text>\nhi\n<section>\nbody", "hi", ["section"]),  # explicit fallback
        ("lead line\n<section>\nbody", "lead line", ["section"]),  # text before any marker
        ("<header>\nH\n<section>\nS", "H\nS", ["header", "section"]),  # derived fallback
        ("<section>\n\n<section>\nS", "S", ["section"]),  # empty section dropped
        ("<field>\n*a*\n1\n<field>\n*b*\n2", "…", ["section"]),  # fields-only section
        ("<divider>\n<section>\nS\n<divider>\n<divider>", "S", ["section"]),  # stray dividers
        ("<section>\nA\n<divider>\n<context>\nc1\nc2", "A", ["section", "divider", "context"]),
        ("<text>\nT<section>\nA<context>\nc", "T", ["section", "context"]),  # glued markers
    ],
)
def test_assemble(source: str, text: str, types: list[str]) -> None:
    """Marker lines become blocks; empty parts and stray dividers disappear."""
    got_text, blocks = assemble(source)
    assert got_text == text
    assert [b["type"] for b in blocks] == types


def test_assemble_rejects_unknown_marker() -> None:
    """A typo'd marker is a template error, not silent text."""
    with pytest.raises(TemplateSyntaxError):
        assemble("<sectoin>\nbody")


# ------------------------------------------------------------------------------ loading
def test_missing_required_context_fails_loudly(renderer: Renderer) -> None:
    """StrictUndefined: a template naming something the context lacks raises."""
    with pytest.raises(UndefinedError):
        renderer.slack(Event("regime_flip", "regime_flip", "SPY", "x", T0, {}))


def test_override_dir_replaces_one_template(tmp_path: Path) -> None:
    """A user template overrides its kind; other kinds still use the shipped templates."""
    (tmp_path / "slack").mkdir()
    (tmp_path / "slack" / "regime_flip.j2").write_text(
        "<text>\nCUSTOM {{ summary.symbol }}\n<section>\n*{{ summary.symbol }}* {{ reason }}\n"
    )
    renderer = Renderer(override_dir=tmp_path)
    custom = renderer.slack(flip_event(summary(symbol="<!here>")), "first_notification")
    assert custom.text == "CUSTOM &lt;!HERE&gt;"  # user templates are escaped too
    assert custom.blocks == [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*&lt;!HERE&gt;* first_notification"},
        }
    ]
    shipped = renderer.slack(candidate_event(anomaly()))
    assert shipped.blocks == Renderer().slack(candidate_event(anomaly())).blocks


def test_packaged_templates_dir_is_the_repo_templates() -> None:
    """Outside a wheel the shipped templates are the repository's top-level templates/."""
    assert (packaged_templates_dir() / "slack" / "candidate.j2").is_file()


def test_slack_template_renders_a_named_template(tmp_path: Path) -> None:
    """slack_template() renders slack/<name>.j2 with keyword context, escaped and limited."""
    (tmp_path / "slack").mkdir()
    (tmp_path / "slack" / "tiny.j2").write_text(
        "<header>\n{{ title }}\n<section>\n{% for s in names %}• {{ s }} {{ 1.5e6 | money }}\n"
        "{% endfor %}\n<context>\n{{ link | link('thread') }}\n"
    )
    message = Renderer(override_dir=tmp_path).slack_template(
        "tiny", title="Recap & more", names=["<@U1>", "SPY"], link="https://x.example/a?b=1&c=2"
    )
    assert message.kind == "tiny"
    assert message.blocks[0]["text"]["text"] == "Recap &amp; more"
    assert message.blocks[1]["text"]["text"] == "• &lt;@U1&gt; $1.50M\n• SPY $1.50M"
    assert message.blocks[2]["elements"][0]["text"] == "<https://x.example/a?b=1&amp;c=2|thread>"
    assert_slack_valid(message)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://ok.example/p", "<https://ok.example/p|go>"),
        ("javascript:alert(1)", "go"),  # only http(s) becomes a link
        ("https://x.example/a|<!channel>", "<https://x.example/a%7C&lt;!channel&gt;|go>"),
    ],
)
def test_link_filter(tmp_path: Path, url: str, expected: str) -> None:
    """The link filter makes safe mrkdwn links and refuses other schemes."""
    (tmp_path / "slack").mkdir()
    (tmp_path / "slack" / "l.j2").write_text("<section>\n{{ url | link('go') }}\n")
    message = Renderer(override_dir=tmp_path).slack_template("l", url=url)
    assert message.blocks[0]["text"]["text"] == expected


def test_email_text_is_raw_and_html_is_escaped(tmp_path: Path) -> None:
    """email() renders the .txt part unescaped and the .html part with HTML autoescape."""
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "digest.txt.j2").write_text("Hi {{ who }}: {{ amount | money }}\n")
    (tmp_path / "email" / "digest.html.j2").write_text("<p>Hi {{ who }}: {{ amount | money }}</p>")
    text, html = Renderer(override_dir=tmp_path).email("digest", who="<b>A & B</b>", amount=3.12e9)
    assert text == "Hi <b>A & B</b>: $3.12B"
    assert html == "<p>Hi &lt;b&gt;A &amp; B&lt;/b&gt;: $3.12B</p>"
