"""Silences: durations, standing daily windows, the silence stage, and the alert log (the
stored ones on SQLite and on PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from bot.events import Event, Severity
from bot.pipeline import silence
from bot.policy import Reason
from bot.routes import RouteMatch
from bot.silences import Silence, StandingSilence, active, parse_duration
from bot.store import NewAlert, Store

NOW = datetime(2026, 6, 5, 14, 32, tzinfo=UTC)  # 10:32 New York


def flip(symbol: str) -> Event:
    return Event(
        "regime_flip", "regime_flip", symbol, "regime_flip", NOW, severity=Severity.CRITICAL
    )


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("90m", 90), ("2h", 120), ("1d", 1440), ("1h30m", 90), (" 2H ", 120)],
)
def test_durations(text: str, minutes: int) -> None:
    """The CLI's --for takes d, h and m, combined."""
    assert parse_duration(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["", "2", "h", "2w", "-1h", "0m"])
def test_bad_durations_are_refused(text: str) -> None:
    """Anything else is a clear error, never a silence of surprising length."""
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_standing_silence_holds_only_inside_its_daily_window() -> None:
    """A config silence for 09:30–09:35 New York covers 09:32, not 09:35 or 10:32."""
    cfg = StandingSilence(match=RouteMatch(rule=["top_n"]), start=time(9, 30), end=time(9, 35))
    at = datetime(2026, 6, 5, 13, 32, tzinfo=UTC)  # 09:32 New York (EDT)
    assert [s.id for s in active([], [cfg], at)] == ["config:0"]
    assert active([], [cfg], at + timedelta(minutes=3)) == []
    assert active([], [cfg], NOW) == []


SPY_FLIPS = Silence(
    "7", {"rule": ["regime_flip"], "symbol": ["SPY"]}, NOW, NOW + timedelta(hours=1), "", "me"
)


@pytest.mark.parametrize(
    ("silences", "now", "held"),
    [
        ([SPY_FLIPS], NOW, ["SPY"]),  # matching symbol and rule: held
        ([SPY_FLIPS], NOW + timedelta(hours=1), []),  # over at its end
        ([SPY_FLIPS], NOW - timedelta(seconds=1), []),  # not yet started
        ([], NOW, []),  # nothing silenced
    ],
    ids=["inside", "ended", "not-started", "none"],
)
def test_silence_stage(silences: list[Silence], now: datetime, held: list[str]) -> None:
    """Covered events are held with reason `silenced` and the silence id; others pass."""
    kept, decisions = silence([flip("SPY"), flip("QQQ")], silences, now)
    assert [d.event.symbol for d in decisions] == held
    assert all(d.reason is Reason.SILENCED and d.silence_id == "7" for d in decisions)
    assert [e.symbol for e in kept] == [s for s in ("SPY", "QQQ") if s not in held]


def test_silenced_alert_is_logged_but_never_blocks_a_later_alert(store: Store) -> None:
    """The alert log keeps the silenced flip (outcome `silenced`); no cooldown starts."""
    event = flip("SPY")
    store.commit_cycle(
        session="2026-06-05",
        now=NOW,
        snapshots=[],
        alerts=[NewAlert(event, "silenced", "SPY flip", silence_id="7")],
    )
    (record,) = store.alerts("2026-06-05")
    assert record.outcome == "silenced"
    assert store.last_alerted(event.alert_key, event.state) is None
    assert not store.has_alert(event.alert_key, "2026-06-05")


def test_stored_silence_round_trip_and_expire(store: Store) -> None:
    """A silence added and listed keeps its matchers; expiring it ends it now."""
    sid = store.add_silence(
        {"symbol": ["SPY"]},
        starts_at=NOW,
        ends_at=NOW + timedelta(hours=2),
        comment="c",
        created_by="me",
    )
    (stored,) = store.silences(NOW)
    assert (stored.id, stored.matchers, stored.comment) == (str(sid), {"symbol": ["SPY"]}, "c")
    assert store.expire_silence(sid, NOW + timedelta(minutes=5))
    assert store.silences(NOW + timedelta(minutes=5)) == []
    assert not store.expire_silence(sid, NOW + timedelta(minutes=6))
