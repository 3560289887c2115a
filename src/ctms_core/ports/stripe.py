"""Storage port for the mirrored Stripe data (docs/contract.md §1.5). Repositories never commit: the unit of work does.

`for_update=True` locks the row until the transaction ends (`SELECT … FOR UPDATE` in PostgreSQL); a locking
read of a missing row locks nothing. `save_*` inserts or replaces the row with the same `stripe_id`.
Prices are read without a lock (they are shared by many customers, docs/contract.md §8.3); a database adapter should write
them with an upsert (`INSERT … ON CONFLICT DO UPDATE`) so two transactions creating the same price both
succeed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from types import TracebackType
from typing import Protocol, Self

from ctms_core.domain.stripe import (
    StripeAccount,
    StripeCustomer,
    StripeInvoice,
    StripeInvoiceLineItem,
    StripePrice,
    StripeSubscription,
    StripeSubscriptionItem,
)


class StripeRepository(Protocol):
    # customers
    async def get_customer(
        self, stripe_id: str, *, for_update: bool = False
    ) -> StripeCustomer | None: ...

    async def find_customer_by_fxa_id(
        self, fxa_id: str, *, for_update: bool = False
    ) -> StripeCustomer | None:
        """The customer whose `fxa_id` equals `fxa_id` (unique, docs/contract.md §1.5)."""
        ...

    async def save_customer(self, customer: StripeCustomer) -> None:
        """Insert or replace; raise `UniqueConstraintViolation(["fxa_id"])` when another customer holds
        the FxA id."""
        ...

    async def delete_customer(self, stripe_id: str) -> None:
        """Delete the customer row only (its subscriptions and invoices stay)."""
        ...

    # prices
    async def get_price(self, stripe_id: str) -> StripePrice | None: ...

    async def save_price(self, price: StripePrice) -> None: ...

    # subscriptions and their items
    async def get_subscription(
        self, stripe_id: str, *, for_update: bool = False
    ) -> StripeSubscription | None: ...

    async def save_subscription(self, subscription: StripeSubscription) -> None: ...

    async def subscription_ids_of_customer(
        self, customer_id: str, *, for_update: bool = False
    ) -> list[str]:
        """Ids of the subscriptions whose `stripe_customer_id` is `customer_id`, sorted."""
        ...

    async def delete_subscriptions(self, stripe_ids: Collection[str]) -> None:
        """Delete these subscriptions and their subscription items."""
        ...

    async def get_subscription_item(
        self, stripe_id: str, *, for_update: bool = False
    ) -> StripeSubscriptionItem | None: ...

    async def save_subscription_item(self, item: StripeSubscriptionItem) -> None:
        """Insert or replace; the subscription and the price must exist (foreign keys, docs/contract.md §1.5)."""
        ...

    async def subscription_item_ids(
        self, subscription_id: str, *, for_update: bool = False
    ) -> list[str]:
        """Ids of the items of `subscription_id`, sorted."""
        ...

    async def delete_subscription_items(self, stripe_ids: Collection[str]) -> None: ...

    # invoices and their line items
    async def get_invoice(
        self, stripe_id: str, *, for_update: bool = False
    ) -> StripeInvoice | None: ...

    async def save_invoice(self, invoice: StripeInvoice) -> None: ...

    async def invoice_ids_of_customer(
        self, customer_id: str, *, for_update: bool = False
    ) -> list[str]:
        """Ids of the invoices whose `stripe_customer_id` is `customer_id`, sorted."""
        ...

    async def delete_invoices(self, stripe_ids: Collection[str]) -> None:
        """Delete these invoices and their line items."""
        ...

    async def get_invoice_line_item(
        self, stripe_id: str, *, for_update: bool = False
    ) -> StripeInvoiceLineItem | None: ...

    async def save_invoice_line_item(self, line_item: StripeInvoiceLineItem) -> None:
        """Insert or replace; the invoice and the price must exist (foreign keys, docs/contract.md §1.5)."""
        ...

    async def invoice_line_item_ids(
        self, invoice_id: str, *, for_update: bool = False
    ) -> list[str]:
        """Ids of the line items of `invoice_id`, sorted."""
        ...

    async def delete_invoice_line_items(self, stripe_ids: Collection[str]) -> None: ...

    # reads for the product-segment algorithm (docs/contract.md §8.5)
    async def accounts_for_fxa_ids(self, fxa_ids: Sequence[str]) -> dict[str, StripeAccount]:
        """For each FxA id that has a Stripe customer: the customer, its subscriptions, their items and
        the prices of those items. FxA ids without a customer are absent from the result."""
        ...


class StripeUnitOfWork(Protocol):
    """One transaction over the Stripe tables. Leaving the `async with` block without `commit()` rolls
    everything back. The application's main unit of work satisfies this by exposing `stripe`."""

    @property
    def stripe(self) -> StripeRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...
