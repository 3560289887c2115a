"""One queue, any number of destinations, and retries that outlast an outage (docs/acoustic.md,
docs/adr/0009-one-sync-queue.md): the policy on the in-memory queue with the controllable clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from ctms_adapters.memory import InMemoryStore, InMemoryUnitOfWork, ManualClock
from ctms_core.domain.acoustic import deletion_of
from ctms_core.domain.contact import Contact
from ctms_core.domain.sync import PendingSync, gives_up
from ctms_core.services.sync import SyncPolicy, SyncService
from tests.builders import make_contact
from tests.support.recording_destination import RecordingDestination

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)


class World:
    """Services for each destination over one in-memory store and one clock; no jitter."""

    def __init__(self, *names: str, **policy: object) -> None:
        self.store = InMemoryStore()
        self.clock = ManualClock(NOW)
        self.destinations = {name: RecordingDestination(name) for name in names}
        settings: dict[str, object] = {"backoff_base_s": 10.0, "destinations": names, **policy}
        self.services = {
            name: SyncService(
                self.uow,
                destination,
                self.clock,
                SyncPolicy(**settings),  # type: ignore[arg-type]
                uniform=lambda low, high: high,
            )
            for name, destination in self.destinations.items()
        }

    def uow(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self.store)

    async def add(self, contact: Contact) -> Contact:
        async with self.uow() as uow:
            await uow.contacts.add(contact)
            await uow.sync_queue.enqueue(contact.email_id, self.clock.now())
            await uow.commit()
        return contact

    async def erase(self, contact: Contact) -> None:
        async with self.uow() as uow:
            await uow.sync_queue.enqueue_erasure(deletion_of(contact), self.clock.now())
            await uow.commit()

    async def failed(self, name: str) -> list[PendingSync]:
        async with self.uow() as uow:
            return await uow.sync_queue.failed(name)


async def test_a_contact_is_given_up_only_after_the_time_of_continuous_failure() -> None:
    """Far more failures than the retry limit within the hour: still retried; past the hour of
    failing without a break, given up (and shown by `failed`), and no longer claimed."""
    world = World("acoustic", retry_limit=2, give_up_after=timedelta(hours=1), backoff_cap_s=60)
    contact = await world.add(make_contact())
    world.destinations["acoustic"].refused.add(contact.email_id)
    service = world.services["acoustic"]
    attempts = 0
    while world.clock.now() < NOW + timedelta(minutes=59):
        attempts += (await service.run_pass()).count_total
        assert await world.failed("acoustic") == []
        world.clock.advance(timedelta(minutes=1))
    assert attempts > 2 * service.policy.retry_limit
    assert (await service.counts()).backlog == 1

    world.clock.advance(timedelta(minutes=2))
    assert (await service.run_pass()).counts == {"retry": 1}
    (given_up,) = await world.failed("acoustic")
    assert given_up.email_id == contact.email_id
    assert given_up.last_error == "refused"
    assert (await service.counts()).backlog == 0
    world.clock.advance(timedelta(hours=2))
    assert (await service.run_pass()).count_total == 0


async def test_an_edit_restarts_the_give_up_clock() -> None:
    world = World("acoustic", retry_limit=1, give_up_after=timedelta(hours=1), backoff_cap_s=60)
    contact = await world.add(make_contact())
    world.destinations["acoustic"].refused.add(contact.email_id)
    service = world.services["acoustic"]
    await service.run_pass()
    world.clock.advance(timedelta(minutes=50))
    async with world.uow() as uow:  # edited: enqueued again
        await uow.sync_queue.enqueue(contact.email_id, world.clock.now())
        await uow.commit()
    world.clock.advance(timedelta(minutes=20))
    await service.run_pass()
    assert await world.failed("acoustic") == []
    world.clock.advance(timedelta(minutes=61))
    await service.run_pass()
    assert [item.email_id for item in await world.failed("acoustic")] == [contact.email_id]


async def test_an_erasure_is_never_given_up_and_its_wait_is_shown() -> None:
    world = World(
        "acoustic",
        retry_limit=1,
        give_up_after=timedelta(minutes=1),
        backoff_cap_s=600,
        erasure_retention=timedelta(days=30),
    )
    contact = make_contact()
    await world.erase(contact)
    destination = world.destinations["acoustic"]
    destination.refused.add(contact.email_id)
    service = world.services["acoustic"]
    for _ in range(2 * 24 * 6):  # two days, a pass every ten minutes
        await service.run_pass()
        world.clock.advance(timedelta(minutes=10))
    assert await world.failed("acoustic") == []
    counts = await service.counts()
    assert (counts.backlog, counts.oldest_erasure_at) == (1, NOW)
    stats = await service.run_pass()
    assert stats.oldest_erasure_age_s == (world.clock.now() - NOW).total_seconds()

    destination.refused.clear()
    world.clock.advance(timedelta(minutes=10))
    assert (await service.run_pass()).counts == {"erased": 1}
    assert destination.erased_ids() == {contact.email_id}
    assert (await service.counts()).oldest_erasure_at is None


async def test_each_destination_drains_on_its_own_while_the_other_is_down() -> None:
    world = World("acoustic", "braze", batch_limit=5)
    contacts = [await world.add(make_contact()) for _ in range(8)]
    erased = make_contact()
    await world.erase(erased)
    acoustic, braze = world.destinations["acoustic"], world.destinations["braze"]
    braze.down = True
    for _ in range(4):
        await world.services["acoustic"].run_pass()
        await world.services["braze"].run_pass()
        world.clock.advance(timedelta(seconds=5))
    assert acoustic.synced_ids() == {c.email_id for c in contacts}
    assert acoustic.erased_ids() == {erased.email_id}
    assert (await world.services["acoustic"].counts()).backlog == 0
    assert braze.delivered == []
    braze_counts = await world.services["braze"].counts()
    assert (braze_counts.backlog, braze_counts.oldest_erasure_at) == (9, NOW)
    assert await world.failed("braze") == []

    braze.down = False
    world.clock.advance(timedelta(minutes=10))
    for _ in range(3):
        await world.services["braze"].run_pass()
    assert braze.synced_ids() == {c.email_id for c in contacts}
    assert braze.erased_ids() == {erased.email_id}
    assert (await world.services["braze"].counts()).backlog == 0
    assert len(acoustic.delivered) == 9  # nothing sent twice to the destination that was up


async def test_contacts_failed_in_one_pass_are_retried_together_in_one_delivery() -> None:
    """The jitter is drawn once per attempt number and pass, not per contact: the contacts a
    destination refused together come due at the same time and go back in one delivery."""
    store, clock = InMemoryStore(), ManualClock(NOW)
    destination = RecordingDestination("braze")
    draws = itertools.count()
    service = SyncService(
        lambda: InMemoryUnitOfWork(store),
        destination,
        clock,
        SyncPolicy(backoff_base_s=10.0, destinations=("braze",)),
        uniform=lambda low, high: (
            low + (high - low) * (next(draws) % 10) / 10
        ),  # a new time each draw
    )
    delivered_first, *refused = [make_contact() for _ in range(4)]
    async with InMemoryUnitOfWork(store) as uow:
        for contact in (delivered_first, *refused):
            await uow.contacts.add(contact)
            await uow.sync_queue.enqueue(contact.email_id, NOW)
        await uow.commit()
    destination.refused.update(contact.email_id for contact in refused)
    assert (await service.run_pass()).counts == {"synced": 1, "retry": 3}
    destination.refused.clear()

    calls_before = destination.calls
    while not (stats := await service.run_pass()).count_total:
        clock.advance(timedelta(seconds=1))
    assert stats.counts == {"synced": 3}
    assert destination.calls == calls_before + 1
    assert destination.synced_ids() == {contact.email_id for contact in (delivered_first, *refused)}


def test_gives_up_needs_both_the_retries_and_the_time() -> None:
    item = PendingSync(email_id=make_contact().email_id, version=1, retry=5, failing_since=NOW)
    later = NOW + timedelta(hours=24)
    assert gives_up(item, later, retry_limit=6, give_up_after=timedelta(hours=24))
    assert not gives_up(item, later, retry_limit=7, give_up_after=timedelta(hours=24))
    assert not gives_up(item, later, retry_limit=6, give_up_after=timedelta(hours=25))
    erasure = PendingSync(
        email_id=item.email_id, version=1, retry=50, operation="erase", failing_since=NOW
    )
    assert not gives_up(erasure, later, retry_limit=1, give_up_after=timedelta(0))
