"""Prometheus metrics for one central process, on its own registry.

One :class:`Metrics` per process is shared by the ingest workers and the API,
so ``/metrics`` shows both; tests make their own so nothing is global.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class Metrics:
    """The counters, gauges and histograms central exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "baling_ingest_messages",
            "Messages taken off the broker",
            ["channel"],
            registry=r,
        )
        self.rejected = Counter(
            "baling_ingest_rejected",
            "Messages dropped for breaking the contract",
            ["reason"],
            registry=r,
        )
        self.clock_skew = Counter(
            "baling_ingest_clock_skew",
            "Events whose node clock was far off, stored at their receipt time",
            ["direction"],
            registry=r,
        )
        self.stored = Counter(
            "baling_ingest_events_stored", "Events committed", registry=r
        )
        self.duplicates = Counter(
            "baling_ingest_duplicates",
            "Events ignored because their id was already stored",
            registry=r,
        )
        self.batch_size = Histogram(
            "baling_ingest_batch_size",
            "Messages per commit",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 5000),
            registry=r,
        )
        self.commit_seconds = Histogram(
            "baling_ingest_commit_seconds",
            "Time to validate and commit one batch",
            registry=r,
        )
        self.db_errors = Counter(
            "baling_ingest_db_errors",
            "Batches that failed to commit and were retried",
            registry=r,
        )
        self.phone_reports = Counter(
            "baling_phone_reports",
            "OsmAnd / Traccar Client phone reports by outcome (position, "
            "no_position, invalid, mock, accuracy, ts_future, refused, unknown_id)",
            ["outcome"],
            registry=r,
        )
        self.devices_online = Gauge(
            "baling_devices_online", "Devices reporting online", registry=r
        )
        self.config_published = Counter(
            "baling_config_published", "Desired configurations published", registry=r
        )
        self.login_failures = Counter(
            "baling_login_failures",
            "Refused logins: bad credentials, or refused while locked out",
            ["reason"],
            registry=r,
        )
        self.login_lockouts = Counter(
            "baling_login_lockouts",
            "Lockouts started by repeated failed logins, by account or address",
            ["key"],
            registry=r,
        )

    def render(self) -> bytes:
        """Return the Prometheus text exposition."""
        return generate_latest(self.registry)
