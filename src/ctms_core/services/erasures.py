"""The erasure audit trail, read side (`ctms audit erasures`, docs/contract.md §14.2), and the bound on how long an
erased contact's address waits for its erasure to reach Acoustic (docs/permissions.md, "Erasure")."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from ctms_core.domain.erasure import ErasureRecord, erasure_hash
from ctms_core.ports.repositories import UnitOfWork

erasure_logger = logging.getLogger("ctms.erasure")


async def drop_undelivered_erasure_addresses(
    uow: UnitOfWork, now: datetime, retention: timedelta | None
) -> list[uuid.UUID]:
    """Drop, inside `uow`'s transaction, the queued erasures whose address has waited longer than
    `retention` to be delivered (None: no destination is enabled, so none may wait at all), and mark
    their audit records; the `email_id`s of the contacts whose address was dropped.

    Rules: an erased contact's address stays in the database only while its erasure awaits delivery to
    an enabled destination, and never longer than the retention. A drop is logged (a WARNING naming
    the `email_id`s, never the addresses) and shown by `ctms audit erasures`; callers count it."""
    dropped = await uow.sync_queue.drop_erasures(now if retention is None else now - retention)
    if dropped:
        await uow.erasures.mark_address_dropped(dropped, now)
        erasure_logger.warning(
            "Dropped the addresses of %d erased contact(s) whose erasure did not reach Acoustic "
            "in time.",
            len(dropped),
            extra={
                "email_ids": [str(email_id) for email_id in dropped],
                "retention_s": None if retention is None else retention.total_seconds(),
            },
        )
    return dropped


class ErasureAuditService:
    """Lists erasure records; `salt` must be the one the erasing processes used (see
    `ContactService`), so an operator can ask whether a given address was erased."""

    def __init__(self, uow_factory: Callable[[], UnitOfWork], salt: bytes) -> None:
        self._uow_factory = uow_factory
        self._salt = salt

    async def list(
        self, *, since: datetime | None = None, primary_email: str | None = None
    ) -> list[ErasureRecord]:
        """Records erased at or after `since`, of `primary_email` (any case) when given, oldest first."""
        wanted = None if primary_email is None else erasure_hash(primary_email, self._salt)
        async with self._uow_factory() as uow:
            return await uow.erasures.list(since=since, email_hash=wanted)
