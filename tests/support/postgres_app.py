"""The HTTP application on the migrated test PostgreSQL, in-process (httpx.ASGITransport), for
integration tests that need their own settings (the shared harness lives in tests/http_harness.py)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from dependency_injector import providers

from ctms_core.ports.repositories import UnitOfWork
from ctms_core.services.api_clients import ClientCredentials
from ctms_entrypoints.container import Container, build_container
from ctms_entrypoints.http import create_app
from ctms_entrypoints.settings import Settings
from tests.http_harness import CheapArgon2Hasher, lifespan_task, make_settings


@dataclasses.dataclass
class PostgresApp:
    container: Container
    http: httpx.AsyncClient

    async def create_client(self, name: str) -> ClientCredentials:
        credentials: ClientCredentials = await self.container.api_client_service().create(
            name, f"{name}@example.com"
        )
        return credentials

    async def token(self, credentials: ClientCredentials) -> str:
        response = await self.http.post(
            "/token",
            data={"grant_type": "client_credentials"},
            auth=(credentials.client_id, credentials.client_secret),
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


@contextlib.asynccontextmanager
async def postgres_app(
    database_url: str,
    *,
    wrap_uow: Callable[[UnitOfWork], UnitOfWork] | None = None,
    **settings: Any,
) -> AsyncIterator[PostgresApp]:
    """The app on `database_url` (tables as the caller left them) with `settings` overrides;
    `wrap_uow` wraps each of its units of work (to hold or fail them at chosen points)."""
    resolved: Settings = make_settings(db_url=database_url, **settings)
    container = build_container(resolved, password_hasher=CheapArgon2Hasher())
    if wrap_uow is not None:
        base_factory = container.uow_factory()
        wrapped: Callable[[], UnitOfWork] = lambda: wrap_uow(base_factory())  # noqa: E731
        container.uow_factory.override(providers.Object(wrapped))
    app = create_app(container)
    try:
        async with (
            lifespan_task(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            ) as client,
        ):
            yield PostgresApp(container, client)
    finally:
        await container.engine().dispose()
