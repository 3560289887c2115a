"""`PostgresResyncSelection`: the contacts a newsletter or waitlist selects, walked in keyset pages
(`ctms acoustic resync`, `ctms acoustic dump`, `ctms braze resync`)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres import PostgresUnitOfWorkFactory
from ctms_adapters.postgres.acoustic_resync import PostgresResyncSelection
from ctms_core.domain.contact import Contact
from ctms_core.ports.acoustic_resync import ContactSelection
from tests.builders import make_contact, make_newsletter, make_waitlist

pytestmark = pytest.mark.integration

NEWS_AND_VPN = ContactSelection(newsletter="firefox-news", waitlist="vpn")


async def _store(engine: AsyncEngine, contacts: list[Contact]) -> None:
    async with PostgresUnitOfWorkFactory(engine)() as uow:
        for contact in contacts:
            await uow.contacts.add(contact)
        await uow.commit()


async def _walk(
    selection: PostgresResyncSelection, chosen: ContactSelection
) -> list[list[uuid.UUID]]:
    pages: list[list[uuid.UUID]] = []
    last = None
    while page := await selection.contacts(chosen, after=last, limit=2):
        pages.append(page)
        last = page[-1]
    return pages


async def test_a_newsletter_and_a_waitlist_are_walked_as_one_ordered_union_each_contact_once(
    empty_database: AsyncEngine,
) -> None:
    # Ids in a chosen order (email_id is the walk's order): subscribers 1, 2, 3 and 5, contact 4 on
    # both, waitlist entries 6 and 7. The sources' own pages of 2 overlap and interleave, and on the
    # first pages the waitlist's page reaches past the union's.
    def contact(number: int, **lists: Any) -> Contact:
        return make_contact(
            email_id=uuid.UUID(int=number), primary_email=f"c{number}@example.com", **lists
        )

    news, vpn = (make_newsletter("firefox-news"),), (make_waitlist("vpn", subscribed=False),)
    subscribed = [contact(n, newsletters=news) for n in (1, 2, 3, 5)]
    listed = [contact(n, waitlists=vpn) for n in (6, 7)]
    both = contact(4, newsletters=news, waitlists=vpn)
    unsubscribed = contact(8, newsletters=(make_newsletter("firefox-news", subscribed=False),))
    elsewhere = contact(0, newsletters=(make_newsletter("mozilla-and-you"),))
    await _store(empty_database, [*subscribed, *listed, both, unsubscribed, elsewhere])
    selection = PostgresResyncSelection(empty_database)

    pages = await _walk(selection, NEWS_AND_VPN)

    assert pages == [
        [uuid.UUID(int=1), uuid.UUID(int=2)],
        [uuid.UUID(int=3), uuid.UUID(int=4)],
        [uuid.UUID(int=5), uuid.UUID(int=6)],
        [uuid.UUID(int=7)],
    ]
    assert await selection.count(NEWS_AND_VPN) == 7
    assert await selection.count(ContactSelection(newsletter="firefox-news")) == 5
    assert await selection.count(ContactSelection(waitlist="vpn")) == 3


async def test_no_newsletter_nor_waitlist_selects_every_contact(
    empty_database: AsyncEngine,
) -> None:
    contacts = [make_contact() for _ in range(3)]
    await _store(empty_database, contacts)
    selection = PostgresResyncSelection(empty_database)

    pages = await _walk(selection, ContactSelection())

    assert pages == [sorted(c.email_id for c in contacts)[:2], [max(c.email_id for c in contacts)]]
    assert await selection.count(ContactSelection()) == 3
    assert await selection.count(ContactSelection(newsletter="no-such-newsletter")) == 0
