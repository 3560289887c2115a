"""`braze_destination_for`, the composition the container calls, and the container's `ctms sync` worker
with the braze destination (docs/braze.md, "Configuration")."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from ctms_adapters.postgres import create_engine
from ctms_core.services.braze_destination import BrazeDestination
from ctms_entrypoints.awaitables import resolved
from ctms_entrypoints.braze_wiring import braze_destination_for, braze_http_client
from ctms_entrypoints.container import MissingConfigurationError, build_container, dispose
from ctms_entrypoints.settings import Settings
from ctms_entrypoints.worker.loop import SyncWorker
from tests.http_harness import make_settings


@pytest.mark.parametrize(
    ("url", "key", "missing"),
    [
        (None, "k", "CTMS_BRAZE_URL"),
        ("https://rest.example", "", "CTMS_BRAZE_API_KEY"),
        (None, None, "CTMS_BRAZE_URL, CTMS_BRAZE_API_KEY"),
    ],
)
async def test_a_missing_url_or_key_is_named(
    url: str | None, key: str | None, missing: str
) -> None:
    engine = create_engine(
        "postgresql://nobody@127.0.0.1:1/none",
        pool_size=1,
        max_overflow=0,
        pool_timeout=1,
        pool_recycle=-1,
        echo=False,
    )
    async with httpx.AsyncClient() as client:
        with pytest.raises(ValueError, match=f"needs {missing}$"):
            braze_destination_for(client, engine, base_url=url, api_key=key)
        destination = braze_destination_for(
            client, engine, base_url="https://rest.example", api_key="k"
        )
    assert destination.name == "braze"
    await braze_http_client(4).aclose()
    await engine.dispose()


# --- the composition root: `ctms sync`'s worker with the braze destination ---------------------------

BRAZE_KEY = "braze-rest-key-0123456789"


def sync_settings(**overrides: Any) -> Settings:
    """`ctms sync`'s settings with both destinations, Acoustic's integration off (it then needs no
    credentials), and a database URL nothing connects to."""
    values: dict[str, Any] = {
        "db_url": "postgresql://nobody@127.0.0.1:1/none",
        "sync_destinations": "acoustic,braze",
        "braze_url": "https://rest.iad-01.braze.example",
        "braze_api_key": BRAZE_KEY,
        "acoustic_batch_limit": 20,
        **overrides,
    }
    return make_settings(**values)


async def built_worker(settings: Settings) -> SyncWorker:
    container = build_container(settings)
    try:
        worker: SyncWorker = await resolved(container.sync_worker)
        return worker
    finally:
        await dispose(container)


async def test_the_worker_has_a_braze_service_with_its_own_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With braze enabled and its URL and key set, the worker runs a `braze` loop whose destination is
    the real `BrazeDestination`, claiming `CTMS_BRAZE_BATCH_LIMIT` contacts per pass (Acoustic keeps
    `CTMS_ACOUSTIC_BATCH_LIMIT`); the key is logged nowhere."""
    with caplog.at_level(logging.DEBUG):
        worker = await built_worker(sync_settings(braze_batch_limit=150))
        alone = await built_worker(sync_settings(sync_destinations="braze"))
    services = {service.name: service for service in worker.services}
    assert list(services) == ["acoustic", "braze"]
    assert isinstance(services["braze"].destination, BrazeDestination)
    assert services["braze"].policy.batch_limit == 150
    assert services["acoustic"].policy.batch_limit == 20
    assert services["braze"].policy.lease > services["acoustic"].policy.lease
    assert [service.name for service in alone.services] == ["braze"]
    assert isinstance(alone.services[0].destination, BrazeDestination)
    assert alone.services[0].policy.batch_limit == 300
    assert BRAZE_KEY not in caplog.text


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        ({"braze_api_key": None}, "CTMS_BRAZE_API_KEY"),
        ({"braze_api_key": ""}, "CTMS_BRAZE_API_KEY"),
        ({"braze_url": None}, "CTMS_BRAZE_URL"),
    ],
)
async def test_building_the_worker_without_the_url_or_key_names_the_setting(
    overrides: dict[str, Any], missing: str, caplog: pytest.LogCaptureFixture
) -> None:
    """`ctms sync` refuses to start without Braze's URL or key, naming the missing variable, never the
    key's value (nor the settings it was read with)."""
    with caplog.at_level(logging.DEBUG), pytest.raises(MissingConfigurationError) as raised:
        await built_worker(sync_settings(**overrides))
    assert str(raised.value) == f"The Braze destination needs {missing}"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert BRAZE_KEY not in str(raised.value) and BRAZE_KEY not in caplog.text


async def test_a_worker_without_braze_needs_none_of_its_settings() -> None:
    """Braze's settings are required only when `braze` is a destination."""
    worker = await built_worker(sync_settings(sync_destinations="acoustic", braze_api_key=None))
    assert [service.name for service in worker.services] == ["acoustic"]
