"""The deployment-wide Acoustic limit and batched relational requests, on PostgreSQL and against the
fake Acoustic over HTTP (issue #18 items 1 and 2, docs/acoustic.md)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.acoustic import HttpxAcousticGateway
from ctms_adapters.postgres import PostgresUnitOfWorkFactory, create_engine
from ctms_adapters.postgres.request_slots import PostgresRequestSlots
from ctms_core.domain.acoustic import AcousticDeletion, default_configuration
from ctms_core.domain.sync import QueueCounts
from ctms_core.ports.destinations import Delivery
from ctms_core.ports.request_slots import RequestSlots
from ctms_core.services.acoustic_destination import AcousticDestination
from tests.builders import make_contact, make_newsletter, make_waitlist
from tests.support.acoustic_sync import (
    LIST_ID,
    NEWSLETTERS,
    PRODUCTS,
    WAITLISTS,
    expect_uploaded,
    fake_acoustic_settings,
    seed_acoustic_configuration,
)
from tests.support.fake_acoustic import FakeAcoustic, running_fake_acoustic

pytestmark = pytest.mark.integration

SYNC_COMMAND = [sys.executable, "-c", "from ctms_entrypoints.cli.main import main; main()", "sync"]


@pytest.fixture
def fake() -> Iterator[FakeAcoustic]:
    with running_fake_acoustic() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=50)) as client:
        yield client


def _engine(database_url: str) -> AsyncEngine:
    return create_engine(
        database_url, pool_size=5, max_overflow=5, pool_timeout=10, pool_recycle=-1, echo=False
    )


def _gateway(
    fake: FakeAcoustic, http: httpx.AsyncClient, slots: RequestSlots | None = None
) -> HttpxAcousticGateway:
    return HttpxAcousticGateway(
        http,
        base_url=fake.base_url,
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        refresh_token=fake.refresh_token,
        main_table_id=LIST_ID,
        newsletter_table_id=NEWSLETTERS,
        waitlist_table_id=WAITLISTS,
        product_table_id=PRODUCTS,
        timeout=5.0,
        slots=slots,
    )


async def _configuration() -> object:
    return default_configuration()


def _destination(gateway: HttpxAcousticGateway, concurrency: int = 10) -> AcousticDestination:
    return AcousticDestination(gateway, _configuration, concurrency=concurrency)  # type: ignore[arg-type]


def _upload(index: int) -> Delivery:
    contact = make_contact(
        email_id=uuid.UUID(int=index + 1),
        primary_email=f"batch{index}@example.com",
        newsletters=(make_newsletter("firefox-news"), make_newsletter("mozilla-foundation")),
        waitlists=(make_waitlist("vpn", fields={"geo": "fr"}),),
    )
    return Delivery(email_id=contact.email.email_id, contact=contact)


# --- the deployment-wide limit ------------------------------------------------------------------------


async def test_slots_are_shared_by_every_engine_and_never_held_beyond_the_limit(
    database_url: str, empty_database: AsyncEngine
) -> None:
    engines = [_engine(database_url) for _ in range(3)]
    try:
        processes = [PostgresRequestSlots(e, name="acoustic", limit=4) for e in engines]
        held = 0
        most = 0

        async def request(slots: PostgresRequestSlots) -> None:
            nonlocal held, most
            async with slots.acquire():
                held += 1
                most = max(most, held)
                await asyncio.sleep(0.01)
                held -= 1

        await asyncio.gather(*(request(processes[i % 3]) for i in range(60)))
        assert most == 4
        for slots in processes:
            await slots.close()
        async with empty_database.connect() as connection:
            leased = await connection.scalar(
                text("SELECT count(*) FROM request_slots WHERE leased_until IS NOT NULL")
            )
        assert leased == 0
    finally:
        for engine in engines:
            await engine.dispose()


async def test_the_slots_of_a_worker_that_died_come_back_when_their_lease_ends(
    database_url: str, empty_database: AsyncEngine
) -> None:
    dead_engine, live_engine = _engine(database_url), _engine(database_url)
    try:
        dead = PostgresRequestSlots(dead_engine, name="acoustic", limit=2)
        # A worker killed mid-request never gives its slots back.
        await dead._take("dead:1")
        await dead._take("dead:2")
        live = PostgresRequestSlots(live_engine, name="acoustic", limit=2)

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(live._take("live:1"), 0.3)

        async with empty_database.connect() as connection:  # the leases end
            await connection.execute(
                text("UPDATE request_slots SET leased_until = now() - interval '1 second'")
            )
            await connection.commit()
        async with live.acquire(), live.acquire():
            pass
        await live.close()
    finally:
        await dead_engine.dispose()
        await live_engine.dispose()


async def test_closed_slots_are_all_given_back_with_no_give_back_left_running(
    empty_database: AsyncEngine,
) -> None:
    """A slot a request is done with lingers for the next request, and goes back in the background:
    `close` (a worker on its way out) waits for that work, so none is left running, holding a
    connection, when the event loop ends."""
    slots = PostgresRequestSlots(empty_database, name="acoustic", limit=2)
    running_before = asyncio.all_tasks()  # other fixtures' tasks may share this loop
    async with slots.acquire(), slots.acquire():
        pass
    await asyncio.sleep(0)  # the background give-back has started
    await slots.close()
    assert asyncio.all_tasks() - running_before == set()
    async with empty_database.connect() as connection:
        held = await connection.scalar(
            text("SELECT count(*) FROM request_slots WHERE leased_until > now()")
        )
    assert held == 0


async def test_two_workers_sharing_slots_never_exceed_them(
    database_url: str, fake: FakeAcoustic, http: httpx.AsyncClient, empty_database: AsyncEngine
) -> None:
    fake.latency_s = 0.02
    slots = PostgresRequestSlots(empty_database, name="acoustic", limit=2)
    # Two gateways, like two workers: each refreshes its own token.
    destinations = [_destination(_gateway(fake, http, slots)) for _ in range(2)]

    reports = await asyncio.gather(
        destinations[0].deliver([_upload(i) for i in range(15)]),
        destinations[1].deliver([_upload(i) for i in range(15, 30)]),
    )

    await slots.close()
    assert [report.failed for report in reports] == [(), ()]
    assert fake.max_in_flight <= 2
    assert len(fake.token_requests) == 2


def _worker_environment(database_url: str, fake: FakeAcoustic, limit: int) -> dict[str, str]:
    return {
        **os.environ,
        "CTMS_DB_URL": database_url,
        "CTMS_SECRET_KEY": "sync-test",
        **fake_acoustic_settings(fake),
        "CTMS_USE_MOZLOG": "false",
        "CTMS_ACOUSTIC_MAX_CONCURRENT": str(limit),
        "CTMS_ACOUSTIC_CONCURRENCY": "5",
        "CTMS_ACOUSTIC_BATCH_LIMIT": "10",
        "CTMS_ACOUSTIC_LOOP_MIN_SECS": "0",
    }


async def test_three_worker_processes_never_exceed_the_deployment_limit(
    database_url: str, empty_database: AsyncEngine
) -> None:
    """Three `ctms sync` processes, five requests each in flight at most, one limit of 3: the fake
    never sees more than 3 requests at once, and every contact arrives."""
    factory = PostgresUnitOfWorkFactory(empty_database)
    await seed_acoustic_configuration(factory)
    # Enough for every process to get work: each claims two batches at once (CTMS_SYNC_BATCHES_IN_FLIGHT).
    deliveries = [_upload(i) for i in range(150)]
    now = datetime.now(UTC) - timedelta(minutes=1)
    async with factory() as uow:
        for delivery in deliveries:
            assert delivery.contact is not None
            await uow.contacts.add(delivery.contact)
            await uow.sync_queue.enqueue(delivery.email_id, now)
        await uow.commit()

    with running_fake_acoustic(latency_s=0.03) as fake:
        environment = _worker_environment(database_url, fake, limit=3)
        workers = [
            await asyncio.create_subprocess_exec(
                *SYNC_COMMAND,
                env=environment,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            for _ in range(3)
        ]
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                async with factory() as uow:
                    if await uow.sync_queue.counts("acoustic") == QueueCounts(
                        backlog=0, retry_backlog=0
                    ):
                        break
                await asyncio.sleep(0.2)
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                await asyncio.wait_for(worker.wait(), timeout=30)
        assert fake.uploaders_in_flight() == 0
        assert len(fake.token_requests) == 3  # three processes, one token each
        assert 1 < fake.max_in_flight <= 3
        for delivery in deliveries:
            assert delivery.contact is not None
            expect_uploaded(fake, delivery.contact)


# --- batched relational requests ----------------------------------------------------------------------


async def test_the_rows_of_many_contacts_travel_in_one_request_per_table(
    fake: FakeAcoustic, http: httpx.AsyncClient
) -> None:
    deliveries = [_upload(i) for i in range(40)]

    report = await _destination(_gateway(fake, http)).deliver(deliveries)

    assert report.failed == ()
    assert fake.requests_by_operation == {
        "AddRecipient": 40,
        "InsertUpdateRelationalTable": 2,  # 80 newsletter rows, 40 waitlist rows
    }
    assert report.requests == 42
    for delivery in deliveries:
        assert delivery.contact is not None
        expect_uploaded(fake, delivery.contact)


async def test_a_refused_row_fails_and_retries_only_its_contact(
    fake: FakeAcoustic, http: httpx.AsyncClient
) -> None:
    destination = _destination(_gateway(fake, http))
    deliveries = [_upload(i) for i in range(10)]
    refused = deliveries[3]
    fake.refuse_rows(str(refused.email_id), times=1, table_id=NEWSLETTERS)

    report = await destination.deliver(deliveries)

    assert [(f.email_id, f.kind) for f in report.failed] == [(refused.email_id, "rejected")]
    assert "Invalid Number in column" in report.failed[0].reason
    assert fake.rows_refused == 2  # its two newsletter rows; its waitlist row went through
    for delivery in deliveries:
        if delivery is not refused:
            assert delivery.contact is not None
            expect_uploaded(fake, delivery.contact)
    assert fake.rows(NEWSLETTERS, str(refused.email_id)) == []

    retry = await destination.deliver([refused])  # the worker's retry: the whole contact again

    assert retry.failed == ()
    assert refused.contact is not None
    expect_uploaded(fake, refused.contact)


async def test_erasures_delete_the_rows_of_many_contacts_together(
    fake: FakeAcoustic, http: httpx.AsyncClient
) -> None:
    destination = _destination(_gateway(fake, http))
    deliveries = [_upload(i) for i in range(12)]
    assert (await destination.deliver(deliveries)).failed == ()
    fake.requests_by_operation.clear()
    erasures = [
        Delivery(
            email_id=d.email_id,
            deletion=AcousticDeletion(
                email_id=d.email_id,
                primary_email=f"batch{i}@example.com",
                newsletter_names=("firefox-news", "mozilla-foundation"),
                waitlist_names=("vpn",),
            ),
        )
        for i, d in enumerate(deliveries)
    ]
    fake.refuse_rows(str(erasures[5].email_id), times=1)

    report = await destination.deliver(erasures)

    assert [f.email_id for f in report.failed] == [erasures[5].email_id]
    assert fake.requests_by_operation == {
        "DeleteRelationalTableData": 3,
        "RemoveRecipient": 11,
    }
    for erasure in erasures:
        kept = fake.recipient(LIST_ID, str(erasure.email_id))
        assert (kept is not None) == (erasure is erasures[5])
    assert (await destination.deliver([erasures[5]])).failed == ()
    assert fake.recipient(LIST_ID, str(erasures[5].email_id)) is None
    assert fake.rows(NEWSLETTERS) == [] and fake.rows(WAITLISTS) == []
