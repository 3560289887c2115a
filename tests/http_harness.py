"""The storage-independent part of the HTTP test harness, shared by both tiers.

The HTTP behaviour suite (tests/unit/http) runs twice: on the in-memory adapters in-process
(tests/unit/http/conftest.py) and on PostgreSQL over real HTTP (tests/integration/http/conftest.py).
Tests see the same fixtures in both tiers, `api` (an `Api`), `running_api` (a `RunApi`) and
`registered_clients`, and reach the stored data only through the container's unit of work, so they do
not know which storage or transport serves them. What differs between tiers is a `Storage` (reset,
database outage) and a `Serve` (how the application is reached).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import argon2
import httpx
from dependency_injector import providers
from litestar import Litestar

from ctms_adapters.memory import InMemoryStore, ManualClock
from ctms_core.domain.api_client import ApiClient
from ctms_core.domain.contact import Contact
from ctms_core.ports.repositories import UnitOfWork
from ctms_core.services.api_clients import ClientCredentials
from ctms_entrypoints.container import Container, build_container, memory_storage
from ctms_entrypoints.http import create_app
from ctms_entrypoints.observability.access_log import LOG_CONTEXT_KEY
from ctms_entrypoints.settings import Settings
from tests.builders import DEFAULT_TIME, contact_from_body

SECRET_KEY = "test-secret-key-for-the-http-tier"
TOKEN_LIFETIME = timedelta(minutes=5)

# `updates_page` bounds wide enough to list every stored contact.
_EVERYTHING_START = datetime(1900, 1, 1, tzinfo=UTC)
_EVERYTHING_END = datetime(9000, 1, 1, tzinfo=UTC)
_EVERYTHING_LIMIT = 1_000_000


def make_settings(**overrides: Any) -> Settings:
    """Test settings. Verified tokens are not remembered (`token_cache_seconds=0`): tests that share an
    application mint identical tokens within one second, and revocation, disabling and grants must show
    on the very next request; `test_token_lifecycle` covers the remembering interval itself. Failed
    `/token` attempts are not throttled: tests sharing an application fail on purpose from one address;
    `test_token_throttling` covers the throttle."""
    return dataclasses.replace(
        Settings(
            secret_key=SECRET_KEY,
            token_expiration=TOKEN_LIFETIME,
            token_cache_seconds=0,
            token_failures_per_client=0,
            token_failures_per_address=0,
        ),
        **overrides,
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


CLIENTS_CREATED_AT = datetime(2020, 1, 1, tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class RegisteredClients:
    enabled: ClientCredentials
    disabled: ClientCredentials
    records: dict[str, ApiClient]


async def register_clients() -> RegisteredClients:
    """The API clients every test's storage starts with, created once through `api_client_service`
    (on a scratch in-memory store: the records are then copied into whichever storage a tier uses).
    They are created on a clock long before any test's: creating a client records its first
    credentials change, and a token a test mints without a credentials version (as an older release
    did) is refused when issued before it."""
    store = InMemoryStore()
    container = build_container(
        make_settings(),
        **memory_storage(store),
        password_hasher=CheapArgon2Hasher(),
        clock=ManualClock(CLIENTS_CREATED_AT),
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
        if scope["type"] == "http":  # an ASGI server also sends the lifespan scope through here
            scope["state"] = {}
            self.scopes.append(scope)
        await self.app(scope, receive, send)

    def log_fields(self, index: int = -1) -> dict[str, Any]:
        fields: dict[str, Any] = self.scopes[index]["state"].get(LOG_CONTEXT_KEY, {})
        return fields


class Storage(Protocol):
    """What a tier's storage does for the harness beyond the unit of work."""

    async def reset(self, clients: RegisteredClients) -> None:
        """Empty every table and store `clients.records` again."""
        ...

    def set_database_up(self, up: bool) -> None:
        """Make the heartbeat's database ping succeed (True) or fail as an outage does (False)."""
        ...


# Starts `app` (recorded by `recorder`) and yields an HTTP client for it; the application's lifespan
# runs for the duration of the block.
Serve = Callable[
    [Litestar, RecordingApp], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]
]


class RunApi(Protocol):
    """The `running_api` fixture: `async with running_api(settings, **overrides) as api:` runs another
    application on empty storage. `overrides` replace container providers (as `build_container` takes
    them); `wrap_uow` wraps each unit of work of the tier's storage (to inject faults)."""

    def __call__(
        self,
        settings: Settings | None = None,
        *,
        wrap_uow: Callable[[UnitOfWork], UnitOfWork] | None = None,
        **overrides: Any,
    ) -> contextlib.AbstractAsyncContextManager[Api]: ...


class Api:
    """One running application, an HTTP client for it, and shortcuts for tests."""

    def __init__(
        self,
        container: Container,
        client: httpx.AsyncClient,
        recorder: RecordingApp,
        clients: RegisteredClients,
        storage: Storage,
    ) -> None:
        self.container = container
        self.http = client
        self.recorder = recorder
        self.clients = clients
        self.storage = storage

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

    # --- state (through the container's unit of work, whichever storage is behind it) ---

    def unit_of_work(self) -> UnitOfWork:
        uow: UnitOfWork = self.container.uow_factory()()
        return uow

    async def reset(self) -> None:
        """Empty storage holding the registered clients, a healthy database, no recorded requests."""
        await self.storage.reset(self.clients)
        self.storage.set_database_up(True)
        self.recorder.scopes.clear()

    async def seed(self, body: dict[str, Any], *, at: datetime = DEFAULT_TIME) -> Contact:
        """Store a contact directly (every timestamp `at`), bypassing the API."""
        return await self.seed_contact(contact_from_body(body, at=at))

    async def seed_contact(self, contact: Contact) -> Contact:
        """Store `contact` as it is, bypassing the API."""
        async with self.unit_of_work() as uow:
            await uow.contacts.add(contact)
            await uow.commit()
        return contact

    async def stored(self, email_id: str | uuid.UUID) -> Contact | None:
        """The stored contact with `email_id`, None when there is none."""
        async with self.unit_of_work() as uow:
            return await uow.contacts.get(uuid.UUID(str(email_id)))

    async def stored_contacts(self) -> dict[uuid.UUID, Contact]:
        """Every stored contact, by email_id."""
        async with self.unit_of_work() as uow:
            contacts = await uow.contacts.updates_page(
                start=_EVERYTHING_START,
                end=_EVERYTHING_END,
                after=None,
                limit=_EVERYTHING_LIMIT,
                mofo_relevant=None,
            )
        return {contact.email_id: contact for contact in contacts}

    def database_down(self) -> None:
        """Simulate a database outage for the heartbeat's ping (until the next `reset`)."""
        self.storage.set_database_up(False)

    def log_fields(self, index: int = -1) -> dict[str, Any]:
        """What the request (the last one by default) recorded for the access log."""
        return self.recorder.log_fields(index)


@contextlib.asynccontextmanager
async def serving(
    container: Container,
    clients: RegisteredClients,
    storage: Storage,
    serve: Serve,
    *,
    wrap_uow: Callable[[UnitOfWork], UnitOfWork] | None = None,
) -> AsyncIterator[Api]:
    """An `Api` for `container`, served by `serve` for the duration of the block."""
    if wrap_uow is not None:
        base_factory = container.uow_factory()
        wrapped: Callable[[], UnitOfWork] = lambda: wrap_uow(base_factory())  # noqa: E731
        container.uow_factory.override(providers.Object(wrapped))
    app = create_app(container)
    recorder = RecordingApp(app)
    async with serve(app, recorder) as client:
        yield Api(container, client, recorder, clients, storage)


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
