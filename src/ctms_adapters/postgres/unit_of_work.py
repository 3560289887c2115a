"""The unit of work on PostgreSQL: one pooled connection, one transaction, every repository on it, and the
contact writes it holds until its commit (`PendingWrites`)."""

from __future__ import annotations

import functools
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres.api_clients import PostgresApiClientRepository
from ctms_adapters.postgres.coalescing import ReadCoalescer, WriteCoalescer
from ctms_adapters.postgres.contacts import PostgresContactRepository
from ctms_adapters.postgres.erasures import PostgresErasureAuditRepository
from ctms_adapters.postgres.pending_writes import PendingWrites
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
    statement that needs it (`TransactionScope`). Reads of a contact outside it are shared with other
    units' (`ReadCoalescer`); the unit's contact writes are held until `commit()`, which sends them as
    one statement (`PendingWrites`): alone in autocommit through the `WriteCoalescer` when the unit has no
    transaction, else inside it."""

    # Typed as the ports: mypy then checks that the repositories implement them.
    contacts: ContactRepository
    api_clients: ApiClientRepository
    roles: RoleRepository
    erasures: ErasureAuditRepository
    stripe: StripeRepository
    sync_queue: SyncQueue
    acoustic_config: AcousticConfigRepository
    waitlist_rules: WaitlistFieldRuleRepository

    def __init__(
        self,
        engine: AsyncEngine,
        reads: ReadCoalescer | None = None,
        writes: WriteCoalescer | None = None,
    ) -> None:
        self._engine = engine
        self._reads = reads
        self._writes = writes
        self._scope: TransactionScope | None = None
        self._pending: PendingWrites | None = None

    async def __aenter__(self) -> Self:
        if self._scope is not None:
            raise RuntimeError("a unit of work is entered once")
        self._scope = TransactionScope(self._engine)
        self._pending = PendingWrites(self._scope, self._writes)
        # Any other statement of the unit sends its pending writes first: it reads its own writes.
        self._scope.before_statement = self._pending.send
        self.contacts = PostgresContactRepository(self._scope, self._pending, self._reads)
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
        if self._pending is not None:
            self._pending.clear()  # never sent
        if scope is not None:
            # The scope's hook and the pending writes refer to each other: unhooking breaks the cycle, so
            # the unit is freed when its request ends rather than by the garbage collector (a cycle per
            # request made the collector run every ~20 requests, a measurable share of a GET's CPU).
            scope.before_statement = None
            await scope.close(exc)

    @reporting_write_conflicts  # integrity/deadlock errors at commit → 409 (docs/contract.md §2.6)
    async def commit(self) -> None:
        scope, pending = self._active()
        await pending.send(last=True)
        await scope.commit()

    async def rollback(self) -> None:
        scope, pending = self._active()
        pending.clear()
        await scope.rollback()

    def _active(self) -> tuple[TransactionScope, PendingWrites]:
        if self._scope is None or self._pending is None:
            raise RuntimeError("the unit of work is not open (use `async with`)")
        return self._scope, self._pending


class PostgresUnitOfWorkFactory:
    """Builds a fresh `PostgresUnitOfWork` per use case; every one shares the engine's pool."""

    def __init__(self, engine: AsyncEngine) -> None:
        # The engine's connections are in autocommit for reads (`create_engine`); each unit of work begins
        # its transaction on demand. Every unit shares the process's coalescers, which hold connections
        # of their own (a `TransactionScope` that never begins a transaction).
        connect = functools.partial(TransactionScope, engine)
        self._engine = engine
        self._reads = ReadCoalescer(connect)
        self._writes = WriteCoalescer(connect)

    def __call__(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self._engine, self._reads, self._writes)
