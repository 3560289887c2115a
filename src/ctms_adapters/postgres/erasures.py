"""`ErasureAuditRepository` on PostgreSQL: the `erasure_audit` table (docs/contract.md §14.2)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select, update

from ctms_adapters.postgres.tables import erasure_audit
from ctms_adapters.postgres.transaction import TransactionScope
from ctms_adapters.postgres.unavailable import reports_unavailability
from ctms_core.domain.erasure import ErasureRecord

_COLUMNS = [erasure_audit.c[name] for name in ErasureRecord.__struct_fields__]


@reports_unavailability
class PostgresErasureAuditRepository:
    def __init__(self, scope: TransactionScope) -> None:
        self._scope = scope

    async def add(self, record: ErasureRecord) -> None:
        await self._scope.begin()
        await self._scope.run(
            insert(erasure_audit).values(
                erased_at=record.erased_at,
                client_id=record.client_id,
                email_id=record.email_id,
                email_hash=record.email_hash,
                address_dropped_at=record.address_dropped_at,
            )
        )

    async def mark_address_dropped(self, email_ids: Sequence[uuid.UUID], at: datetime) -> None:
        await self._scope.begin()
        await self._scope.run(
            update(erasure_audit)
            .where(
                erasure_audit.c.email_id.in_(list(email_ids)),
                erasure_audit.c.address_dropped_at.is_(None),
            )
            .values(address_dropped_at=at)
        )

    async def list(
        self, *, since: datetime | None = None, email_hash: str | None = None
    ) -> list[ErasureRecord]:
        query = select(*_COLUMNS).order_by(erasure_audit.c.erased_at, erasure_audit.c.id)
        if since is not None:
            query = query.where(erasure_audit.c.erased_at >= since)
        if email_hash is not None:
            query = query.where(erasure_audit.c.email_hash == email_hash)
        result = await self._scope.run(query)
        return [ErasureRecord(**row._asdict()) for row in result]
