"""Acoustic administration (docs/contract.md §13.4): the sync configuration, resync of
contacts, and the contacts the sync gave up."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ctms_core.domain.acoustic import AcousticConfiguration
from ctms_core.domain.sync import PendingSync, QueueCounts
from ctms_core.ports.clock import Clock
from ctms_core.ports.repositories import UnitOfWork

__all__ = ["AcousticAdminService", "ResyncResult"]


@dataclass(frozen=True, slots=True)
class ResyncResult:
    queued: int
    unknown: tuple[str, ...] = ()


class AcousticAdminService:
    """Each method is one transaction."""

    def __init__(self, uow_factory: Callable[[], UnitOfWork], clock: Clock) -> None:
        self._uow_factory = uow_factory
        self._clock = clock

    async def backlog(self, destination: str = "acoustic") -> QueueCounts:
        """Backlog, retry backlog and oldest waiting erasure of a destination's share of the sync
        queue (the heartbeat's check, docs/contract.md §10)."""
        async with self._uow_factory() as uow:
            return await uow.sync_queue.counts(destination)

    async def configuration(self) -> AcousticConfiguration:
        async with self._uow_factory() as uow:
            return await uow.acoustic_config.load()

    async def fields(self) -> list[tuple[str, str]]:
        async with self._uow_factory() as uow:
            return await uow.acoustic_config.fields()

    async def add_field(self, tablename: str, field: str) -> None:
        async with self._uow_factory() as uow:
            await uow.acoustic_config.add_field(tablename, field)
            await uow.commit()

    async def remove_field(self, tablename: str, field: str) -> bool:
        async with self._uow_factory() as uow:
            removed = await uow.acoustic_config.remove_field(tablename, field)
            await uow.commit()
        return removed

    async def newsletter_mappings(self) -> list[tuple[str, str]]:
        async with self._uow_factory() as uow:
            return await uow.acoustic_config.newsletter_mappings()

    async def add_newsletter_mapping(self, source: str, destination: str) -> None:
        async with self._uow_factory() as uow:
            await uow.acoustic_config.add_newsletter_mapping(source, destination)
            await uow.commit()

    async def remove_newsletter_mapping(self, source: str) -> str | None:
        async with self._uow_factory() as uow:
            removed = await uow.acoustic_config.remove_newsletter_mapping(source)
            await uow.commit()
        return removed

    async def resync_emails(self, addresses: Iterable[str]) -> ResyncResult:
        """Queue every contact whose primary e-mail matches one of `addresses` ignoring case (resetting
        its retries); addresses that match no contact are returned."""
        now = self._clock.now()
        unknown: list[str] = []
        queued: set[uuid.UUID] = set()
        async with self._uow_factory() as uow:
            for address in dict.fromkeys(a.strip() for a in addresses if a.strip()):
                contacts = await uow.contacts.find_by_primary_email(address)
                if not contacts:
                    unknown.append(address)
                for contact in contacts:
                    if contact.email_id not in queued:
                        await uow.sync_queue.enqueue(contact.email_id, now)
                        queued.add(contact.email_id)
            await uow.commit()
        return ResyncResult(len(queued), tuple(unknown))

    async def resync_failed(self, destination: str = "acoustic") -> int:
        """Re-drive every contact the destination's sync gave up."""
        async with self._uow_factory() as uow:
            count = await uow.sync_queue.reset_failed(destination, self._clock.now())
            await uow.commit()
        return count

    async def failed(self, destination: str = "acoustic") -> list[PendingSync]:
        """Contacts the destination's sync gave up, with their last error."""
        async with self._uow_factory() as uow:
            return await uow.sync_queue.failed(destination)
