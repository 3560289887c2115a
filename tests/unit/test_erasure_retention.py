"""An erased contact's address stays in the database only while its erasure awaits delivery to an enabled
destination, and never longer than the retention bound (docs/permissions.md, "Erasure")."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from ctms_adapters.memory import (
    InMemoryStore,
    InMemoryUnitOfWork,
    ManualClock,
    SequentialIdGenerator,
)
from ctms_adapters.memory.acoustic import RecordingAcousticGateway
from ctms_core.domain.acoustic import AcousticConfiguration, default_configuration
from ctms_core.domain.erasure import ErasureRecord
from ctms_core.domain.sync import PendingSync
from ctms_core.ports.acoustic import AcousticUnavailable
from ctms_core.services.acoustic_destination import AcousticDestination
from ctms_core.services.contacts import ContactService
from ctms_core.services.sync import SyncPolicy, SyncService
from tests.builders import make_contact
from tests.doubles import RecordingContactObserver
from tests.support.sync_queue import claim_queued

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)
RETENTION = timedelta(days=3)


async def _default_configuration() -> AcousticConfiguration:
    return default_configuration()


class Deployment:
    """Contact erasures and sync passes on one in-memory store and one clock; `retention` None is a
    deployment with Acoustic sync off."""

    def __init__(self, retention: timedelta | None, store: InMemoryStore | None = None) -> None:
        self.store = store or InMemoryStore()
        self.clock = ManualClock(NOW)
        self.observed = RecordingContactObserver()
        self.dropped = self.observed.erasure_addresses_dropped
        self.contacts = ContactService(
            self.uow,
            self.clock,
            SequentialIdGenerator(),
            erasure_retention=retention,
            observer=self.observed,
        )
        self.gateway = RecordingAcousticGateway()
        self.worker_dropped: list[int] = []
        self.sync = SyncService(
            self.uow,
            AcousticDestination(self.gateway, _default_configuration),
            self.clock,
            SyncPolicy(erasure_retention=retention or RETENTION),
            observer=self,
        )

    def uow(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self.store)

    # SyncObserver
    def contact_done(self, destination: str, state: str) -> None:
        pass

    def erasure_addresses_dropped(self, count: int) -> None:
        self.worker_dropped.append(count)

    async def erase(self, address: str) -> None:
        async with self.uow() as uow:
            await uow.contacts.add(make_contact(primary_email=address))
            await uow.commit()
        await self.contacts.delete(address)

    async def queued_erasures(self) -> list[PendingSync]:
        async with self.uow() as uow:
            claimed = await claim_queued(
                uow, limit=100, now=NOW + timedelta(days=365), lease_until=NOW
            )
            await uow.rollback()
        return [item for item in claimed if item.operation == "erase"]

    async def audit(self) -> list[ErasureRecord]:
        async with self.uow() as uow:
            return await uow.erasures.list()


async def test_with_acoustic_sync_off_no_erased_address_is_kept() -> None:
    """Nothing would ever deliver the erasure: it is not queued, and the trail says so."""
    deployment = Deployment(retention=None)
    await deployment.erase("gone@example.com")
    assert await deployment.queued_erasures() == []
    (record,) = await deployment.audit()
    assert record.address_dropped_at == record.erased_at


async def test_an_erasure_keeps_its_address_while_it_awaits_delivery_within_the_bound() -> None:
    deployment = Deployment(retention=RETENTION)
    await deployment.erase("waiting@example.com")
    # twice: a relational request Acoustic refused is sent once more before its contacts fail
    deployment.gateway.fail_next(AcousticUnavailable("XML API unreachable"), times=2)
    deployment.clock.advance(RETENTION - timedelta(seconds=1))
    await deployment.sync.run_pass()
    (queued,) = await deployment.queued_erasures()
    assert queued.deletion is not None and queued.deletion.primary_email == "waiting@example.com"
    assert (await deployment.audit())[0].address_dropped_at is None


async def test_an_undelivered_address_is_dropped_by_the_worker_once_the_bound_passes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Counted, logged without the address, and visible in the audit trail."""
    deployment = Deployment(retention=RETENTION)
    await deployment.erase("late@example.com")
    deployment.clock.advance(RETENTION + timedelta(seconds=1))
    deployment.gateway.fail_next(AcousticUnavailable("XML API unreachable"))
    with caplog.at_level(logging.INFO):
        await deployment.sync.run_pass()
    assert await deployment.queued_erasures() == []
    assert deployment.gateway.requests == []
    assert deployment.worker_dropped == [1]
    (record,) = await deployment.audit()
    assert record.address_dropped_at == NOW + RETENTION + timedelta(seconds=1)
    (warning,) = [r for r in caplog.records if r.name == "ctms.erasure"]
    assert warning.levelno == logging.WARNING
    assert str(record.email_id) in repr(warning.__dict__)
    assert "late@example.com" not in repr(warning.__dict__) + warning.getMessage()


async def test_without_a_worker_the_next_erasure_drops_the_expired_addresses() -> None:
    """The bound does not depend on a worker running: every erasure also drops the expired ones."""
    deployment = Deployment(retention=RETENTION)
    await deployment.erase("first@example.com")
    deployment.clock.advance(RETENTION + timedelta(seconds=1))
    await deployment.erase("second@example.com")
    (queued,) = await deployment.queued_erasures()
    assert queued.deletion is not None and queued.deletion.primary_email == "second@example.com"
    assert deployment.dropped == [1]


async def test_switching_sync_off_drops_the_addresses_queued_while_it_was_on() -> None:
    enabled = Deployment(retention=RETENTION)
    await enabled.erase("queued@example.com")
    disabled = Deployment(retention=None, store=enabled.store)
    await disabled.erase("later@example.com")
    assert await disabled.queued_erasures() == []
    assert disabled.dropped == [1]
    assert all(record.address_dropped_at is not None for record in await disabled.audit())
