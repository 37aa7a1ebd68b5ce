"""Tests for bot.chart: the cumulative-flow PNG over a session."""

from __future__ import annotations

import asyncio
import struct
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest

from bot.api.models import CumulativeFlow
from bot.calendar import Session, TradingCalendar
from bot.chart import (
    flip_points,
    line_colors,
    render_chart_in_child,
    render_cumulative_chart,
    session_series,
)


@pytest.fixture(scope="module")
def session() -> Session:
    """A full session in winter time (EST): 2026-03-06, 14:30-21:00 UTC."""
    cal = TradingCalendar(start=date(2026, 1, 1), end=date(2027, 12, 31))
    return cal.session_for(date(2026, 3, 6))


def flow(symbol: str, session: Session, start: int, stop: int, per_min: float) -> CumulativeFlow:
    """Minute points from ``start`` to ``stop`` minutes after the open (negative = before)."""
    points = [
        {
            "ts": session.open_utc + timedelta(minutes=m),
            "netVolume": per_min,
            "cumulative": 99_999,
        }  # the server's running sum; the chart rebuilds its own
        for m in range(start, stop)
    ]
    return CumulativeFlow(symbol=symbol, points=points)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def test_series_starts_at_open_and_drops_outside_points(session):
    """The series is the running sum of net volume from the open; points outside are dropped."""
    times, values = session_series(flow("SPY", session, -30, 400, 10), session)
    assert times[0] == session.open_utc and times[-1] == session.close_utc
    assert values[0] == 10 and values[-1] == 10 * 391


@pytest.mark.parametrize(
    "flows",
    [
        {},
        {"SPY": CumulativeFlow(symbol="SPY", points=[])},
        # Only points from yesterday: nothing inside the session.
        {"SPY": "yesterday"},
    ],
    ids=["no-symbols", "no-points", "outside-session"],
)
def test_empty_data_gives_a_chart(session, flows):
    """No usable data renders a 'no flow data' PNG instead of raising."""
    if flows.get("SPY") == "yesterday":
        flows = {"SPY": flow("SPY", session, -24 * 60, -23 * 60, 5)}
    assert png_size(render_cumulative_chart(flows, session)) == (1200, 672)


def test_chart_with_many_symbols(session):
    """40 symbols render (only the largest lines drawn) as a Slack-sized PNG."""
    flows = {f"S{i:02d}": flow(f"S{i:02d}", session, 0, 390, i - 20) for i in range(40)}
    flows["<B&>"] = flow("<B&>", session, 0, 390, 3)
    png = render_cumulative_chart(flows, session, max_lines=8)
    assert png_size(png) == (1200, 672)
    assert len(png) > 20_000  # lines, legend and text were drawn


def test_renders_in_parallel_threads(session):
    """Charts render concurrently from several threads (no pyplot global state)."""
    flows = {"SPY": flow("SPY", session, 0, 390, 5), "QQQ": flow("QQQ", session, 0, 390, -2)}
    with ThreadPoolExecutor(max_workers=4) as pool:
        pngs = list(pool.map(lambda _: render_cumulative_chart(flows, session), range(8)))
    assert len({png_size(p) for p in pngs}) == 1
    assert all(p == pngs[0] for p in pngs)


COLORS = [
    # (id, final cumulative flow per symbol, expected (colour, style) per symbol)
    (
        "one of each sign",
        {"SPY": 5.0, "QQQ": -3.0},
        {"SPY": ("#137333", "-"), "QQQ": ("#c5221f", "-")},
    ),
    ("flat counts as sold", {"IWM": 0.0}, {"IWM": ("#c5221f", "-")}),
    (
        "second buyer gets the next green",
        {"A": 1.0, "B": -1.0, "C": 2.0},
        {"A": ("#137333", "-"), "B": ("#c5221f", "-"), "C": ("#34a853", "-")},
    ),
]


@pytest.mark.parametrize(
    ("finals", "expected"), [c[1:] for c in COLORS], ids=[c[0] for c in COLORS]
)
def test_line_colours_follow_the_sign(finals, expected):
    """Net bought symbols are drawn in greens, net sold in reds."""
    assert line_colors(finals) == expected


def test_a_sixth_line_of_one_colour_is_dashed():
    """Six buyers: the sixth reuses the first green, dashed, so lines stay apart."""
    styles = line_colors({f"S{i}": 1.0 + i for i in range(6)})
    assert styles["S5"] == (styles["S0"][0], "--")


def test_flip_points_sit_on_the_line(session):
    """A flip is marked at its time on the line's last value at or before it; flips outside
    the line are left out."""
    t0 = session.open_utc
    times = [t0 + timedelta(minutes=m) for m in range(5)]
    values = [0.0, 10.0, 20.0, 30.0, 40.0]
    flips = [
        t0 + timedelta(minutes=2, seconds=30),
        t0 - timedelta(minutes=1),
        t0 + timedelta(hours=1),
    ]
    assert flip_points(times, values, flips) == [(flips[0], 20.0)]


def test_chart_with_flips_renders(session):
    """Flip markers do not break the PNG (one marked, one unknown symbol ignored)."""
    flows = {"SPY": flow("SPY", session, 0, 120, 10.0), "QQQ": flow("QQQ", session, 0, 120, -5.0)}
    png = render_cumulative_chart(
        flows,
        session,
        flips={"SPY": [session.open_utc + timedelta(minutes=30)], "ZZZ": [session.open_utc]},
    )
    assert png_size(png) == (1200, 672)


def test_child_process_draws_the_same_chart(session):
    """The bot's path (series cut here, drawn by ``python -m bot.chart``) gives the PNG the
    in-process renderer gives."""
    flows = {"SPY": flow("SPY", session, -30, 400, 10.0), "QQQ": flow("QQQ", session, 0, 200, -3.0)}
    flips = {"SPY": [session.open_utc + timedelta(minutes=30)]}
    series = {s: session_series(f, session) for s, f in flows.items()}
    png = asyncio.run(render_chart_in_child(series, session, flips=flips))
    assert png_size(png) == (1200, 672)
    assert png == render_cumulative_chart(flows, session, flips=flips)


def test_child_process_failure_raises(session):
    """A child that cannot draw (an unknown timezone) raises RuntimeError with its reason."""
    with pytest.raises(RuntimeError, match=r"chart: the child process failed: .*Mars/Olympus"):
        asyncio.run(render_chart_in_child({}, session, "Mars/Olympus"))
