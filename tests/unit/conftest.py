"""Unit-tier fixtures: services wired to the in-memory adapters and a manual clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from ctms_adapters.memory import (
    InMemoryStore,
    InMemoryUnitOfWork,
    ManualClock,
    SequentialIdGenerator,
)
from ctms_core.domain.contact import Contact
from ctms_core.domain.inputs import parse_contact_input, parse_contact_patch
from ctms_core.ports.repositories import UnitOfWork
from ctms_core.services.contacts import ContactService, ContactWriteResult
from tests.doubles import RecordingContactObserver


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def uow_factory(store: InMemoryStore) -> Callable[[], UnitOfWork]:
    return lambda: InMemoryUnitOfWork(store)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def observed() -> RecordingContactObserver:
    return RecordingContactObserver()


@pytest.fixture
def contacts(
    uow_factory: Callable[[], UnitOfWork], clock: ManualClock, observed: RecordingContactObserver
) -> ContactService:
    return ContactService(uow_factory, clock, SequentialIdGenerator(), observer=observed)


@dataclass(frozen=True, slots=True)
class Written:
    """A write's result, and whether the write counted as a legacy waitlist request (None: the service
    publishes its counters to no observer the actions read)."""

    contact: Contact
    created: bool
    legacy_waitlists_used: bool | None


class ContactActions:
    """Terse helpers that go through the same parsing a request body goes through."""

    def __init__(
        self,
        service: ContactService,
        clock: ManualClock,
        observed: RecordingContactObserver | None = None,
    ) -> None:
        self.service = service
        self.clock = clock
        self.observed = observed

    async def _written(self, write: Awaitable[ContactWriteResult]) -> Written:
        if self.observed is None:
            result = await write
            return Written(result.contact, result.created, legacy_waitlists_used=None)
        legacy_before = self.observed.legacy_waitlists_requests
        result = await write
        used = self.observed.legacy_waitlists_requests > legacy_before
        return Written(result.contact, result.created, legacy_waitlists_used=used)

    async def post(self, body: dict[str, Any]) -> Written:
        self.clock.advance(timedelta(seconds=1))
        return await self._written(
            self.service.create(parse_contact_input(body, require_email_id=False))
        )

    async def put(self, body: dict[str, Any]) -> Written:
        self.clock.advance(timedelta(seconds=1))
        parsed = parse_contact_input(body, require_email_id=True)
        assert parsed.email_id is not None
        return await self._written(self.service.replace(parsed.email_id, parsed))

    async def patch(self, contact: Contact, body: dict[str, Any]) -> Written:
        self.clock.advance(timedelta(seconds=1))
        return await self._written(self.service.patch(contact.email_id, parse_contact_patch(body)))

    async def get(self, contact: Contact) -> Contact:
        return await self.service.get(contact.email_id)


@pytest.fixture
def act(
    contacts: ContactService, clock: ManualClock, observed: RecordingContactObserver
) -> ContactActions:
    return ContactActions(contacts, clock, observed)
