"""Embed the CTMS core in a plain Python program: no database, no web framework.

Run it with `python examples/embedding.py` (after `pip install -e .`). It creates a contact, patches it the
way a newsletter sign-up would, and reads it back, using only `ctms_core` and the in-memory adapters.
"""

from __future__ import annotations

import asyncio

from ctms_adapters.memory import InMemoryStore, InMemoryUnitOfWork
from ctms_adapters.system import RandomIdGenerator, SystemClock
from ctms_core.domain.contact import vpn_waitlist_of
from ctms_core.domain.errors import CoreError
from ctms_core.domain.inputs import parse_contact_input, parse_contact_patch
from ctms_core.services.contacts import ContactService


async def main() -> None:
    store = InMemoryStore()
    contacts = ContactService(lambda: InMemoryUnitOfWork(store), SystemClock(), RandomIdGenerator())

    created = await contacts.create(
        parse_contact_input(
            {"email": {"primary_email": "jane@example.com", "first_name": "Jane"}},
            require_email_id=False,
        )
    )
    email_id = created.contact.email_id
    print(f"created {email_id} ({created.contact.email.primary_email})")

    await contacts.patch(
        email_id,
        parse_contact_patch(
            {
                "newsletters": [{"name": "mozilla-foundation", "lang": "fr"}],
                "waitlists": [{"name": "vpn", "fields": {"geo": "fr", "platform": "mac"}}],
            }
        ),
    )

    contact = await contacts.get(email_id)
    print("newsletters:", [(n.name, n.lang, n.subscribed) for n in contact.newsletters])
    print("vpn_waitlist:", vpn_waitlist_of(contact))

    try:  # the same rules as the HTTP API: a second contact may not reuse the address
        await contacts.create(
            parse_contact_input(
                {"email": {"primary_email": "JANE@example.com"}}, require_email_id=False
            )
        )
    except CoreError as error:
        print(f"refused: {error.detail} {getattr(error, 'fields', ())}")


if __name__ == "__main__":
    asyncio.run(main())
