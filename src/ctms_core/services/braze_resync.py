"""`ctms braze resync` (docs/braze.md, "Resync"): send contacts to Braze again, in full.

Business rules:

* The contacts are scheduled for Braze alone (`SyncQueue.enqueue_for`): Acoustic, and any other
  destination, is sent nothing. This is how a migration fills Braze with the contacts written before
  the `braze` destination was enabled, and how a profile changed or deleted in Braze by someone else is
  repaired.
* Their attribute digests are forgotten first, so each contact is sent whole, not as a delta from what
  CTMS last sent. (Forgotten digests of a contact whose scheduling then failed only make its next
  delivery a full one.)
* A contact with a pending erasure stays an erasure.
* Addresses match primary e-mails ignoring case; those that match nobody are returned, not an error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence

from ctms_core.ports.braze import BrazeDigestStore
from ctms_core.ports.clock import Clock
from ctms_core.ports.repositories import UnitOfWork
from ctms_core.services.braze_destination import BrazeDestination

__all__ = ["BrazeResyncService"]


class BrazeResyncService:
    def __init__(
        self, uow_factory: Callable[[], UnitOfWork], digests: BrazeDigestStore, clock: Clock
    ) -> None:
        self._uow_factory = uow_factory
        self._digests = digests
        self._clock = clock

    async def contacts_of(self, addresses: Iterable[str]) -> tuple[list[uuid.UUID], list[str]]:
        """The contacts whose primary e-mail is one of `addresses` (ignoring case, each once), and the
        addresses that match no contact."""
        found: dict[uuid.UUID, None] = {}
        unknown: list[str] = []
        async with self._uow_factory() as uow:
            for address in dict.fromkeys(a.strip() for a in addresses if a.strip()):
                contacts = await uow.contacts.find_by_primary_email(address)
                if not contacts:
                    unknown.append(address)
                found.update(dict.fromkeys(contact.email_id for contact in contacts))
        return list(found), unknown

    async def resync(self, email_ids: Sequence[uuid.UUID]) -> int:
        """Forget the contacts' digests and schedule them for Braze; how many were scheduled."""
        if not email_ids:
            return 0
        await self._digests.forget(email_ids)
        async with self._uow_factory() as uow:
            scheduled = await uow.sync_queue.enqueue_for(
                BrazeDestination.name, email_ids, self._clock.now()
            )
            await uow.commit()
        return scheduled
