"""Policy decisions: cooldown, flapping, follow-up gating, each with its named reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.events import Event
from bot.policy import Reason, decide

T0 = datetime(2026, 6, 5, 15, 0, tzinfo=UTC)


def ev(state: str = "regime_flip", symbol: str = "SPY", follow_up: bool = False) -> Event:
    return Event(
        rule="regime_flip",
        kind="regime_flip",
        symbol=symbol,
        state=state,
        occurred_at=T0,
        follow_up=follow_up,
        thread_parent="regime_flip:-:SPY" if follow_up else None,
    )


CASES = [
    # (id, last alerted minutes ago for (key, state) or None, expected reason)
    ("never alerted", None, Reason.FIRST),
    ("inside the cooldown: a flap", 10, Reason.IN_COOLDOWN),
    ("cooldown just elapsed", 30, Reason.COOLDOWN_ELAPSED),
    ("long ago", 300, Reason.COOLDOWN_ELAPSED),
]


@pytest.mark.parametrize(("ago", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cooldown(ago, reason):
    """One alert per (rule, symbol, state) per cooldown, with the reason that decided it."""
    last = None if ago is None else T0 - timedelta(minutes=ago)
    (decision,) = decide(
        [ev()],
        now=T0,
        cooldown_minutes={"regime_flip": 30},
        last_alerted=lambda k, s: last,
        parent_alerted=lambda k: True,
    )
    assert decision.reason == reason
    assert decision.send is (reason in (Reason.FIRST, Reason.COOLDOWN_ELAPSED))


def test_new_state_is_not_held_by_the_cooldown_of_another():
    """A candidate switching direction is alerted even inside the cooldown of the first one."""
    alerted = {("regime_flip:-:SPY", "candidate:bullish"): T0 - timedelta(minutes=5)}
    decisions = decide(
        [ev("candidate:bearish")],
        now=T0,
        cooldown_minutes={"regime_flip": 30},
        last_alerted=lambda k, s: alerted.get((k, s)),
        parent_alerted=lambda k: True,
    )
    assert decisions[0].reason == Reason.FIRST


@pytest.mark.parametrize(
    ("parent", "reason"), [(True, Reason.FOLLOW_UP), (False, Reason.NO_PARENT)]
)
def test_follow_up_needs_its_parent(parent, reason):
    """A follow-up goes out only when the alert it replies to exists this session."""
    (decision,) = decide(
        [ev("ended:amplifying", follow_up=True)],
        now=T0,
        cooldown_minutes={},
        last_alerted=lambda k, s: T0,
        parent_alerted=lambda k: parent,
    )
    assert decision.reason == reason


def test_duplicate_in_one_batch_is_sent_once():
    """Two identical events in one cycle make one alert."""
    decisions = decide(
        [ev(), ev()],
        now=T0,
        cooldown_minutes={},
        last_alerted=lambda k, s: None,
        parent_alerted=lambda k: True,
    )
    assert [d.reason for d in decisions] == [Reason.FIRST, Reason.DUPLICATE]
