"""`BrazeResyncService`: contacts sent to Braze again, in full, and to no other destination."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from ctms_adapters.memory import InMemoryBrazeDigestStore, ManualClock
from ctms_core.ports.repositories import UnitOfWork
from ctms_core.services.braze_resync import BrazeResyncService
from tests.builders import make_contact


async def test_a_resynced_contact_loses_its_digests_and_is_due_for_braze_alone(
    uow_factory: Callable[[], UnitOfWork], clock: ManualClock
) -> None:
    resynced, other = make_contact(primary_email="Resync.Me@example.com"), make_contact()
    async with uow_factory() as uow:
        for contact in (resynced, other):
            await uow.contacts.add(contact)
        await uow.commit()
    digests = InMemoryBrazeDigestStore()
    await digests.save({c.email_id: {"first_name": "d1"} for c in (resynced, other)})
    service = BrazeResyncService(uow_factory, digests, clock)

    found, unknown = await service.contacts_of(["resync.me@EXAMPLE.com", " ", "nobody@example.com"])
    assert (found, unknown) == ([resynced.email_id], ["nobody@example.com"])
    assert await service.resync(found) == 1

    assert set(await digests.load([resynced.email_id, other.email_id])) == {other.email_id}
    async with uow_factory() as uow:
        now = clock.now()
        lease = now + timedelta(minutes=1)
        braze = await uow.sync_queue.claim("braze", limit=10, now=now, lease_until=lease)
        acoustic = await uow.sync_queue.claim("acoustic", limit=10, now=now, lease_until=lease)
    assert [item.email_id for item in braze] == [resynced.email_id]
    assert acoustic == []
