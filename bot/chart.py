"""The session chart: cumulative net option flow per watchlist symbol, as a PNG for Slack/email.

Drawn with matplotlib's object API (``Figure`` + the Agg canvas), never ``pyplot``: pyplot keeps
a global figure registry that leaks memory and is not safe across scheduler threads. Because the
canvas is Agg explicitly, the process-wide backend (``matplotlib.use``) is left alone.

The bot draws in a short-lived child process (:func:`render_chart_in_child`, which runs
``python -m bot.chart``): matplotlib (~30 MB, and as much again while drawing) never loads into
``flowbot run``. The child gets only the series to draw, never the responses.
"""

from __future__ import annotations

import asyncio
import bisect
import io
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.calendar import Session
from bot.child import child_command

if TYPE_CHECKING:
    from bot.api.models import CumulativeFlow

__all__ = [
    "BUYER_COLORS",
    "CHILD_TIMEOUT_SECONDS",
    "MAX_LINES",
    "SELLER_COLORS",
    "Series",
    "flip_points",
    "line_colors",
    "render_chart_in_child",
    "render_cumulative_chart",
    "render_series_chart",
    "session_series",
]

Series = tuple[list[datetime], list[float]]
"""One symbol's line: UTC times and the cumulative net option flow (contracts) at each."""

CHILD_TIMEOUT_SECONDS = 120.0
"""How long the child process drawing a chart may take (it needs 1-2 s)."""

MAX_LINES = 10
"""Lines drawn at most: beyond ~10 a chart at Slack preview size stops being readable, so the
symbols with the largest |final cumulative flow| are kept and the rest counted in the title."""

_WIDTH_IN, _HEIGHT_IN, _DPI = 10.0, 5.6, 120  # 1200 x 672 px: sharp in Slack and in email

BUYER_COLORS = ("#137333", "#34a853", "#0b5d2a", "#6dc48a", "#1e8e3e")
"""Greens for symbols whose flow ended net bought (final cumulative > 0), darkest first."""
SELLER_COLORS = ("#c5221f", "#ea4335", "#8c1512", "#f28b82", "#d93025")
"""Reds for symbols whose flow ended net sold (final cumulative ≤ 0)."""
_STYLES = ("-", "--", "-.", ":")  # beyond five lines of one colour family, the dash tells apart


def line_colors(finals: Mapping[str, float]) -> dict[str, tuple[str, str]]:
    """``{symbol: (colour, line style)}`` by the sign of each final cumulative flow
    (contracts): net bought → :data:`BUYER_COLORS`, net sold or flat → :data:`SELLER_COLORS`,
    in the mapping's order within each family; a sixth line of one family gets a dashed style."""
    out: dict[str, tuple[str, str]] = {}
    seen = {True: 0, False: 0}
    for symbol, final in finals.items():
        bought = final > 0
        i = seen[bought]
        seen[bought] += 1
        palette = BUYER_COLORS if bought else SELLER_COLORS
        out[symbol] = (palette[i % len(palette)], _STYLES[(i // len(palette)) % len(_STYLES)])
    return out


def flip_points(
    times: Sequence[datetime], values: Sequence[float], flips: Iterable[datetime]
) -> list[tuple[datetime, float]]:
    """Where to mark each regime flip (UTC instants) on a line of (``times``, ``values``):
    at the flip's time, on the line's value at the last point at or before it. Flips
    before the first point or after the last are left out."""
    marks = []
    for flip in sorted(flips):
        i = bisect.bisect_right(list(times), flip) - 1
        if i >= 0 and flip <= times[-1]:
            marks.append((flip, values[i]))
    return marks


def session_series(flow: CumulativeFlow, session: Session) -> Series:
    """The cumulative net option flow of ``flow`` over ``session``: (UTC times, contracts).

    Rebuilt as the running sum of each minute's ``net_volume`` from the session open, so the
    line starts at zero at the open even when the endpoint's window (``minutes``) started
    earlier; points outside [open, close] are dropped. Fetch with ``minutes`` ≥ the session's
    length (390, or 210 on an early close) plus the recap delay, or the morning is missing.
    """
    times: list[datetime] = []
    values: list[float] = []
    total = 0.0
    for point in sorted(flow.points, key=lambda p: p.ts):
        if session.open_utc <= point.ts <= session.close_utc:
            total += point.net_volume
            times.append(point.ts)
            values.append(total)
    return times, values


def _contracts(value: float, _pos: object = None) -> str:
    a = abs(value)
    if a >= 1e6:
        return f"{value / 1e6:,.1f}M"
    if a >= 1e3:
        return f"{value / 1e3:,.0f}K" if a >= 1e4 else f"{value / 1e3:,.1f}K"
    return f"{value:,.0f}"


def render_cumulative_chart(
    flows: Mapping[str, CumulativeFlow],
    session: Session,
    timezone: str | ZoneInfo = "America/New_York",
    *,
    max_lines: int = MAX_LINES,
    flips: Mapping[str, Sequence[datetime]] | None = None,
) -> bytes:
    """Render cumulative net option flow (contracts) over ``session`` as PNG bytes.

    - ``flows``: the cumulative-flow response per watchlist symbol (``{"SPY": flow}``).
    - One line per symbol (at most ``max_lines``: the largest |final value| win), green when
      the symbol ended net bought and red when net sold (:func:`line_colors`), a zero line,
      the x axis in ``timezone`` wall time from the open to the close, a title with the
      session date, and a legend with each symbol's final value. ``timezone`` is an IANA
      name or a ``ZoneInfo`` (the axis labels say EST/EDT as appropriate).
    - ``flips``: regime-flip instants (UTC) per symbol (from the alert log), marked on that
      symbol's line with a black-edged triangle (:func:`flip_points`).
    - No usable points (empty ``flows`` or none inside the session) → a chart that says
      "No flow data" instead of an exception.

    Returns a PNG (1200 × 672 px). Thread-safe: nothing global is touched. Draws in this
    process (matplotlib is imported here); the bot uses :func:`render_chart_in_child`.
    """
    series = {symbol: session_series(flow, session) for symbol, flow in flows.items()}
    return render_series_chart(series, session, timezone, max_lines=max_lines, flips=flips)


def render_series_chart(
    series: Mapping[str, Series],
    session: Session,
    timezone: str | ZoneInfo = "America/New_York",
    *,
    max_lines: int = MAX_LINES,
    flips: Mapping[str, Sequence[datetime]] | None = None,
) -> bytes:
    """:func:`render_cumulative_chart` from lines already cut to the session
    (:func:`session_series` per symbol; an empty line counts as no data). Returns the PNG."""
    tz = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
    series = {s: tv for s, tv in series.items() if tv[0]}
    ranked = sorted(series.items(), key=lambda kv: abs(kv[1][1][-1]), reverse=True)
    shown, hidden = ranked[:max_lines], len(ranked) - min(len(ranked), max_lines)

    # matplotlib is imported here, not at module load: only the recap draws (~0.3 s saved for
    # every other command).
    from matplotlib import dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(_WIDTH_IN, _HEIGHT_IN), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()

    title = f"Cumulative net option flow — {session.date:%a %d %b %Y}"
    if session.early_close:
        title += f" (early close {session.close_utc.astimezone(tz):%H:%M})"
    if hidden:
        title += f" · {len(shown)} largest of {len(ranked)} symbols"
    ax.set_title(title, fontsize=14, loc="left")

    ax.axhline(0, color="#555555", linewidth=1.0, zorder=1)
    ax.set_xlim(float(mdates.date2num(session.open_utc)), float(mdates.date2num(session.close_utc)))
    tzname = session.close_utc.astimezone(tz).tzname() or str(tz)
    ax.set_xlabel(f"Time ({tzname})", fontsize=11)
    ax.set_ylabel("Net contracts (cumulative)", fontsize=11)
    ax.xaxis.set_major_locator(mdates.HourLocator(tz=tz))
    ax.xaxis.set_minor_locator(mdates.MinuteLocator(byminute=[30], tz=tz))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))
    ax.yaxis.set_major_formatter(FuncFormatter(_contracts))
    ax.tick_params(labelsize=10)
    ax.grid(True, which="major", color="#dddddd", linewidth=0.8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)

    if not shown:
        ax.set_ylim(-1, 1)
        ax.set_yticks([])  # ticks on an empty axis read as data
        ax.text(
            0.5,
            0.5,
            "No flow data",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=20,
            color="#777777",
            bbox={"facecolor": "white", "edgecolor": "none"},
        )
    else:
        styles = line_colors({symbol: values[-1] for symbol, (_, values) in shown})
        marked = False
        for symbol, (times, values) in shown:
            color, style = styles[symbol]
            ax.plot(
                mdates.date2num(times),
                values,
                color=color,
                linestyle=style,
                linewidth=2.0,
                label=f"{symbol}  {'+' if values[-1] > 0 else ''}{_contracts(values[-1])}",
            )
            marks = flip_points(times, values, (flips or {}).get(symbol, ()))
            if marks:
                ax.scatter(
                    mdates.date2num([t for t, _ in marks]),
                    [v for _, v in marks],
                    marker="^",
                    s=90,
                    color=color,
                    edgecolors="black",
                    linewidths=1.2,
                    zorder=5,
                    label=None if marked else "regime flip",
                )
                marked = True
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=10,
            frameon=False,
            title="Symbol  final",
            title_fontsize=10,
        )

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, facecolor="white")
    return buf.getvalue()


def _encode(
    series: Mapping[str, Series],
    session: Session,
    timezone: str,
    max_lines: int,
    flips: Mapping[str, Sequence[datetime]],
) -> bytes:
    """The child's input: JSON with times as UTC Unix seconds."""
    return json.dumps(
        {
            "session": [
                session.date.isoformat(),
                session.open_utc.timestamp(),
                session.close_utc.timestamp(),
                session.early_close,
            ],
            "timezone": timezone,
            "max_lines": max_lines,
            "series": {s: [[t.timestamp() for t in ts], vs] for s, (ts, vs) in series.items()},
            "flips": {s: [t.timestamp() for t in ts] for s, ts in flips.items()},
        },
        separators=(",", ":"),
    ).encode()


def _decode(data: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`render_series_chart` from :func:`_encode`'s JSON."""

    def utc(stamp: float) -> datetime:
        return datetime.fromtimestamp(stamp, UTC)

    day, opened, closed, early = data["session"]
    return {
        "series": {
            s: ([utc(t) for t in ts], [float(v) for v in vs])
            for s, (ts, vs) in data["series"].items()
        },
        "session": Session(date.fromisoformat(day), utc(opened), utc(closed), early),
        "timezone": data["timezone"],
        "max_lines": data["max_lines"],
        "flips": {s: [utc(t) for t in ts] for s, ts in data["flips"].items()},
    }


async def render_chart_in_child(
    series: Mapping[str, Series],
    session: Session,
    timezone: str = "America/New_York",
    *,
    max_lines: int = MAX_LINES,
    flips: Mapping[str, Sequence[datetime]] | None = None,
) -> bytes:
    """:func:`render_series_chart` in a child process (``python -m bot.chart``), awaited
    without blocking the event loop; the PNG bytes. ``timezone`` is an IANA name.

    Raises ``RuntimeError`` (with the child's last line of error output) when the child fails
    or takes longer than :data:`CHILD_TIMEOUT_SECONDS`."""
    data = _encode(series, session, timezone, max_lines, flips or {})
    argv, env = child_command("bot.chart")
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        png, err = await asyncio.wait_for(proc.communicate(data), CHILD_TIMEOUT_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"chart: no PNG after {CHILD_TIMEOUT_SECONDS:g} s") from None
    except BaseException:  # cancelled (a stop): leave no child behind
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode != 0 or not png.startswith(b"\x89PNG"):
        lines = err.decode(errors="replace").strip().splitlines()
        why = lines[-1] if lines else f"exit status {proc.returncode}"
        raise RuntimeError(f"chart: the child process failed: {why}")
    return png


if __name__ == "__main__":
    sys.stdout.buffer.write(render_series_chart(**_decode(json.load(sys.stdin.buffer))))
