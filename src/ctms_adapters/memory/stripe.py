"""The Stripe tables kept in dictionaries, with the database's unique index and foreign keys (docs/contract.md §1.5).

Like `store.py`, a unit of work holds the store's lock and works on a private copy of the tables, published
only by `commit()`. `StripeTables` is the unit of copying, so the application's main in-memory unit of work
can carry it next to the contacts (see `InMemoryStripeRepository`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from ctms_core.domain.errors import UniqueConstraintViolation
from ctms_core.domain.stripe import (
    StripeAccount,
    StripeCustomer,
    StripeInvoice,
    StripeInvoiceLineItem,
    StripePrice,
    StripeSubscription,
    StripeSubscriptionItem,
)


class ForeignKeyViolation(Exception):
    """A row references a subscription, invoice or price that does not exist (a database would refuse it
    at flush time)."""


@dataclass
class StripeTables:
    """One dictionary per table, keyed by `stripe_id`. Rows are frozen, so a shallow copy is a snapshot."""

    customers: dict[str, StripeCustomer] = field(default_factory=dict)
    prices: dict[str, StripePrice] = field(default_factory=dict)
    subscriptions: dict[str, StripeSubscription] = field(default_factory=dict)
    subscription_items: dict[str, StripeSubscriptionItem] = field(default_factory=dict)
    invoices: dict[str, StripeInvoice] = field(default_factory=dict)
    invoice_line_items: dict[str, StripeInvoiceLineItem] = field(default_factory=dict)

    def copy(self) -> StripeTables:
        return StripeTables(
            customers=dict(self.customers),
            prices=dict(self.prices),
            subscriptions=dict(self.subscriptions),
            subscription_items=dict(self.subscription_items),
            invoices=dict(self.invoices),
            invoice_line_items=dict(self.invoice_line_items),
        )


class InMemoryStripeStore:
    """The committed Stripe tables shared by every unit of work built on it."""

    def __init__(self) -> None:
        self.tables = StripeTables()
        self.lock = asyncio.Lock()


class InMemoryStripeRepository:
    """`StripeRepository` over a `StripeTables` snapshot. Locks are implicit: the unit of work already
    serialises transactions."""

    def __init__(self, tables: StripeTables) -> None:
        self._tables = tables

    # customers
    async def get_customer(
        self, stripe_id: str, *, for_update: bool = False
    ) -> StripeCustomer | None:
        return self._tables.customers.get(stripe_id)

    async def find_customer_by_fxa_id(
        self, fxa_id: str, *, for_update: bool = False
    ) -> StripeCustomer | None:
        return next((c for c in self._tables.customers.values() if c.fxa_id == fxa_id), None)

    async def save_customer(self, customer: StripeCustomer) -> None:
        holder = await self.find_customer_by_fxa_id(customer.fxa_id)
        if holder is not None and holder.stripe_id != customer.stripe_id:
            raise UniqueConstraintViolation(["fxa_id"])
        self._tables.customers[customer.stripe_id] = customer

    async def delete_customer(self, stripe_id: str) -> None:
        self._tables.customers.pop(stripe_id, None)

    # prices
    async def get_price(self, stripe_id: str) -> StripePrice | None:
        return self._tables.prices.get(stripe_id)

    async def save_price(self, price: StripePrice) -> None:
        self._tables.prices[price.stripe_id] = price

    # subscriptions and items
    async def get_subscription(
        self, stripe_id: str, *, for_update: bool = False
    ) -> StripeSubscription | None:
        return self._tables.subscriptions.get(stripe_id)

    async def save_subscription(self, subscription: StripeSubscription) -> None:
        self._tables.subscriptions[subscription.stripe_id] = subscription

    async def subscription_ids_of_customer(
        self, customer_id: str, *, for_update: bool = False
    ) -> list[str]:
        return sorted(
            s.stripe_id
            for s in self._tables.subscriptions.values()
            if s.stripe_customer_id == customer_id
        )

    async def delete_subscriptions(self, stripe_ids: Collection[str]) -> None:
        doomed = set(stripe_ids)
        items = self._tables.subscription_items
        for item_id in [i.stripe_id for i in items.values() if i.stripe_subscription_id in doomed]:
            del items[item_id]
        for stripe_id in doomed:
            self._tables.subscriptions.pop(stripe_id, None)

    async def get_subscription_item(
        self, stripe_id: str, *, for_update: bool = False
    ) -> StripeSubscriptionItem | None:
        return self._tables.subscription_items.get(stripe_id)

    async def save_subscription_item(self, item: StripeSubscriptionItem) -> None:
        if item.stripe_subscription_id not in self._tables.subscriptions:
            raise ForeignKeyViolation(f"subscription {item.stripe_subscription_id}")
        if item.stripe_price_id not in self._tables.prices:
            raise ForeignKeyViolation(f"price {item.stripe_price_id}")
        self._tables.subscription_items[item.stripe_id] = item

    async def subscription_item_ids(
        self, subscription_id: str, *, for_update: bool = False
    ) -> list[str]:
        return sorted(
            i.stripe_id
            for i in self._tables.subscription_items.values()
            if i.stripe_subscription_id == subscription_id
        )

    async def delete_subscription_items(self, stripe_ids: Collection[str]) -> None:
        for stripe_id in stripe_ids:
            self._tables.subscription_items.pop(stripe_id, None)

    # invoices and line items
    async def get_invoice(
        self, stripe_id: str, *, for_update: bool = False
    ) -> StripeInvoice | None:
        return self._tables.invoices.get(stripe_id)

    async def save_invoice(self, invoice: StripeInvoice) -> None:
        self._tables.invoices[invoice.stripe_id] = invoice

    async def invoice_ids_of_customer(
        self, customer_id: str, *, for_update: bool = False
    ) -> list[str]:
        return sorted(
            i.stripe_id
            for i in self._tables.invoices.values()
            if i.stripe_customer_id == customer_id
        )

    async def delete_invoices(self, stripe_ids: Collection[str]) -> None:
        doomed = set(stripe_ids)
        lines = self._tables.invoice_line_items
        for line_id in [li.stripe_id for li in lines.values() if li.stripe_invoice_id in doomed]:
            del lines[line_id]
        for stripe_id in doomed:
            self._tables.invoices.pop(stripe_id, None)

    async def get_invoice_line_item(
        self, stripe_id: str, *, for_update: bool = False
    ) -> StripeInvoiceLineItem | None:
        return self._tables.invoice_line_items.get(stripe_id)

    async def save_invoice_line_item(self, line_item: StripeInvoiceLineItem) -> None:
        if line_item.stripe_invoice_id not in self._tables.invoices:
            raise ForeignKeyViolation(f"invoice {line_item.stripe_invoice_id}")
        if line_item.stripe_price_id not in self._tables.prices:
            raise ForeignKeyViolation(f"price {line_item.stripe_price_id}")
        self._tables.invoice_line_items[line_item.stripe_id] = line_item

    async def invoice_line_item_ids(
        self, invoice_id: str, *, for_update: bool = False
    ) -> list[str]:
        return sorted(
            li.stripe_id
            for li in self._tables.invoice_line_items.values()
            if li.stripe_invoice_id == invoice_id
        )

    async def delete_invoice_line_items(self, stripe_ids: Collection[str]) -> None:
        for stripe_id in stripe_ids:
            self._tables.invoice_line_items.pop(stripe_id, None)

    # products
    async def accounts_for_fxa_ids(self, fxa_ids: Sequence[str]) -> dict[str, StripeAccount]:
        wanted = set(fxa_ids)
        tables = self._tables
        accounts: dict[str, StripeAccount] = {}
        for customer in tables.customers.values():
            if customer.fxa_id not in wanted:
                continue
            subscriptions = tuple(
                sorted(
                    (
                        s
                        for s in tables.subscriptions.values()
                        if s.stripe_customer_id == customer.stripe_id
                    ),
                    key=lambda s: s.stripe_id,
                )
            )
            held = {s.stripe_id for s in subscriptions}
            items = tuple(
                sorted(
                    (
                        i
                        for i in tables.subscription_items.values()
                        if i.stripe_subscription_id in held
                    ),
                    key=lambda i: i.stripe_id,
                )
            )
            price_ids = sorted({i.stripe_price_id for i in items})
            prices = tuple(tables.prices[p] for p in price_ids if p in tables.prices)
            accounts[customer.fxa_id] = StripeAccount(
                customer=customer, subscriptions=subscriptions, items=items, prices=prices
            )
        return accounts


class InMemoryStripeUnitOfWork:
    """One serialised transaction over an `InMemoryStripeStore`."""

    def __init__(self, store: InMemoryStripeStore) -> None:
        self._store = store

    @property
    def stripe(self) -> InMemoryStripeRepository:
        return self._repository

    async def __aenter__(self) -> Self:
        await self._store.lock.acquire()
        self._begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._store.lock.release()

    async def commit(self) -> None:
        self._store.tables = self._tables
        self._begin()

    async def rollback(self) -> None:
        self._begin()

    def _begin(self) -> None:
        self._tables = self._store.tables.copy()
        self._repository = InMemoryStripeRepository(self._tables)
