"""PostgreSQL stops mid-run, and the pool runs dry: the API answers 503 with a JSON body within the pool
timeout, never a hang or a raw 500, and recovers without a restart (docs/contract.md §16.3, issue #9)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ctms_adapters.postgres.engine import CONNECT_TIMEOUT_SECONDS
from tests.integration.reliability.conftest import StoppableDatabase
from tests.support.postgres_app import PostgresApp, postgres_app

POOL_TIMEOUT_SECONDS = 2
# A request may wait for the pool once, plus connect and shutdown latency: never longer than this.
REQUEST_BOUND_SECONDS = POOL_TIMEOUT_SECONDS + 5
SERVICE_UNAVAILABLE = {"detail": "Service unavailable, try again later"}


async def bounded(
    app: PostgresApp, method: str, url: str, token: str | None, **kwargs: Any
) -> httpx.Response:
    """One request that fails the test (rather than hanging it) past `REQUEST_BOUND_SECONDS`."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with asyncio.timeout(REQUEST_BOUND_SECONDS):
        return await app.http.request(method, url, headers=headers, **kwargs)


def new_contact_body() -> dict[str, Any]:
    return {
        "email": {"primary_email": f"outage-{uuid.uuid4().hex[:12]}@example.com"},
        "newsletters": [{"name": "mozilla-foundation"}],
    }


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert response.json() == SERVICE_UNAVAILABLE


@pytest.fixture
async def outage_app(stoppable_database: StoppableDatabase) -> AsyncIterator[PostgresApp]:
    async with postgres_app(
        stoppable_database.url, db_pool_timeout_in_seconds=POOL_TIMEOUT_SECONDS
    ) as app:
        yield app


async def test_database_stopped_then_started_503_then_recovery_without_restart(
    outage_app: PostgresApp, stoppable_database: StoppableDatabase
) -> None:
    """While PostgreSQL is down every endpoint that needs it answers 503 JSON (the load-balancer
    heartbeat stays 200); once it is back, the same process serves the stored data again."""
    app = outage_app
    token = await app.token(await app.create_client(f"outage-{uuid.uuid4().hex[:8]}"))
    created = await bounded(app, "POST", "/ctms", token, json=new_contact_body())
    assert created.status_code == 201, created.text
    email_id = created.json()["email"]["email_id"]
    healthy = await bounded(app, "GET", "/__heartbeat__", None)
    assert healthy.status_code == 200, healthy.text

    stoppable_database.stop()
    try:
        for method, url, kwargs in [
            ("GET", f"/ctms/{email_id}", {}),
            ("PATCH", f"/ctms/{email_id}", {"json": {"email": {"first_name": "Down"}}}),
            ("POST", "/ctms", {"json": new_contact_body()}),
            ("GET", "/updates?start=2020-01-01", {}),
            ("GET", f"/ctms?email_id={email_id}", {}),
        ]:
            assert_unavailable(await bounded(app, method, url, token, **kwargs))
        heartbeat = await bounded(app, "GET", "/__heartbeat__", None)
        assert heartbeat.status_code == 503, heartbeat.text
        assert heartbeat.headers["content-type"].startswith("application/json")
        lb_heartbeat = await bounded(app, "GET", "/__lbheartbeat__", None)
        assert lb_heartbeat.status_code == 200
    finally:
        stoppable_database.start()

    # Recovery: allow one failed request while the pool replaces its dead connections.
    statuses = []
    for _ in range(3):
        response = await bounded(app, "GET", f"/ctms/{email_id}", token)
        statuses.append(response.status_code)
        if response.status_code == 200:
            break
    assert statuses[-1] == 200 and len(statuses) <= 2, statuses
    assert response.json()["email"]["email_id"] == email_id
    patched = await bounded(
        app, "PATCH", f"/ctms/{email_id}", token, json={"email": {"first_name": "Back"}}
    )
    assert patched.status_code == 200, patched.text
    assert (await bounded(app, "GET", "/__heartbeat__", None)).status_code == 200


async def test_pool_exhausted_answers_503_within_the_pool_timeout(database_url: str) -> None:
    """With the only pooled connection held elsewhere, requests wait `db_pool_timeout_in_seconds` and
    then answer 503 JSON; once it is released, they succeed again."""
    async with postgres_app(
        database_url,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout_in_seconds=POOL_TIMEOUT_SECONDS,
    ) as app:
        token = await app.token(await app.create_client(f"pool-{uuid.uuid4().hex[:8]}"))
        created = await bounded(app, "POST", "/ctms", token, json=new_contact_body())
        assert created.status_code == 201, created.text
        email_id = created.json()["email"]["email_id"]

        engine = app.container.engine()
        async with engine.connect() as held:  # the pool's only connection, in a transaction
            await held.exec_driver_sql("SELECT 1")
            loop = asyncio.get_running_loop()
            started = loop.time()
            responses = await asyncio.gather(
                bounded(app, "GET", f"/ctms/{email_id}", token),
                bounded(app, "PATCH", f"/ctms/{email_id}", token, json={"email": {}}),
                bounded(app, "GET", "/updates?start=2020-01-01", token),
            )
            elapsed = loop.time() - started
            for response in responses:
                assert_unavailable(response)
            assert elapsed < REQUEST_BOUND_SECONDS
            heartbeat = await bounded(app, "GET", "/__heartbeat__", None)
            assert heartbeat.status_code == 503, heartbeat.text

        again = await bounded(app, "GET", f"/ctms/{email_id}", token)
        assert again.status_code == 200, again.text
        assert (await bounded(app, "GET", "/__heartbeat__", None)).status_code == 200


async def test_unresponsive_database_host_answers_503_within_the_connect_timeout() -> None:
    """A database host that accepts TCP connections and then says nothing (a network black hole, a
    frozen server) costs at most the connect timeout: 503 JSON, not a request that never ends."""
    accepted: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # keep it open, never answer

    silent = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    bound = CONNECT_TIMEOUT_SECONDS + POOL_TIMEOUT_SECONDS + 5
    try:
        async with postgres_app(
            f"postgresql+asyncpg://postgres@127.0.0.1:{port}/ctms",
            db_pool_timeout_in_seconds=POOL_TIMEOUT_SECONDS,
        ) as app:
            headers = {"Authorization": f"Bearer {app_token(app)}"}
            async with asyncio.timeout(bound):
                read, heartbeat = await asyncio.gather(
                    app.http.get(f"/ctms/{uuid.uuid4()}", headers=headers),
                    app.http.get("/__heartbeat__"),
                )
            assert_unavailable(read)
            assert heartbeat.status_code == 503, heartbeat.text
    finally:
        for writer in accepted:
            writer.close()
        silent.close()
        await silent.wait_closed()


def app_token(app: PostgresApp) -> str:
    """A signed token for a client that cannot be looked up (the database is out of reach anyway)."""
    now = datetime.now(UTC)
    token: str = app.container.token_codec().encode(
        "api_client:id_unreachable", issued_at=now, expires_at=now + timedelta(minutes=5)
    )
    return token
