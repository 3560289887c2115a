"""`ctms acoustic resync` by newsletter or waitlist, `--reset-retries`, and `ctms acoustic dump`
(docs/acoustic.md, "Commands"; v3.3's `acoustic.py resync` and `dump`).

Business rules:

* `--newsletter NAME` selects the contacts subscribed to NAME; `--waitlist NAME` every contact with a
  NAME entry, subscribed or not (as v3.3). A name that selects nobody is an error (`Unknown newsletter
  'NAME'`, `Unknown waitlist 'NAME'`), so a typo never looks like an empty success.
* A selection is walked in pages of `SELECTION_PAGE` contacts, each queued in its own transaction, so
  a newsletter of millions is a series of short transactions; a contact in both the newsletter and the
  waitlist is queued once.
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
from ctms_core.ports.acoustic_resync import ContactSelection, ResyncSelection
from ctms_core.ports.clock import Clock
from ctms_core.ports.repositories import UnitOfWork
from ctms_core.services.acoustic_products import products_of_contacts

__all__ = ["SELECTION_PAGE", "AcousticResyncService", "UnknownSelectionError"]

# Contacts read (and queued or scheduled) at a time when a command walks a selection.
SELECTION_PAGE = 10_000
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

    async def size(self, selection: ContactSelection) -> int:
        """How many contacts `selection` holds; a newsletter or waitlist that selects nobody is an
        `UnknownSelectionError`."""
        if selection.newsletter is not None:
            subscribers = ContactSelection(newsletter=selection.newsletter)
            if not await self._selection.contacts(subscribers, limit=1):
                raise UnknownSelectionError("newsletter", selection.newsletter)
        if selection.waitlist is not None:
            entries = ContactSelection(waitlist=selection.waitlist)
            if not await self._selection.contacts(entries, limit=1):
                raise UnknownSelectionError("waitlist", selection.waitlist)
        return await self._selection.count(selection)

    async def pages(self, selection: ContactSelection) -> AsyncIterator[list[uuid.UUID]]:
        """The selected contacts, each once, in pages of `SELECTION_PAGE` in `email_id` order: a
        whole deployment is a series of short reads, never a list of millions."""
        last = None
        while page := await self._selection.contacts(selection, after=last, limit=SELECTION_PAGE):
            yield page
            last = page[-1]

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

    async def dump(self, selection: ContactSelection) -> AsyncIterator[str]:
        """The CSV text of the selected contacts' main-table rows: the header line first, then a line
        per contact still present. The header needs every row's columns, so the rows are mapped (and
        held) first: a dump is sized by its selection."""
        rows: list[dict[str, str]] = []
        async with self._uow_factory() as uow:
            configuration = await uow.acoustic_config.load()
        async for email_ids in self.pages(selection):
            async with self._uow_factory() as uow:
                for start in range(0, len(email_ids), _DUMP_CHUNK):
                    contacts = await uow.contacts.get_many(email_ids[start : start + _DUMP_CHUNK])
                    products = await products_of_contacts(uow, contacts)
                    for contact in contacts:
                        products_of = products.get(contact.email_id, ())
                        rows.append(dict(map_contact(contact, products_of, configuration).main))
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
