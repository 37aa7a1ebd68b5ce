"""Durations in words, as log lines and notices show them."""

from __future__ import annotations

import math

import pytest

from bot.humanize import human_duration

CASES = [
    # (id, seconds, words)
    ("zero", 0, "0 s"),
    ("a fraction", 0.3, "<1 s"),
    ("seconds", 42, "42 s"),
    ("rounded to the second", 59.4, "59 s"),
    ("one minute exactly", 60, "1 min"),
    ("minute and seconds", 90, "1 min 30 s"),
    ("the issue's 6 minutes", 360, "6 min"),
    ("hour and minutes", 3725, "1 h 2 min"),
    ("seconds under an hour are dropped", 3601, "1 h"),
    ("1 h 59.5 min rounds up to 2 h, not 1 h 60 min", 7170, "2 h"),
    ("under an hour keeps the seconds", 3576, "59 min 36 s"),
    ("one day", 86_400, "1 day"),
    ("day and hours", 90_000, "1 day 1 h"),
    ("the issue's stale feed", 14_798_967, "171 days 7 h"),
    ("negative (clock skew)", -90, "-1 min 30 s"),
]


@pytest.mark.parametrize(("seconds", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_human_duration(seconds, words):
    """Each duration reads as at most two units, largest first."""
    assert human_duration(seconds) == words


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_not_a_duration_is_refused(value):
    """NaN and infinity are programming errors, not durations."""
    with pytest.raises(ValueError, match="not a duration"):
        human_duration(value)
