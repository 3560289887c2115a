"""Storage ports. Repositories never commit: the unit of work does, once per use case."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import NamedTuple, Protocol, Self

from ctms_core.domain.api_client import ApiClient
from ctms_core.domain.contact import Contact
from ctms_core.domain.erasure import ErasureRecord
from ctms_core.domain.lookup import LookupCriteria
from ctms_core.domain.permissions import Permission, Role
from ctms_core.domain.updates import Cursor
from ctms_core.ports.stripe import StripeRepository
from ctms_core.ports.sync import AcousticConfigRepository, SyncQueue
from ctms_core.ports.waitlist_rules import WaitlistFieldRuleRepository


class StoredContact(NamedTuple):
    """A contact as read to be changed, and the version a `save` of it expects: the storage's own token
    of that stored state, or None when it was read under its lock (it cannot change before the unit
    commits, so there is nothing to check)."""

    contact: Contact
    version: str | None


class ContactRepository(Protocol):
    async def get(self, email_id: uuid.UUID, *, for_update: bool = False) -> Contact | None:
        """The contact, newsletters and waitlists sorted by name; `for_update` locks it until commit."""
        ...

    async def get_versioned(
        self, email_id: uuid.UUID, *, for_update: bool = False
    ) -> StoredContact | None:
        """The contact as `get` reads it, with its version: the `expected_version` of a `save` of it.
        `for_update` locks it until commit (version None)."""
        ...

    async def get_many(self, email_ids: Sequence[uuid.UUID]) -> list[Contact]: ...

    async def find_by_primary_email(self, primary_email: str) -> list[Contact]:
        """Every contact whose primary e-mail equals `primary_email` ignoring case."""
        ...

    async def lookup(self, criteria: LookupCriteria) -> list[Contact]:
        """Contacts matching every given identifier, ordered by email_id."""
        ...

    async def updates_page(
        self,
        *,
        start: datetime,
        end: datetime,
        after: Cursor | None,
        limit: int,
        mofo_relevant: bool | None,
    ) -> list[Contact]:
        """Contacts with `start <= update_timestamp < end` and `(update_timestamp, email_id)` strictly
        after the cursor, ordered by that pair. `mofo_relevant=True` keeps contacts whose mofo row is
        relevant; `False` keeps those without a mofo row or with `mofo_relevant` false."""
        ...

    async def add(self, contact: Contact, *, enqueue_at: datetime | None = None) -> None:
        """Insert a new contact and, with `enqueue_at`, its Acoustic sync queue entry (as
        `SyncQueue.enqueue` would) in the same write; raise `UniqueConstraintViolation` if a unique
        field is taken — from this call or, for a storage that sends its writes together, from the
        unit's `commit()` — and then nothing of it is written."""
        ...

    async def save(
        self,
        contact: Contact,
        *,
        previous: Contact,
        expected_version: str | None,
        enqueue_at: datetime | None = None,
    ) -> None:
        """Persist `contact` over its stored state `previous` (rows for dropped items are deleted) and,
        with `enqueue_at`, its sync queue entry in the same write. The guard: the write applies only if
        the contact still has `expected_version` (`StoredContact.version`; None: read under its lock,
        nothing to check); if it changed since (or is gone), nothing of it is written — queue entry
        included — and `ContactChangedError` is raised. A taken unique field raises
        `UniqueConstraintViolation`. Either error comes from this call or the unit's `commit()`, as for
        `add`."""
        ...

    async def delete(self, email_id: uuid.UUID) -> None: ...

    async def find_conflicts(self, contact: Contact) -> list[str]:
        """Names of the unique fields of `contact` whose values another contact already holds."""
        ...


class ApiClientRepository(Protocol):
    async def get(self, client_id: str) -> ApiClient | None: ...

    async def list(self) -> list[ApiClient]: ...

    async def add(self, client: ApiClient) -> None:
        """Insert; raise `UniqueConstraintViolation(["client_id"])` when the id is taken."""
        ...

    async def save(self, client: ApiClient) -> None: ...

    async def delete(self, client_id: str) -> None:
        """Remove the client and its role grants (nothing when it does not exist)."""
        ...

    async def record_access(self, client_id: str, at: datetime) -> None:
        """Set `last_access` (a single cheap write, not a read-modify-write)."""
        ...


class RoleRepository(Protocol):
    """Roles, permissions and who holds them. Names are unique; removing a role or a permission
    removes its grants. Reads fill `Role.permissions`, `Role.clients` and `Permission.roles`."""

    async def get_role(self, name: str) -> Role | None: ...

    async def list_roles(self) -> list[Role]:
        """Every role, by name in code-point order."""
        ...

    async def add_role(self, name: str, description: str | None) -> None:
        """Insert; raise `UniqueConstraintViolation(["name"])` when the name is taken."""
        ...

    async def delete_role(self, name: str) -> None: ...

    async def get_permission(self, name: str) -> Permission | None: ...

    async def list_permissions(self) -> list[Permission]:
        """Every permission, by name in code-point order."""
        ...

    async def add_permission(self, name: str, description: str | None) -> None:
        """Insert; raise `UniqueConstraintViolation(["name"])` when the name is taken."""
        ...

    async def delete_permission(self, name: str) -> None: ...

    async def grant_permission(self, role: str, permission: str) -> None:
        """Link an existing role and permission (the caller checks both exist); linking twice is a
        no-op."""
        ...

    async def revoke_permission(self, role: str, permission: str) -> None: ...

    async def grant_role(self, client_id: str, role: str) -> None:
        """Link an existing client and role (the caller checks both exist); linking twice is a no-op."""
        ...

    async def revoke_role(self, client_id: str, role: str) -> None: ...


class ErasureAuditRepository(Protocol):
    """The append-only trail of erased contacts."""

    async def add(self, record: ErasureRecord) -> None: ...

    async def list(
        self, *, since: datetime | None = None, email_hash: str | None = None
    ) -> list[ErasureRecord]:
        """Records erased at or after `since` (and with that hash), oldest first, with their ids."""
        ...

    async def mark_address_dropped(self, email_ids: Sequence[uuid.UUID], at: datetime) -> None:
        """Record that the addresses of these erased contacts were dropped undelivered at `at`."""
        ...


class UnitOfWork(Protocol):
    """One transaction. Leaving the `async with` block without `commit()` rolls everything back."""

    contacts: ContactRepository
    api_clients: ApiClientRepository
    roles: RoleRepository
    erasures: ErasureAuditRepository
    stripe: StripeRepository
    sync_queue: SyncQueue
    acoustic_config: AcousticConfigRepository
    waitlist_rules: WaitlistFieldRuleRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...
