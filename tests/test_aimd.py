"""AimdLimit: slow start, additive increase, multiplicative decrease on 429 and on latency."""

from __future__ import annotations

import pytest

from bot.api.aimd import AimdLimit

# Each step: (started, latency seconds, throttled) -> limit expected after it.
CASES = {
    # Slow start: +1 per success until the first decrease.
    "slow start grows by one per response": (
        AimdLimit(initial=4, maximum=64),
        [((0.0, 0.05, False), 5), ((0.0, 0.05, False), 6), ((0.0, 0.05, False), 7)],
    ),
    "never above maximum": (
        AimdLimit(initial=7, maximum=8),
        [((0.0, 0.05, False), 8), ((0.0, 0.05, False), 8)],
    ),
    "429 halves the limit": (
        AimdLimit(initial=16),
        [((1.0, 0.05, True), 8)],
    ),
    # Responses to requests sent before the decrease (started < 1.05) were sent at the old
    # limit: one decrease per round trip, not one per throttled response.
    "a burst of 429s from one round trip decreases once": (
        AimdLimit(initial=16),
        [((1.0, 0.05, True), 8), ((1.01, 0.05, True), 8), ((1.02, 0.06, True), 8)],
    ),
    "a 429 in the next round trip decreases again": (
        AimdLimit(initial=16),
        [((1.0, 0.05, True), 8), ((1.1, 0.05, True), 4)],
    ),
    "never below minimum": (
        AimdLimit(minimum=2, initial=2),
        [((1.0, 0.05, True), 2), ((2.0, 0.05, True), 2)],
    ),
    # After a decrease: congestion avoidance, +1/limit per response (+1 per round trip).
    "additive increase after a decrease": (
        AimdLimit(initial=8),
        [((1.0, 0.05, True), 4)] + [((2.0, 0.05, False), 4)] * 4 + [((2.0, 0.05, False), 5)],
    ),
    "latency far above the baseline backs off gently": (
        AimdLimit(initial=10),
        [((0.0, 0.05, False), 11), ((1.0, 0.30, False), 8)],
    ),
    # 0.05 -> 0.09 s is under 2x the baseline: jitter, not a queue.
    "latency jitter under the tolerance still grows": (
        AimdLimit(initial=10),
        [((0.0, 0.05, False), 11), ((1.0, 0.09, False), 12)],
    ),
    # 1 ms -> 5 ms is 5x but only 4 ms more: loopback noise, not congestion.
    "tiny absolute latency changes are ignored": (
        AimdLimit(initial=10),
        [((0.0, 0.001, False), 11), ((1.0, 0.005, False), 12)],
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_aimd_table(case: str) -> None:
    """The limit after each response follows slow start, then AIMD, as the case says."""
    aimd, steps = CASES[case]
    for (started, latency, throttled), expected in steps:
        assert aimd.on_response(started, latency, throttled=throttled) == expected


def test_bounds_are_checked() -> None:
    """An initial limit outside minimum..maximum is a programming error, raised at once."""
    with pytest.raises(ValueError):
        AimdLimit(minimum=4, initial=2)
