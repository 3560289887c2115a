"""The HTTP behaviour suite on PostgreSQL over real HTTP (issue #3, docs/contract.md §15).

The test modules of tests/unit/http run again here (each module of this package re-exports one of them),
with the same fixtures backed by the real adapters: `build_container` with the migrated throwaway
database of tests/integration/conftest.py (its own engine, pool and PostgreSQL providers) and a uvicorn
server on a free local port, which httpx reaches through a socket. Before each test every table is emptied,
then the migrations' seed rows and the registered API clients are stored again.

A database outage is simulated behind the container's real `PostgresDatabaseHealth` (see
`OutageSwitch`): Litestar resolves the heartbeat's dependency once per application, so the health port
cannot be swapped after the first request, and stopping the test database is not an option.

tests/unit/http/test_rendering.py has no counterpart here: it tests pure rendering functions, with
neither storage nor HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from dependency_injector import providers
from litestar import Litestar
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.memory import InMemoryStore, InMemoryUnitOfWork
from ctms_adapters.postgres import metadata
from ctms_core.ports.health import DatabaseHealth
from ctms_core.ports.repositories import UnitOfWork
from ctms_entrypoints.container import build_container
from ctms_entrypoints.http.read_deadline import ReadDeadlineHttpToolsProtocol
from ctms_entrypoints.settings import Settings
from tests.http_harness import (
    Api,
    RecordingApp,
    RegisteredClients,
    RunApi,
    make_settings,
    register_clients,
    serving,
)

# Every table but alembic's bookkeeping, children first. DELETE rather than TRUNCATE: on tables this
# small it is several times faster (TRUNCATE replaces every table's files), and it runs before each test.
_EMPTY_TABLES = [delete(table) for table in reversed(metadata.sorted_tables)]
_SERVER_START_TIMEOUT_SECONDS = 10.0


class OutageSwitch:
    """The container's real `DatabaseHealth`, unless a test marked the database down: then every check
    fails as an unreachable PostgreSQL does."""

    def __init__(self, health: DatabaseHealth) -> None:
        self.health = health
        self.up = True

    def _check_up(self) -> None:
        if not self.up:
            raise ConnectionError("PostgreSQL marked down by the test")

    async def ping(self) -> None:
        self._check_up()
        await self.health.ping()

    async def estimate_contact_count(self) -> int:
        self._check_up()
        return await self.health.estimate_contact_count()


async def _store_migration_seed(uow: UnitOfWork) -> None:
    """Store the rows the migrations seed (the standard permissions, the `admin` role, the Acoustic
    configuration, the waitlist field rules), as a new in-memory store holds them: emptying every table
    removed them, and the test database may have been emptied by other integration tests before this
    tier took a copy."""
    async with InMemoryUnitOfWork(InMemoryStore()) as seeded:
        permissions = await seeded.roles.list_permissions()
        roles = await seeded.roles.list_roles()
        acoustic_fields = await seeded.acoustic_config.fields()
        newsletter_mappings = await seeded.acoustic_config.newsletter_mappings()
        waitlist_rules = await seeded.waitlist_rules.list()
    for tablename, field in acoustic_fields:
        await uow.acoustic_config.add_field(tablename, field)
    for source, destination in newsletter_mappings:
        await uow.acoustic_config.add_newsletter_mapping(source, destination)
    for rule in waitlist_rules:
        await uow.waitlist_rules.set(rule)
    for permission in permissions:
        await uow.roles.add_permission(permission.name, permission.description)
    for role in roles:
        await uow.roles.add_role(role.name, role.description)
        for permission_name in role.permissions:
            await uow.roles.grant_permission(role.name, permission_name)


class PostgresStorage:
    """The test database behind a container: reset by TRUNCATE and re-inserting the clients."""

    def __init__(
        self, engine: AsyncEngine, uow_factory: Callable[[], UnitOfWork], health: OutageSwitch
    ) -> None:
        self.engine = engine
        self.uow_factory = uow_factory
        self.health = health

    async def reset(self, clients: RegisteredClients) -> None:
        async with self.engine.begin() as connection:
            for statement in _EMPTY_TABLES:
                await connection.execute(statement)
        async with self.uow_factory() as uow:
            await _store_migration_seed(uow)
            for client in clients.records.values():
                await uow.api_clients.add(client)
            await uow.commit()

    def set_database_up(self, up: bool) -> None:
        self.health.up = up


class _TestServer(uvicorn.Server):
    """uvicorn without its signal handlers (pytest keeps Ctrl-C) that stops as soon as `stop()` is
    called, rather than at its next 100 ms tick: several tests start and stop servers of their own."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stopping = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        # `on_tick` refreshes the Date header when its counter is a multiple of 10: once a second here.
        while not await self.on_tick(0):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._stopping.wait()

    def stop(self) -> None:
        self.should_exit = True
        self._stopping.set()


@contextlib.asynccontextmanager
async def over_http(app: Litestar, recorder: RecordingApp) -> AsyncIterator[httpx.AsyncClient]:
    """`recorder` served by uvicorn (lifespan on) on a free local port, in a task of the session loop."""
    del app  # uvicorn runs its lifespan through the recorder
    # IPPROTO_TCP, not the default 0: asyncio turns Nagle's algorithm off only on sockets whose protocol
    # says TCP, and accepted sockets inherit it; with it on, each response waits ~40 ms for a delayed ACK.
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    config = uvicorn.Config(
        recorder,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_config=None,
        access_log=False,
        ws="none",
        http=ReadDeadlineHttpToolsProtocol,  # as `ctms serve` runs it
    )
    server = _TestServer(config)
    serving_task = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        async with asyncio.timeout(_SERVER_START_TIMEOUT_SECONDS):
            while not server.started:
                if serving_task.done():
                    await serving_task
                    raise RuntimeError("uvicorn stopped before it started serving")
                await asyncio.sleep(0.005)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        server.stop()
        await serving_task
        listening.close()


@contextlib.asynccontextmanager
async def running_postgres_api(
    clients: RegisteredClients,
    database_url: str,
    settings: Settings | None = None,
    *,
    wrap_uow: Callable[[UnitOfWork], UnitOfWork] | None = None,
    **overrides: Any,
) -> AsyncIterator[Api]:
    """An `Api` on the emptied test database holding `clients`, with `settings` and container
    `overrides`, served over HTTP by uvicorn for the duration of the block."""
    container = build_container(
        dataclasses.replace(settings or make_settings(), db_url=database_url), **overrides
    )
    health = OutageSwitch(container.database_health())
    container.database_health.override(providers.Object(health))
    engine = container.engine()
    try:
        storage = PostgresStorage(engine, container.uow_factory(), health)
        await storage.reset(clients)
        async with serving(container, clients, storage, over_http, wrap_uow=wrap_uow) as api:
            yield api
    finally:
        if engine is not None:
            await engine.dispose()


@pytest.fixture(scope="session")
async def registered_clients() -> RegisteredClients:
    return await register_clients()


@pytest.fixture
def running_api(registered_clients: RegisteredClients, database_url: str) -> RunApi:
    """Runs other applications (other settings or adapters) on the emptied test database."""

    def run(
        settings: Settings | None = None,
        *,
        wrap_uow: Callable[[UnitOfWork], UnitOfWork] | None = None,
        **overrides: Any,
    ) -> contextlib.AbstractAsyncContextManager[Api]:
        return running_postgres_api(
            registered_clients, database_url, settings, wrap_uow=wrap_uow, **overrides
        )

    return run


@pytest.fixture(scope="session")
async def shared_api(
    registered_clients: RegisteredClients, database_url: str
) -> AsyncIterator[Api]:
    async with running_postgres_api(registered_clients, database_url) as running:
        yield running


@pytest.fixture
async def api(shared_api: Api) -> Api:
    """The default application on an emptied database with a healthy connection (see the unit tier)."""
    await shared_api.reset()
    return shared_api
