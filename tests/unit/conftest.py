"""Unit-tier fixtures: services wired to the in-memory adapters and a manual clock."""

from __future__ import annotations

from collections.abc import Callable
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
def contacts(uow_factory: Callable[[], UnitOfWork], clock: ManualClock) -> ContactService:
    return ContactService(uow_factory, clock, SequentialIdGenerator())


class ContactActions:
    """Terse helpers that go through the same parsing a request body goes through."""

    def __init__(self, service: ContactService, clock: ManualClock) -> None:
        self.service = service
        self.clock = clock

    async def post(self, body: dict[str, Any]) -> ContactWriteResult:
        self.clock.advance(timedelta(seconds=1))
        return await self.service.create(parse_contact_input(body, require_email_id=False))

    async def put(self, body: dict[str, Any]) -> ContactWriteResult:
        self.clock.advance(timedelta(seconds=1))
        parsed = parse_contact_input(body, require_email_id=True)
        assert parsed.email_id is not None
        return await self.service.replace(parsed.email_id, parsed)

    async def patch(self, contact: Contact, body: dict[str, Any]) -> ContactWriteResult:
        self.clock.advance(timedelta(seconds=1))
        return await self.service.patch(contact.email_id, parse_contact_patch(body))

    async def get(self, contact: Contact) -> Contact:
        return await self.service.get(contact.email_id)


@pytest.fixture
def act(contacts: ContactService, clock: ManualClock) -> ContactActions:
    return ContactActions(contacts, clock)
