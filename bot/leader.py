"""Which replica polls: exactly one ``flowbot run`` detects and alerts at a time.

- SQLite (one host): :class:`FileLeadership`, the state file's lock (:mod:`bot.lock`); a
  second process waits as a whole-process standby.
- PostgreSQL (several hosts): :class:`PostgresLeadership`, a session advisory lock held on a
  dedicated connection. Every replica delivers the outbox (claims, :meth:`Store.claim`);
  only the lock holder polls. When the leader dies its connection ends and the server frees
  the lock: at once for a killed process (the kernel closes the socket), within about 11 s
  for a vanished host (TCP keepalives set on that connection). Followers try for the lock
  every :data:`CHECK_SECONDS`.

A leader that lost its connection is fenced: each cycle's commit holds a shared "fence" lock
for its transaction and checks, inside it, that this replica's lock session still holds the
leader lock (:meth:`PostgresLeadership.fence`); a new leader takes the fence exclusively
once before its first poll, so it waits for a commit already past the check and then reads
what it wrote. A replica that was cut off cannot commit (and alert) what the new leader will
alert too.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from bot.lock import StateLock, StateLocked
from bot.store import NotLeader

__all__ = [
    "CHECK_SECONDS",
    "LEADER_KEY",
    "FileLeadership",
    "Leadership",
    "PostgresLeadership",
    "replica_id",
]

log = logging.getLogger("flowbot.leader")

CHECK_SECONDS = 1.0
"""How often a follower tries for the lock and a leader checks it still holds it."""
LEADER_KEY = 0x666C6F77_6C656164  # "flowlead": the advisory lock's 64-bit key
FENCE_KEY = 0x666C6F77_66656E63  # "flowfenc": shared by each commit, exclusive on takeover
_KEY_HI, _KEY_LO = LEADER_KEY >> 32, LEADER_KEY & 0xFFFFFFFF
SERVER_KEEPALIVE = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
    "SET tcp_user_timeout = 10000",
)
"""The server's side of the lock connection: a leader host that vanished (no FIN) is dropped,
and its lock freed, within about 11 s."""


def replica_id() -> str:
    """This process's name in the cluster: ``host:pid:xxxx`` (4 random hex digits)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:4]}"


class Leadership(Protocol):
    """The polling leadership of one replica."""

    shared: bool
    """True when followers run beside the leader (PostgreSQL); False when a second process
    waits as a whole-process standby (SQLite)."""

    refusal: str
    """Why the last :meth:`try_acquire` failed, for people (``""`` before any refusal)."""

    def try_acquire(self) -> bool:
        """Take the leadership if free; True when this replica leads (now or already)."""
        ...

    def check(self) -> bool:
        """True while this replica still leads (a lost connection means it does not)."""
        ...

    def fence(self, conn: Connection) -> None:
        """Raise :class:`NotLeader` inside ``conn``'s transaction unless this replica leads."""
        ...

    def release(self) -> None:
        """Give the leadership up (a clean stop), so a follower takes over at once."""
        ...


class FileLeadership:
    """SQLite: the state file's lock. :meth:`try_acquire` never blocks; ``flowbot run``
    waits for it as a standby before anything else starts (:func:`bot.cli.run`)."""

    shared = False

    def __init__(self, lock: StateLock) -> None:
        self.lock = lock
        self._held = False
        self.refusal = ""

    def try_acquire(self) -> bool:
        try:
            self.lock.acquire()
        except StateLocked as exc:
            self.refusal = str(exc)
            return False
        self._held = True
        return True

    def check(self) -> bool:
        return self._held

    def fence(self, conn: Connection) -> None:
        if not self._held:
            raise NotLeader("the state file's lock is not held")

    def release(self) -> None:
        self.lock.release()
        self._held = False


class PostgresLeadership:
    """PostgreSQL: ``pg_try_advisory_lock`` on a connection kept for it (autocommit).

    Database errors never escape: a replica that cannot reach the server simply does not
    lead (and says so once)."""

    shared = True

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self._backend_pid: int | None = None
        self._said_unreachable = False
        self.refusal = ""

    @property
    def leading(self) -> bool:
        """True after a successful :meth:`try_acquire`, until a check or release fails."""
        return self._backend_pid is not None

    def try_acquire(self) -> bool:
        if self.leading:
            return self.check()
        try:
            conn = self._connection()
            if not conn.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_KEY}
            ).scalar():
                self.refusal = "another replica holds the polling leadership"
                return False
            self._backend_pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
            # Wait for any cycle the old leader is committing right now (each holds the
            # fence shared): what it commits, this replica reads before its first poll.
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": FENCE_KEY})
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": FENCE_KEY})
        except SQLAlchemyError as exc:
            self._lost(exc)
            self.refusal = "the state database is unreachable"
            return False
        self._said_unreachable = False
        return True

    def check(self) -> bool:
        if self._conn is None or self._backend_pid is None:
            return False
        try:
            held = self._holds(self._conn, self._backend_pid)
        except SQLAlchemyError as exc:
            self._lost(exc)
            return False
        if not held:
            self._backend_pid = None
        return held

    def fence(self, conn: Connection) -> None:
        """Hold the fence (shared, until ``conn``'s transaction ends), then check the lock:
        a takeover waits for this commit, and a commit after a takeover is refused."""
        pid = self._backend_pid
        conn.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": FENCE_KEY})
        if pid is None or not self._holds(conn, pid):
            raise NotLeader("another replica holds the polling leadership")

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LEADER_KEY})
                self._conn.close()
            except SQLAlchemyError:
                pass  # the server frees the lock with the connection anyway
        self._conn = None
        self._backend_pid = None

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            for statement in SERVER_KEEPALIVE:
                conn.execute(text(statement))
            self._conn = conn
        return self._conn

    @staticmethod
    def _holds(conn: Connection, pid: int) -> bool:
        """Whether backend ``pid`` holds the leader lock (asked on any connection)."""
        return bool(
            conn.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                    " AND granted AND pid = :pid AND classid = :hi AND objid = :lo"
                    " AND objsubid = 1)"
                ),
                {"pid": pid, "hi": _KEY_HI, "lo": _KEY_LO},
            ).scalar()
        )

    def _lost(self, exc: SQLAlchemyError) -> None:
        was_leading = self.leading
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except SQLAlchemyError:
                pass
        self._conn = None
        self._backend_pid = None
        if was_leading or not self._said_unreachable:
            log.error(
                "leadership: the state database is unreachable (%s)",
                type(getattr(exc, "orig", None) or exc).__name__,
            )
            self._said_unreachable = True
