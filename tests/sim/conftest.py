"""Shared fixtures for the sandbox tests."""

from __future__ import annotations

import pytest

from bot.sim import Sandbox

ALPHA = {"X-Api-Key": "sandbox-alpha"}


@pytest.fixture
def sandbox():
    """A frozen-clock sandbox on the default scenario with admin routes, at 11:10 New York."""
    with Sandbox(speed=0, admin=True) as sb:
        sb.set_time_ny("11:10")
        yield sb
