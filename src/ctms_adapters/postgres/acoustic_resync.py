"""`ResyncSelection` on PostgreSQL: read-only selections of contacts and the retry reset of the queue."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres.acoustic_tables import pending_acoustic, pending_sync
from ctms_adapters.postgres.tables import emails, newsletters, waitlists

__all__ = ["PostgresResyncSelection"]


class PostgresResyncSelection:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _ids(self, statement: object) -> list[uuid.UUID]:
        async with self._engine.connect() as connection:
            return list((await connection.execute(statement)).scalars())  # type: ignore[call-overload]

    async def subscribed_to(self, newsletter: str) -> list[uuid.UUID]:
        return await self._ids(
            select(newsletters.c.email_id)
            .where(newsletters.c.name == newsletter, newsletters.c.subscribed.is_(True))
            .order_by(newsletters.c.email_id)
        )

    async def on_waitlist(self, waitlist: str) -> list[uuid.UUID]:
        return await self._ids(
            select(waitlists.c.email_id)
            .where(waitlists.c.name == waitlist)
            .order_by(waitlists.c.email_id)
        )

    async def every_contact(
        self, *, after: uuid.UUID | None = None, limit: int | None = None
    ) -> list[uuid.UUID]:
        page = select(emails.c.email_id).order_by(emails.c.email_id).limit(limit)
        if after is not None:
            page = page.where(emails.c.email_id > after)
        return await self._ids(page)

    async def reset_retries(self, now: datetime) -> int:
        """The Acoustic destination's rows with a counted retry get their retries back, given-up rows
        included (as v3.3's reset did) and with their give-up clock restarted; rows still in the inlet
        (`pending_acoustic`, docs/adr/0009-one-sync-queue.md) too. How many rows changed."""
        async with self._engine.begin() as connection:
            queued = await connection.execute(
                update(pending_sync)
                .where(pending_sync.c.destination == "acoustic", pending_sync.c.retry > 0)
                .values(
                    retry=0,
                    failing_since=None,
                    given_up_at=None,
                    next_attempt_at=func.least(pending_sync.c.next_attempt_at, now),
                    version=pending_sync.c.version + 1,
                    update_timestamp=now,
                )
            )
            inlet = await connection.execute(
                update(pending_acoustic)
                .where(pending_acoustic.c.retry > 0)
                .values(
                    retry=0,
                    next_attempt_at=func.least(pending_acoustic.c.next_attempt_at, now),
                )
            )
            return int(queued.rowcount) + int(inlet.rowcount)
