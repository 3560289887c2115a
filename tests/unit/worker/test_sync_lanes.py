"""`ctms sync` keeps the limit full: with `batches_in_flight` lanes a destination's next batch is claimed
while the previous one is still being delivered, and a stop lets the batches in flight finish."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from ctms_adapters.memory import InMemoryStore, InMemoryUnitOfWork, ManualClock
from ctms_core.ports.destinations import Delivery, DeliveryReport
from ctms_core.services.sync import SyncPolicy, SyncService
from ctms_entrypoints.worker.loop import SyncWorker
from ctms_entrypoints.worker.metrics import BackgroundMetrics
from tests.builders import make_contact

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)


class GatedDestination:
    """Holds every `deliver` until `release` is set; records how many were in flight at once."""

    name = "acoustic"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.two_in_flight = asyncio.Event()
        self.in_flight = 0
        self.max_in_flight = 0
        self.delivered: list[Delivery] = []

    async def deliver(self, deliveries: Sequence[Delivery]) -> DeliveryReport:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.in_flight == 2:
            self.two_in_flight.set()
        await self.release.wait()
        self.delivered.extend(deliveries)
        self.in_flight -= 1
        return DeliveryReport()


async def test_two_batches_are_in_flight_at_once_and_a_stop_lets_them_finish() -> None:
    store = InMemoryStore()
    contacts = [make_contact() for _ in range(4)]
    async with InMemoryUnitOfWork(store) as uow:
        for contact in contacts:
            await uow.contacts.add(contact)
            await uow.sync_queue.enqueue(contact.email_id, NOW)
        await uow.commit()
    destination = GatedDestination()
    service = SyncService(
        lambda: InMemoryUnitOfWork(store),
        destination,
        ManualClock(NOW),
        SyncPolicy(batch_limit=2),
    )
    worker = SyncWorker([service], BackgroundMetrics(), loop_min_secs=0.01, batches_in_flight=2)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    async with asyncio.timeout(5):
        await destination.two_in_flight.wait()
    stop.set()
    destination.release.set()
    async with asyncio.timeout(5):
        await running
    assert destination.max_in_flight == 2
    assert {d.email_id for d in destination.delivered} == {c.email_id for c in contacts}
    assert (await service.counts()).backlog == 0
