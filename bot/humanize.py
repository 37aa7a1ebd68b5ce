"""Durations in words for log lines and notices: ``14798967`` seconds → ``"171 days 7 h"``."""

from __future__ import annotations

import math

__all__ = ["human_duration"]

_UNITS = (("day", 86_400), ("h", 3_600), ("min", 60), ("s", 1))


def _unit(name: str, count: int) -> str:
    if name == "day":
        return f"{count} day" if count == 1 else f"{count} days"
    return f"{count} {name}"


def human_duration(seconds: float) -> str:
    """``seconds`` (any real number of seconds) as at most two units, largest first, the
    second rounded: ``42`` → ``"42 s"``, ``90`` → ``"1 min 30 s"``, ``360`` → ``"6 min"``,
    ``3725`` → ``"1 h 2 min"``, ``90000`` → ``"1 day 1 h"``. Below one second: ``"0 s"``
    for exactly zero, else ``"<1 s"``. A negative duration (clock skew) gets a leading
    ``"-"``. Raises ``ValueError`` for NaN or infinity."""
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"not a duration: {seconds}")
    if seconds < 0:
        return "-" + human_duration(-seconds)
    if seconds == 0:
        return "0 s"
    if seconds < 1:
        return "<1 s"
    total = round(seconds)
    for i, (name, size) in enumerate(_UNITS):
        if total >= size:
            major, rest = divmod(total, size)
            if i + 1 == len(_UNITS):
                return _unit(name, major)
            minor_name, minor_size = _UNITS[i + 1]
            minor = round(rest / minor_size)
            if minor * minor_size == size:  # 59.6 min rounds up to the next hour
                major, minor = major + 1, 0
            text = _unit(name, major)
            return f"{text} {_unit(minor_name, minor)}" if minor else text
    raise AssertionError("unreachable: total >= 1")
