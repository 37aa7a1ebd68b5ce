"""This replica's role in a cluster: follower or leader, decided every :data:`CHECK_SECONDS`.

Every replica serves ``/healthz`` ``/readyz`` ``/metrics`` and delivers the outbox. Only the
leader runs the jobs in :data:`LEADER_JOBS` (polling, detection, the recap and digest,
retention). On taking over it first forgets what it held of the session, so its first poll
starts from the stored snapshots and alerts the transitions the old leader did not store,
exactly as a restart does; on losing the lock it pauses those jobs, and its commits are
fenced (:meth:`bot.leader.Leadership.fence`) in between.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app import Bot
from bot.leader import CHECK_SECONDS, Leadership
from bot.render import duration

__all__ = ["CHECK_SECONDS", "HEARTBEAT_SECONDS", "LEADER_JOBS", "Cluster"]

log = logging.getLogger("flowbot.cluster")

LEADER_JOBS = ("poll", "leaderboards", "cumulative", "session_close", "retention")
"""The scheduler jobs only the leader runs (see :func:`bot.schedule.build_scheduler`)."""
HEARTBEAT_SECONDS = 5.0
"""How often each replica records itself in the ``replica`` table (the cluster view)."""


class Cluster:
    """Runs :meth:`tick` as the scheduler's ``leadership`` job; ``clock`` gives UTC now."""

    def __init__(
        self,
        bot: Bot,
        leadership: Leadership,
        scheduler: AsyncIOScheduler,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.bot = bot
        self.leadership = leadership
        self.scheduler = scheduler
        self.clock = clock
        self.started_at = clock()
        self.leader_since: datetime | None = None
        self._last_heartbeat: datetime | None = None

    @property
    def leading(self) -> bool:
        """True while this replica runs the polling jobs."""
        return self.leader_since is not None

    def start(self) -> None:
        """Pause the leader's jobs (the scheduler must be started), then take the role."""
        for job_id in LEADER_JOBS:
            if self.scheduler.get_job(job_id) is not None:
                self.scheduler.pause_job(job_id)
        self.bot.store.fence = self.leadership.fence
        self.bot.leading = False
        self.check()

    async def tick(self) -> None:
        """The scheduler's ``leadership`` job, on the event loop (never a worker thread: the
        lock connection and the role are the loop's): see :meth:`check`."""
        self.check()

    def check(self) -> None:
        """Take the leadership if it is free, notice if it was lost, and record a heartbeat."""
        now = self.clock()
        holds = self.leadership.check() if self.leading else self.leadership.try_acquire()
        if holds and not self.leading:
            self._promote(now)
        elif not holds and self.leading:
            self._demote(now)
        self._observe(now)

    def stop(self) -> None:
        """A clean stop: give the leadership up (a follower takes over within a second) and
        leave the cluster view."""
        self.leadership.release()
        self.leader_since = None
        self.bot.leading = False
        try:
            self.bot.store.forget_replica(self.bot.replica)
        except Exception:  # the database may be the reason we stop
            log.warning("cluster: could not remove this replica from the replica table")

    def _promote(self, now: datetime) -> None:
        self.leader_since = now
        self.bot.leading = True
        self.bot.engine.forget()  # the next poll reads what the old leader stored
        for job_id in LEADER_JOBS:
            job = self.scheduler.get_job(job_id)
            if job is not None:
                job.modify(next_run_time=now)
        self.bot.metrics.leadership_changes.labels("leader").inc()
        log.warning("leadership: %s leads now and polls", self.bot.replica)

    def _demote(self, now: datetime) -> None:
        held = now - self.leader_since if self.leader_since else None
        self.leader_since = None
        self.bot.leading = False
        for job_id in LEADER_JOBS:
            if self.scheduler.get_job(job_id) is not None:
                self.scheduler.pause_job(job_id)
        self.bot.metrics.leadership_changes.labels("follower").inc()
        log.error(
            "leadership: lost after %s; %s stops polling and keeps delivering",
            duration(held) if held else "a moment",
            self.bot.replica,
        )

    def _observe(self, now: datetime) -> None:
        metrics = self.bot.metrics
        metrics.leader.set(1 if self.leading else 0)
        age = (now - self.leader_since).total_seconds() if self.leader_since else 0.0
        metrics.leadership_age.set(age)
        last = self._last_heartbeat
        if last is not None and (now - last).total_seconds() < HEARTBEAT_SECONDS:
            return
        self._last_heartbeat = now
        store = self.bot.store
        try:
            store.heartbeat(
                self.bot.replica,
                host=socket.gethostname(),
                pid=os.getpid(),
                role="leader" if self.leading else "follower",
                started_at=self.started_at,
                now=now,
                leader_since=self.leader_since,
            )
            claims = store.claims(now)
            replicas = store.replicas()
        except Exception as exc:  # a database blip: the next heartbeat tries again
            log.warning("cluster: heartbeat not recorded (%s)", type(exc).__name__)
            return
        metrics.claims.clear()
        for owner, count in claims.items():
            metrics.claims.labels(owner).set(count)
        metrics.replica_heartbeat_age.clear()
        for r in replicas:
            metrics.replica_heartbeat_age.labels(r.id, r.role).set(
                max((now - r.seen_at).total_seconds(), 0.0)
            )
