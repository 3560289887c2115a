"""The unit of work on PostgreSQL: one pooled connection, one transaction, every repository on it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres.api_clients import PostgresApiClientRepository
from ctms_adapters.postgres.coalescing import ReadCoalescer, WriteCoalescer
from ctms_adapters.postgres.contacts import PostgresContactRepository
from ctms_adapters.postgres.erasures import PostgresErasureAuditRepository
from ctms_adapters.postgres.roles import PostgresRoleRepository
from ctms_adapters.postgres.stripe import PostgresStripeRepository
from ctms_adapters.postgres.sync_queue import PostgresAcousticConfigRepository, PostgresSyncQueue
from ctms_adapters.postgres.transaction import TransactionScope
from ctms_adapters.postgres.unavailable import reports_unavailability
from ctms_adapters.postgres.waitlist_rules import PostgresWaitlistFieldRuleRepository
from ctms_adapters.postgres.write_conflicts import reporting_write_conflicts
from ctms_core.ports.repositories import (
    ApiClientRepository,
    ContactRepository,
    ErasureAuditRepository,
    RoleRepository,
)
from ctms_core.ports.stripe import StripeRepository
from ctms_core.ports.sync import AcousticConfigRepository, SyncQueue
from ctms_core.ports.waitlist_rules import WaitlistFieldRuleRepository


@reports_unavailability
class PostgresUnitOfWork:
    """`async with` opens the unit; its first statement checks a connection out of the pool and leaving
    returns it, rolling back whatever was not committed. The transaction itself begins with the first
    write (see `TransactionScope`); reads of a contact outside it are coalesced with other units' reads
    (`ReadCoalescer`), and a unit whose only write is one mergeable statement with other such units'
    (`WriteCoalescer`): neither needs a connection of the unit's own."""

    # Typed as the ports: mypy then checks that the repositories implement them.
    contacts: ContactRepository
    api_clients: ApiClientRepository
    roles: RoleRepository
    erasures: ErasureAuditRepository
    stripe: StripeRepository
    sync_queue: SyncQueue
    acoustic_config: AcousticConfigRepository
    waitlist_rules: WaitlistFieldRuleRepository

    def __init__(self, open_scope: Callable[[], TransactionScope]) -> None:
        self._open_scope = open_scope
        self._scope: TransactionScope | None = None

    async def __aenter__(self) -> Self:
        if self._scope is not None:
            raise RuntimeError("a unit of work is entered once")
        self._scope = self._open_scope()
        self.contacts = PostgresContactRepository(self._scope)
        self.api_clients = PostgresApiClientRepository(self._scope)
        self.roles = PostgresRoleRepository(self._scope)
        self.erasures = PostgresErasureAuditRepository(self._scope)
        self.stripe = PostgresStripeRepository(self._scope)
        self.sync_queue = PostgresSyncQueue(self._scope)
        self.acoustic_config = PostgresAcousticConfigRepository(self._scope)
        self.waitlist_rules = PostgresWaitlistFieldRuleRepository(self._scope)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        scope, self._scope = self._scope, None
        if scope is not None:
            await scope.close(exc)

    @reporting_write_conflicts  # integrity/deadlock errors at commit → 409 (docs/contract.md §2.6)
    async def commit(self) -> None:
        await self._active_scope().commit()

    async def rollback(self) -> None:
        await self._active_scope().rollback()

    def _active_scope(self) -> TransactionScope:
        if self._scope is None:
            raise RuntimeError("the unit of work is not open (use `async with`)")
        return self._scope


class PostgresUnitOfWorkFactory:
    """Builds a fresh `PostgresUnitOfWork` per use case; every one shares the engine's pool."""

    def __init__(self, engine: AsyncEngine) -> None:
        # The engine's connections are in autocommit for reads (`create_engine`); each unit of work begins
        # its transaction on demand. Every unit shares the process's coalescers.
        self._open_scope = functools.partial(
            TransactionScope, engine, ReadCoalescer(engine), WriteCoalescer(engine)
        )

    def __call__(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self._open_scope)
