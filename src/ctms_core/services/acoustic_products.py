"""The products (docs/contract.md §8.5) of contacts, read inside a unit of work, for the Acoustic rows and erasures."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from ctms_core.domain.contact import Contact
from ctms_core.domain.segments import Product, compute_products
from ctms_core.ports.repositories import UnitOfWork


async def products_of_contacts(
    uow: UnitOfWork, contacts: Sequence[Contact]
) -> dict[uuid.UUID, list[Product]]:
    """Products per contact with an FxA id and Stripe data, in one read; contacts without any are
    absent."""
    by_fxa_id: dict[str, list[uuid.UUID]] = {}
    for contact in contacts:
        if contact.fxa is not None and contact.fxa.fxa_id:
            by_fxa_id.setdefault(contact.fxa.fxa_id, []).append(contact.email_id)
    if not by_fxa_id:
        return {}
    accounts = await uow.stripe.accounts_for_fxa_ids(sorted(by_fxa_id))
    products: dict[uuid.UUID, list[Product]] = {}
    for fxa_id, account in accounts.items():
        computed = compute_products(account)
        for email_id in by_fxa_id.get(fxa_id, ()):
            products[email_id] = computed
    return products
