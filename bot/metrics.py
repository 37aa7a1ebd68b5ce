"""Prometheus metrics of one running bot, in a registry of its own (no process-global state:
a test or the demo can build several bots). ``/metrics`` serves :attr:`Metrics.registry`.

Names follow Prometheus conventions: ``_total`` counters, ``_seconds`` durations and times
(Unix seconds, UTC), labels in snake case.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    """Every metric the bot exports. Fed by the engine (polls, requests, alerts), the outbox
    worker (deliveries, queue depth) and the client (quota)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "flowbot_api_requests_total",
            "FlashAlpha requests by source (endpoint) and outcome: ok, or the error kind "
            "(unavailable, malformed, auth, tier, not_found, quota, bad_request)",
            ["source", "outcome"],
            registry=r,
        )
        self.poll_duration = Histogram(
            "flowbot_poll_duration_seconds",
            "Wall time of one poll cycle (fetch, pipeline, store), by job",
            ["job"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )
        self.last_success = Gauge(
            "flowbot_source_last_success_timestamp_seconds",
            "Unix time (UTC) of the last successful response per source",
            ["source"],
            registry=r,
        )
        self.alerts = Counter(
            "flowbot_alerts_total",
            "Events by rule and policy reason (first_notification, in_cooldown, silenced…)",
            ["rule", "reason"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "flowbot_outbox_depth",
            "Outbox rows waiting for delivery, by destination",
            ["destination"],
            registry=r,
        )
        self.outbox_oldest = Gauge(
            "flowbot_outbox_oldest_age_seconds",
            "Age of the oldest waiting outbox row, by destination (0 when empty)",
            ["destination"],
            registry=r,
        )
        self.deliveries = Counter(
            "flowbot_deliveries_total",
            "Outbox sends by destination and result (sent, failed, dead, expired, skipped)",
            ["destination", "result"],
            registry=r,
        )
        self.quota_remaining = Gauge(
            "flowbot_quota_remaining",
            "FlashAlpha requests left today (X-RateLimit-Remaining; -1 when unlimited/unknown)",
            registry=r,
        )
        self.quota_remaining.set(-1)
        self.leader = Gauge(
            "flowbot_leader",
            "1 while this replica holds the polling leadership (always 1 with SQLite)",
            registry=r,
        )
        self.leadership_age = Gauge(
            "flowbot_leadership_age_seconds",
            "How long this replica has led (0 while a follower)",
            registry=r,
        )
        self.leadership_changes = Counter(
            "flowbot_leadership_changes_total",
            "Times this replica became leader or follower",
            ["to"],
            registry=r,
        )
        self.claims = Gauge(
            "flowbot_outbox_claims",
            "Outbox rows claimed with a live lease, by replica (claims in flight)",
            ["replica"],
            registry=r,
        )
        self.replica_heartbeat_age = Gauge(
            "flowbot_replica_heartbeat_age_seconds",
            "Seconds since each replica of the cluster last sent a heartbeat",
            ["replica", "role"],
            registry=r,
        )
