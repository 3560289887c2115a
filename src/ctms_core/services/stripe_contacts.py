"""The contacts a Stripe ingest touched: FxA ids resolved through `fxa.fxa_id`, queued for Acoustic sync in
the ingest's own transaction (docs/contract.md §8.1, §8.2: "touched contacts are queued for sync")."""

from __future__ import annotations

import uuid

from ctms_core.domain.lookup import LookupCriteria
from ctms_core.ports.clock import Clock
from ctms_core.ports.repositories import UnitOfWork


class StripeContactToucher:
    """A `ContactToucher` for `StripeIngestService` on the application's unit of work."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def __call__(self, uow: UnitOfWork, fxa_ids: tuple[str, ...]) -> tuple[uuid.UUID, ...]:
        email_ids: set[uuid.UUID] = set()
        for fxa_id in fxa_ids:  # one or two per object: a lookup each
            for contact in await uow.contacts.lookup(LookupCriteria(fxa_id=fxa_id)):
                email_ids.add(contact.email_id)
        touched = tuple(sorted(email_ids))
        now = self._clock.now()
        for email_id in touched:
            await uow.sync_queue.enqueue(email_id, now)
        return touched
