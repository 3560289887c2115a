"""Looking into the sync queue from tests: what a worker of one destination would claim."""

from __future__ import annotations

from datetime import datetime

from ctms_core.domain.sync import PendingSync
from ctms_core.ports.repositories import UnitOfWork


async def claim_queued(
    uow: UnitOfWork,
    *,
    limit: int,
    now: datetime,
    lease_until: datetime,
    destination: str = "acoustic",
) -> list[PendingSync]:
    """Route the inlet's rows to `destination` (as a worker pass does first), then claim its due rows."""
    await uow.sync_queue.route((destination,), limit=limit, now=now)
    return await uow.sync_queue.claim(destination, limit=limit, now=now, lease_until=lease_until)
