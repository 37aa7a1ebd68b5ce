"""Delivery: one worker per destination drains its outbox rows, oldest first, never inside a poll.

This is the one retry stage for every send (alerts, thread replies, the recap, its chart, the
digest mail):

- A destination's queue goes in order. When a send fails recoverably, the whole queue for that
  destination waits: for the destination's own ``Retry-After`` when it gave one (nothing is sent
  to it before that has passed), else for a backoff with jitter that grows to
  ``[outbox] max_backoff_seconds``. Then the oldest row is tried again (the probe) and, when it
  goes through, the rest follow at once. Other destinations are not delayed.
- A permanent failure (bad token, unknown channel, 4xx other than 429) moves the row to the
  dead letters at once (``flowbot outbox retry`` puts it back).
- An alert older than ``alert_max_age_minutes`` is still sent, marked "delayed: detected
  10:32 ET"; one past its ``expires_at`` (by default the session's close) is recorded as expired.
- A row is marked sent only after the destination confirmed, and that is when its alerts count
  as delivered (the alert log). The only duplicate possible is a crash between the two.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from bot.deliver.base import (
    AlertRef,
    Delivered,
    DeliveryError,
    Destination,
    Envelope,
    FileUpload,
)
from bot.events import Category, Message
from bot.metrics import Metrics
from bot.store import PENDING, OutboxItem, Store

__all__ = [
    "OutboxWorker",
    "backoff",
    "email_payload",
    "envelope_of",
    "file_payload",
    "message_payload",
]

log = logging.getLogger("flowbot.outbox")

RECORD_TRIES = 3  # mark_sent attempts per pass before the row is left for the next pass
IDLE_CHECK_SECONDS = 5.0  # rows queued by another process (``outbox retry``) are seen this fast


def message_payload(message: Message) -> dict[str, Any]:
    """The outbox payload of a rendered message."""
    return {"type": "message", "message": message.to_json()}


def file_payload(file: FileUpload, *, in_channel: bool = False) -> dict[str, Any]:
    """The outbox payload of a file upload (content base64-encoded). ``in_channel``: posted
    in the channel of its ``thread_parent`` row (after it), not inside that row's thread."""
    return {
        "type": "file",
        "filename": file.filename,
        "title": file.title,
        "content": base64.b64encode(file.content).decode("ascii"),
        "in_channel": in_channel,
    }


def email_payload(raw: bytes) -> dict[str, Any]:
    """The outbox payload of a whole RFC 822 mail (the digest)."""
    return {"type": "email", "raw": base64.b64encode(raw).decode("ascii")}


def envelope_of(
    item: OutboxItem,
    *,
    thread_ts: str | None,
    delayed_note: str | None,
    thread_channel: str | None = None,
) -> Envelope:
    """The :class:`Envelope` a destination receives for outbox row ``item``; a
    ``delayed_note`` is added to the message as a last context line."""
    payload = item.payload
    message = file = email = None
    if payload["type"] == "message":
        message = Message.from_json(payload["message"])
        if delayed_note:
            marker = {"type": "context", "elements": [{"type": "mrkdwn", "text": delayed_note}]}
            message = replace(
                message, text=f"({delayed_note}) {message.text}", blocks=[*message.blocks, marker]
            )
    elif payload["type"] == "file":
        file = FileUpload(
            payload["filename"], payload["title"], base64.b64decode(payload["content"])
        )
        if payload.get("in_channel"):
            thread_ts = None  # beside its parent in the channel, where the desk sees it
    else:
        email = base64.b64decode(payload["raw"])
    meta = item.meta
    return Envelope(
        id=item.id,
        dedupe_key=item.dedupe_key,
        category=Category(item.category),
        session=item.session,
        created_at=item.created_at,
        message=message,
        file=file,
        email=email,
        alerts=tuple(AlertRef.from_json(a) for a in meta.get("alerts", [])),
        mention=meta.get("mention"),
        channel=meta.get("channel"),
        thread_ts=thread_ts,
        thread_channel=thread_channel,
        delayed=delayed_note is not None,
    )


def backoff(failures: int, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after ``failures`` consecutive failures: 1, 2, 4 … up to ``cap``,
    each scaled by a jitter in [0.5, 1) so replicas and destinations do not retry in step."""
    return min(cap, 2.0 ** max(failures - 1, 0)) * (0.5 + rand() / 2)


@dataclass
class _Lane:
    """One destination's delivery state (monotonic seconds)."""

    destination: Destination
    wake: asyncio.Event
    blocked_until: float = 0.0
    failures: int = 0
    next_send_at: float = 0.0
    task: asyncio.Task[None] | None = None


class OutboxWorker:
    """Drains the outbox of each destination in ``destinations`` (name → destination).

    ``clock`` gives UTC now (expiry, the delayed marker, claim leases); ``zone`` is where the
    marker's time is shown. ``owner`` names this replica in its claims: each row is claimed
    (:meth:`Store.claim`) for ``lease`` before it is sent and the claim is renewed while a
    send is slow, so replicas sharing a database never send one row twice at once.
    :meth:`start` runs one task per destination until :meth:`stop`;
    :meth:`flush` makes one pass over everything due (``flowbot once``, the demo, tests).
    """

    def __init__(
        self,
        store: Store,
        destinations: Mapping[str, Destination],
        *,
        clock: Callable[[], datetime],
        alert_max_age: timedelta = timedelta(minutes=15),
        max_backoff: float = 60.0,
        zone: ZoneInfo | None = None,
        metrics: Metrics | None = None,
        owner: str = "local",
        lease: timedelta = timedelta(seconds=30),
    ) -> None:
        self.store = store
        self.owner = owner
        self.lease = lease
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.alert_max_age = alert_max_age
        self.max_backoff = max_backoff
        self.zone = zone or ZoneInfo("America/New_York")
        self._lanes = {name: _Lane(d, asyncio.Event()) for name, d in destinations.items()}
        self._unrecorded: dict[int, Delivered] = {}  # sent, mark_sent failed: never resend
        self._stopping = False

    # -- running --------------------------------------------------------------------------

    def wake(self) -> None:
        """New rows were queued: every idle lane looks now (a blocked one keeps waiting)."""
        for lane in self._lanes.values():
            lane.wake.set()

    def start(self) -> None:
        """Start one delivery task per destination (inside the running event loop)."""
        self._stopping = False
        for lane in self._lanes.values():
            if lane.task is None or lane.task.done():
                lane.task = asyncio.create_task(
                    self._run(lane), name=f"outbox:{lane.destination.name}"
                )

    async def stop(self) -> None:
        """Stop the tasks; a send in progress finishes first."""
        self._stopping = True
        self.wake()
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        for lane in self._lanes.values():
            lane.task = None

    def release(self) -> None:
        """Give up this replica's claims (a clean stop): another replica sends them at once."""
        released = self.store.release_claims(self.owner)
        if released:
            log.info("outbox: %d claimed row(s) released to the other replicas", released)

    async def flush(self) -> int:
        """One pass over every destination that is not waiting out a failure; returns how
        many rows were delivered."""
        counts = await asyncio.gather(
            *(self._drain(lane) for lane in self._lanes.values() if not self._blocked(lane))
        )
        return sum(counts)

    async def _run(self, lane: _Lane) -> None:
        while not self._stopping:
            wait = lane.blocked_until - time.monotonic()
            if wait > 0:
                # Waiting out a failure or a Retry-After: new rows do not cut it short.
                await self._sleep(wait)
                continue
            lane.wake.clear()
            try:
                await self._drain(lane, interruptible=True)
            except Exception:
                log.exception("%s: delivery pass failed", lane.destination.name)
                self._block(lane, None)
                continue
            if not self._blocked(lane):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lane.wake.wait(), IDLE_CHECK_SECONDS)

    async def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stopping and (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.5))

    # -- one pass ---------------------------------------------------------------------------

    def _blocked(self, lane: _Lane) -> bool:
        return time.monotonic() < lane.blocked_until

    def _block(self, lane: _Lane, retry_after: float | None) -> float:
        lane.failures += 1
        wait = retry_after if retry_after is not None else backoff(lane.failures, self.max_backoff)
        lane.blocked_until = time.monotonic() + wait
        return wait

    def observe_depth(self) -> None:
        """Set the queue-depth gauges from the store (every destination, 0 when empty)."""
        depth = self.store.outbox_depth()
        now = self.clock()
        for name in self._lanes:
            count, oldest = depth.get(name, (0, None))
            self.metrics.outbox_depth.labels(name).set(count)
            age = (now - oldest).total_seconds() if oldest is not None else 0.0
            self.metrics.outbox_oldest.labels(name).set(max(age, 0.0))

    async def _drain(self, lane: _Lane, *, interruptible: bool = False) -> int:
        """Send the lane's due rows in order until the queue is empty or a send fails
        (``interruptible``: or :meth:`stop` was called)."""
        try:
            return await self._drain_rows(lane, interruptible)
        finally:
            self.observe_depth()

    async def _drain_rows(self, lane: _Lane, interruptible: bool) -> int:
        sent = 0
        for item_id in list(self._unrecorded):  # delivered before, not recorded yet
            await self._record(item_id)
        while not (interruptible and self._stopping):
            item = self.store.claim(
                lane.destination.name, owner=self.owner, now=self.clock(), lease=self.lease
            )
            if item is None:
                return sent  # empty, or another replica is sending the head row
            if item.id in self._unrecorded:
                return sent  # delivered; the database will not take the record just now
            outcome = await self._deliver(lane, item)
            if outcome is None:
                return sent  # blocked: the whole queue waits
            sent += outcome
        return sent

    async def _deliver(self, lane: _Lane, item: OutboxItem) -> int | None:
        """Try one row: 1 when delivered, 0 when settled otherwise (expired, dead, skipped),
        ``None`` when the destination failed recoverably (the lane is blocked)."""
        destination = lane.destination
        now = self.clock()
        if item.expires_at is not None and now >= item.expires_at:
            self.store.mark_expired(item.id, owner=self.owner)
            self.metrics.deliveries.labels(destination.name, "expired").inc()
            log.warning("%s: %s expired undelivered", destination.name, item.dedupe_key)
            return 0
        if item.payload["type"] == "file" and not destination.capabilities.files:
            log.warning("%s cannot carry files: skipped %s", destination.name, item.dedupe_key)
            self.store.mark_sent(item.id, now=now, channel=None, ts=None, permalink=None)
            self.metrics.deliveries.labels(destination.name, "skipped").inc()
            return 0
        thread_ts = thread_channel = None
        if item.thread_parent:
            parent_state, ts, channel = self.store.thread_of(
                item.thread_parent, item.session, destination.name
            )
            if parent_state == PENDING:
                return None  # the parent goes first (it is older, so only after a restart)
            if destination.capabilities.threads:
                thread_ts, thread_channel = ts, channel
        envelope = envelope_of(
            item,
            thread_ts=thread_ts,
            thread_channel=thread_channel,
            delayed_note=self._delayed(item, now),
        )
        await self._pace(lane)
        try:
            delivered = await self._send(destination, envelope, item)
        except DeliveryError as exc:
            if not exc.recoverable:
                self.store.mark_dead(item.id, error=str(exc), owner=self.owner)
                self.metrics.deliveries.labels(destination.name, "dead").inc()
                log.error(
                    "%s: %s failed permanently (%s): moved to the dead letters",
                    destination.name,
                    item.dedupe_key,
                    exc,
                )
                return 0
            wait = self._block(lane, exc.retry_after)
            hold = self.clock() + timedelta(seconds=wait)
            self.store.mark_failed(item.id, error=str(exc), hold_until=hold, owner=self.owner)
            self.metrics.deliveries.labels(destination.name, "failed").inc()
            log.warning("%s: delivery failed (%s); queue waits %.1f s", destination.name, exc, wait)
            return None
        lane.failures = 0
        self.metrics.deliveries.labels(destination.name, "sent").inc()
        self._unrecorded[item.id] = delivered
        await self._record(item.id)
        return 1

    async def _record(self, item_id: int) -> None:
        """Mark a delivered row sent, retrying while the database fails: until it is
        recorded this replica never claims it again (no second send)."""
        delivered = self._unrecorded[item_id]
        for attempt in range(RECORD_TRIES):
            try:
                self.store.mark_sent(
                    item_id,
                    now=self.clock(),
                    channel=delivered.channel,
                    ts=delivered.ts,
                    permalink=delivered.permalink,
                )
            except SQLAlchemyError as exc:
                log.warning("outbox: delivered row %d not recorded yet (%s)", item_id, exc)
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            del self._unrecorded[item_id]
            return

    async def _send(
        self, destination: Destination, envelope: Envelope, item: OutboxItem
    ) -> Delivered:
        """``destination.send(envelope)``, renewing the row's claim every third of the lease
        while the destination is slow. Raises what the send raises."""
        send = asyncio.ensure_future(destination.send(envelope))
        renew_every = self.lease.total_seconds() / 3
        try:
            while True:
                done, _ = await asyncio.wait({send}, timeout=renew_every)
                if done:
                    return send.result()
                until = self.clock() + self.lease
                try:
                    kept = self.store.extend_claim(item.id, owner=self.owner, until=until)
                except SQLAlchemyError as exc:  # the send goes on; the next renewal retries
                    log.warning("%s: claim not renewed (%s)", destination.name, type(exc).__name__)
                    continue
                if not kept:
                    log.warning(
                        "%s: %s is claimed by another replica now (this send was slower than "
                        "the %s s lease); it may be sent twice",
                        destination.name,
                        item.dedupe_key,
                        f"{self.lease.total_seconds():g}",
                    )
        except asyncio.CancelledError:
            send.cancel()
            raise

    async def _pace(self, lane: _Lane) -> None:
        delay = lane.next_send_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        lane.next_send_at = time.monotonic() + lane.destination.min_interval

    def _delayed(self, item: OutboxItem, now: datetime) -> str | None:
        if item.category not in (Category.ALERT, Category.FOLLOW_UP):
            return None
        if now - item.created_at <= self.alert_max_age:
            return None
        local = item.created_at.astimezone(self.zone)
        label = "ET" if self.zone.key == "America/New_York" else local.strftime("%Z")
        return f"⏱ delayed: detected {local:%H:%M} {label}"
