"""HTTP-tier fixtures: the Litestar app on the in-memory adapters, driven through httpx in-process.

`api` is a fresh application with an empty contact store per test. API clients are created once per
session (see `tests.http_harness.register_clients`) and copied into every test's store. The same test
modules run on PostgreSQL over real HTTP in tests/integration/http, whose conftest provides the same
fixtures: tests reach storage only through `Api` (its unit of work), never through the memory store.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar

from ctms_adapters.memory import InMemoryDatabaseHealth, InMemoryStore, InMemoryUnitOfWork
from ctms_core.ports.repositories import UnitOfWork
from ctms_entrypoints.container import Container, build_container, memory_storage
from ctms_entrypoints.settings import Settings
from tests.http_harness import (
    Api,
    RecordingApp,
    RegisteredClients,
    RunApi,
    lifespan_task,
    make_settings,
    register_clients,
    serving,
)

BASE_URL = "http://testserver"


class MemoryStorage:
    """The in-memory store behind a container: reset to the state of a new store; outages through
    `InMemoryDatabaseHealth.up` (a container whose health port is overridden has no outage switch)."""

    def __init__(self, store: InMemoryStore, container: Container) -> None:
        self.store = store
        self.container = container

    async def reset(self, clients: RegisteredClients) -> None:
        # The store is shared with the running application: refill it rather than replace it.
        for name, value in vars(InMemoryStore()).items():
            if name != "lock":
                setattr(self.store, name, value)
        async with InMemoryUnitOfWork(self.store) as uow:
            for client in clients.records.values():
                await uow.api_clients.add(client)
            await uow.commit()

    def set_database_up(self, up: bool) -> None:
        health = self.container.database_health()
        if isinstance(health, InMemoryDatabaseHealth):
            health.up = up
        else:
            assert up, "this application's database health is overridden: it has no outage switch"


@contextlib.asynccontextmanager
async def in_process(app: Litestar, recorder: RecordingApp) -> AsyncIterator[httpx.AsyncClient]:
    """The application's lifespan in a task, requests through `httpx.ASGITransport` (no sockets)."""
    transport = httpx.ASGITransport(app=recorder)
    async with (
        lifespan_task(app),
        httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client,
    ):
        yield client


@contextlib.asynccontextmanager
async def running_memory_api(
    clients: RegisteredClients,
    settings: Settings | None = None,
    *,
    wrap_uow: Callable[[UnitOfWork], UnitOfWork] | None = None,
    **overrides: Any,
) -> AsyncIterator[Api]:
    """An `Api` on a new in-memory store holding `clients`, with `settings` and container `overrides`,
    its application running (lifespan entered) for the duration of the block."""
    store = InMemoryStore()
    container = build_container(
        settings or make_settings(), **{**memory_storage(store), **overrides}
    )
    storage = MemoryStorage(store, container)
    await storage.reset(clients)
    async with serving(container, clients, storage, in_process, wrap_uow=wrap_uow) as api:
        yield api


@pytest.fixture(scope="session")
async def registered_clients() -> RegisteredClients:
    return await register_clients()


@pytest.fixture(scope="session")
async def _applications_by_settings(
    registered_clients: RegisteredClients,
) -> AsyncIterator[tuple[contextlib.AsyncExitStack, dict[Settings, Api]]]:
    """Applications that differ only by settings, started once and reset for each test (starting one
    costs more than most tests)."""
    async with contextlib.AsyncExitStack() as stack:
        yield stack, {}


@pytest.fixture
def running_api(
    registered_clients: RegisteredClients,
    _applications_by_settings: tuple[contextlib.AsyncExitStack, dict[Settings, Api]],
) -> RunApi:
    """Runs other applications (other settings or adapters) on fresh in-memory stores."""
    stack, started = _applications_by_settings

    @contextlib.asynccontextmanager
    async def with_settings(settings: Settings) -> AsyncIterator[Api]:
        api = started.get(settings)
        if api is None:
            api = started[settings] = await stack.enter_async_context(
                running_memory_api(registered_clients, settings)
            )
        await api.reset()
        yield api

    def run(
        settings: Settings | None = None,
        *,
        wrap_uow: Callable[[UnitOfWork], UnitOfWork] | None = None,
        **overrides: Any,
    ) -> contextlib.AbstractAsyncContextManager[Api]:
        if settings is not None and wrap_uow is None and not overrides:
            return with_settings(settings)
        return running_memory_api(registered_clients, settings, wrap_uow=wrap_uow, **overrides)

    return run


@pytest.fixture(scope="session")
async def shared_api(registered_clients: RegisteredClients) -> AsyncIterator[Api]:
    async with running_memory_api(registered_clients) as running:
        yield running


@pytest.fixture
async def api(shared_api: Api) -> Api:
    """The default application, with an empty contact store and a healthy database.

    One application serves every test (building one costs more than most tests): each test starts from
    the same state. Tests that need other settings or adapters use `running_api`.
    """
    await shared_api.reset()
    return shared_api
