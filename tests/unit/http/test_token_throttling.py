"""Throttling of failed `POST /token` attempts (issue #16 defect 8, docs/configuration.md): per client
id and per caller address, 429 with `Retry-After`, the right secret working again once the window has
passed. Time is the application's clock, moved by the test."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ctms_adapters.memory import ManualClock
from tests.http_harness import Api, CheapArgon2Hasher, RunApi, make_settings

WINDOW = timedelta(seconds=60)
PER_CLIENT = 3
PER_ADDRESS = 5


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2024, 5, 1, 12, 0, tzinfo=UTC))


class GatedHasher(CheapArgon2Hasher):
    """Verifications wait at a gate the test opens; `entered` counts those waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Semaphore(0)
        self.gate = threading.Event()

    def verify(self, hashed: str, secret: str) -> bool:
        self.entered.release()
        assert self.gate.wait(timeout=30)
        return super().verify(hashed, secret)


@pytest.fixture
def hasher() -> GatedHasher:
    gated = GatedHasher()
    gated.gate.set()  # open unless a test closes it
    return gated


@pytest.fixture
async def throttled_api(
    running_api: RunApi, clock: ManualClock, hasher: GatedHasher
) -> AsyncIterator[Api]:
    settings = make_settings(
        token_failures_per_client=PER_CLIENT,
        token_failures_per_address=PER_ADDRESS,
        token_failure_window_seconds=WINDOW.total_seconds(),
    )
    async with running_api(settings, clock=clock, password_hasher=hasher) as api:
        yield api


async def _grant(api: Api, client_id: str, secret: str) -> Any:
    return await api.http.post("/token", data={"client_id": client_id, "client_secret": secret})


async def test_failures_for_one_client_id_are_throttled_until_the_window_passes(
    throttled_api: Api, clock: ManualClock
) -> None:
    credentials = throttled_api.clients.enabled
    for _ in range(PER_CLIENT):
        assert (await _grant(throttled_api, credentials.client_id, "wrong")).status_code == 400
        clock.advance(timedelta(seconds=10))
    # The oldest failure leaves the window 60 s after it happened: 30 s from now.
    refused = await _grant(throttled_api, credentials.client_id, credentials.client_secret)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "30"
    assert refused.json() == {"detail": "Too many failed attempts, try again later"}
    assert throttled_api.log_fields()["token_fail"] == "Too many failures"
    # Another client id from the same address is not throttled yet.
    other = await _grant(throttled_api, "id_other", "wrong")
    assert other.status_code == 400

    clock.advance(timedelta(seconds=30))
    granted = await _grant(throttled_api, credentials.client_id, credentials.client_secret)
    assert granted.status_code == 200, granted.text


async def test_failures_from_one_address_are_throttled_across_client_ids(
    throttled_api: Api, clock: ManualClock
) -> None:
    for attempt in range(PER_ADDRESS):
        response = await _grant(throttled_api, f"id_guess{attempt}", "wrong")
        assert response.status_code == 400
    credentials = throttled_api.clients.enabled
    refused = await _grant(throttled_api, credentials.client_id, credentials.client_secret)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    clock.advance(WINDOW)
    granted = await _grant(throttled_api, credentials.client_id, credentials.client_secret)
    assert granted.status_code == 200


async def test_successes_are_not_counted(throttled_api: Api) -> None:
    credentials = throttled_api.clients.enabled
    for _ in range(PER_ADDRESS + 1):
        response = await _grant(throttled_api, credentials.client_id, credentials.client_secret)
        assert response.status_code == 200


async def test_guesses_in_flight_count_so_concurrency_cannot_overtake_the_limit(
    throttled_api: Api, hasher: GatedHasher
) -> None:
    hasher.gate.clear()
    client_id = throttled_api.clients.enabled.client_id
    guesses = [
        asyncio.create_task(_grant(throttled_api, client_id, "wrong")) for _ in range(PER_CLIENT)
    ]
    for _ in range(PER_CLIENT):  # every guess is being verified
        assert await asyncio.to_thread(hasher.entered.acquire, True, 30)
    refused = await _grant(throttled_api, client_id, "another guess")
    assert refused.status_code == 429
    hasher.gate.set()
    assert [(await guess).status_code for guess in guesses] == [400] * PER_CLIENT
