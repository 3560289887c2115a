"""The worker's metrics (docs/contract.md §11.6) on a private prometheus_client registry: served on the worker's own
`/metrics` port and pushed to the Pushgateway after every pass.

prometheus_client rather than the API's OpenTelemetry set-up: docs/contract.md §11.6's names (`…_requests_duration`
without a unit suffix, gauges with `_s`) and the constant labels are exact here, and the Pushgateway
client comes with it.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, push_to_gateway
from prometheus_client.exposition import start_http_server

from ctms_core.domain.sync import SyncPassStats, SyncState
from ctms_core.ports.acoustic import AcousticCall
from ctms_entrypoints.observability.metrics import REQUEST_DURATION_BUCKETS

logger = logging.getLogger("ctms.bin.acoustic_sync")

PUSHGATEWAY_JOB = "prometheus-pushgateway"
CONSTANT_LABELS = {
    "app_kubernetes_io_component": "background",
    "app_kubernetes_io_instance": "ctms",
    "app_kubernetes_io_name": "ctms",
}
_CONSTANT = tuple(CONSTANT_LABELS)
_CALL = (*_CONSTANT, "method", "status", "table")
_DESTINATION = (*_CONSTANT, "destination")


class BackgroundMetrics:
    """The docs/contract.md §11.6 series (the `ctms_background_acoustic_*` ones count the `acoustic`
    destination, as in v3.3) and the `ctms_sync_*` series labelled by destination; also the sync
    service's `SyncObserver`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self._requests = Counter(
            "ctms_background_acoustic_request",
            "Acoustic requests by method, status and table",
            _CALL,
            registry=registry,
        )
        self._durations = Histogram(
            "ctms_background_acoustic_requests_duration",
            "Acoustic request durations in seconds",
            _CALL,
            buckets=REQUEST_DURATION_BUCKETS,
            registry=registry,
        )
        self._synced = Counter(
            "ctms_background_acoustic_sync",
            "Contacts synced (or skipped when the integration is disabled)",
            _CONSTANT,
            registry=registry,
        ).labels(**CONSTANT_LABELS)
        self._retries = Gauge(
            "ctms_background_acoustic_sync_retries",
            "Queue rows that failed at least once since their last enqueue",
            _CONSTANT,
            registry=registry,
        ).labels(**CONSTANT_LABELS)
        self._backlog = Gauge(
            "ctms_background_acoustic_sync_backlog",
            "Queue rows still to be attempted",
            _CONSTANT,
            registry=registry,
        ).labels(**CONSTANT_LABELS)
        self._loops = Counter(
            "ctms_background_acoustic_sync_loops",
            "Sync passes",
            _CONSTANT,
            registry=registry,
        ).labels(**CONSTANT_LABELS)
        self._age = Gauge(
            "ctms_background_acoustic_sync_age_s",
            "Seconds from enqueue to sync of the oldest first-attempt contact of the last pass",
            _CONSTANT,
            registry=registry,
        ).labels(**CONSTANT_LABELS)
        self._erasure_addresses_dropped = Counter(
            "ctms_background_erasure_addresses_dropped",
            "Erased contacts whose address was dropped before the erasure reached Acoustic",
            _CONSTANT,
            registry=registry,
        ).labels(**CONSTANT_LABELS)
        self._loop_duration = Gauge(
            "ctms_background_acoustic_sync_loop_duration_seconds",
            "Duration of the last pass",
            _CONSTANT,
            registry=registry,
        ).labels(**CONSTANT_LABELS)

        self._contacts = Counter(
            "ctms_sync_contacts",
            "Contacts consumed by the sync, by destination and outcome",
            (*_DESTINATION, "state"),
            registry=registry,
        )
        self._sync_backlog = Gauge(
            "ctms_sync_backlog",
            "Contacts not yet delivered to the destination (retrying ones included)",
            _DESTINATION,
            registry=registry,
        )
        self._sync_retry_backlog = Gauge(
            "ctms_sync_retry_backlog",
            "Contacts that failed at least once since their last enqueue",
            _DESTINATION,
            registry=registry,
        )
        self._oldest_erasure_age = Gauge(
            "ctms_sync_oldest_pending_erasure_age_seconds",
            "How long the oldest erasure not yet delivered to the destination has waited (0: none)",
            _DESTINATION,
            registry=registry,
        )

    # SyncObserver
    def acoustic_call(self, call: AcousticCall) -> None:
        labels = {
            **CONSTANT_LABELS,
            "method": call.method,
            "status": call.status,
            "table": call.table,
        }
        self._requests.labels(**labels).inc()
        self._durations.labels(**labels).observe(call.duration_s)

    def contact_done(self, destination: str, state: SyncState) -> None:
        self._contacts.labels(**CONSTANT_LABELS, destination=destination, state=state).inc()
        if destination == "acoustic" and state in ("synced", "erased", "skipped"):
            self._synced.inc()

    def erasure_addresses_dropped(self, count: int) -> None:
        self._erasure_addresses_dropped.inc(count)

    def record_pass(self, stats: SyncPassStats, duration_s: float) -> None:
        labels = {**CONSTANT_LABELS, "destination": stats.destination}
        if stats.sync_backlog is not None:
            self._sync_backlog.labels(**labels).set(stats.sync_backlog)
            self._oldest_erasure_age.labels(**labels).set(stats.oldest_erasure_age_s or 0.0)
        if stats.retry_backlog is not None:
            self._sync_retry_backlog.labels(**labels).set(stats.retry_backlog)
        if stats.destination != "acoustic":
            return
        self._loops.inc()
        self._loop_duration.set(duration_s)
        if stats.sync_backlog is not None:
            self._backlog.set(stats.sync_backlog)
        if stats.retry_backlog is not None:
            self._retries.set(stats.retry_backlog)
        if stats.age_s is not None:
            self._age.set(stats.age_s)

    def serve(self, port: int) -> None:
        """Expose `/metrics` on `port` (a daemon thread)."""
        start_http_server(port, registry=self.registry)

    def push(self, url: str) -> None:
        """Push to the Pushgateway; a failure is logged, never raised."""
        try:
            push_to_gateway(url, job=PUSHGATEWAY_JOB, registry=self.registry, timeout=5)
        except Exception as error:
            logger.warning("Could not push metrics to the Pushgateway: %r", error)
