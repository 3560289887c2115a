"""SyncService with the in-memory storage and the recording gateway; the sync policy (R§4.2, SPEC §7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ctms_adapters.memory import InMemoryStore, InMemoryUnitOfWork, ManualClock
from ctms_adapters.memory.acoustic import RecordingAcousticGateway
from ctms_core.domain.acoustic import default_configuration, map_contact
from ctms_core.domain.contact import Contact
from ctms_core.domain.sync import QueueCounts, next_attempt_at, primary_email_domain, retry_delay
from ctms_core.ports.acoustic import AcousticCall, AcousticFault, AcousticUnavailable
from ctms_core.services.sync import SyncPolicy, SyncService
from tests.builders import make_contact, make_newsletter

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)


class Observer:
    def __init__(self) -> None:
        self.calls: list[AcousticCall] = []
        self.states: list[str] = []

    def acoustic_call(self, call: AcousticCall) -> None:
        self.calls.append(call)

    def contact_done(self, state: str) -> None:
        self.states.append(state)


class World:
    def __init__(self, **policy: object) -> None:
        self.store = InMemoryStore()
        self.clock = ManualClock(NOW)
        self.gateway = RecordingAcousticGateway()
        self.observer = Observer()
        self.service = SyncService(
            self.uow,
            self.gateway,
            self.clock,
            SyncPolicy(**{"backoff_base_s": 10.0, **policy}),  # type: ignore[arg-type]
            observer=self.observer,
            uniform=lambda low, high: high,
        )

    def uow(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self.store)

    async def add(self, contact: Contact) -> Contact:
        async with self.uow() as uow:
            await uow.contacts.add(contact)
            await uow.sync_queue.enqueue(contact.email_id, self.clock.now())
            await uow.commit()
        return contact

    async def counts(self) -> QueueCounts:
        return await self.service.counts()


def test_retry_delay_grows_exponentially_with_jitter_and_a_cap() -> None:
    highest = lambda low, high: high  # noqa: E731
    lowest = lambda low, high: low  # noqa: E731
    assert retry_delay(1, base=5, uniform=highest) == timedelta(seconds=5)
    assert retry_delay(3, base=5, uniform=highest) == timedelta(seconds=20)
    assert retry_delay(3, base=5, uniform=lowest) == timedelta(seconds=10)
    assert retry_delay(30, base=5, cap=60, uniform=highest) == timedelta(seconds=60)
    assert next_attempt_at(1, NOW, base=5, uniform=highest) == NOW + timedelta(seconds=5)


def test_primary_email_domain_is_unknown_without_an_address() -> None:
    assert primary_email_domain("a@example.com") == "example.com"
    assert primary_email_domain(None) == "unknown"


async def test_a_pass_uploads_the_mapped_contact_and_empties_the_queue() -> None:
    world = World()
    contact = await world.add(make_contact(newsletters=(make_newsletter("firefox-news"),)))
    stats = await world.service.run_pass()
    assert world.gateway.uploads == [map_contact(contact, [], default_configuration())]
    assert (stats.count_total, stats.counts) == (1, {"synced": 1})
    assert await world.counts() == QueueCounts(backlog=0, retry_backlog=0)
    assert [c.table for c in world.observer.calls] == ["main", "newsletter"]
    assert world.observer.states == ["synced"]


async def test_an_acoustic_error_is_retried_with_backoff_and_never_raised() -> None:
    world = World()
    await world.add(make_contact())
    world.gateway.fail_next(AcousticFault("Email Address Is Invalid", table="main"))
    stats = await world.service.run_pass()
    assert stats.counts == {"retry": 1}
    assert await world.counts() == QueueCounts(backlog=1, retry_backlog=1)
    assert (await world.service.run_pass()).count_total == 0  # backing off
    world.clock.advance(timedelta(seconds=10))
    assert (await world.service.run_pass()).counts == {"synced": 1}


@pytest.mark.parametrize(
    "error", [AcousticUnavailable("timeout"), RuntimeError("unexpected"), ValueError("bad xml")]
)
async def test_any_per_contact_exception_becomes_a_retry(error: Exception) -> None:
    world = World()
    await world.add(make_contact())
    world.gateway.fail_next(error)
    assert (await world.service.run_pass()).counts == {"retry": 1}


async def test_the_retry_limit_stops_attempts() -> None:
    world = World(retry_limit=2)
    await world.add(make_contact())
    world.gateway.fail_next(times=5)
    for _ in range(4):
        await world.service.run_pass()
        world.clock.advance(timedelta(hours=2))
    assert len(world.gateway.uploads) == 0
    assert await world.counts() == QueueCounts(backlog=0, retry_backlog=1)


async def test_an_edit_during_the_upload_is_synced_again() -> None:
    world = World()
    contact = await world.add(make_contact(first_name="Before"))

    async def edit() -> None:
        world.gateway.on_call = None
        async with world.uow() as uow:
            await uow.sync_queue.enqueue(contact.email_id, world.clock.now())
            await uow.commit()

    world.gateway.on_call = edit
    assert (await world.service.run_pass()).counts == {"synced": 1}
    assert await world.counts() == QueueCounts(backlog=1, retry_backlog=0)
    await world.service.run_pass()
    assert len(world.gateway.uploads) == 2
    assert await world.counts() == QueueCounts(backlog=0, retry_backlog=0)


async def test_uploads_are_bounded_by_the_concurrency() -> None:
    world = World(concurrency=3, batch_limit=10)
    world.gateway.delay = 0.01
    for _ in range(10):
        await world.add(make_contact())
    assert (await world.service.run_pass()).counts == {"synced": 10}
    assert world.gateway.max_in_flight == 3


async def test_integration_off_consumes_rows_without_calling_acoustic() -> None:
    world = World(integration_enabled=False)
    await world.add(make_contact())
    assert (await world.service.run_pass()).counts == {"skipped": 1}
    assert world.gateway.uploads == []
    assert await world.counts() == QueueCounts(backlog=0, retry_backlog=0)


async def test_sync_off_does_nothing() -> None:
    world = World(sync_enabled=False)
    await world.add(make_contact())
    assert (await world.service.run_pass()).count_total == 0
    assert await world.counts() == QueueCounts(backlog=1, retry_backlog=0)


async def test_an_erasure_is_sent_to_acoustic() -> None:
    from ctms_core.domain.acoustic import deletion_of

    world = World()
    contact = make_contact(newsletters=(make_newsletter("a"),))
    async with world.uow() as uow:
        await uow.sync_queue.enqueue_erasure(deletion_of(contact), NOW)
        await uow.commit()
    assert (await world.service.run_pass()).counts == {"erased": 1}
    assert world.gateway.erasures == [deletion_of(contact)]


async def test_the_pass_statistics_are_the_cycle_log_context() -> None:
    world = World(batch_limit=5)
    await world.add(make_contact())
    stats = await world.service.run_pass()
    context = stats.log_context()
    assert context["batch_limit"] == 5
    assert context["sync_backlog"] == 1
    assert context["count_synced"] == 1
    assert stats.age_s == 0.0
