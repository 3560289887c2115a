"""A database that stops answering while its connections stay open (processes frozen, a network black
hole): requests on pooled connections answer 503 JSON within the configured timeouts instead of hanging,
the heartbeat reports it, and the service recovers once the database answers again, without a restart
(docs/configuration.md, "Database timeouts")."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import exc

from ctms_adapters.postgres.unavailable import is_unavailability
from tests.support.freezable_proxy import FreezableProxy, freezable_proxy
from tests.support.postgres_app import PostgresApp, postgres_app

# The bounds under test, small so the suite stays quick; the defaults are a few seconds.
STATEMENT_TIMEOUT_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 1.0
# A guard so that a regression fails the test instead of hanging it: without the timeouts a request
# waits for as long as the database is frozen, which here is until the test thaws it.
HANG_GUARD_SECONDS = 30
SERVICE_UNAVAILABLE = {"detail": "Service unavailable, try again later"}


@pytest.fixture
async def frozen_app(database_url: str) -> AsyncIterator[tuple[PostgresApp, FreezableProxy]]:
    async with (
        freezable_proxy(database_url) as proxy,
        postgres_app(
            proxy.url_through(database_url),
            db_statement_timeout_seconds=STATEMENT_TIMEOUT_SECONDS,
            db_connect_timeout_seconds=CONNECT_TIMEOUT_SECONDS,
            db_pool_timeout_in_seconds=2,
        ) as app,
    ):
        yield app, proxy


async def request(
    app: PostgresApp, method: str, url: str, token: str | None = None, **kwargs: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with asyncio.timeout(HANG_GUARD_SECONDS):
        return await app.http.request(method, url, headers=headers, **kwargs)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert response.json() == SERVICE_UNAVAILABLE


async def test_frozen_database_answers_503_on_pooled_connections_then_recovers_after_the_thaw(
    frozen_app: tuple[PostgresApp, FreezableProxy],
) -> None:
    """While the database is frozen, reads, writes (coalesced or in a transaction) and the heartbeat
    end with 503 although their pooled connections stay open; after the thaw the same process answers
    200 again, the connections that timed out having been discarded rather than reused."""
    app, proxy = frozen_app
    token = await app.token(await app.create_client(f"freeze-{uuid.uuid4().hex[:8]}"))
    created = await request(
        app,
        "POST",
        "/ctms",
        token,
        json={"email": {"primary_email": f"freeze-{uuid.uuid4().hex[:12]}@example.com"}},
    )
    assert created.status_code == 201, created.text
    email_id = created.json()["email"]["email_id"]
    # Warm the pool: every kind of request below has a pooled connection open before the freeze.
    for method, url, kwargs in [
        ("GET", f"/ctms/{email_id}", {}),
        ("PATCH", f"/ctms/{email_id}", {"json": {"email": {"first_name": "Warm"}}}),
        ("PUT", f"/ctms/{email_id}", {"json": created.json()}),
        ("GET", "/updates?start=2020-01-01", {}),
        ("GET", "/__heartbeat__", {}),
    ]:
        response = await request(app, method, url, token, **kwargs)
        assert response.is_success, (url, response.text)

    proxy.freeze()
    try:
        frozen = await asyncio.gather(
            request(app, "GET", f"/ctms/{email_id}", token),
            request(app, "PATCH", f"/ctms/{email_id}", token, json={"email": {"first_name": "F"}}),
            request(app, "PUT", f"/ctms/{email_id}", token, json=created.json()),
            request(app, "GET", "/updates?start=2020-01-01", token),
            request(app, "GET", f"/ctms?email_id={email_id}", token),
        )
        for response in frozen:
            assert_unavailable(response)
        heartbeat = await request(app, "GET", "/__heartbeat__")
        assert heartbeat.status_code == 503, heartbeat.text
        assert heartbeat.json()["database"]["up"] is False
        # A request that needs a new connection gives up after the connect timeout.
        assert_unavailable(await request(app, "GET", f"/ctms/{email_id}", token))
    finally:
        proxy.thaw()

    read = await request(app, "GET", f"/ctms/{email_id}", token)
    assert read.status_code == 200, read.text
    patched = await request(
        app, "PATCH", f"/ctms/{email_id}", token, json={"email": {"first_name": "Thawed"}}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["email"]["first_name"] == "Thawed"
    assert (await request(app, "GET", "/__heartbeat__")).status_code == 200


def test_a_statement_the_database_did_not_answer_in_time_is_unavailability() -> None:
    """asyncpg's command timeout (a `TimeoutError`) and a statement cancelled by PostgreSQL's
    `statement_timeout` (SQLSTATE 57014) both mean "database unavailable": the request answers 503 and
    the unit of work discards the connection rather than returning it to the pool mid-statement."""
    cancelled = asyncpg.exceptions.QueryCanceledError(
        "canceling statement due to statement timeout"
    )
    assert is_unavailability(TimeoutError())
    assert is_unavailability(exc.DBAPIError("SELECT 1", None, cancelled))
    assert not is_unavailability(exc.DBAPIError("SELECT 1", None, ValueError("bad value")))
