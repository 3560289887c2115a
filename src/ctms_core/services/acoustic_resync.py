"""`ctms acoustic resync` by newsletter or waitlist, `--reset-retries`, and `ctms acoustic dump`
(docs/acoustic.md, "Commands"; v3.3's `acoustic.py resync` and `dump`).

Business rules:

* `--newsletter NAME` selects the contacts subscribed to NAME; `--waitlist NAME` every contact with a
  NAME entry, subscribed or not (as v3.3). A name that selects nobody is an error (`Unknown newsletter
  'NAME'`, `Unknown waitlist 'NAME'`), so a typo never looks like an empty success.
* Queuing a contact resets its retries and makes it due now (`SyncQueue.enqueue`); `--reset-retries`
  gives every queued contact with a counted retry its retries back without queuing anything new.
* `dump` writes the main-table row the sync would send for each selected contact, mapped with the
  current field and newsletter configuration; the CSV header is the sorted union of the columns.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Final

from ctms_core.domain.acoustic import map_contact
from ctms_core.domain.errors import NotFoundError
from ctms_core.ports.acoustic_resync import ResyncSelection
from ctms_core.ports.clock import Clock
from ctms_core.ports.repositories import UnitOfWork
from ctms_core.services.acoustic_products import products_of_contacts

__all__ = ["AcousticResyncService", "UnknownSelectionError"]

_DUMP_CHUNK: Final = 500


class UnknownSelectionError(NotFoundError):
    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"Unknown {kind} '{name}'")


class AcousticResyncService:
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        selection: ResyncSelection,
        clock: Clock,
    ) -> None:
        self._uow_factory = uow_factory
        self._selection = selection
        self._clock = clock

    async def select(
        self, *, newsletter: str | None = None, waitlist: str | None = None
    ) -> list[uuid.UUID]:
        """The contacts of `newsletter` and of `waitlist` (both when both are given), each once."""
        selected: dict[uuid.UUID, None] = {}
        if newsletter is not None:
            found = await self._selection.subscribed_to(newsletter)
            if not found:
                raise UnknownSelectionError("newsletter", newsletter)
            selected.update(dict.fromkeys(found))
        if waitlist is not None:
            found = await self._selection.on_waitlist(waitlist)
            if not found:
                raise UnknownSelectionError("waitlist", waitlist)
            selected.update(dict.fromkeys(found))
        return list(selected)

    async def every_contact(
        self, *, after: uuid.UUID | None = None, limit: int | None = None
    ) -> list[uuid.UUID]:
        """Every contact in `email_id` order, or the page of `limit` after `after`."""
        return await self._selection.every_contact(after=after, limit=limit)

    async def queue(self, email_ids: Sequence[uuid.UUID]) -> int:
        """Queue the contacts for sync, in one transaction; how many."""
        now = self._clock.now()
        async with self._uow_factory() as uow:
            for email_id in email_ids:
                await uow.sync_queue.enqueue(email_id, now)
            await uow.commit()
        return len(email_ids)

    async def reset_retries(self) -> int:
        return await self._selection.reset_retries(self._clock.now())

    async def dump(self, email_ids: Sequence[uuid.UUID]) -> AsyncIterator[str]:
        """The CSV text of the contacts' main-table rows: the header line first, then a line per
        contact still present (the header needs every row's columns, so rows are mapped first)."""
        rows: list[dict[str, str]] = []
        async with self._uow_factory() as uow:
            configuration = await uow.acoustic_config.load()
            for start in range(0, len(email_ids), _DUMP_CHUNK):
                contacts = await uow.contacts.get_many(email_ids[start : start + _DUMP_CHUNK])
                products = await products_of_contacts(uow, contacts)
                for contact in contacts:
                    record = map_contact(contact, products.get(contact.email_id, ()), configuration)
                    rows.append(dict(record.main))
        header = sorted({column for row in rows for column in row})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        yield buffer.getvalue()
        for row in rows:
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(row)
            yield buffer.getvalue()
