"""`ResyncSelection` on PostgreSQL: read-only selections of contacts and the retry reset of the queue."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, Select, func, select, union, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres.acoustic_tables import pending_acoustic, pending_sync
from ctms_adapters.postgres.tables import emails, newsletters, waitlists
from ctms_core.ports.acoustic_resync import ContactSelection

__all__ = ["PostgresResyncSelection"]


class PostgresResyncSelection:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def contacts(
        self,
        selection: ContactSelection,
        *,
        after: uuid.UUID | None = None,
        limit: int | None = None,
    ) -> list[uuid.UUID]:
        # With both a newsletter and a waitlist, each takes its own page (an index walk that stops at
        # `limit`) and the union's first `limit` ids are the page: no id below the last one can be
        # missing, since a source that stopped early had `limit` smaller ids of its own.
        pages = []
        for source, column in _sources(selection):
            if after is not None:
                source = source.where(column > after)
            pages.append(source.order_by(column).limit(limit))
        page = pages[0]
        if len(pages) > 1:
            merged = union(*(select(p.subquery().c.email_id) for p in pages)).subquery()
            page = select(merged.c.email_id).order_by(merged.c.email_id).limit(limit)
        async with self._engine.connect() as connection:
            return list((await connection.execute(page)).scalars())

    async def count(self, selection: ContactSelection) -> int:
        sources = [source for source, _ in _sources(selection)]
        selected = (sources[0] if len(sources) == 1 else union(*sources)).subquery()
        async with self._engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(selected)) or 0)

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


def _sources(
    selection: ContactSelection,
) -> list[tuple[Select[uuid.UUID], Column[uuid.UUID]]]:
    """The queries whose union is the selection, each with the `email_id` column it is walked by."""
    sources: list[tuple[Select[uuid.UUID], Column[uuid.UUID]]] = []
    if selection.newsletter is not None:
        subscribed = select(newsletters.c.email_id).where(
            newsletters.c.name == selection.newsletter, newsletters.c.subscribed.is_(True)
        )
        sources.append((subscribed, newsletters.c.email_id))
    if selection.waitlist is not None:
        on_waitlist = select(waitlists.c.email_id).where(waitlists.c.name == selection.waitlist)
        sources.append((on_waitlist, waitlists.c.email_id))
    return sources or [(select(emails.c.email_id), emails.c.email_id)]
