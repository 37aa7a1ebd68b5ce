"""Rule memory as stored rows: one ``SnapshotRow(source="memory:<rule>", key="-")`` per rule.

The engine stores these with the cycle's snapshots (``Store.commit_cycle``, same transaction as
the alerts they led to) and reads them back with ``Store.snapshots(session)`` after a restart;
:func:`bot.snapshot.snapshot_from_rows` ignores them. No schema change: memory is per session
because snapshot rows are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime

from bot.rules.base import Memory
from bot.store import SnapshotRow

__all__ = ["MEMORY_PREFIX", "memory_from_rows", "memory_rows"]

MEMORY_PREFIX = "memory:"
"""``source`` of a memory row: ``memory:<rule name>``."""


def memory_from_rows(rows: Iterable[SnapshotRow]) -> dict[str, Memory]:
    """Rule name → memory, from a session's stored rows (other sources are ignored)."""
    return {
        row.source.removeprefix(MEMORY_PREFIX): row.payload
        for row in rows
        if row.source.startswith(MEMORY_PREFIX) and isinstance(row.payload, dict)
    }


def memory_rows(
    memories: Mapping[str, Memory], *, session: str, now: datetime
) -> list[SnapshotRow]:
    """One row per rule for ``commit_cycle(snapshots=...)``. ``now`` UTC; ``session`` the New
    York trading date. Raises ``TypeError`` when a memory is not JSON-ready (a rule bug)."""
    rows = []
    for name, memory in memories.items():
        payload = json.loads(json.dumps(memory))  # a plain, detached, JSON-ready copy
        rows.append(
            SnapshotRow(
                source=f"{MEMORY_PREFIX}{name}",
                key="-",
                session=session,
                observed_at=now,
                payload=payload,
            )
        )
    return rows
