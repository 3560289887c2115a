"""HTTP-tier fixtures: the Litestar app on the in-memory adapters, driven through httpx in-process.

`api` is a fresh application with an empty contact store per test. API clients are created once per
session through the container's `api_client_service` (with cheap argon2 costs, which the real hasher
reads back from each hash when it verifies) and copied into every test's store.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

import argon2
import httpx
import pytest
from litestar import Litestar

from ctms_adapters.memory import InMemoryDatabaseHealth, InMemoryStore
from ctms_core.domain.api_client import ApiClient
from ctms_core.domain.contact import Contact
from ctms_core.services.api_clients import ClientCredentials
from ctms_entrypoints.container import Container, build_container, memory_storage
from ctms_entrypoints.http import create_app
from ctms_entrypoints.http.context import ACCESS_LOG_STATE_KEY
from ctms_entrypoints.settings import Settings
from tests.builders import DEFAULT_TIME, contact_from_body

SECRET_KEY = "test-secret-key-for-the-http-tier"
TOKEN_LIFETIME = timedelta(minutes=5)
BASE_URL = "http://testserver"


def make_settings(**overrides: Any) -> Settings:
    return dataclasses.replace(
        Settings(secret_key=SECRET_KEY, token_expiration=TOKEN_LIFETIME), **overrides
    )


class CheapArgon2Hasher:
    """`PasswordHasher` with the smallest argon2id costs: fast to create clients with; the production
    hasher verifies these hashes as it verifies any PHC string (it reads the costs from the hash)."""

    def __init__(self) -> None:
        self._argon2 = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

    def hash(self, secret: str) -> str:
        return self._argon2.hash(secret)

    def verify(self, hashed: str, secret: str) -> bool:
        try:
            return self._argon2.verify(hashed, secret)
        except (argon2.exceptions.VerificationError, ValueError):
            return False


@dataclasses.dataclass(frozen=True)
class RegisteredClients:
    enabled: ClientCredentials
    disabled: ClientCredentials
    records: dict[str, ApiClient]


@pytest.fixture(scope="session")
async def registered_clients() -> RegisteredClients:
    store = InMemoryStore()
    container = build_container(
        make_settings(), **memory_storage(store), password_hasher=CheapArgon2Hasher()
    )
    service = container.api_client_service()
    enabled = await service.create("test", "test@example.com")
    disabled = await service.create("disabled", "disabled@example.com", enabled=False)
    return RegisteredClients(enabled, disabled, dict(store.api_clients))


class RecordingApp:
    """Wraps the app like an ASGI server does (a fresh `state` per request) and keeps each request's
    scope, so tests can read what the request recorded for the access log."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.scopes: list[MutableMapping[str, Any]] = []

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        scope["state"] = {}
        self.scopes.append(scope)
        await self.app(scope, receive, send)

    def log_fields(self, index: int = -1) -> dict[str, Any]:
        fields: dict[str, Any] = self.scopes[index]["state"].get(ACCESS_LOG_STATE_KEY, {})
        return fields


class Api:
    """One application on the in-memory adapters, an HTTP client for it, and shortcuts for tests."""

    def __init__(
        self,
        container: Container,
        store: InMemoryStore,
        client: httpx.AsyncClient,
        recorder: RecordingApp,
        clients: RegisteredClients,
    ) -> None:
        self.container = container
        self.store = store
        self.http = client
        self.recorder = recorder
        self.clients = clients

    # --- credentials ---

    def token(
        self,
        client_id: str = "id_test",
        *,
        namespace: str = "api_client",
        expires_in: timedelta = TOKEN_LIFETIME,
    ) -> str:
        now = datetime.now(UTC)
        codec = self.container.token_codec()
        token: str = codec.encode(
            f"{namespace}:{client_id}", issued_at=now, expires_at=now + expires_in
        )
        return token

    def auth(self, client_id: str = "id_test", **token_options: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(client_id, **token_options)}"}

    # --- requests (authenticated as the enabled client unless `headers` say otherwise) ---

    async def request(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        return await self.http.request(
            method, url, headers=self.auth() if headers is None else headers, **kwargs
        )

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST a contact that must be created; its response body."""
        response = await self.post("/ctms", json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def read(self, email_id: str | uuid.UUID) -> dict[str, Any]:
        response = await self.get(f"/ctms/{email_id}")
        assert response.status_code == 200, response.text
        contact: dict[str, Any] = response.json()
        return contact

    # --- state ---

    def reset(self) -> None:
        self.store.contacts.clear()
        self.store.api_clients.clear()
        self.store.api_clients.update(self.clients.records)
        self.recorder.scopes.clear()
        self.database_health.up = True

    def seed(self, body: dict[str, Any], *, at: datetime = DEFAULT_TIME) -> Contact:
        """Store a contact directly (every timestamp `at`), bypassing the API."""
        contact = contact_from_body(body, at=at)
        self.store.contacts[contact.email_id] = contact
        return contact

    def log_fields(self, index: int = -1) -> dict[str, Any]:
        """What the request (the last one by default) recorded for the access log."""
        return self.recorder.log_fields(index)

    @property
    def database_health(self) -> InMemoryDatabaseHealth:
        health = self.container.database_health()
        assert isinstance(health, InMemoryDatabaseHealth)
        return health


@contextlib.asynccontextmanager
async def lifespan_task(app: Litestar) -> AsyncIterator[None]:
    """Run the app's lifespan in a task of its own, as an ASGI server does: pytest-asyncio sets fixtures
    up and tears them down in different tasks, and Litestar's lifespan must end in the task it began in."""
    started, stopping = asyncio.Event(), asyncio.Event()

    async def serve() -> None:
        async with app.lifespan():
            started.set()
            await stopping.wait()

    task = asyncio.create_task(serve())
    waiting = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiting.cancel()
        await task  # startup failed: raise its error
    try:
        yield
    finally:
        stopping.set()
        await task


@contextlib.asynccontextmanager
async def running_api(
    clients: RegisteredClients,
    settings: Settings | None = None,
    *,
    store: InMemoryStore | None = None,
    **overrides: Any,
) -> AsyncIterator[Api]:
    """An `Api` on `store` with `settings` and container `overrides` (as `build_container` takes them),
    its application running (lifespan entered) for the duration of the block."""
    store = store or InMemoryStore()
    store.api_clients.update(clients.records)
    container = build_container(
        settings or make_settings(), **{**memory_storage(store), **overrides}
    )
    app = create_app(container)
    recorder = RecordingApp(app)
    transport = httpx.ASGITransport(app=recorder)
    async with (
        lifespan_task(app),
        httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client,
    ):
        yield Api(container, store, client, recorder, clients)


@pytest.fixture(scope="session")
async def shared_api(registered_clients: RegisteredClients) -> AsyncIterator[Api]:
    async with running_api(registered_clients) as running:
        yield running


@pytest.fixture
def api(shared_api: Api) -> Api:
    """The default application, with an empty contact store and a healthy database.

    One application serves every test (building one costs more than most tests): each test starts from
    the same state. Tests that need other settings or adapters use `running_api`.
    """
    shared_api.reset()
    return shared_api
