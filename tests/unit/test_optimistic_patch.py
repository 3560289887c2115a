"""PATCH is optimistic (`ContactService.patch`): it reads without a lock, and when another write changed the
contact before its save, it starts over from what that write left, and reads under the lock after
`OPTIMISTIC_PATCH_ATTEMPTS` lost races. The race is staged here: a rival writer commits between the
PATCH's unlocked read and its save, as a concurrent request would on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from msgspec.structs import replace

from ctms_adapters.memory import (
    InMemoryStore,
    InMemoryUnitOfWork,
    ManualClock,
    SequentialIdGenerator,
)
from ctms_core.domain.contact import Contact
from ctms_core.domain.errors import ContactChangedError
from ctms_core.domain.inputs import parse_contact_patch
from ctms_core.ports.repositories import StoredContact
from ctms_core.services.contacts import OPTIMISTIC_PATCH_ATTEMPTS, ContactService
from tests.builders import make_contact, make_newsletter
from tests.doubles import RecordingContactObserver


class _Rival:
    """Subscribes the contact to a newsletter of its own each time it wins a race, `wins` times."""

    def __init__(self, store: InMemoryStore, wins: int) -> None:
        self.store = store
        self.wins_left = wins
        self.won = 0

    def write_first(self, email_id: uuid.UUID) -> None:
        stored = self.store.contacts[email_id]
        self.won += 1
        self.wins_left -= 1
        self.store.contacts[email_id] = replace(
            stored, newsletters=(*stored.newsletters, make_newsletter(f"rival-{self.won}"))
        )


class _RacedContacts:
    def __init__(self, inner: Any, rival: _Rival) -> None:
        self._inner = inner
        self._rival = rival
        self._locked: set[uuid.UUID] = set()

    async def get_versioned(
        self, email_id: uuid.UUID, *, for_update: bool = False
    ) -> StoredContact | None:
        if for_update:
            self._locked.add(email_id)
        stored: StoredContact | None = await self._inner.get_versioned(
            email_id, for_update=for_update
        )
        return stored

    async def save(
        self,
        contact: Contact,
        *,
        previous: Contact,
        expected_version: str | None,
        enqueue_at: datetime | None = None,
    ) -> None:
        if contact.email_id not in self._locked and self._rival.wins_left > 0:
            self._rival.write_first(contact.email_id)  # committed before this save
            raise ContactChangedError
        await self._inner.save(
            contact, previous=previous, expected_version=expected_version, enqueue_at=enqueue_at
        )


class _RacedUnitOfWork:
    def __init__(self, store: InMemoryStore, rival: _Rival) -> None:
        self._inner = InMemoryUnitOfWork(store)
        self._rival = rival

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        self.contacts = _RacedContacts(self._inner.contacts, self._rival)
        self.sync_queue = self._inner.sync_queue
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._inner.__aexit__(exc_type, exc, traceback)

    async def commit(self) -> None:
        await self._inner.commit()


def _service(
    store: InMemoryStore, rival: _Rival, observed: RecordingContactObserver
) -> ContactService:
    def raced() -> Any:  # the parts of a unit of work a PATCH uses
        return _RacedUnitOfWork(store, rival)

    return ContactService(raced, ManualClock(), SequentialIdGenerator(), observer=observed)


def _stored(store: InMemoryStore) -> Contact:
    contact = make_contact(newsletters=(make_newsletter("firefox-news"),))
    store.contacts[contact.email_id] = contact
    return contact


async def test_a_patch_that_loses_a_race_applies_its_change_on_top_of_the_winners() -> None:
    store = InMemoryStore()
    contact = _stored(store)
    rival = _Rival(store, wins=1)

    observed = RecordingContactObserver()
    result = await _service(store, rival, observed).patch(
        contact.email_id, parse_contact_patch({"email": {"first_name": "Patched"}})
    )

    stored = store.contacts[contact.email_id]
    assert rival.won == 1
    assert observed.contact_write_retries == 1
    assert stored == result.contact
    assert stored.email.first_name == "Patched"
    assert [n.name for n in stored.newsletters] == ["firefox-news", "rival-1"]
    assert list(store.pending_sync) == [contact.email_id]  # queued once, by the PATCH that applied


async def test_a_patch_that_keeps_losing_reads_under_the_lock_and_loses_nothing() -> None:
    store = InMemoryStore()
    contact = _stored(store)
    rival = _Rival(store, wins=100)

    observed = RecordingContactObserver()
    result = await _service(store, rival, observed).patch(
        contact.email_id,
        parse_contact_patch({"newsletters": [{"name": "mozilla-news", "subscribed": True}]}),
    )

    stored = store.contacts[contact.email_id]
    assert rival.won == OPTIMISTIC_PATCH_ATTEMPTS  # then the locked read, which no rival can beat
    assert observed.contact_write_retries == OPTIMISTIC_PATCH_ATTEMPTS
    assert stored == result.contact
    assert [n.name for n in stored.newsletters] == [
        "firefox-news",
        "mozilla-news",
        *(f"rival-{number}" for number in range(1, OPTIMISTIC_PATCH_ATTEMPTS + 1)),
    ]


async def test_a_patch_without_a_rival_reports_no_lost_race() -> None:
    store = InMemoryStore()
    contact = _stored(store)

    observed = RecordingContactObserver()
    await _service(store, _Rival(store, wins=0), observed).patch(
        contact.email_id, parse_contact_patch({"email": {"first_name": "Alone"}})
    )

    assert observed.contact_write_retries == 0
    assert store.contacts[contact.email_id].email.first_name == "Alone"
