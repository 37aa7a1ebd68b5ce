"""Start-up without the cycle collector: importing pydantic, SQLAlchemy, aiohttp and our own
models allocates hundreds of thousands of long-lived objects, and Python's cyclic garbage
collector keeps scanning them while they are made (about 50 ms of a ``flowbot once``) and once
more when the process exits (about 0.14 s). :func:`starting` turns the collector off while the
bot is imported and built, then freezes what exists (``gc.freeze``: never scanned again, also
not at exit) and turns it back on. Measured with ``bench/startup.py`` and ``bench/cycle.py``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["starting"]


@contextmanager
def starting(*, collect: bool = False) -> Iterator[None]:
    """Run the block with the cycle collector off; afterwards freeze every object alive
    (``collect=True`` first frees the garbage the block left, for a long-running process,
    so none of it is frozen for good) and restore the collector as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collect:
            gc.collect()
        gc.freeze()
        if was_enabled:
            gc.enable()
