"""The API's Prometheus metrics (docs/contract.md §11.5), recorded with the OpenTelemetry SDK and exposed by its Prometheus
exporter in the classic text format.

Every `Metrics` owns its meter provider and its registries, never the global ones, so a process builds one
at start-up and each test can build its own. The exporter runs with `scope_info_enabled=False` (no
`otel_scope_*` labels) and `disable_target_info=True` (no `target_info`); counters get `_total` and the
seconds histogram `_seconds` from the exporter's own naming rules. OpenTelemetry cannot hold a histogram
series without an observation, so the zero-valued duration series that `preinitialise` asks for are added
at exposition time by `_PreinitialisedHistograms`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    Histogram,
    MeterProvider,
    ObservableCounter,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.samples import Sample

__all__ = [
    "DB_POOL_STATES",
    "METRICS_CONTENT_TYPE",
    "NO_CLIENT_LABEL",
    "REQUEST_DURATION_BUCKETS",
    "Metrics",
    "PoolConnections",
    "RouteMetricsSpec",
    "status_code_family",
]

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REQUEST_DURATION_BUCKETS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
# The `client_id` of pre-initialised API series when no API client is enabled (docs/contract.md §11.5).
NO_CLIENT_LABEL = "none"

# Instrument names; the exporter appends `_total` to counters and the unit to the histogram.
_REQUESTS = "ctms_requests"
_REQUESTS_DURATION = "ctms_requests_duration"
_REQUESTS_DURATION_FAMILY = "ctms_requests_duration_seconds"
_API_REQUESTS = "ctms_api_requests"
_CONTACTS = "ctms_contacts_total"
_PENDING_ACOUSTIC_SYNC = "ctms_pending_acoustic_sync"
_LEGACY_WAITLISTS_REQUESTS = "ctms_legacy_waitlists_requests"
_CONTACT_WRITE_RETRIES = "ctms_contact_write_retries"
_ERASURE_ADDRESSES_DROPPED = "ctms_erasure_addresses_dropped"
_DB_POOL_CONNECTIONS = "ctms_db_pool_connections"
DB_POOL_STATES = ("in_use", "idle")

# The database pool's connections by state (`DB_POOL_STATES`), read when scraped.
PoolConnections = Callable[[], Mapping[str, int]]

# Pre-initialisation multiplies routes by statuses by clients; OpenTelemetry's default limit (2000 series
# per instrument) would fold the excess into an `otel_metric_overflow` series.
_CARDINALITY_LIMIT = 100_000
# Bounds the histogram's label-dict cache; a reset only costs re-creating small dicts.
_ATTRIBUTE_CACHE_LIMIT = 10_000

_FAMILIES = {code: f"{code}xx" for code in range(1, 6)}

Attributes = dict[str, str]


def status_code_family(status_code: int) -> str:
    """`2xx` for 200…299 and so on."""
    hundreds = status_code // 100
    return _FAMILIES.get(hundreds) or f"{hundreds}xx"


@dataclass(frozen=True, slots=True)
class RouteMetricsSpec:
    """One route and method as pre-initialisation sees it: the status codes its OpenAPI operation documents
    (200 when it documents none) and whether it requires a bearer token."""

    method: str
    path_template: str
    status_codes: tuple[int, ...] = (200,)
    secured: bool = False


RouteLike = RouteMetricsSpec | tuple[str, str, Iterable[int], bool]


def _as_spec(route: RouteLike) -> RouteMetricsSpec:
    if isinstance(route, RouteMetricsSpec):
        return route
    method, path_template, status_codes, secured = route
    return RouteMetricsSpec(method, path_template, tuple(status_codes) or (200,), secured)


class _PreinitialisedHistograms:
    """Collector that passes the exporter's families through and adds, to the duration histogram, a
    zero-valued series for every pre-initialised label set that has no observation yet."""

    def __init__(
        self, source: CollectorRegistry, label_sets: set[tuple[tuple[str, str], ...]]
    ) -> None:
        self._source = source
        self._label_sets = label_sets

    def collect(self) -> Iterator[Metric]:
        duration_seen = False
        for family in self._source.collect():
            if family.name == _REQUESTS_DURATION_FAMILY and family.type == "histogram":
                duration_seen = True
                self._add_zero_series(family)
            yield family
        if not duration_seen and self._label_sets:
            family = HistogramMetricFamily(
                _REQUESTS_DURATION, _DURATION_DESCRIPTION, labels=(), unit="seconds"
            )
            self._add_zero_series(family)
            yield family

    def _add_zero_series(self, family: Metric) -> None:
        observed = {
            tuple(sorted(sample.labels.items()))
            for sample in family.samples
            if sample.name.endswith("_count")
        }
        for label_set in sorted(self._label_sets - observed):
            labels = dict(label_set)
            for bound in (*(f"{bound}" for bound in REQUEST_DURATION_BUCKETS), "+Inf"):
                family.samples.append(Sample(f"{family.name}_bucket", {**labels, "le": bound}, 0.0))
            family.samples.append(Sample(f"{family.name}_count", labels, 0.0))
            family.samples.append(Sample(f"{family.name}_sum", labels, 0.0))


_DURATION_DESCRIPTION = "Histogram of requests processing time by path template and status family"


class Metrics:
    """The API process's instruments, their pre-initialised series, and the `/metrics` exposition."""

    def __init__(self, pool_connections: PoolConnections | None = None) -> None:
        exporter_registry = CollectorRegistry(auto_describe=False)
        self._reader = PrometheusMetricReader(
            disable_target_info=True,
            scope_info_enabled=False,
            registry=exporter_registry,
            cardinality_limits={
                ObservableCounter: _CARDINALITY_LIMIT,
                Histogram: _CARDINALITY_LIMIT,
            },
        )
        self._provider = MeterProvider(
            metric_readers=[self._reader],
            resource=Resource.get_empty(),
            views=[
                View(
                    instrument_name=_REQUESTS_DURATION,
                    aggregation=ExplicitBucketHistogramAggregation(
                        boundaries=REQUEST_DURATION_BUCKETS
                    ),
                )
            ],
            exemplar_filter=AlwaysOffExemplarFilter(),
            shutdown_on_exit=False,
        )
        meter = self._provider.get_meter("ctms")
        # Counters are tallied in plain dicts on the request path (a dict update instead of the SDK's
        # per-call attribute validation and hashing) and reported through observable counters when
        # scraped; the histogram needs the SDK's aggregation and is recorded directly.
        self._request_counts: dict[tuple[str, str, int], int] = {}
        self._api_counts: dict[tuple[str, str, str, str], int] = {}
        self._pending_acoustic_sync_count = 0
        self._legacy_waitlists_requests_count = 0
        self._contact_write_retries_count = 0
        self._erasure_addresses_dropped_count = 0
        meter.create_observable_counter(
            _REQUESTS,
            callbacks=[self._observe_requests],
            description="Total count of requests by method, path, status code, and family",
        )
        self._duration = meter.create_histogram(
            _REQUESTS_DURATION, unit="s", description=_DURATION_DESCRIPTION
        )
        meter.create_observable_counter(
            _API_REQUESTS,
            callbacks=[self._observe_api_requests],
            description="Total count of requests by method, path, authenticated client, and status family",
        )
        self._contacts = meter.create_gauge(
            _CONTACTS, description="Estimated number of contacts (rows of emails)"
        )
        meter.create_observable_counter(
            _PENDING_ACOUSTIC_SYNC,
            callbacks=[_single(lambda: self._pending_acoustic_sync_count)],
            description="Contacts queued for synchronisation to Acoustic",
        )
        meter.create_observable_counter(
            _LEGACY_WAITLISTS_REQUESTS,
            callbacks=[_single(lambda: self._legacy_waitlists_requests_count)],
            description="Write requests that used the legacy vpn_waitlist / relay_waitlist format",
        )
        meter.create_observable_counter(
            _CONTACT_WRITE_RETRIES,
            callbacks=[_single(lambda: self._contact_write_retries_count)],
            description="Contact writes started over because another write changed the contact first",
        )
        meter.create_observable_counter(
            _ERASURE_ADDRESSES_DROPPED,
            callbacks=[_single(lambda: self._erasure_addresses_dropped_count)],
            description="Erased contacts whose address was dropped before the erasure reached Acoustic",
        )
        self._pool_connections = pool_connections
        meter.create_observable_gauge(
            _DB_POOL_CONNECTIONS,
            callbacks=[self._observe_pool_connections],
            description="Connections of this process's database pool, in use by a request or idle",
        )
        # The unlabelled gauge exists from the start, as prometheus_client's would.
        self._contacts.set(0)

        self._duration_label_sets: set[tuple[tuple[str, str], ...]] = set()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(
            _PreinitialisedHistograms(exporter_registry, self._duration_label_sets)
        )
        self._duration_attributes: dict[tuple[str, str, str], Attributes] = {}

    # -- recording -------------------------------------------------------------------------------------

    def observe_request(
        self,
        method: str,
        path_template: str,
        status_code: int,
        duration_s: float,
        client_id: str | None = None,
    ) -> None:
        """Count one request that matched a route; `client_id` only when the client authenticated."""
        family = status_code_family(status_code)
        request_key = (method, path_template, status_code)
        self._request_counts[request_key] = self._request_counts.get(request_key, 0) + 1

        duration_key = (method, path_template, family)
        duration_attributes = self._duration_attributes.get(duration_key)
        if duration_attributes is None:
            if len(self._duration_attributes) >= _ATTRIBUTE_CACHE_LIMIT:
                self._duration_attributes.clear()
            duration_attributes = self._duration_attributes[duration_key] = {
                "method": method,
                "path_template": path_template,
                "status_code_family": family,
            }
        self._duration.record(duration_s, duration_attributes)

        if client_id is not None:
            api_key = (method, path_template, client_id, family)
            self._api_counts[api_key] = self._api_counts.get(api_key, 0) + 1

    def set_contacts_total(self, count: int) -> None:
        """Record the estimated contact count; estimates below zero (no ANALYZE yet) are reported as 0."""
        self._contacts.set(max(0, count))

    def count_pending_acoustic_sync(self, contacts: int = 1) -> None:
        """Count contacts put on the Acoustic sync queue."""
        self._pending_acoustic_sync_count += contacts

    def count_legacy_waitlists_request(self) -> None:
        """Count one write that really carried legacy waitlist input."""
        self._legacy_waitlists_requests_count += 1

    def count_contact_write_retries(self, retries: int) -> None:
        """Count the optimistic tries of a contact write that lost to a concurrent write."""
        self._contact_write_retries_count += retries

    def count_erasure_addresses_dropped(self, contacts: int) -> None:
        """Count erased contacts whose address was dropped before their erasure reached Acoustic."""
        self._erasure_addresses_dropped_count += contacts

    # -- start-up --------------------------------------------------------------------------------------

    def preinitialise(self, routes: Iterable[RouteLike], client_ids: Sequence[str]) -> None:
        """Create the zero-valued series of docs/contract.md §11.5: every method × documented status for
        `ctms_requests_total`, every method × status family for the duration histogram, and, for secured
        routes, every method × family × enabled client id (`"none"` without clients) for
        `ctms_api_requests_total`."""
        clients = tuple(client_ids) or (NO_CLIENT_LABEL,)
        for route in map(_as_spec, routes):
            families: dict[str, None] = {}
            for status_code in route.status_codes:
                family = status_code_family(status_code)
                families[family] = None
                self._request_counts.setdefault((route.method, route.path_template, status_code), 0)
            for family in families:
                self._duration_label_sets.add(
                    (
                        ("method", route.method),
                        ("path_template", route.path_template),
                        ("status_code_family", family),
                    )
                )
                if route.secured:
                    for client_id in clients:
                        self._api_counts.setdefault(
                            (route.method, route.path_template, client_id, family), 0
                        )

    # -- exposition ------------------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The `/metrics` body in the Prometheus text format 0.0.4, and its content type."""
        return generate_latest(self.registry), METRICS_CONTENT_TYPE

    def shutdown(self) -> None:
        """Release the meter provider (its exporter unregisters from the private registry)."""
        self._provider.shutdown()

    def _observe_requests(self, options: CallbackOptions) -> Iterable[Observation]:
        # list() snapshots the dict atomically under the GIL, even if a scrape runs in another thread.
        return [
            Observation(
                count,
                {
                    "method": method,
                    "path_template": path_template,
                    "status_code": str(status_code),
                    "status_code_family": status_code_family(status_code),
                },
            )
            for (method, path_template, status_code), count in list(self._request_counts.items())
        ]

    def _observe_pool_connections(self, options: CallbackOptions) -> Iterable[Observation]:
        # Zero without a pool (in-memory storage), so the series exist in every process.
        counts = self._pool_connections() if self._pool_connections else {}
        return [Observation(counts.get(state, 0), {"state": state}) for state in DB_POOL_STATES]

    def _observe_api_requests(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(
                count,
                {
                    "method": method,
                    "path_template": path_template,
                    "client_id": client_id,
                    "status_code_family": family,
                },
            )
            for (method, path_template, client_id, family), count in list(self._api_counts.items())
        ]


def _single(value: Callable[[], int]) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value())]

    return observe
