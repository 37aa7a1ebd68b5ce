"""``flowbot`` with its wall clock following a sandbox's simulated clock (for ``bench/rss.py``).

The bot reads the time only through :func:`bot.engine.utcnow` (every tick's ``now``, the outbox
worker's clock, the recap and digest triggers); this replaces it before the rest of the bot is
imported, so a compressed session closes, and its recap and digest fall due, on the sandbox's
clock rather than the machine's. APScheduler keeps the machine's clock: a job's next run that
the bot sets from its own clock (the first run, a leader's restart of its jobs) is moved to the
machine's now, or APScheduler would count every run missed since the simulated date. Interval
jobs of a minute or more (flow_inflection's cumulative poll every 5 min, the session-close
check every minute, retention) run ``SPEED`` times as often, on the session's pace; shorter
ones (the polls, set in real seconds by the bench's config, and the leadership check) do not.

    python bench/simclock.py SIM_ANCHOR_ISO REAL_ANCHOR_EPOCH SPEED flowbot-args...
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apscheduler.job import Job
from apscheduler.triggers.interval import IntervalTrigger

import bot.engine


def main(argv: list[str]) -> None:
    """Patch the clock (``SIM_ANCHOR_ISO`` at ``REAL_ANCHOR_EPOCH``, ``SPEED`` x real time),
    then run the ``flowbot`` command line with the remaining arguments."""
    sim_anchor = datetime.fromisoformat(argv[0])
    real_anchor, speed = float(argv[1]), float(argv[2])

    def utcnow() -> datetime:
        return sim_anchor + timedelta(seconds=(time.time() - real_anchor) * speed)

    modify = Job._modify

    def machine_time(self: Job, **changes: Any) -> None:
        when = changes.get("next_run_time")
        if when is not None and abs((when - utcnow()).total_seconds()) < 5 * speed:
            changes["next_run_time"] = datetime.now(UTC)  # it was read from the bot's clock
        modify(self, **changes)

    Job._modify = machine_time

    make_trigger = IntervalTrigger.__init__

    def session_paced(self: IntervalTrigger, *args: Any, **kwargs: Any) -> None:
        make_trigger(self, *args, **kwargs)
        if self.interval_length >= 60:
            self.interval = self.interval / speed
            self.interval_length = self.interval.total_seconds()
            self.start_date = datetime.now(self.timezone) + self.interval

    IntervalTrigger.__init__ = session_paced
    bot.engine.utcnow = utcnow
    from bot.cli import main as flowbot

    sys.argv = ["flowbot", *argv[3:]]
    flowbot()


if __name__ == "__main__":
    main(sys.argv[1:])
