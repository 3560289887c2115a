"""Contacts and API clients kept in dictionaries, with the database's uniqueness rules.

Transactions are serialised by one lock per store and work on a private copy of the data, published only by
`commit()`: a use case that fails half-way leaves no trace, exactly as a rolled-back database transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

from msgspec.structs import replace

from ctms_core.domain.api_client import ApiClient
from ctms_core.domain.contact import Contact, unique_identifiers_of
from ctms_core.domain.errors import UniqueConstraintViolation
from ctms_core.domain.lookup import LookupCriteria
from ctms_core.domain.updates import Cursor


class InMemoryStore:
    """The committed state shared by every unit of work built on it."""

    def __init__(self) -> None:
        self.contacts: dict[uuid.UUID, Contact] = {}
        self.api_clients: dict[str, ApiClient] = {}
        self.lock = asyncio.Lock()


def _normalised_unique_values(contact: Contact) -> dict[str, str]:
    values = unique_identifiers_of(contact)
    values["primary_email"] = values["primary_email"].lower()
    return values


def _matches(contact: Contact, criteria: LookupCriteria) -> bool:
    email, amo, fxa, mofo = contact.email, contact.amo, contact.fxa, contact.mofo
    checks: dict[str, bool] = {}
    for name, wanted in criteria.given().items():
        match name:
            case "email_id":
                checks[name] = str(email.email_id) == str(wanted)
            case "primary_email":
                checks[name] = email.primary_email.lower() == str(wanted).lower()
            case "basket_token":
                checks[name] = email.basket_token == wanted
            case "sfdc_id":
                checks[name] = email.sfdc_id == wanted
            case "mofo_contact_id":
                checks[name] = mofo is not None and mofo.mofo_contact_id == wanted
            case "mofo_email_id":
                checks[name] = mofo is not None and mofo.mofo_email_id == wanted
            case "amo_user_id":
                checks[name] = amo is not None and amo.user_id == wanted
            case "fxa_id":
                checks[name] = fxa is not None and fxa.fxa_id == wanted
            case "fxa_primary_email":
                checks[name] = (
                    fxa is not None
                    and fxa.primary_email is not None
                    and fxa.primary_email.lower() == str(wanted).lower()
                )
    return all(checks.values())


class InMemoryContactRepository:
    def __init__(self, contacts: dict[uuid.UUID, Contact]) -> None:
        self._contacts = contacts

    async def get(self, email_id: uuid.UUID, *, for_update: bool = False) -> Contact | None:
        return self._contacts.get(email_id)

    async def get_many(self, email_ids: Sequence[uuid.UUID]) -> list[Contact]:
        return [self._contacts[i] for i in email_ids if i in self._contacts]

    async def find_by_primary_email(self, primary_email: str) -> list[Contact]:
        wanted = primary_email.lower()
        return sorted(
            (c for c in self._contacts.values() if c.email.primary_email.lower() == wanted),
            key=lambda contact: contact.email_id,
        )

    async def lookup(self, criteria: LookupCriteria) -> list[Contact]:
        return sorted(
            (contact for contact in self._contacts.values() if _matches(contact, criteria)),
            key=lambda contact: contact.email_id,
        )

    async def updates_page(
        self,
        *,
        start: datetime,
        end: datetime,
        after: Cursor | None,
        limit: int,
        mofo_relevant: bool | None,
    ) -> list[Contact]:
        def key(contact: Contact) -> tuple[datetime, uuid.UUID]:
            assert contact.email.update_timestamp is not None
            return (contact.email.update_timestamp, contact.email_id)

        def relevant(contact: Contact) -> bool:
            if mofo_relevant is None:
                return True
            if mofo_relevant:
                return contact.mofo is not None and contact.mofo.mofo_relevant
            return contact.mofo is None or not contact.mofo.mofo_relevant

        selected = [
            contact
            for contact in self._contacts.values()
            if start <= key(contact)[0] < end
            and (after is None or key(contact) > (after.update_timestamp, after.email_id))
            and relevant(contact)
        ]
        return sorted(selected, key=key)[:limit]

    async def add(self, contact: Contact) -> None:
        self._check_unique(contact, replacing=None)
        self._contacts[contact.email_id] = contact

    async def save(self, contact: Contact, *, previous: Contact) -> None:
        self._check_unique(contact, replacing=previous.email_id)
        self._contacts[contact.email_id] = contact

    async def delete(self, email_id: uuid.UUID) -> None:
        self._contacts.pop(email_id, None)

    async def find_conflicts(self, contact: Contact) -> list[str]:
        wanted = _normalised_unique_values(contact)
        clashing: set[str] = set()
        for other in self._contacts.values():
            if other.email_id == contact.email_id:
                continue
            held = _normalised_unique_values(other)
            clashing.update(name for name, value in wanted.items() if held.get(name) == value)
        return [name for name in wanted if name in clashing]

    def _check_unique(self, contact: Contact, *, replacing: uuid.UUID | None) -> None:
        conflicts = []
        if replacing is None and contact.email_id in self._contacts:
            conflicts.append("email_id")
        conflicts += [name for name in self._sync_conflicts(contact) if name != "email_id"]
        if conflicts:
            raise UniqueConstraintViolation(conflicts)

    def _sync_conflicts(self, contact: Contact) -> list[str]:
        wanted = _normalised_unique_values(contact)
        clashing: set[str] = set()
        for other in self._contacts.values():
            if other.email_id != contact.email_id:
                held = _normalised_unique_values(other)
                clashing.update(name for name, value in wanted.items() if held.get(name) == value)
        return [name for name in wanted if name in clashing]


class InMemoryApiClientRepository:
    def __init__(self, clients: dict[str, ApiClient]) -> None:
        self._clients = clients

    async def get(self, client_id: str) -> ApiClient | None:
        return self._clients.get(client_id)

    async def list(self) -> list[ApiClient]:
        return sorted(self._clients.values(), key=lambda client: client.client_id)

    async def add(self, client: ApiClient) -> None:
        if client.client_id in self._clients:
            raise UniqueConstraintViolation(["client_id"])
        self._clients[client.client_id] = client

    async def save(self, client: ApiClient) -> None:
        self._clients[client.client_id] = client

    async def record_access(self, client_id: str, at: datetime) -> None:
        client = self._clients.get(client_id)
        if client is not None:
            self._clients[client_id] = replace(client, last_access=at)


class InMemoryUnitOfWork:
    """One serialised transaction over an `InMemoryStore`."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._committed = False

    async def __aenter__(self) -> Self:
        await self._store.lock.acquire()
        self._contacts = dict(self._store.contacts)
        self._clients = dict(self._store.api_clients)
        self.contacts = InMemoryContactRepository(self._contacts)
        self.api_clients = InMemoryApiClientRepository(self._clients)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._store.lock.release()

    async def commit(self) -> None:
        self._store.contacts = self._contacts
        self._store.api_clients = self._clients
        self._contacts = dict(self._contacts)
        self._clients = dict(self._clients)
        self.contacts = InMemoryContactRepository(self._contacts)
        self.api_clients = InMemoryApiClientRepository(self._clients)

    async def rollback(self) -> None:
        self._contacts = dict(self._store.contacts)
        self._clients = dict(self._store.api_clients)
        self.contacts = InMemoryContactRepository(self._contacts)
        self.api_clients = InMemoryApiClientRepository(self._clients)
