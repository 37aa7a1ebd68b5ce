"""The request pacer: which RateLimit-Policy values it paces, how long a request waits, and
how a rate is learnt from a 429 (a fake clock drives it; no I/O)."""

from __future__ import annotations

import pytest

from bot.api.pacer import Rate, RatePacer, parse_policy


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('"per-second";q=100;w=1', (100, 1.0)),  # draft 08+: structured list
        ("100;w=1", (100, 1.0)),  # drafts 03-07: the quota leads the item
        ('"burst";q=100;w=1, "day";q=5000;w=86400', (100, 1.0)),  # the day is a quota
        # Within both: the lower rate (10/s) over the shorter window (1 s).
        ('"a";q=600;w=60, "b";q=20;w=1', (10, 1.0)),
        ("50;w=10, 10;w=1", (5, 1.0)),
        ('"slow";q=1;w=4', (1, 4.0)),
        ('"day";q=5000;w=86400', None),  # only a daily quota: nothing to pace
        ('"x";q=0;w=1', None),
        ("garbage", None),
        ('"x";q=ten;w=1', None),
    ],
)
def test_parse_policy(header: str, expected: tuple[int, float] | None) -> None:
    assert parse_policy(header) == expected


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_advertised_rate_is_paced_at_90_percent_over_a_sliding_window() -> None:
    clock = Clock()
    pacer = RatePacer(clock)
    assert pacer.delay() == 0.0  # no rate: everything goes
    assert pacer.advertise('"s";q=10;w=1') == Rate(9, 1.0, "advertised")
    assert pacer.advertise('"s";q=10;w=1') is None  # same header again: unchanged
    for _ in range(9):
        assert pacer.delay() == 0.0
        pacer.sent()
        clock.now += 0.01
    assert pacer.delay() == pytest.approx(0.91)  # the 10th waits for the 1st to age out
    clock.now = 101.0
    assert pacer.delay() == 0.0


def test_a_configured_rate_wins_over_an_advertised_one() -> None:
    pacer = RatePacer(Clock())
    assert pacer.configure(2.5) == Rate(2, 0.8, "configured")
    assert pacer.advertise('"s";q=100;w=1') is None
    assert pacer.rate == Rate(2, 0.8, "configured")
    with pytest.raises(ValueError, match="max_requests_per_second"):
        pacer.configure(0)


def test_a_rate_is_learnt_from_the_first_429_then_halved_once_per_window() -> None:
    clock = Clock()
    pacer = RatePacer(clock)
    for i in range(50):  # 50 accepted within the second before the 429
        pacer.accepted(100.0 + i * 0.01)
    pacer.accepted(98.0)  # too old to count (and pruned)
    assert pacer.learn(100.6) == Rate(45, 1.0, "learned")
    assert pacer.learn(101.0) is None  # sent before the learnt rate took a window to act
    assert pacer.learn(101.7) == Rate(22, 1.0, "learned")
    pacer.advertise('"s";q=10;w=1')
    assert pacer.rate == Rate(9, 1.0, "advertised")
    assert pacer.learn(105.0) is None  # an advertised rate is not second-guessed


def test_an_immediate_429_still_learns_at_least_one_request() -> None:
    pacer = RatePacer(Clock())
    assert pacer.learn(100.0) == Rate(1, 1.0, "learned")


def test_requests_sent_before_the_rate_was_known_count_against_it() -> None:
    """The first burst goes out before any response says the limit; once it is known, that
    burst fills the window, so the next send waits instead of drawing a 429."""
    clock = Clock()
    pacer = RatePacer(clock)
    for _ in range(16):
        pacer.sent()
    clock.now += 0.05
    pacer.advertise('"s";q=20;w=1')  # paced at 18 per second
    pacer.sent()
    pacer.sent()
    assert pacer.delay() == pytest.approx(0.95)
