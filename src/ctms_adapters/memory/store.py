"""Contacts, API clients, roles and the erasure trail kept in memory, with the database's uniqueness rules.

Transactions are serialised by one lock per store and work on a private copy of the data, published only by
`commit()`: a use case that fails half-way leaves no trace, exactly as a rolled-back database transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

from msgspec.structs import replace

from ctms_adapters.memory.stripe import InMemoryStripeRepository, StripeTables
from ctms_adapters.memory.sync_queue import (
    AcousticConfigState,
    InMemoryAcousticConfigRepository,
    InMemorySyncQueue,
    QueueRow,
)
from ctms_adapters.memory.waitlist_rules import (
    InMemoryWaitlistFieldRuleRepository,
    WaitlistRuleState,
    seeded_waitlist_rules,
)
from ctms_core.domain.api_client import ApiClient
from ctms_core.domain.contact import Contact, unique_identifiers_of
from ctms_core.domain.erasure import ErasureRecord
from ctms_core.domain.errors import ContactChangedError, UniqueConstraintViolation
from ctms_core.domain.lookup import LookupCriteria
from ctms_core.domain.permissions import (
    ADMIN,
    ADMIN_ROLE,
    ADMIN_ROLE_DESCRIPTION,
    STANDARD_PERMISSIONS,
    Permission,
    Role,
)
from ctms_core.domain.updates import Cursor
from ctms_core.ports.repositories import StoredContact


@dataclasses.dataclass
class AccessControlState:
    """Roles, permissions (name → description) and the grants linking them to each other and to
    clients."""

    roles: dict[str, str | None] = dataclasses.field(default_factory=dict)
    permissions: dict[str, str | None] = dataclasses.field(default_factory=dict)
    role_permissions: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    client_roles: set[tuple[str, str]] = dataclasses.field(default_factory=set)

    @classmethod
    def seeded(cls) -> AccessControlState:
        """What migration 0002 seeds: the standard permissions and the `admin` role holding `admin`."""
        return cls(
            roles={ADMIN_ROLE: ADMIN_ROLE_DESCRIPTION},
            permissions=dict(STANDARD_PERMISSIONS),
            role_permissions={(ADMIN_ROLE, ADMIN)},
        )

    def copy(self) -> AccessControlState:
        return AccessControlState(
            dict(self.roles),
            dict(self.permissions),
            set(self.role_permissions),
            set(self.client_roles),
        )


class InMemoryStore:
    """The committed state shared by every unit of work built on it."""

    def __init__(self) -> None:
        self.contacts: dict[uuid.UUID, Contact] = {}
        # The version of each stored contact: a number drawn from `versions` by every write of it.
        self.contact_versions: dict[uuid.UUID, int] = {}
        self.versions = itertools.count(1)
        self.api_clients: dict[str, ApiClient] = {}
        self.access: AccessControlState = AccessControlState.seeded()
        self.erasures: list[ErasureRecord] = []
        self.stripe = StripeTables()
        self.pending_sync: dict[uuid.UUID, QueueRow] = {}
        self.destination_queues: dict[str, dict[uuid.UUID, QueueRow]] = {}
        self.acoustic_config = AcousticConfigState.seeded()
        self.waitlist_rules: WaitlistRuleState = seeded_waitlist_rules()
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
    """Every write of a contact gives it a new version, and a `save` expecting another one (the contact
    was read by an earlier unit of work, and changed or deleted since) writes nothing and raises
    `ContactChangedError`, as on PostgreSQL. Units of work are serialised (`InMemoryUnitOfWork`), so a
    unit loses that race only to a unit that committed between its read and its save."""

    def __init__(
        self,
        contacts: dict[uuid.UUID, Contact],
        versions: dict[uuid.UUID, int],
        new_version: Callable[[], int],
        queue: InMemorySyncQueue,
    ) -> None:
        self._contacts = contacts
        self._versions = versions
        self._new_version = new_version
        self._queue = queue

    async def get(self, email_id: uuid.UUID, *, for_update: bool = False) -> Contact | None:
        return self._contacts.get(email_id)

    async def get_versioned(
        self, email_id: uuid.UUID, *, for_update: bool = False
    ) -> StoredContact | None:
        contact = self._contacts.get(email_id)
        if contact is None:
            return None
        return StoredContact(contact, None if for_update else self._version_of(email_id))

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

    async def add(self, contact: Contact, *, enqueue_at: datetime | None = None) -> None:
        self._check_unique(contact, replacing=None)
        await self._write(contact, enqueue_at)

    async def save(
        self,
        contact: Contact,
        *,
        previous: Contact,
        expected_version: str | None,
        enqueue_at: datetime | None = None,
    ) -> None:
        if contact.email_id != previous.email_id:
            raise ValueError("save() cannot change a contact's email_id")
        if contact == previous and enqueue_at is None:
            return  # nothing to write, as on PostgreSQL
        if expected_version is not None and expected_version != self._version_of(contact.email_id):
            raise ContactChangedError
        self._check_unique(contact, replacing=previous.email_id)
        await self._write(contact, enqueue_at)

    def _version_of(self, email_id: uuid.UUID) -> str | None:
        """None once the contact is gone; a contact placed in the store directly has version 0."""
        if email_id not in self._contacts:
            return None
        return str(self._versions.get(email_id, 0))

    async def _write(self, contact: Contact, enqueue_at: datetime | None) -> None:
        self._contacts[contact.email_id] = contact
        self._versions[contact.email_id] = self._new_version()
        if enqueue_at is not None:
            await self._queue.enqueue(contact.email_id, enqueue_at)

    async def delete(self, email_id: uuid.UUID) -> None:
        self._contacts.pop(email_id, None)
        self._versions.pop(email_id, None)

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
    def __init__(self, clients: dict[str, ApiClient], access: AccessControlState) -> None:
        self._clients = clients
        self._access = access

    async def get(self, client_id: str) -> ApiClient | None:
        client = self._clients.get(client_id)
        return None if client is None else self._with_grants(client)

    async def list(self) -> list[ApiClient]:
        return [
            self._with_grants(client)
            for client in sorted(self._clients.values(), key=lambda client: client.client_id)
        ]

    def _with_grants(self, client: ApiClient) -> ApiClient:
        roles = sorted(
            role for holder, role in self._access.client_roles if holder == client.client_id
        )
        permissions = frozenset(
            permission for role, permission in self._access.role_permissions if role in roles
        )
        return replace(client, roles=tuple(roles), permissions=permissions)

    async def add(self, client: ApiClient) -> None:
        if client.client_id in self._clients:
            raise UniqueConstraintViolation(["client_id"])
        self._clients[client.client_id] = replace(client, roles=(), permissions=frozenset())

    async def save(self, client: ApiClient) -> None:
        self._clients[client.client_id] = replace(client, roles=(), permissions=frozenset())

    async def delete(self, client_id: str) -> None:
        self._clients.pop(client_id, None)
        self._access.client_roles = {g for g in self._access.client_roles if g[0] != client_id}

    async def record_access(self, client_id: str, at: datetime) -> None:
        client = self._clients.get(client_id)
        if client is not None:
            self._clients[client_id] = replace(client, last_access=at)


def _sorted(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(names))


class InMemoryRoleRepository:
    def __init__(self, access: AccessControlState) -> None:
        self._access = access

    async def get_role(self, name: str) -> Role | None:
        if name not in self._access.roles:
            return None
        return Role(
            name=name,
            description=self._access.roles[name],
            permissions=_sorted(p for r, p in self._access.role_permissions if r == name),
            clients=_sorted(c for c, r in self._access.client_roles if r == name),
        )

    async def list_roles(self) -> list[Role]:
        roles = [await self.get_role(name) for name in sorted(self._access.roles)]
        return [role for role in roles if role is not None]

    async def add_role(self, name: str, description: str | None) -> None:
        if name in self._access.roles:
            raise UniqueConstraintViolation(["name"])
        self._access.roles[name] = description

    async def delete_role(self, name: str) -> None:
        self._access.roles.pop(name, None)
        self._access.role_permissions = {g for g in self._access.role_permissions if g[0] != name}
        self._access.client_roles = {g for g in self._access.client_roles if g[1] != name}

    async def get_permission(self, name: str) -> Permission | None:
        if name not in self._access.permissions:
            return None
        return Permission(
            name=name,
            description=self._access.permissions[name],
            roles=_sorted(r for r, p in self._access.role_permissions if p == name),
        )

    async def list_permissions(self) -> list[Permission]:
        permissions = [await self.get_permission(name) for name in sorted(self._access.permissions)]
        return [permission for permission in permissions if permission is not None]

    async def add_permission(self, name: str, description: str | None) -> None:
        if name in self._access.permissions:
            raise UniqueConstraintViolation(["name"])
        self._access.permissions[name] = description

    async def delete_permission(self, name: str) -> None:
        self._access.permissions.pop(name, None)
        self._access.role_permissions = {g for g in self._access.role_permissions if g[1] != name}

    async def grant_permission(self, role: str, permission: str) -> None:
        self._access.role_permissions.add((role, permission))

    async def revoke_permission(self, role: str, permission: str) -> None:
        self._access.role_permissions.discard((role, permission))

    async def grant_role(self, client_id: str, role: str) -> None:
        self._access.client_roles.add((client_id, role))

    async def revoke_role(self, client_id: str, role: str) -> None:
        self._access.client_roles.discard((client_id, role))


class InMemoryErasureAuditRepository:
    def __init__(self, records: list[ErasureRecord]) -> None:
        self._records = records

    async def add(self, record: ErasureRecord) -> None:
        self._records.append(replace(record, id=len(self._records) + 1))

    async def mark_address_dropped(self, email_ids: Sequence[uuid.UUID], at: datetime) -> None:
        wanted = set(email_ids)
        self._records[:] = [
            replace(record, address_dropped_at=at)
            if record.email_id in wanted and record.address_dropped_at is None
            else record
            for record in self._records
        ]

    async def list(
        self, *, since: datetime | None = None, email_hash: str | None = None
    ) -> list[ErasureRecord]:
        return sorted(
            (
                record
                for record in self._records
                if (since is None or record.erased_at >= since)
                and (email_hash is None or record.email_hash == email_hash)
            ),
            key=lambda record: (record.erased_at, record.id or 0),
        )


class InMemoryUnitOfWork:
    """One serialised transaction over an `InMemoryStore`."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._committed = False

    async def __aenter__(self) -> Self:
        await self._store.lock.acquire()
        self._start_from_store()
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
        self._store.contact_versions = self._versions
        self._store.api_clients = self._clients
        self._store.access = self._access
        self._store.erasures = self._erasures
        self._store.stripe = self._stripe
        self._store.pending_sync = self._pending_sync
        self._store.destination_queues = self._destination_queues
        self._store.acoustic_config = self._acoustic_config
        self._store.waitlist_rules = self._waitlist_rules
        self._start_from_store()

    async def rollback(self) -> None:
        self._start_from_store()

    def _start_from_store(self) -> None:
        """Private copies of the committed state, and repositories over them."""
        self._contacts = dict(self._store.contacts)
        self._versions = dict(self._store.contact_versions)
        self._clients = dict(self._store.api_clients)
        self._access = self._store.access.copy()
        self._erasures = list(self._store.erasures)
        self._stripe = self._store.stripe.copy()
        self._pending_sync = dict(self._store.pending_sync)
        self._destination_queues = {
            name: dict(rows) for name, rows in self._store.destination_queues.items()
        }
        self._acoustic_config = self._store.acoustic_config.copy()
        self._waitlist_rules = dict(self._store.waitlist_rules)
        self.sync_queue = InMemorySyncQueue(self._pending_sync, self._destination_queues)
        self.contacts = InMemoryContactRepository(
            # Not a bound method of the unit: the unit would then refer to itself (a reference cycle).
            self._contacts,
            self._versions,
            functools.partial(next, self._store.versions),
            self.sync_queue,
        )
        self.api_clients = InMemoryApiClientRepository(self._clients, self._access)
        self.roles = InMemoryRoleRepository(self._access)
        self.erasures = InMemoryErasureAuditRepository(self._erasures)
        self.stripe = InMemoryStripeRepository(self._stripe)
        self.acoustic_config = InMemoryAcousticConfigRepository(self._acoustic_config)
        self.waitlist_rules = InMemoryWaitlistFieldRuleRepository(self._waitlist_rules)
