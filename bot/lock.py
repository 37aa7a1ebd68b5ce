"""One writer per SQLite state file: an advisory file lock beside it (``<state>.lock``).

Two ``flowbot run`` processes on one state file would both poll and both post. The first to
take the lock runs; another waits as a standby and takes over within seconds when the first
stops or dies (the operating system releases the lock of a killed process). ``flowbot once``
refuses to run while another process holds it. The lock is ``fcntl.flock`` (POSIX): it does not
work across hosts or on network file systems; several hosts need a shared database.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from pathlib import Path
from types import TracebackType

__all__ = ["StateLock", "StateLocked"]

log = logging.getLogger("flowbot.lock")


class StateLocked(RuntimeError):
    """Another process holds the state file's lock; ``str()`` names the file and its pid."""


class StateLock:
    """The lock of the state file ``state`` (SQLite path); ``":memory:"`` needs none.

    :meth:`acquire` takes it or raises :class:`StateLocked`; :meth:`wait` blocks (as a
    standby) until it is free. The holder's pid is written in the lock file for messages.
    """

    def __init__(self, state: Path | str) -> None:
        self.path = None if str(state) == ":memory:" else Path(f"{state}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock now. Raises :class:`StateLocked` when another process holds it."""
        if self.path is None or self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StateLocked(
                f"{self.path.with_suffix('')} is in use by flowbot pid {holder}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    async def wait(self, *, every: float = 1.0) -> None:
        """Take the lock, waiting as a standby while another process holds it (logged once)."""
        said = False
        while True:
            try:
                self.acquire()
                if said:
                    log.warning("standby: the state file is free now; taking over")
                return
            except StateLocked as exc:
                if not said:
                    log.warning("standby: %s; taking over when it stops", exc)
                    said = True
            await asyncio.sleep(every)

    def release(self) -> None:
        """Give the lock up (also done by the OS when the process ends)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
