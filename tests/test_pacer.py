"""The request pacer: which RateLimit-Policy values it paces, how long a request waits, and
how a rate is learnt from a 429 (a fake clock drives it; no I/O)."""

from __future__ import annotations

import itertools

import pytest

from bot.api.pacer import LEARNED_FOR_SECONDS, Rate, RatePacer, parse_policy


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('"per-second";q=100;w=1', [(100, 1.0)]),  # draft 08+: structured list
        ("burst;q=100;w=1", [(100, 1.0)]),  # an unquoted name
        ("100;w=1", [(100, 1.0)]),  # drafts 03-07: the quota leads the item
        ('"burst";q=100;w=1, "day";q=5000;w=86400', [(100, 1.0)]),  # the day is a quota
        ('"a";q=600;w=60, "b";q=20;w=1', [(600, 60.0), (20, 1.0)]),  # each paced on its own
        ('"a, b";q=10;w=2', [(10, 2.0)]),  # a comma inside a quoted name
        ('"bytes";q=1000000;qu="content-bytes";w=1, "r";q=5;w=1', [(5, 1.0)]),
        ('"day";q=5000;w=86400', []),  # only a daily quota: nothing to pace
        ('"x";q=0;w=1', []),
        ("garbage", []),
        ('"x";q=ten;w=1', []),
    ],
)
def test_parse_policy(header: str, expected: list[tuple[int, float]]) -> None:
    assert parse_policy(header) == expected


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def send_when_allowed(pacer: RatePacer, clock: Clock, count: int) -> list[float]:
    """Send ``count`` requests, each as soon as the pacer allows; their send times."""
    times = []
    for _ in range(count):
        clock.now += pacer.delay()
        pacer.sent()
        times.append(clock.now)
    return times


def test_an_advertised_rate_is_paced_at_90_percent_evenly() -> None:
    """q=10 per second is sent as 9 a second, one every 1/9 s (no burst at a window's edge),
    so no second of the server's clock can see more than 9 of them."""
    clock = Clock()
    pacer = RatePacer(clock)
    assert pacer.delay() == 0.0  # no rate: everything goes
    assert pacer.advertise('"s";q=10;w=1') == Rate(((9, 1.0),), "advertised")
    assert pacer.advertise('"s";q=10;w=1') is None  # same header again: unchanged
    times = send_when_allowed(pacer, clock, 30)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) == pytest.approx(1 / 9)
    for second in range(100, 104):
        assert sum(1 for t in times if second <= t < second + 1) <= 9


def test_every_advertised_policy_holds_over_its_own_window() -> None:
    """100 a minute and 10 a second: 9 a second until 90 in the minute, then the minute's
    window is what waits."""
    clock = Clock()
    pacer = RatePacer(clock)
    assert str(pacer.advertise('"m";q=100;w=60, "s";q=10;w=1')) == (
        "90 per 60 s and 9 per 1 s (advertised)"
    )
    times = send_when_allowed(pacer, clock, 90)
    assert times[-1] - times[0] == pytest.approx(89 / 9)  # 9 a second, evenly
    assert pacer.delay() == pytest.approx(times[0] + 60 - clock.now)  # the minute is spent


def test_a_configured_rate_wins_over_an_advertised_one() -> None:
    pacer = RatePacer(Clock())
    assert pacer.configure(2.5) == Rate(((2, 0.8),), "configured")
    assert pacer.advertise('"s";q=100;w=1') is None
    assert pacer.rate == Rate(((2, 0.8),), "configured")
    with pytest.raises(ValueError, match="max_requests_per_second"):
        pacer.configure(0)


def test_a_rate_is_learnt_from_the_sends_before_the_429_then_halved_to_a_floor() -> None:
    clock = Clock()
    pacer = RatePacer(clock)
    clock.now = 98.0
    pacer.sent()  # more than a second before the refused one: not counted
    for i in range(50):  # 50 sent within the second before the 429
        clock.now = 100.0 + i * 0.01
        pacer.sent()
    assert pacer.learn(100.6) == Rate(((45, 1.0),), "learned")
    assert pacer.learn(101.0) is None  # sent before the learnt rate had a second to act
    assert pacer.learn(101.7) == Rate(((22, 1.0),), "learned")
    assert pacer.learn(103.0) is None  # 22 is the floor: half of the first estimate
    assert pacer.rate == Rate(((22, 1.0),), "learned")
    pacer.advertise('"s";q=10;w=1')
    assert pacer.rate == Rate(((9, 1.0),), "advertised")
    assert pacer.learn(105.0) is None  # an advertised rate is not second-guessed


def test_a_learnt_rate_lapses() -> None:
    """Another client's burst on the same key must not slow the bot for the rest of the day:
    a learnt rate holds LEARNED_FOR_SECONDS, then requests go unpaced until the next 429."""
    clock = Clock()
    pacer = RatePacer(clock)
    for _ in range(20):
        pacer.sent()
    assert pacer.learn(100.0) is not None
    clock.now += LEARNED_FOR_SECONDS - 1
    assert pacer.rate is not None
    clock.now += 1
    assert pacer.rate is None and pacer.delay() == 0.0


def test_an_immediate_429_still_learns_at_least_one_request() -> None:
    pacer = RatePacer(Clock())
    assert pacer.learn(100.0) == Rate(((1, 1.0),), "learned")


def test_requests_sent_before_the_rate_was_known_count_against_it() -> None:
    """The first burst goes out before any response says the limit; once it is known, that
    burst fills the window, so the next send waits instead of drawing a 429."""
    clock = Clock()
    pacer = RatePacer(clock)
    for _ in range(16):
        pacer.sent()
    clock.now += 0.05
    pacer.advertise('"s";q=20;w=1')  # paced at 18 per second
    send_when_allowed(pacer, clock, 2)
    assert clock.now < 100.2  # room for 2 more in the burst's second, 1/18 s apart
    assert pacer.delay() == pytest.approx(100.0 + 1.0 - clock.now)  # the 19th: after the burst
