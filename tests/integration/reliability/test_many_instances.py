"""Many instances on one PostgreSQL (issue #19, docs/deployment.md "Many instances"): two `ctms serve`
processes behind a round-robin front and two `ctms sync` workers against the fake Acoustic, under mixed
load (POST / PATCH / GET through the front), through a rolling restart (the front drops the process
before SIGTERM, as the endpoint removal during `preStop` does), a worker killed mid-batch and a revoked
client.

Everything is a real process on loopback, started the way a deployment starts it: the database is
migrated first (`upgrade`, the migration job), then the processes start on it. Every wait has a deadline
and every process is stopped by its PID in `finally`. What is asserted never depends on timing: the
phases wait for the conditions they need (a PATCH waiting on a row lock the test holds, both workers with
an upload in flight at the fake), and only the deadlines are times, but for the revocation, whose
documented bound is a time (`CTMS_TOKEN_CACHE_SECONDS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import random
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres import PostgresUnitOfWorkFactory, create_engine
from ctms_adapters.postgres.migrations import upgrade
from tests.support.acoustic_sync import (
    expect_uploaded,
    fake_acoustic_settings,
)
from tests.support.ctms_processes import (
    ApiProcess,
    CtmsProcess,
    base_environment,
    run_ctms,
)
from tests.support.database import throwaway_database, to_asyncpg_dsn
from tests.support.fake_acoustic import FakeAcoustic, running_fake_acoustic
from tests.support.round_robin_front import RoundRobinFront

pytestmark = pytest.mark.integration

CLIENTS = 6  # concurrent load clients
CONTACTS_PER_CLIENT = 20
TOKEN_CACHE_SECONDS = 1.0  # CTMS_TOKEN_CACHE_SECONDS (docs/configuration.md): the revocation bound
ACOUSTIC_LATENCY_S = 0.05  # every upload takes this long at the fake, so batches are in flight
# Batch of 5 with 5 uploads at a time and a 2 s Acoustic timeout: the lease of a claimed batch is
# 1 round x 5 calls x 2 s + 60 s = 70 s (`sync_policy`), the wait for a killed worker's contacts.
WORKER_SETTINGS = {
    "CTMS_ACOUSTIC_BATCH_LIMIT": "5",
    "CTMS_ACOUSTIC_CONCURRENCY": "5",
    "CTMS_ACOUSTIC_TIMEOUT_S": "2",
    "CTMS_ACOUSTIC_LOOP_MIN_SECS": "0.5",
}
PHASE_DEADLINE_S = 60.0
# The 70 s lease of the killed worker's batch, with room for a loaded machine.
DRAIN_DEADLINE_S = 150.0


def deployment_environment(
    database_url: str, fake: FakeAcoustic, server_prefix: str
) -> dict[str, str]:
    """The settings every process of the deployment shares (one ConfigMap and Secret)."""
    return {
        **base_environment(),
        "CTMS_DB_URL": database_url,
        "CTMS_SECRET_KEY": "many-instances",
        "CTMS_SERVER_PREFIX": server_prefix,
        "CTMS_USE_MOZLOG": "false",
        "CTMS_TOKEN_CACHE_SECONDS": str(TOKEN_CACHE_SECONDS),
        **fake_acoustic_settings(fake),
        **WORKER_SETTINGS,
    }


async def until(
    condition: Callable[[], Awaitable[bool] | bool], what: str, deadline_s: float
) -> None:
    """Poll `condition` every 20 ms until it holds; fail naming `what` after `deadline_s`."""
    deadline = time.monotonic() + deadline_s
    while True:
        outcome = condition()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {deadline_s} s")
        await asyncio.sleep(0.02)


def contact_body(email_id: uuid.UUID, first_name: str) -> dict[str, Any]:
    return {
        "email": {
            "email_id": str(email_id),
            "primary_email": f"many-{email_id.hex[:12]}@example.com",
            "first_name": first_name,
        },
        "newsletters": [{"name": "firefox-news"}],
        "waitlists": [{"name": "vpn", "fields": {"geo": "fr"}}],
    }


@dataclasses.dataclass
class MixedLoad:
    """Concurrent clients doing POST / PATCH / GET through the front, each on its own contacts, so each
    knows the latest first name of every contact it wrote and checks every read against it."""

    http: httpx.AsyncClient
    stop: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    latest: dict[uuid.UUID, str] = dataclasses.field(default_factory=dict)
    completed: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)

    async def run_client(self, index: int) -> None:
        chooser = random.Random(index)  # which contact to touch: not a secret
        mine: list[uuid.UUID] = []
        step = 0
        while not self.stop.is_set():
            step += 1
            if not mine or (step % 3 == 1 and len(mine) < CONTACTS_PER_CLIENT):
                email_id = uuid.uuid4()
                if await self.request("POST", "/ctms", 201, contact_body(email_id, "v0")):
                    self.latest[email_id] = "v0"
                    mine.append(email_id)
            elif step % 3 == 2:
                email_id = chooser.choice(mine)
                first_name = f"v{step}"
                patch = {"email": {"first_name": first_name}}
                if await self.request("PATCH", f"/ctms/{email_id}", 200, patch):
                    self.latest[email_id] = first_name
            else:
                email_id = chooser.choice(mine)
                body = await self.request("GET", f"/ctms/{email_id}", 200)
                if body is not None and body["email"]["first_name"] != self.latest[email_id]:
                    self.failures.append(
                        f"GET {email_id}: {body['email']['first_name']!r}, wrote "
                        f"{self.latest[email_id]!r}"
                    )

    async def request(
        self, method: str, path: str, expected: int, body: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        try:
            response = await self.http.request(method, path, json=body)
        except httpx.HTTPError as error:
            self.failures.append(f"{method} {path}: {error!r}")
            return None
        self.completed += 1
        if response.status_code != expected:
            self.failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
            return None
        answer: dict[str, Any] = response.json()
        return answer

    async def completed_at_least(self, count: int) -> None:
        await until(
            lambda: self.completed >= count, f"{count} requests completed", PHASE_DEADLINE_S
        )


@contextlib.asynccontextmanager
async def row_locked(dsn: str, email_id: uuid.UUID) -> AsyncIterator[asyncpg.Connection]:
    """Hold the lock of a contact's `emails` row: its writes wait until the block ends."""
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        async with connection.transaction():
            await connection.execute(
                "SELECT 1 FROM emails WHERE email_id = $1 FOR UPDATE", email_id
            )
            yield connection
    finally:
        await connection.close()


async def a_session_waits_for_a_lock(dsn: str) -> bool:
    """Whether a session of the test database is waiting for a lock."""
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        waiting: bool = await connection.fetchval(
            "SELECT exists(SELECT FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock')"
        )
        return waiting
    finally:
        await connection.close()


async def rolling_restart(
    index: int,
    apis: list[ApiProcess],
    load: MixedLoad,
    front: RoundRobinFront,
    headers: dict[str, str],
    dsn: str,
) -> None:
    """Restart `apis[index]` the way a rollout does (deploy/kubernetes/base/web.yaml): the front stops
    sending it new connections (the endpoint removal of `preStop`), then it gets SIGTERM with a PATCH
    in flight (waiting on a row lock the test holds). It stops accepting, finishes the PATCH once the
    lock is released and exits; meanwhile the load goes on through the other process, and connections
    the front still tries on the stopped one are refused and moved. Then it starts again."""
    api = apis[index]
    email_id = uuid.uuid4()
    async with httpx.AsyncClient(base_url=api.base_url, headers=headers, timeout=60) as direct:
        created = await direct.post("/ctms", json=contact_body(email_id, "before restart"))
        assert created.status_code == 201, created.text
        front.drain(index)
        await until(
            lambda: front.open_connections(index) == 0,
            f"the front's connections to {api.name} ended",
            PHASE_DEADLINE_S,
        )
        # Held for less than CTMS_DB_STATEMENT_TIMEOUT_SECONDS (5 s): only until the process stops
        # accepting connections, a fraction of a second.
        async with row_locked(dsn, email_id):
            patching = asyncio.create_task(
                direct.patch(f"/ctms/{email_id}", json={"email": {"first_name": "in flight"}})
            )
            await until(
                lambda: a_session_waits_for_a_lock(dsn),
                "the PATCH waits on the row lock",
                PHASE_DEADLINE_S,
            )
            api.ask_to_stop()
            await api.wait_until_refusing()
            assert api.running, f"{api.name} ended with a request in flight:\n{api.output()}"
            assert not patching.done()
            # From here new connections to it are refused: the front may try it again.
            front.restore(index)
        patched = await asyncio.wait_for(patching, PHASE_DEADLINE_S)
    assert patched.status_code == 200, patched.text
    assert patched.json()["email"]["first_name"] == "in flight"
    load.latest[email_id] = "in flight"
    # uvicorn ends its graceful shutdown by raising the signal it caught again (exit status -SIGTERM);
    # the 200 above is what shows that the shutdown let the request finish.
    assert await api.wait() == -signal.SIGTERM, api.output()
    # While it is down the load goes on: round robin gives the stopped process every other new
    # connection, and the front moves each to the running one.
    refused_before = front.statistics.refused
    await load.completed_at_least(load.completed + 10)
    assert front.statistics.refused > refused_before
    await api.start_and_wait_until_serving()


async def token(http: httpx.AsyncClient, client_id: str, client_secret: str) -> str:
    response = await http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(client_id, client_secret)
    )
    assert response.status_code == 200, response.text
    access_token: str = response.json()["access_token"]
    return access_token


async def test_two_api_processes_and_two_workers_survive_restarts_kills_and_revocation(
    database_url: str, tmp_path: Path
) -> None:
    """The phases of the module docstring, in one deployment: the kill first, so the lease of the
    killed worker's batch runs out while the restarts and the revocation happen."""
    with (
        throwaway_database(database_url, origin="the test database's server") as url,
        running_fake_acoustic(latency_s=ACOUSTIC_LATENCY_S) as fake,
    ):
        upgrade(url)  # the migration job runs before any process starts
        await run_deployment(url, fake, tmp_path)


async def run_deployment(url: str, fake: FakeAcoustic, logs: Path) -> None:
    dsn = to_asyncpg_dsn(url)
    processes: list[CtmsProcess] = []
    engine = create_engine(
        url, pool_size=2, max_overflow=0, pool_timeout=10, pool_recycle=-1, echo=False
    )
    try:
        apis = [ApiProcess(f"api-{n}", {}, logs) for n in (1, 2)]
        async with RoundRobinFront([api.address for api in apis]) as front:
            environment = deployment_environment(url, fake, front.base_url)
            for api in apis:
                api.environment = environment
            workers = [CtmsProcess(f"worker-{n}", ["sync"], environment, logs) for n in (1, 2)]
            processes += [*apis, *workers]

            load_client = await run_ctms(
                environment, "clients", "create", "load", "--email", "load@example.com", "--json"
            )
            revocable = await run_ctms(
                environment, "clients", "create", "revocable", "-e", "rev@example.com", "--json"
            )
            await asyncio.gather(*(api.start_and_wait_until_serving() for api in apis))
            for worker in workers:
                await worker.start()

            async with httpx.AsyncClient(
                base_url=front.base_url,
                timeout=60,
                # One request per connection: each goes through the front's choice of process.
                limits=httpx.Limits(max_keepalive_connections=0),
            ) as http:
                credentials = credentials_of(load_client)
                bearer = {"Authorization": f"Bearer {await token(http, **_pair(credentials))}"}
                http.headers.update(bearer)
                load = MixedLoad(http)
                clients = [asyncio.create_task(load.run_client(n)) for n in range(CLIENTS)]
                try:
                    await load.completed_at_least(30)

                    # A worker killed mid-batch: both workers have an upload in flight at the fake.
                    await until(
                        lambda: fake.uploaders_in_flight() >= 2,
                        "both workers uploading at once",
                        PHASE_DEADLINE_S,
                    )
                    assert await workers[0].kill() == -signal.SIGKILL
                    await workers[0].start()  # its replacement

                    for index in range(len(apis)):
                        await rolling_restart(index, apis, load, front, bearer, dsn)

                    await revoke_and_check(environment, apis, revocable)
                    await load.completed_at_least(load.completed + 20)
                finally:
                    load.stop.set()
                    await asyncio.wait_for(asyncio.gather(*clients), PHASE_DEADLINE_S)

                assert load.failures == [], (load.failures[:20], front.statistics)
                assert front.statistics.unroutable == front.statistics.unanswered == 0, (
                    front.statistics
                )

                await check_everything_readable_and_uploaded(apis, bearer, load, fake, engine)
                assert [worker.running for worker in workers] == [True, True]
    finally:
        for process in processes:
            await process.stop_if_running()
        await engine.dispose()


def credentials_of(output: str) -> dict[str, str]:
    """The credentials `ctms clients create|rotate-secret --json` printed (its last line)."""
    credentials: dict[str, str] = json.loads(output.strip().splitlines()[-1])
    return credentials


def _pair(credentials: dict[str, str]) -> dict[str, str]:
    return {"client_id": credentials["client_id"], "client_secret": credentials["client_secret"]}


async def revoke_and_check(
    environment: dict[str, str], apis: list[ApiProcess], revocable: str
) -> None:
    """`ctms clients rotate-secret`: once CTMS_TOKEN_CACHE_SECONDS have passed, both processes refuse
    the tokens issued before, though both had verified (and cached) the token just before."""
    credentials = credentials_of(revocable)
    async with httpx.AsyncClient(base_url=apis[0].base_url, timeout=30) as http:
        old_token = await token(http, **_pair(credentials))
    old = {"Authorization": f"Bearer {old_token}"}
    for api in apis:
        async with httpx.AsyncClient(base_url=api.base_url, headers=old, timeout=30) as http:
            assert (
                await http.get("/ctms", params={"primary_email": "x@example.com"})
            ).status_code == 200
    await run_ctms(environment, "clients", "rotate-secret", credentials["client_id"], "--json")
    # The documented bound is the assertion: no poll, one request per process once it has passed.
    await asyncio.sleep(TOKEN_CACHE_SECONDS)
    for api in apis:
        async with httpx.AsyncClient(base_url=api.base_url, headers=old, timeout=30) as http:
            refused = await http.get("/ctms", params={"primary_email": "x@example.com"})
            assert refused.status_code == 401, (api.name, refused.text)


async def check_everything_readable_and_uploaded(
    apis: list[ApiProcess],
    bearer: dict[str, str],
    load: MixedLoad,
    fake: FakeAcoustic,
    engine: AsyncEngine,
) -> None:
    """Every contact reads back its latest write through each process, and once the queue is empty
    (the killed worker's batch after its lease) the fake holds every contact's latest version, and no
    contact was ever uploaded by two workers at once."""
    for api in apis:
        async with httpx.AsyncClient(base_url=api.base_url, headers=bearer, timeout=30) as http:
            for email_id, first_name in load.latest.items():
                response = await http.get(f"/ctms/{email_id}")
                assert response.status_code == 200, (api.name, response.text)
                assert response.json()["email"]["first_name"] == first_name, (api.name, email_id)

    async def queue_empty() -> bool:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT (SELECT count(*) FROM pending_acoustic)"
                        " + (SELECT count(*) FROM pending_sync)"
                    )
                )
            ).scalar()
            return rows == 0

    await until(queue_empty, "the sync queue drained", DRAIN_DEADLINE_S)
    uow_factory = PostgresUnitOfWorkFactory(engine)
    async with uow_factory() as uow:
        for email_id, first_name in load.latest.items():
            contact = await uow.contacts.get(email_id)
            assert contact is not None and contact.email.first_name == first_name
            expect_uploaded(fake, contact)
    assert set(fake.max_in_flight_per_recipient) >= {str(email_id) for email_id in load.latest}
    assert set(fake.max_in_flight_per_recipient.values()) == {1}
