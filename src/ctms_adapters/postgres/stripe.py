"""`StripeRepository` on PostgreSQL (docs/contract.md §1.5), on the unit of work's `TransactionScope`.

Locking reads (`for_update=True`) and writes begin the transaction; locks are taken in `stripe_id` order so
two ingesters of one customer queue behind each other instead of deadlocking. Every row is written with an
upsert (`INSERT … ON CONFLICT (stripe_id) DO UPDATE`): two transactions creating the same price both
succeed, and a row created concurrently is replaced instead of failing the transaction. Integrity errors,
deadlocks and serialization failures become the core's 409 errors (`write_conflicts`); a clash on the
unique FxA id of customers becomes `UniqueConstraintViolation(["fxa_id"])`, as the port says.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Table, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from ctms_adapters.postgres.tables import (
    stripe_customer,
    stripe_invoice,
    stripe_invoice_line_item,
    stripe_price,
    stripe_subscription,
    stripe_subscription_item,
)
from ctms_adapters.postgres.transaction import TransactionScope
from ctms_adapters.postgres.unavailable import reports_unavailability
from ctms_adapters.postgres.unique_violations import unique_constraint_of
from ctms_adapters.postgres.write_conflicts import reports_write_conflicts
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

Row = TypeVar("Row", bound=msgspec.Struct)

_FXA_ID_INDEX = "ix_stripe_customer_fxa_id"


def _values(row: msgspec.Struct) -> dict[str, Any]:
    values: dict[str, Any] = msgspec.structs.asdict(row)
    # The database fills in the CTMS timestamps the application did not set.
    for name in ("create_timestamp", "update_timestamp"):
        if values.get(name) is None:
            values.pop(name, None)
    return values


@reports_unavailability
@reports_write_conflicts
class PostgresStripeRepository:
    def __init__(self, scope: TransactionScope) -> None:
        self._scope = scope

    # --- helpers ---------------------------------------------------------------------------------------

    async def _one(
        self, table: Table, kind: type[Row], stripe_id: str, *, for_update: bool
    ) -> Row | None:
        query = select(table).where(table.c.stripe_id == stripe_id)
        if for_update:
            await self._scope.begin()
            query = query.with_for_update()
        row = (await self._scope.run(query)).mappings().first()
        return None if row is None else kind(**row)

    async def _ids(self, table: Table, column: str, value: str, *, for_update: bool) -> list[str]:
        query = (
            select(table.c.stripe_id).where(table.c[column] == value).order_by(table.c.stripe_id)
        )
        if for_update:
            await self._scope.begin()
            query = query.with_for_update()
        return list((await self._scope.run(query)).scalars())

    async def _upsert(self, table: Table, row: msgspec.Struct) -> None:
        values = _values(row)
        statement = insert(table).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.stripe_id],
            set_={name: statement.excluded[name] for name in values if name != "stripe_id"},
        )
        await self._scope.begin()
        await self._scope.run(statement)

    async def _delete(self, table: Table, column: str, values: Collection[str]) -> None:
        if not values:
            return
        await self._scope.begin()
        await self._scope.run(delete(table).where(table.c[column].in_(values)))

    # --- customers -------------------------------------------------------------------------------------

    async def get_customer(
        self, stripe_id: str, *, for_update: bool = False
    ) -> StripeCustomer | None:
        return await self._one(stripe_customer, StripeCustomer, stripe_id, for_update=for_update)

    async def find_customer_by_fxa_id(
        self, fxa_id: str, *, for_update: bool = False
    ) -> StripeCustomer | None:
        query = select(stripe_customer).where(stripe_customer.c.fxa_id == fxa_id)
        if for_update:
            await self._scope.begin()
            query = query.with_for_update()
        row = (await self._scope.run(query)).mappings().first()
        return None if row is None else StripeCustomer(**row)

    async def save_customer(self, customer: StripeCustomer) -> None:
        try:
            await self._upsert(stripe_customer, customer)
        except IntegrityError as error:
            if unique_constraint_of(error) == _FXA_ID_INDEX:
                raise UniqueConstraintViolation(["fxa_id"]) from error
            raise

    async def delete_customer(self, stripe_id: str) -> None:
        await self._delete(stripe_customer, "stripe_id", [stripe_id])

    # --- prices ----------------------------------------------------------------------------------------

    async def get_price(self, stripe_id: str) -> StripePrice | None:
        return await self._one(stripe_price, StripePrice, stripe_id, for_update=False)

    async def save_price(self, price: StripePrice) -> None:
        await self._upsert(stripe_price, price)

    # --- subscriptions and their items -----------------------------------------------------------------

    async def get_subscription(
        self, stripe_id: str, *, for_update: bool = False
    ) -> StripeSubscription | None:
        return await self._one(
            stripe_subscription, StripeSubscription, stripe_id, for_update=for_update
        )

    async def save_subscription(self, subscription: StripeSubscription) -> None:
        await self._upsert(stripe_subscription, subscription)

    async def subscription_ids_of_customer(
        self, customer_id: str, *, for_update: bool = False
    ) -> list[str]:
        return await self._ids(
            stripe_subscription, "stripe_customer_id", customer_id, for_update=for_update
        )

    async def delete_subscriptions(self, stripe_ids: Collection[str]) -> None:
        await self._delete(stripe_subscription_item, "stripe_subscription_id", stripe_ids)
        await self._delete(stripe_subscription, "stripe_id", stripe_ids)

    async def get_subscription_item(
        self, stripe_id: str, *, for_update: bool = False
    ) -> StripeSubscriptionItem | None:
        return await self._one(
            stripe_subscription_item, StripeSubscriptionItem, stripe_id, for_update=for_update
        )

    async def save_subscription_item(self, item: StripeSubscriptionItem) -> None:
        await self._upsert(stripe_subscription_item, item)

    async def subscription_item_ids(
        self, subscription_id: str, *, for_update: bool = False
    ) -> list[str]:
        return await self._ids(
            stripe_subscription_item,
            "stripe_subscription_id",
            subscription_id,
            for_update=for_update,
        )

    async def delete_subscription_items(self, stripe_ids: Collection[str]) -> None:
        await self._delete(stripe_subscription_item, "stripe_id", stripe_ids)

    # --- invoices and their line items -----------------------------------------------------------------

    async def get_invoice(
        self, stripe_id: str, *, for_update: bool = False
    ) -> StripeInvoice | None:
        return await self._one(stripe_invoice, StripeInvoice, stripe_id, for_update=for_update)

    async def save_invoice(self, invoice: StripeInvoice) -> None:
        await self._upsert(stripe_invoice, invoice)

    async def invoice_ids_of_customer(
        self, customer_id: str, *, for_update: bool = False
    ) -> list[str]:
        return await self._ids(
            stripe_invoice, "stripe_customer_id", customer_id, for_update=for_update
        )

    async def delete_invoices(self, stripe_ids: Collection[str]) -> None:
        await self._delete(stripe_invoice_line_item, "stripe_invoice_id", stripe_ids)
        await self._delete(stripe_invoice, "stripe_id", stripe_ids)

    async def get_invoice_line_item(
        self, stripe_id: str, *, for_update: bool = False
    ) -> StripeInvoiceLineItem | None:
        return await self._one(
            stripe_invoice_line_item, StripeInvoiceLineItem, stripe_id, for_update=for_update
        )

    async def save_invoice_line_item(self, line_item: StripeInvoiceLineItem) -> None:
        await self._upsert(stripe_invoice_line_item, line_item)

    async def invoice_line_item_ids(
        self, invoice_id: str, *, for_update: bool = False
    ) -> list[str]:
        return await self._ids(
            stripe_invoice_line_item, "stripe_invoice_id", invoice_id, for_update=for_update
        )

    async def delete_invoice_line_items(self, stripe_ids: Collection[str]) -> None:
        await self._delete(stripe_invoice_line_item, "stripe_id", stripe_ids)

    # --- products (docs/contract.md §8.5) --------------------------------------------------------------

    async def accounts_for_fxa_ids(self, fxa_ids: Sequence[str]) -> dict[str, StripeAccount]:
        """Four queries whatever the number of FxA ids: customers, subscriptions, items, prices."""
        if not fxa_ids:
            return {}
        execute = self._scope.run
        customers = [
            StripeCustomer(**row)
            for row in (
                await execute(
                    select(stripe_customer).where(stripe_customer.c.fxa_id.in_(set(fxa_ids)))
                )
            ).mappings()
        ]
        if not customers:
            return {}
        subscriptions = [
            StripeSubscription(**row)
            for row in (
                await execute(
                    select(stripe_subscription)
                    .where(
                        stripe_subscription.c.stripe_customer_id.in_(
                            [c.stripe_id for c in customers]
                        )
                    )
                    .order_by(stripe_subscription.c.stripe_id)
                )
            ).mappings()
        ]
        items: list[StripeSubscriptionItem] = []
        if subscriptions:
            items = [
                StripeSubscriptionItem(**row)
                for row in (
                    await execute(
                        select(stripe_subscription_item)
                        .where(
                            stripe_subscription_item.c.stripe_subscription_id.in_(
                                [s.stripe_id for s in subscriptions]
                            )
                        )
                        .order_by(stripe_subscription_item.c.stripe_id)
                    )
                ).mappings()
            ]
        prices: dict[str, StripePrice] = {}
        if items:
            prices = {
                row["stripe_id"]: StripePrice(**row)
                for row in (
                    await execute(
                        select(stripe_price).where(
                            stripe_price.c.stripe_id.in_({i.stripe_price_id for i in items})
                        )
                    )
                ).mappings()
            }
        accounts: dict[str, StripeAccount] = {}
        for customer in customers:
            held = tuple(s for s in subscriptions if s.stripe_customer_id == customer.stripe_id)
            held_ids = {s.stripe_id for s in held}
            held_items = tuple(i for i in items if i.stripe_subscription_id in held_ids)
            price_ids = sorted({i.stripe_price_id for i in held_items})
            accounts[customer.fxa_id] = StripeAccount(
                customer=customer,
                subscriptions=held,
                items=held_items,
                prices=tuple(prices[p] for p in price_ids if p in prices),
            )
        return accounts
