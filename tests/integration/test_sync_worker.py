"""The sync worker on PostgreSQL against the fake Acoustic server (issue #5 "Done when", docs/contract.md §9)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.acoustic import HttpxAcousticGateway
from ctms_adapters.memory import ManualClock, SequentialIdGenerator
from ctms_adapters.postgres import PostgresUnitOfWorkFactory
from ctms_core.domain.contact import Contact
from ctms_core.domain.erasure import DEFAULT_ERASURE_ADDRESS_RETENTION
from ctms_core.domain.inputs import ContactPatch, parse_contact_input
from ctms_core.domain.sync import PendingSync, QueueCounts
from ctms_core.services.acoustic_admin import AcousticAdminService
from ctms_core.services.acoustic_destination import AcousticDestination
from ctms_core.services.contacts import ContactService
from ctms_core.services.sync import SyncPolicy, SyncService
from tests.builders import contact_from_body
from tests.samples import sample
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

START = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeAcoustic]:
    with running_fake_acoustic(hang_seconds=3.0) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=50)) as client:
        yield client


@pytest.fixture
async def uow_factory(empty_database: AsyncEngine) -> PostgresUnitOfWorkFactory:
    factory = PostgresUnitOfWorkFactory(empty_database)
    await seed_acoustic_configuration(factory)
    return factory


def gateway_for(
    fake: FakeAcoustic, http: httpx.AsyncClient, *, base_url: str | None = None
) -> HttpxAcousticGateway:
    return HttpxAcousticGateway(
        http,
        base_url=base_url or fake.base_url,
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        refresh_token=fake.refresh_token,
        main_table_id=LIST_ID,
        newsletter_table_id=NEWSLETTERS,
        waitlist_table_id=WAITLISTS,
        product_table_id=PRODUCTS,
        timeout=1.0,
    )


class Deployment:
    """Contact writes through ContactService and sync passes through SyncService, one clock."""

    def __init__(
        self,
        uow_factory: PostgresUnitOfWorkFactory,
        gateway: HttpxAcousticGateway,
        **policy: object,
    ) -> None:
        self.clock = ManualClock(START)
        self.uow_factory = uow_factory
        # Acoustic sync is on in these deployments: erasures are queued for the worker.
        self.contacts = ContactService(
            uow_factory,
            self.clock,
            SequentialIdGenerator(),
            erasure_retention=DEFAULT_ERASURE_ADDRESS_RETENTION,
        )
        self.sync = self.worker(gateway, **policy)

    def worker(
        self, gateway: HttpxAcousticGateway, *, concurrency: int = 5, **policy: object
    ) -> SyncService:
        # `give_up_after` 0: the retry limit alone gives a contact up, as in v3.3.
        settings: dict[str, object] = {
            "retry_limit": 3,
            "give_up_after": timedelta(0),
            "backoff_base_s": 10.0,
            **policy,
        }
        configuration = AcousticAdminService(self.uow_factory, self.clock).configuration
        return SyncService(
            self.uow_factory,
            AcousticDestination(gateway, configuration, concurrency=concurrency),
            self.clock,
            SyncPolicy(**settings),  # type: ignore[arg-type]
            uniform=lambda low, high: high,
        )

    async def create(self, name: str = "maximal") -> Contact:
        body = contact_from_body(sample(name), START)
        async with self.uow_factory() as uow:
            await uow.contacts.add(body)
            await uow.sync_queue.enqueue(body.email_id, self.clock.now())
            await uow.commit()
        return body

    async def counts(self) -> QueueCounts:
        return await self.sync.counts()

    async def failed(self) -> list[PendingSync]:
        async with self.uow_factory() as uow:
            return await uow.sync_queue.failed("acoustic")

    async def stored(self, email_id: uuid.UUID) -> Contact:
        return await self.contacts.get(email_id)


async def test_created_patched_replaced_and_deleted_contacts_reach_acoustic(
    fake: FakeAcoustic, http: httpx.AsyncClient, uow_factory: PostgresUnitOfWorkFactory
) -> None:
    deployment = Deployment(uow_factory, gateway_for(fake, http))
    contact = await deployment.create()
    assert (await deployment.sync.run_pass()).counts == {"synced": 1}
    expect_uploaded(fake, contact)

    deployment.clock.advance(timedelta(seconds=1))
    patched = await deployment.contacts.patch(
        contact.email_id, ContactPatch(email={"first_name": "Patched"})
    )
    await deployment.sync.run_pass()
    expect_uploaded(fake, patched.contact)
    assert fake.recipient(LIST_ID, str(contact.email_id))["first_name"] == "Patched"  # type: ignore[index]

    deployment.clock.advance(timedelta(seconds=1))
    body = sample("maximal")
    body["email"]["first_name"] = "Replaced"
    replaced = await deployment.contacts.replace(
        contact.email_id, parse_contact_input(body, require_email_id=True)
    )
    await deployment.sync.run_pass()
    expect_uploaded(fake, replaced.contact)

    deployment.clock.advance(timedelta(seconds=1))
    await deployment.contacts.delete(contact.email.primary_email)
    assert (await deployment.sync.run_pass()).counts == {"erased": 1}
    assert fake.recipient(LIST_ID, str(contact.email_id)) is None
    assert fake.rows(NEWSLETTERS, str(contact.email_id)) == []
    assert [c.operation for c in fake.calls][-1] == "RemoveRecipient"
    assert await deployment.counts() == QueueCounts(backlog=0, retry_backlog=0)


def _refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "fault", ["fault", "failures", "html500", "hang", "disconnect", "oauth", "refused"]
)
async def test_upstream_trouble_is_retried_and_the_worker_goes_on(
    fake: FakeAcoustic,
    http: httpx.AsyncClient,
    uow_factory: PostgresUnitOfWorkFactory,
    fault: str,
) -> None:
    base_url = f"http://127.0.0.1:{_refused_port()}" if fault == "refused" else None
    deployment = Deployment(uow_factory, gateway_for(fake, http, base_url=base_url))
    contact = await deployment.create()
    if fault == "oauth":
        fake.fail_token()
    elif fault != "refused":
        fake.fail_next(fault, operation="AddRecipient")  # type: ignore[arg-type]
    assert (await deployment.sync.run_pass()).counts == {"retry": 1}
    assert await deployment.counts() == QueueCounts(backlog=1, retry_backlog=1)
    if fault == "refused":
        deployment.sync = deployment.worker(gateway_for(fake, http))
    deployment.clock.advance(timedelta(seconds=11))
    assert (await deployment.sync.run_pass()).counts == {"synced": 1}
    expect_uploaded(fake, contact)


async def test_the_retry_limit_is_honoured(
    fake: FakeAcoustic, http: httpx.AsyncClient, uow_factory: PostgresUnitOfWorkFactory
) -> None:
    deployment = Deployment(uow_factory, gateway_for(fake, http), retry_limit=2)
    await deployment.create()
    fake.fail_next("fault", times=10, operation="AddRecipient")
    attempts = 0
    for _ in range(4):
        attempts += (await deployment.sync.run_pass()).count_total
        deployment.clock.advance(timedelta(hours=1))
    assert attempts == 2
    assert fake.recipient(LIST_ID, str((await deployment.failed())[0].email_id)) is None
    assert await deployment.counts() == QueueCounts(backlog=0, retry_backlog=1)


async def test_a_fault_quoting_the_address_is_logged_and_stored_without_it(
    fake: FakeAcoustic,
    http: httpx.AsyncClient,
    uow_factory: PostgresUnitOfWorkFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Acoustic's fault strings may quote the recipient: the worker's log lines and the stored
    `last_error` (shown by `ctms acoustic failed`) carry the fault with the address redacted."""
    deployment = Deployment(uow_factory, gateway_for(fake, http), retry_limit=1)
    contact = await deployment.create()
    address = contact.email.primary_email
    fake.fail_next(
        "fault", times=10, operation="AddRecipient", fault_string=f"Recipient {address} rejected"
    )
    with caplog.at_level(logging.DEBUG):
        assert (await deployment.sync.run_pass()).counts == {"retry": 1}
    (failed,) = await deployment.failed()
    assert "Recipient [OMITTED] rejected" in failed.last_error
    assert address not in failed.last_error
    logged = [repr(record.__dict__) + record.getMessage() for record in caplog.records]
    assert any("Recipient [OMITTED] rejected" in line for line in logged), logged
    assert not [line for line in logged if address in line]


async def test_an_edit_during_the_upload_is_not_lost(
    http: httpx.AsyncClient, uow_factory: PostgresUnitOfWorkFactory
) -> None:
    with running_fake_acoustic(latency_s=0.3) as fake:
        deployment = Deployment(uow_factory, gateway_for(fake, http))
        contact = await deployment.create()
        running = asyncio.create_task(deployment.sync.run_pass())
        await asyncio.sleep(0.1)  # the upload is in flight
        edited = await deployment.contacts.patch(
            contact.email_id, ContactPatch(email={"first_name": "DuringUpload"})
        )
        await running
        assert await deployment.counts() == QueueCounts(backlog=1, retry_backlog=0)
        await deployment.sync.run_pass()
        expect_uploaded(fake, edited.contact)
        assert await deployment.counts() == QueueCounts(backlog=0, retry_backlog=0)


async def test_two_workers_upload_every_contact_exactly_once(
    http: httpx.AsyncClient, uow_factory: PostgresUnitOfWorkFactory
) -> None:
    with running_fake_acoustic(latency_s=0.02) as fake:
        deployment = Deployment(uow_factory, gateway_for(fake, http), batch_limit=4)
        body = sample("minimal")
        contacts = []
        async with uow_factory() as uow:
            for index in range(24):
                contact = contact_from_body(
                    {
                        **body,
                        "email": {
                            **body["email"],
                            "email_id": str(uuid.uuid4()),
                            "primary_email": f"worker{index}@example.com",
                            "basket_token": str(uuid.uuid4()),
                        },
                    },
                    START,
                )
                contacts.append(contact)
                await uow.contacts.add(contact)
                await uow.sync_queue.enqueue(contact.email_id, START)
            await uow.commit()
        second = deployment.worker(gateway_for(fake, http), batch_limit=4)

        async def drain(worker: SyncService) -> None:
            while (await worker.run_pass()).count_total:
                pass

        await asyncio.gather(drain(deployment.sync), drain(second))
        sent = [call.sync_fields.get("email_id") for call in fake.calls_of("AddRecipient")]
        assert sorted(sent) == sorted(str(c.email_id) for c in contacts)
        assert set(fake.max_in_flight_per_recipient.values()) == {1}


def worker_environment(database_url: str, fake: FakeAcoustic) -> dict[str, str]:
    """The environment of a `ctms sync` subprocess on the test database and `fake`."""
    return {
        **os.environ,
        "CTMS_DB_URL": database_url,
        "CTMS_SECRET_KEY": "sync-test",
        **fake_acoustic_settings(fake),
        "CTMS_USE_MOZLOG": "false",
    }


def _wait_for_an_upload(fake: FakeAcoustic, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not fake.max_in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    return fake.max_in_flight >= 1


SYNC_COMMAND = [sys.executable, "-c", "from ctms_entrypoints.cli.main import main; main()", "sync"]


async def test_a_worker_killed_mid_batch_leaves_its_contacts_to_the_next_worker(
    database_url: str,
    fake: FakeAcoustic,
    http: httpx.AsyncClient,
    uow_factory: PostgresUnitOfWorkFactory,
) -> None:
    """SIGKILL while an upload is in flight: the claimed row stays queued (nothing is lost) and, once
    its lease has expired, another worker sends the contact."""
    deployment = Deployment(uow_factory, gateway_for(fake, http))
    contact = await deployment.create()
    with running_fake_acoustic(latency_s=2.0) as slow:
        process = await asyncio.create_subprocess_exec(
            *SYNC_COMMAND,
            env=worker_environment(database_url, slow),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            uploading = await asyncio.to_thread(_wait_for_an_upload, slow, 20.0)
            assert uploading, "the worker never called Acoustic"
            process.kill()
            await asyncio.wait_for(process.wait(), timeout=10)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == -signal.SIGKILL

    # Before the lease expires nobody else takes the contact; after it, the next worker sends it.
    deployment.clock.set(datetime.now(UTC))
    assert (await deployment.sync.run_pass()).counts == {}
    deployment.clock.set(datetime.now(UTC) + timedelta(hours=1))
    assert (await deployment.sync.run_pass()).counts == {"synced": 1}
    expect_uploaded(fake, contact)
    assert await deployment.counts() == QueueCounts(backlog=0, retry_backlog=0)


def test_sigterm_finishes_the_contacts_in_flight(
    database_url: str, uow_factory: PostgresUnitOfWorkFactory
) -> None:
    """`ctms sync` as a subprocess: SIGTERM while an upload is in flight; the upload completes, the
    row is deleted, the process exits 0."""
    contact = contact_from_body(sample("minimal"), START)

    errors: list[BaseException] = []

    def run_seed() -> None:
        try:
            asyncio.run(_seed_with_new_engine(database_url, contact))
        except BaseException as error:
            errors.append(error)

    seeding = threading.Thread(target=run_seed)
    seeding.start()
    seeding.join()
    assert not errors, errors

    with running_fake_acoustic(latency_s=1.5) as fake:
        env = worker_environment(database_url, fake)
        process = subprocess.Popen(
            SYNC_COMMAND,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            assert _wait_for_an_upload(fake, 20.0), "the worker never called Acoustic"
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, output.decode()
        assert fake.recipient(LIST_ID, str(contact.email_id)) is not None

    async def remaining() -> QueueCounts:
        from ctms_adapters.postgres import create_engine

        engine = create_engine(
            database_url, pool_size=1, max_overflow=0, pool_timeout=5, pool_recycle=-1, echo=False
        )
        try:
            async with PostgresUnitOfWorkFactory(engine)() as uow:
                return await uow.sync_queue.counts("acoustic")
        finally:
            await engine.dispose()

    result: list[QueueCounts] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(remaining())))
    thread.start()
    thread.join()
    assert result == [QueueCounts(backlog=0, retry_backlog=0)]


async def _seed_with_new_engine(database_url: str, contact: Contact) -> None:
    from ctms_adapters.postgres import create_engine

    engine = create_engine(
        database_url, pool_size=1, max_overflow=0, pool_timeout=5, pool_recycle=-1, echo=False
    )
    try:
        async with PostgresUnitOfWorkFactory(engine)() as uow:
            await uow.contacts.add(contact)
            await uow.sync_queue.enqueue(contact.email_id, START)
            await uow.commit()
    finally:
        await engine.dispose()
