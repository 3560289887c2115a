"""The erasure audit trail, read side (`ctms audit erasures`, SPEC §7)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ctms_core.domain.erasure import ErasureRecord, erasure_hash
from ctms_core.ports.repositories import UnitOfWork


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
