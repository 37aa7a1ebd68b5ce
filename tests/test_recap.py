"""Tests for bot.recap (the pure recap builder) and its rendering: Slack recap, text/HTML digest.

``sample_recap()`` is shared with the email and Slack delivery tests.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import pytest
from slack_sdk.models.blocks import Block

from bot.api.models import FlowAnomaly, FlowSummary, OptionsLeaderboard, ZeroDteLeaderboard
from bot.calendar import Session, TradingCalendar
from bot.events import AlertRecord
from bot.recap import MISSING, Recap, build_recap, format_millions
from bot.render import Renderer

GOLDEN = Path(__file__).parent / "golden"
EVIL = "<SCRIPT>&X"  # Slack and HTML control characters in one symbol


def black_friday() -> Session:
    """2026-11-27, the early-close session (13:00 ET)."""
    cal = TradingCalendar(start=date(2026, 1, 1), end=date(2027, 12, 31))
    session = cal.session_for(date(2026, 11, 27))
    assert session is not None
    return session


def alert(i: int, kind: str, symbol: str, minute: int, session: Session, **kw) -> AlertRecord:
    """An alert-log record ``minute`` minutes after the open. Its ``summary`` is stored as the
    store keeps it: the plain one-line text, escaped by each destination."""
    return AlertRecord(
        id=i,
        alert_key=f"{kind}:{kw.get('board') or '-'}:{symbol}",
        rule=kind,
        kind=kind,
        symbol=symbol,
        board=kw.get("board"),
        state=kw.get("state", "s"),
        occurred_at=session.open_utc + timedelta(minutes=minute),
        sent_at=None,
        channel=None,
        ts=None,
        permalink=kw.get("permalink"),
        summary=kw.get("summary", f"{symbol} {kind}"),
    )


def sample_recap(watchlist_extra: int = 0) -> Recap:
    """A recap with every section filled, an unknown label, missing data and hostile text."""
    s = black_friday()
    alerts = [
        alert(
            1,
            "regime_flip",
            "SPY",
            12,
            s,
            permalink="https://acme.slack.com/archives/C1/p1",
            summary="SPY gamma regime flip: dealers short gamma",
        ),
        alert(2, "candidate", "QQQ", 40, s, summary="QQQ candidate 78: short put spread"),
        alert(
            3,
            "regime_flip",
            "SPY",
            95,
            s,
            permalink="javascript:alert(1)",
            summary="SPY gamma regime flip again",
        ),
        alert(4, "candidate", EVIL, 130, s, summary=f"{EVIL} candidate <b>bold</b> & more"),
        alert(6, "regime_flip_ended", "SPY", 96, s, summary="SPY flip over · lasted <1 min"),
        alert(7, "leaderboard_entry", "NVDA", 20, s, board="options:buyers"),
        alert(8, "leaderboard_lead", "NVDA", 25, s, board="options:buyers"),
        alert(9, "leaderboard_entry", "AAPL", 30, s, board="options:buyers"),
        alert(10, "leaderboard_exit", "AAPL", 60, s, board="options:buyers"),
        alert(11, "leaderboard_entry", "AAPL", 70, s, board="options:buyers"),
        alert(12, "leaderboard_entry", "QQQ", 35, s, board="zero_dte:pin_risk"),
        # Yesterday's alert: not part of this session's recap.
        alert(5, "regime_flip", "IWM", -24 * 60, s),
    ]
    summaries = {
        "SPY": FlowSummary(
            symbol="SPY", flow_direction="regime_flip", live_gex=-1.2e9, flow_gex_pct_shift=-1.34
        ),
        "qqq": FlowSummary(
            symbol="QQQ", flow_direction="amplifying", live_gex=3.12e9, flow_gex_pct_shift=0.094
        ),
        "IWM": FlowSummary(symbol="IWM", flow_direction="sideways_new_label", live_gex=None),
    }
    anomalies = {
        "SPY": FlowAnomaly(symbol="SPY", decision="avoid", score=22),
        "QQQ": FlowAnomaly(symbol="QQQ", decision="candidate", score=78.4),
        EVIL: FlowAnomaly(symbol=EVIL, decision="candidate", score=71),
    }
    board = OptionsLeaderboard.model_validate(
        {
            "windowMinutes": 240,
            "buyers": [
                {"symbol": "NVDA", "netNotional": 45_600_000, "netVolume": 12_000},
                {"symbol": "AAPL", "netNotional": 12_340_000},
            ],
            "sellers": [{"symbol": "TSLA", "netNotional": -3_200_000}],
        }
    )
    zero_dte = {
        "heat": ZeroDteLeaderboard(
            metric="heat",
            entries=[
                {"rank": 2, "symbol": "SPY", "value": 7.1},
                {"rank": 1, "symbol": "QQQ", "value": 9.42},
            ],
        ),
        "pin_risk": ZeroDteLeaderboard(metric="pin_risk", entries=[]),
    }
    watchlist = ["SPY", "qqq", "IWM", EVIL, "DIA", "SPY"]
    watchlist += [f"S{i:02d}" for i in range(watchlist_extra)]
    return build_recap(
        s,
        alerts=alerts,
        summaries=summaries,
        anomalies=anomalies,
        options_board=board,
        zero_dte=zero_dte,
        watchlist=watchlist,
        top_n=5,
    )


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    """The shipped templates, New York time."""
    return Renderer()


def test_alerts_grouped_by_kind_and_symbol():
    """Alerts group by kind (first-seen order) then symbol, with count and first NY time."""
    r = sample_recap()
    assert [(k.kind, k.label, k.total) for k in r.alert_kinds] == [
        ("regime_flip", "Regime flips", 2),
        ("leaderboard_entry", "Leaderboard entries", 4),
        ("leaderboard_lead", "Leaderboard leads", 1),
        ("candidate", "Candidates", 2),
        ("leaderboard_exit", "Leaderboard exits", 1),
        ("regime_flip_ended", "Regime flips ended", 1),
    ]
    spy = r.alert_kinds[0].groups[0]
    assert (spy.symbol, spy.count, spy.first_time_ny) == ("SPY", 2, "09:42")
    assert spy.permalink == "https://acme.slack.com/archives/C1/p1"
    assert [a.time_ny for a in r.key_alerts] == ["09:42", "10:10", "11:05", "11:06", "11:40"]


def test_headline_gives_flips_and_candidates_with_their_outcome():
    """The headline names each flip (and when it ended) and each candidate (held or faded)."""
    h = sample_recap().headline
    assert [(f.symbol, f.count, f.outcome) for f in h.flips] == [
        ("SPY", 2, "ended 11:06 ET after 1 min")
    ]
    assert [(c.symbol, c.held, c.outcome) for c in h.candidates] == [
        ("QQQ", True, "held (candidate 78 at the close)"),
        (EVIL, True, "held (candidate 71 at the close)"),
    ]
    assert h.text == f"1 flip (SPY) · 2 candidates (QQQ held, {EVIL} held)"


HEADLINES = [
    # (id, the close's flow direction for SPY, its anomaly decision/score, expected words)
    ("flip still on, candidate faded", "regime_flip", ("avoid", 22), "still flipped", "faded"),
    ("flip over without alert, no anomaly", "amplifying", None, "no end seen", "no anomaly"),
]


@pytest.mark.parametrize(
    ("flow", "anomaly", "flip_words", "candidate_words"),
    [c[1:] for c in HEADLINES],
    ids=[c[0] for c in HEADLINES],
)
def test_headline_outcomes_at_the_close(flow, anomaly, flip_words, candidate_words):
    """Without an end alert, a flip's outcome comes from the close; a candidate's from the
    last anomaly decision (held only while still "candidate")."""
    s = black_friday()
    r = build_recap(
        s,
        alerts=[alert(1, "regime_flip", "SPY", 5, s), alert(2, "candidate", "SPY", 9, s)],
        summaries={"SPY": FlowSummary(symbol="SPY", flow_direction=flow)},
        anomalies=(
            {"SPY": FlowAnomaly(symbol="SPY", decision=anomaly[0], score=anomaly[1])}
            if anomaly
            else {}
        ),
        options_board=None,
        zero_dte={},
        watchlist=["SPY"],
    )
    (flip,) = r.headline.flips
    (candidate,) = r.headline.candidates
    assert flip_words in flip.outcome and flip.ended_at is None
    assert candidate_words in candidate.outcome
    assert candidate.held is (False if anomaly else None)


def test_board_activity_summarises_leaderboard_churn():
    """Leaderboard alerts become one row per board: who entered, who led, and the counts."""
    rows = [
        (b.board, b.label, b.entered, b.led, b.entries, b.leads, b.exits)
        for b in sample_recap().board_activity
    ]
    assert rows == [
        ("options:buyers", "Options buyers", ("NVDA", "AAPL"), ("NVDA",), 3, 1, 1),
        ("zero_dte:pin_risk", "0DTE pin risk", ("QQQ",), (), 1, 0, 0),
    ]


def test_notices_are_left_out_of_the_recap():
    """A notice about the bot (a source failing) is not a market alert: not listed, not
    counted, not in the headline."""
    s = black_friday()
    r = build_recap(
        s,
        alerts=[
            alert(1, "candidate", "QQQ", 40, s),
            alert(2, "source_down", "-", 41, s, summary="Flowbot summary failing for 3+ polls"),
        ],
        summaries={},
        anomalies={},
        options_board=None,
        zero_dte={},
        watchlist=["QQQ"],
        top_n=5,
    )
    assert [a.kind for a in r.alerts] == ["candidate"] and r.alert_count == 1


def test_summaries_are_shown_as_logged():
    """The alert log keeps plain text (each destination escapes it once): shown as is."""
    r = sample_recap()
    assert "SPY flip over · lasted <1 min" in [a.summary for a in r.alerts]


def test_a_week_covers_every_session():
    """A multi-session recap keeps the alerts of every covered session, headline included,
    and shows the weekday with times."""
    cal = TradingCalendar(start=date(2026, 1, 1), end=date(2027, 12, 31))
    week = cal.sessions_between(date(2026, 11, 23), date(2026, 11, 27))
    assert len(week) == 4  # Thanksgiving
    monday, friday = week[0], week[-1]
    r = build_recap(
        friday,
        alerts=[
            alert(1, "regime_flip", "SPY", 5, monday),
            alert(2, "candidate", "QQQ", 9, friday),
            alert(3, "candidate", "IWM", 9, monday),
            alert(4, "candidate", "DIA", 9 - 7 * 24 * 60, monday),  # the week before: left out
        ],
        summaries={},
        anomalies={},
        options_board=None,
        zero_dte={},
        watchlist=["SPY"],
        sessions=week,
    )
    assert r.multi_session and r.date_text == "Mon 23 – Fri 27 Nov 2026"
    assert [a.symbol for a in r.alerts] == ["SPY", "IWM", "QQQ"]
    assert r.headline.text == "1 flip (SPY) · 2 candidates (IWM, QQQ)"
    assert r.subject.startswith("Flowbot week Mon 23 – Fri 27 Nov 2026: 1 flip (SPY)")
    text, _ = Renderer().email("digest", recap=r, chart_src=None)
    assert "Mon 09:35 ET  SPY    regime flip: no end seen" in text


def test_other_days_and_unsafe_links_are_dropped():
    """Alerts of another day are left out; a non-http permalink is dropped, not linked."""
    r = sample_recap()
    assert "IWM" not in {a.symbol for a in r.alerts}
    assert r.alerts[2].permalink is None


@pytest.mark.parametrize(
    ("symbol", "flow", "gex", "shift", "decision", "score"),
    [
        ("SPY", "regime_flip", -1.2e9, -1.34, "avoid", 22),
        # Lower-case keys in the snapshot dicts still match.
        ("QQQ", "amplifying", 3.12e9, 0.094, "candidate", 78.4),
        # Unknown label kept as text; no anomaly → "—".
        ("IWM", "sideways_new_label", None, None, MISSING, None),
        (EVIL, MISSING, None, None, "candidate", 71),
        # No data at all.
        ("DIA", MISSING, None, None, MISSING, None),
    ],
)
def test_watchlist_rows(symbol, flow, gex, shift, decision, score):
    """Each watchlist row carries the final label, GEX, shift fraction, decision and score."""
    rows = {w.symbol: w for w in sample_recap().watchlist}
    w = rows[symbol]
    assert (w.flow_direction, w.live_gex, w.shift, w.decision, w.score) == (
        flow,
        gex,
        shift,
        decision,
        score,
    )


def test_watchlist_order_and_dedup():
    """The watchlist keeps config order, upper-cased, without duplicates."""
    assert [w.symbol for w in sample_recap().watchlist] == ["SPY", "QQQ", "IWM", EVIL, "DIA"]


def test_leaderboards():
    """Top buyers/sellers keep net notional in dollars and show signed $M; 0DTE sorts by rank."""
    r = sample_recap()
    assert [(b.symbol, b.net_notional_text) for b in r.buyers] == [
        ("NVDA", "+$45.6M"),
        ("AAPL", "+$12.3M"),
    ]
    assert r.sellers[0].net_notional_m == pytest.approx(-3.2)
    assert [(z.metric, [e.symbol for e in z.lines]) for z in r.zero_dte] == [
        ("heat", ["QQQ", "SPY"]),
        ("pin_risk", []),
    ]


@pytest.mark.parametrize(
    ("dollars", "text"),
    [
        (45_600_000, "+$45.6M"),
        (-3_200_000, "-$3.2M"),
        (0, "+$0.0M"),
        (1.5e9, "+$1,500.0M"),
        (None, MISSING),
    ],
)
def test_format_millions(dollars, text):
    """Net notional shows as signed millions of dollars."""
    assert format_millions(dollars) == text


def test_empty_inputs_and_top_n():
    """No data gives an empty but valid recap; top_n < 1 is rejected."""
    s = black_friday()
    r = build_recap(
        s, alerts=[], summaries={}, anomalies={}, options_board=None, zero_dte={}, watchlist=[]
    )
    assert (r.alert_count, r.has_board, r.zero_dte, r.watchlist) == (0, False, (), ())
    with pytest.raises(ValueError, match="top_n"):
        build_recap(
            s,
            alerts=[],
            summaries={},
            anomalies={},
            options_board=None,
            zero_dte={},
            watchlist=[],
            top_n=0,
        )


# ---------------------------------------------------------------------------------- rendering


def slack_dump(renderer: Renderer, recap: Recap) -> str:
    """The Slack recap as readable text: the fallback, then each block's texts."""
    msg = renderer.slack_template("recap", recap=recap)
    out = ["--- text", msg.text]
    for b in msg.blocks:
        out.append(f"--- {b['type']}")
        if "text" in b:
            out.append(b["text"]["text"])
        out += [f"[field] {f['text']}" for f in b.get("fields", [])]
        out += [e["text"] for e in b.get("elements", [])]
    return "\n".join(out) + "\n"


@pytest.mark.parametrize(
    ("golden", "render"),
    [
        ("recap.txt", lambda r, recap: slack_dump(r, recap)),
        ("digest.txt", lambda r, recap: r.email("digest", recap=recap, chart_src=None)[0] + "\n"),
    ],
    ids=["slack", "email-text"],
)
def test_golden(renderer, golden, render):
    """The rendered recap matches tests/golden/ (set UPDATE_GOLDEN=1 to rewrite)."""
    text = render(renderer, sample_recap())
    path = GOLDEN / golden
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_slack_escapes_hostile_text(renderer):
    """A symbol with < > & and <script> is escaped once in the Slack post and in its fallback."""
    msg = renderer.slack_template("recap", recap=sample_recap())
    everything = msg.text + str(msg.blocks)
    assert "<SCRIPT>" not in everything
    assert "&lt;SCRIPT&gt;&amp;X" in everything
    assert "&amp;lt;" not in everything  # not double-escaped


def test_html_escapes_and_text_does_not(renderer):
    """The HTML digest escapes hostile text once; the text part shows it verbatim."""
    text, html = renderer.email("digest", recap=sample_recap(), chart_src=None)
    assert "<SCRIPT>" not in html
    assert "&lt;SCRIPT&gt;&amp;X" in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in html
    assert "&amp;lt;" not in html
    assert f"{EVIL} candidate <b>bold</b> & more" in text
    assert "&lt;" not in text and "&amp;" not in text
    assert 'href="javascript' not in html
    # The alert log's plain text ("lasted <1 min") is escaped once by the HTML template:
    # escaped once in HTML, not at all in text.
    assert "lasted &lt;1 min" in html and "&amp;lt;" not in html
    assert "lasted <1 min" in text


@pytest.mark.parametrize("extra", [0, 40, 150])
def test_slack_block_kit_limits(renderer, extra):
    """A long watchlist (40, 150 symbols) stays within Block Kit limits and every block parses."""
    recap = sample_recap(watchlist_extra=extra)
    msg = renderer.slack_template("recap", recap=recap)
    assert len(msg.blocks) <= 50
    for block in msg.blocks:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
    shown = "".join(b.get("text", {}).get("text", "") for b in msg.blocks)
    # Every symbol is listed; none is dropped by truncation.
    assert all(f"`{w.symbol}`" in shown for w in recap.watchlist if w.symbol != EVIL)
