"""The state store (SQLite or PostgreSQL): see :mod:`bot.store.store`."""

from bot.store.store import (
    DEAD,
    EXPIRED,
    KEYFRAME_EVERY,
    OUTBOX_STATES,
    PENDING,
    SENT,
    NewAlert,
    NewMessage,
    NotLeader,
    OutboxItem,
    ReplicaRow,
    SnapshotRow,
    Store,
)

__all__ = [
    "DEAD",
    "EXPIRED",
    "KEYFRAME_EVERY",
    "OUTBOX_STATES",
    "PENDING",
    "SENT",
    "NewAlert",
    "NewMessage",
    "NotLeader",
    "OutboxItem",
    "ReplicaRow",
    "SnapshotRow",
    "Store",
]
