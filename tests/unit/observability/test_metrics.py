"""The /metrics exposition (docs/contract.md §11.5), parsed with prometheus_client's own text parser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from ctms_entrypoints.observability.metrics import (
    METRICS_CONTENT_TYPE,
    REQUEST_DURATION_BUCKETS,
    Metrics,
    RouteMetricsSpec,
    status_code_family,
)

EXPECTED_FAMILIES = {
    "ctms_requests": "counter",
    "ctms_requests_duration_seconds": "histogram",
    "ctms_api_requests": "counter",
    "ctms_contacts_total": "gauge",
    "ctms_pending_acoustic_sync": "counter",
    "ctms_legacy_waitlists_requests": "counter",
    "ctms_contact_write_retries": "counter",
    "ctms_erasure_addresses_dropped": "counter",
    "ctms_db_pool_connections": "gauge",
}
ROUTES = [
    RouteMetricsSpec("GET", "/", (307,)),
    RouteMetricsSpec("GET", "/ctms/{email_id}", (200, 401, 404, 422), secured=True),
    RouteMetricsSpec("PATCH", "/ctms/{email_id}", (200, 401, 404, 409, 422), secured=True),
    RouteMetricsSpec("POST", "/stripe_from_pubsub", (200, 202, 401, 422)),
]


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    built = Metrics()
    yield built
    built.shutdown()


def scrape(metrics: Metrics) -> tuple[str, list[Sample], dict[str, str]]:
    body, content_type = metrics.render()
    assert content_type == METRICS_CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    text = body.decode()
    families = list(text_string_to_metric_families(text))
    return (
        text,
        [sample for family in families for sample in family.samples],
        {family.name: family.type for family in families},
    )


def values(sample_list: list[Sample], name: str) -> dict[frozenset[tuple[str, str]], float]:
    selected = [s for s in sample_list if s.name == name]
    by_labels = {frozenset(s.labels.items()): s.value for s in selected}
    assert len(by_labels) == len(selected), f"duplicate series for {name}"
    return by_labels


def labels(**pairs: str) -> frozenset[tuple[str, str]]:
    return frozenset(pairs.items())


def test_names_types_and_no_exporter_noise(metrics: Metrics) -> None:
    """Families and sample names as docs/contract.md §11.5; no otel_scope_* labels, no target_info."""
    metrics.observe_request("GET", "/ctms/{email_id}", 200, 0.02, "id_basket")
    metrics.count_pending_acoustic_sync()
    text, sample_list, families = scrape(metrics)

    assert families == EXPECTED_FAMILIES
    assert {s.name for s in sample_list} == {
        "ctms_requests_total",
        "ctms_requests_duration_seconds_bucket",
        "ctms_requests_duration_seconds_count",
        "ctms_requests_duration_seconds_sum",
        "ctms_api_requests_total",
        "ctms_contacts_total",
        "ctms_pending_acoustic_sync_total",
        "ctms_legacy_waitlists_requests_total",
        "ctms_contact_write_retries_total",
        "ctms_erasure_addresses_dropped_total",
        "ctms_db_pool_connections",
    }
    assert "otel_scope" not in text
    assert "target_info" not in text
    assert "otel_metric_overflow" not in text
    assert {key for s in sample_list for key in s.labels} <= {
        "method",
        "path_template",
        "status_code",
        "status_code_family",
        "client_id",
        "le",
        "state",
    }


def test_request_counts_histogram_buckets_and_api_labels(metrics: Metrics) -> None:
    """Counts per label set; histogram buckets 0.01…10 and +Inf, cumulative, with sum and count."""
    metrics.observe_request("GET", "/ctms/{email_id}", 200, 0.003, "id_basket")
    metrics.observe_request("GET", "/ctms/{email_id}", 200, 0.07, "id_basket")
    metrics.observe_request("GET", "/ctms/{email_id}", 404, 2.5, "id_basket")
    metrics.observe_request("GET", "/", 307, 0.001)
    _, sample_list, _ = scrape(metrics)

    assert values(sample_list, "ctms_requests_total") == {
        labels(
            method="GET",
            path_template="/ctms/{email_id}",
            status_code="200",
            status_code_family="2xx",
        ): 2.0,
        labels(
            method="GET",
            path_template="/ctms/{email_id}",
            status_code="404",
            status_code_family="4xx",
        ): 1.0,
        labels(method="GET", path_template="/", status_code="307", status_code_family="3xx"): 1.0,
    }
    assert values(sample_list, "ctms_api_requests_total") == {
        labels(
            method="GET",
            path_template="/ctms/{email_id}",
            client_id="id_basket",
            status_code_family="2xx",
        ): 2.0,
        labels(
            method="GET",
            path_template="/ctms/{email_id}",
            client_id="id_basket",
            status_code_family="4xx",
        ): 1.0,
    }

    ok = {"method": "GET", "path_template": "/ctms/{email_id}", "status_code_family": "2xx"}
    buckets = {
        s.labels["le"]: s.value
        for s in sample_list
        if s.name == "ctms_requests_duration_seconds_bucket"
        and {k: v for k, v in s.labels.items() if k != "le"} == ok
    }
    assert [float(bound) for bound in buckets if bound != "+Inf"] == list(REQUEST_DURATION_BUCKETS)
    assert list(buckets.values()) == [1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    assert list(buckets)[-1] == "+Inf"
    assert values(sample_list, "ctms_requests_duration_seconds_count")[frozenset(ok.items())] == 2.0
    assert values(sample_list, "ctms_requests_duration_seconds_sum")[
        frozenset(ok.items())
    ] == pytest.approx(0.073)


def test_preinitialised_series_exist_with_zero(metrics: Metrics) -> None:
    """Every method×status, method×family, and for secured routes method×family×client, at 0."""
    metrics.preinitialise(ROUTES, ["id_basket", "id_mofo"])
    _, sample_list, _ = scrape(metrics)

    requests = values(sample_list, "ctms_requests_total")
    assert len(requests) == 1 + 4 + 5 + 4
    assert set(requests.values()) == {0.0}
    assert (
        labels(
            method="PATCH",
            path_template="/ctms/{email_id}",
            status_code="409",
            status_code_family="4xx",
        )
        in requests
    )

    durations = values(sample_list, "ctms_requests_duration_seconds_count")
    assert set(durations) == {
        labels(method="GET", path_template="/", status_code_family="3xx"),
        labels(method="GET", path_template="/ctms/{email_id}", status_code_family="2xx"),
        labels(method="GET", path_template="/ctms/{email_id}", status_code_family="4xx"),
        labels(method="PATCH", path_template="/ctms/{email_id}", status_code_family="2xx"),
        labels(method="PATCH", path_template="/ctms/{email_id}", status_code_family="4xx"),
        labels(method="POST", path_template="/stripe_from_pubsub", status_code_family="2xx"),
        labels(method="POST", path_template="/stripe_from_pubsub", status_code_family="4xx"),
    }
    assert set(durations.values()) == {0.0}
    assert len(values(sample_list, "ctms_requests_duration_seconds_bucket")) == 7 * 8
    assert set(values(sample_list, "ctms_requests_duration_seconds_sum").values()) == {0.0}

    api = values(sample_list, "ctms_api_requests_total")
    assert len(api) == 2 * 2 * 2  # 2 secured operations × 2 families × 2 clients
    assert {dict(key)["client_id"] for key in api} == {"id_basket", "id_mofo"}
    assert all(dict(key)["path_template"] == "/ctms/{email_id}" for key in api)


def test_preinitialisation_without_clients_uses_none(metrics: Metrics) -> None:
    """No enabled client: the API series are labelled client_id="none"."""
    metrics.preinitialise([("GET", "/ctms/{email_id}", [200], True)], [])
    _, sample_list, _ = scrape(metrics)
    assert values(sample_list, "ctms_api_requests_total") == {
        labels(
            method="GET",
            path_template="/ctms/{email_id}",
            client_id="none",
            status_code_family="2xx",
        ): 0.0
    }


def test_observations_merge_into_preinitialised_series(metrics: Metrics) -> None:
    """Traffic on a pre-initialised label set replaces the zero series, never duplicates it."""
    metrics.preinitialise(ROUTES, ["id_basket"])
    metrics.observe_request("GET", "/", 307, 0.004)
    _, sample_list, _ = scrape(metrics)
    root = labels(method="GET", path_template="/", status_code_family="3xx")
    assert values(sample_list, "ctms_requests_duration_seconds_count")[root] == 1.0
    assert values(sample_list, "ctms_requests_total")[root | {("status_code", "307")}] == 1.0


def test_large_preinitialisation_does_not_overflow(metrics: Metrics) -> None:
    """Hundreds of clients stay below the SDK cardinality limit (no otel_metric_overflow series)."""
    client_ids = [f"id_{n}" for n in range(300)]
    metrics.preinitialise(ROUTES, client_ids)
    text, sample_list, _ = scrape(metrics)
    assert "overflow" not in text
    assert len(values(sample_list, "ctms_api_requests_total")) == 2 * 2 * 300


def test_contacts_gauge_is_never_negative(metrics: Metrics) -> None:
    """The estimate -1 (no ANALYZE yet) is reported as 0; real counts as they are."""
    _, sample_list, _ = scrape(metrics)
    assert values(sample_list, "ctms_contacts_total") == {frozenset(): 0.0}
    metrics.set_contacts_total(-1)
    _, sample_list, _ = scrape(metrics)
    assert values(sample_list, "ctms_contacts_total") == {frozenset(): 0.0}
    metrics.set_contacts_total(1234)
    _, sample_list, _ = scrape(metrics)
    assert values(sample_list, "ctms_contacts_total") == {frozenset(): 1234.0}


def test_unlabelled_counters_start_at_zero_and_count(metrics: Metrics) -> None:
    """Pending-sync, legacy-waitlist and write-retry counters are exposed from the start."""
    _, sample_list, _ = scrape(metrics)
    assert values(sample_list, "ctms_pending_acoustic_sync_total") == {frozenset(): 0.0}
    assert values(sample_list, "ctms_legacy_waitlists_requests_total") == {frozenset(): 0.0}
    assert values(sample_list, "ctms_contact_write_retries_total") == {frozenset(): 0.0}
    metrics.count_pending_acoustic_sync()
    metrics.count_pending_acoustic_sync(2)
    metrics.count_legacy_waitlists_request()
    metrics.count_contact_write_retries(1)
    metrics.count_contact_write_retries(3)
    _, sample_list, _ = scrape(metrics)
    assert values(sample_list, "ctms_pending_acoustic_sync_total") == {frozenset(): 3.0}
    assert values(sample_list, "ctms_legacy_waitlists_requests_total") == {frozenset(): 1.0}
    assert values(sample_list, "ctms_contact_write_retries_total") == {frozenset(): 4.0}


def test_instances_are_independent() -> None:
    """No global SDK state: two Metrics never see each other's data."""
    first, second = Metrics(), Metrics()
    try:
        first.observe_request("GET", "/", 307, 0.001)
        _, sample_list, _ = scrape(second)
        assert values(sample_list, "ctms_requests_total") == {}
    finally:
        first.shutdown()
        second.shutdown()


@pytest.mark.parametrize(
    ("code", "family"), [(200, "2xx"), (307, "3xx"), (422, "4xx"), (503, "5xx"), (101, "1xx")]
)
def test_status_code_family(code: int, family: str) -> None:
    """Families are the hundreds digit followed by xx."""
    assert status_code_family(code) == family


def test_pool_connections_are_read_at_each_scrape() -> None:
    """`ctms_db_pool_connections{state}`: the pool's counts when scraped; zero without a pool."""
    pool = {"in_use": 3, "idle": 7}
    with_pool, without_pool = Metrics(lambda: pool), Metrics()
    try:
        assert pool_gauge(with_pool) == {"in_use": 3.0, "idle": 7.0}
        pool.update(in_use=5, idle=5)
        assert pool_gauge(with_pool) == {"in_use": 5.0, "idle": 5.0}
        assert pool_gauge(without_pool) == {"in_use": 0.0, "idle": 0.0}
    finally:
        with_pool.shutdown()
        without_pool.shutdown()


def pool_gauge(metrics: Metrics) -> dict[str, float]:
    _, sample_list, _ = scrape(metrics)
    return {s.labels["state"]: s.value for s in sample_list if s.name == "ctms_db_pool_connections"}
