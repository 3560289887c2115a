"""The application on the migrated test PostgreSQL, served by uvicorn in a thread of its own.

schemathesis sends its requests with a synchronous client, so the server cannot share the test's event
loop: it runs `uvicorn.Server.run` (its own loop) in a background thread, with a real API client whose
credentials and token the tests send. The Pub/Sub push endpoint is configured to trust a locally
generated RSA key, whose key set a local HTTP server publishes, so tests can sign the Google tokens it
accepts.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import hypothesis.internal.lambda_sources as hypothesis_lambda_sources
import pytest

# Imported here, at a shallow stack: pytest rewrites the asserts of schemathesis (a pytest plugin) on
# first import, and CPython 3.11 fails that rewrite ("AST constructor recursion depth mismatch") when
# the first import happens deep inside a fixture (`schemathesis.openapi.from_url` imports the schema
# classes, and with them the hypothesis strategies, on its first call).
import schemathesis.specs.openapi.adapter.parameters
import schemathesis.specs.openapi.schemas  # noqa: F401
import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import text

from ctms_adapters.postgres import create_engine
from ctms_core.services.api_clients import ClientCredentials
from ctms_entrypoints.container import build_container
from ctms_entrypoints.http import create_app
from tests.http_harness import CheapArgon2Hasher, make_settings
from tests.support.jwks_server import serving_jwks


def _describe_lambda_or_not(f: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """Hypothesis describes a strategy's lambdas (only for its reprs) by parsing their source, and
    CPython 3.11 fails that parse at random deep in a run ("AST constructor recursion depth mismatch",
    a SystemError from the interpreter, not from the code under test): then say so instead."""
    try:
        return _lambda_description(f, *args, **kwargs)
    except SystemError:
        return "lambda: <source not described>"


_lambda_description = hypothesis_lambda_sources._lambda_description
hypothesis_lambda_sources._lambda_description = _describe_lambda_or_not

_START_TIMEOUT_SECONDS = 15.0

PUBSUB_AUDIENCE = "https://ctms.example.com/stripe_from_pubsub"
PUBSUB_EMAIL = "pubsub@project.iam.gserviceaccount.com"
PUBSUB_CLIENT = "schemathesis-pubsub-secret"
_PUBSUB_KID = "schemathesis-key"
_PUBSUB_KEY = RSAKey.generate_key(2048, parameters={"kid": _PUBSUB_KID})


@dataclasses.dataclass(frozen=True)
class LiveServer:
    base_url: str
    token: str
    client_id: str
    client_secret: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def basic_auth(self) -> dict[str, str]:
        credentials = f"{self.client_id}:{self.client_secret}".encode()
        return {"Authorization": f"Basic {base64.b64encode(credentials).decode()}"}

    @property
    def pubsub_auth(self) -> dict[str, str]:
        """A Google-like OIDC token the push endpoint accepts (signed with the published key)."""
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": PUBSUB_AUDIENCE,
            "email": PUBSUB_EMAIL,
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
            "sub": "schemathesis",
        }
        header = {"alg": "RS256", "kid": _PUBSUB_KID}
        return {"Authorization": f"Bearer {jwt.encode(header, claims, _PUBSUB_KEY)}"}


@pytest.fixture(scope="session")
def pubsub_jwks_url() -> Iterator[str]:
    with serving_jwks(_PUBSUB_KEY) as url:
        yield url


# Contacts, their sync queue and erasures, and Stripe objects: the data requests create. API clients, roles
# and the Acoustic configuration stay.
_REQUEST_DATA = text(
    "TRUNCATE emails, pending_acoustic, pending_sync, erasure_audit, stripe_customer, stripe_invoice, stripe_price, "
    "stripe_subscription RESTART IDENTITY CASCADE"
)


def remove_request_data(database_url: str) -> None:
    """Empty the tables requests write to (on a private loop), so an operation is fuzzed against the same
    database whatever ran before it in the session: a generated contact then gets the same answer (e.g.
    201, not 409 for a clash with an earlier one) in a full CI run as in a run of this directory alone."""

    async def truncate() -> None:
        engine = create_engine(
            database_url, pool_size=1, max_overflow=0, pool_timeout=10, pool_recycle=-1, echo=False
        )
        try:
            async with engine.begin() as connection:
                await connection.execute(_REQUEST_DATA)
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(asyncio.run, truncate()).result()


def _create_client(database_url: str) -> ClientCredentials:
    """A new enabled API client, created on a private loop (no loop runs in a sync fixture)."""

    async def create() -> ClientCredentials:
        container = build_container(
            make_settings(db_url=database_url), password_hasher=CheapArgon2Hasher()
        )
        try:
            name = f"schemathesis-{uuid.uuid4().hex[:8]}"
            credentials: ClientCredentials = await container.api_client_service().create(
                name, f"{name}@example.com"
            )
            return credentials
        finally:
            await container.engine().dispose()

    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, create()).result()


@pytest.fixture(scope="session")
def live_server(database_url: str, pubsub_jwks_url: str) -> Iterator[LiveServer]:
    credentials = _create_client(database_url)
    settings = make_settings(
        db_url=database_url,
        pubsub_audience=PUBSUB_AUDIENCE,
        pubsub_email=PUBSUB_EMAIL,
        pubsub_client=PUBSUB_CLIENT,
        pubsub_jwks_url=pubsub_jwks_url,
    )
    container = build_container(settings)
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(container),
            host="127.0.0.1",
            port=port,
            lifespan="on",
            log_config=None,
            access_log=False,
            ws="none",
        )
    )

    async def serve() -> None:
        try:
            await server.serve(sockets=[listening])
        finally:
            await container.engine().dispose()  # on the loop that opened its connections

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start serving")
            time.sleep(0.01)
        base_url = f"http://127.0.0.1:{port}"
        response = httpx.post(
            f"{base_url}/token",
            data={"grant_type": "client_credentials"},
            auth=(credentials.client_id, credentials.client_secret),
        )
        assert response.status_code == 200, response.text
        yield LiveServer(
            base_url,
            response.json()["access_token"],
            credentials.client_id,
            credentials.client_secret,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=_START_TIMEOUT_SECONDS)
        listening.close()
