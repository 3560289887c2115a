"""`ctms_db_pool_connections` of the container's real engine (issue #19: the dashboard's database pool)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from ctms_entrypoints.container import build_container, dispose
from ctms_entrypoints.settings import Settings


def pool_gauge(exposition: bytes) -> dict[str, float]:
    return {
        sample.labels["state"]: sample.value
        for family in text_string_to_metric_families(exposition.decode())
        for sample in family.samples
        if sample.name == "ctms_db_pool_connections"
    }


async def test_the_gauge_counts_the_pools_connections_in_use_and_idle(database_url: str) -> None:
    container = build_container(Settings(secret_key="pool-metric-test", db_url=database_url))
    try:
        metrics, engine = container.metrics(), container.engine()
        assert pool_gauge(metrics.render()[0]) == {"in_use": 0.0, "idle": 0.0}
        async with engine.connect(), engine.connect():
            assert pool_gauge(metrics.render()[0]) == {"in_use": 2.0, "idle": 0.0}
        assert pool_gauge(metrics.render()[0]) == {"in_use": 0.0, "idle": 2.0}
    finally:
        await dispose(container)
