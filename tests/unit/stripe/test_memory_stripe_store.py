"""The in-memory Stripe adapter: transactions, the unique FxA id, foreign keys, account reads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from ctms_adapters.memory.stripe import (
    ForeignKeyViolation,
    InMemoryStripeRepository,
    InMemoryStripeStore,
    InMemoryStripeUnitOfWork,
    StripeTables,
)
from ctms_core.domain.errors import UniqueConstraintViolation
from ctms_core.domain.stripe import (
    StripeCustomer,
    StripeInvoice,
    StripeInvoiceLineItem,
    StripePrice,
    StripeSubscription,
    StripeSubscriptionItem,
)
from ctms_core.ports.stripe import StripeRepository, StripeUnitOfWork

WHEN = datetime(2021, 6, 1, tzinfo=UTC)


def customer(stripe_id: str = "cus_1", fxa_id: str = "fxa-1") -> StripeCustomer:
    return StripeCustomer(stripe_id=stripe_id, fxa_id=fxa_id, stripe_created=WHEN)


def price(stripe_id: str = "price_1") -> StripePrice:
    return StripePrice(
        stripe_id=stripe_id, stripe_product_id="prod_1", stripe_created=WHEN, currency="usd"
    )


def subscription(stripe_id: str = "sub_1", customer_id: str = "cus_1") -> StripeSubscription:
    return StripeSubscription(
        stripe_id=stripe_id,
        stripe_customer_id=customer_id,
        stripe_created=WHEN,
        cancel_at_period_end=False,
        current_period_end=WHEN,
        current_period_start=WHEN,
        start_date=WHEN,
        status="active",
    )


def item(stripe_id: str = "si_1", subscription_id: str = "sub_1") -> StripeSubscriptionItem:
    return StripeSubscriptionItem(
        stripe_id=stripe_id,
        stripe_subscription_id=subscription_id,
        stripe_price_id="price_1",
        stripe_created=WHEN,
    )


def invoice(stripe_id: str = "in_1", customer_id: str = "cus_1") -> StripeInvoice:
    return StripeInvoice(
        stripe_id=stripe_id,
        stripe_customer_id=customer_id,
        stripe_created=WHEN,
        currency="usd",
        total=100,
        status="paid",
    )


def line(stripe_id: str = "il_1", invoice_id: str = "in_1") -> StripeInvoiceLineItem:
    return StripeInvoiceLineItem(
        stripe_id=stripe_id,
        stripe_invoice_id=invoice_id,
        stripe_type="subscription",
        stripe_price_id="price_1",
        amount=100,
        currency="usd",
    )


def test_memory_adapters_satisfy_the_ports(stripe_store: InMemoryStripeStore) -> None:
    """Typed assignments that mypy checks: the adapter implements both protocols."""
    uow: StripeUnitOfWork = InMemoryStripeUnitOfWork(stripe_store)
    repository: StripeRepository = InMemoryStripeRepository(StripeTables())
    assert uow is not None
    assert repository is not None


async def test_commit_publishes_and_leaving_without_commit_discards(
    stripe_uow_factory: Callable[[], StripeUnitOfWork], stripe_store: InMemoryStripeStore
) -> None:
    """Only `commit()` makes writes visible; an abandoned transaction leaves no trace."""
    async with stripe_uow_factory() as uow:
        await uow.stripe.save_customer(customer())
        await uow.commit()
    async with stripe_uow_factory() as uow:
        await uow.stripe.save_customer(customer("cus_2", "fxa-2"))

    assert list(stripe_store.tables.customers) == ["cus_1"]


async def test_rollback_discards_uncommitted_writes(
    stripe_uow_factory: Callable[[], StripeUnitOfWork],
) -> None:
    """`rollback()` returns to the committed state inside the same unit of work."""
    async with stripe_uow_factory() as uow:
        await uow.stripe.save_customer(customer())
        await uow.rollback()
        assert await uow.stripe.get_customer("cus_1") is None


async def test_fxa_id_is_unique(stripe_uow_factory: Callable[[], StripeUnitOfWork]) -> None:
    """Two customers cannot share an FxA id (`ix_stripe_customer_fxa_id`)."""
    async with stripe_uow_factory() as uow:
        await uow.stripe.save_customer(customer())
        with pytest.raises(UniqueConstraintViolation):
            await uow.stripe.save_customer(customer("cus_2"))
        found = await uow.stripe.find_customer_by_fxa_id("fxa-1", for_update=True)
        assert found == customer()


async def test_items_and_lines_need_their_parents(
    stripe_uow_factory: Callable[[], StripeUnitOfWork],
) -> None:
    """Foreign keys of docs/contract.md §1.5: items need their subscription and price, lines their invoice and price."""
    async with stripe_uow_factory() as uow:
        with pytest.raises(ForeignKeyViolation):
            await uow.stripe.save_subscription_item(item())
        with pytest.raises(ForeignKeyViolation):
            await uow.stripe.save_invoice_line_item(line())
        await uow.stripe.save_subscription(subscription())
        await uow.stripe.save_invoice(invoice())
        with pytest.raises(ForeignKeyViolation):
            await uow.stripe.save_subscription_item(item())
        with pytest.raises(ForeignKeyViolation):
            await uow.stripe.save_invoice_line_item(line())


async def test_deleting_parents_deletes_their_children(
    stripe_uow_factory: Callable[[], StripeUnitOfWork],
) -> None:
    """Deleting subscriptions/invoices removes their items/lines; prices stay."""
    async with stripe_uow_factory() as uow:
        repo = uow.stripe
        await repo.save_customer(customer())
        await repo.save_price(price())
        await repo.save_subscription(subscription())
        await repo.save_subscription_item(item())
        await repo.save_invoice(invoice())
        await repo.save_invoice_line_item(line())
        assert await repo.subscription_ids_of_customer("cus_1") == ["sub_1"]
        assert await repo.invoice_ids_of_customer("cus_1") == ["in_1"]

        await repo.delete_subscriptions(["sub_1"])
        await repo.delete_invoices(["in_1"])

        assert await repo.subscription_item_ids("sub_1") == []
        assert await repo.invoice_line_item_ids("in_1") == []
        assert await repo.get_price("price_1") == price()


async def test_accounts_hold_only_the_customers_own_rows(
    stripe_uow_factory: Callable[[], StripeUnitOfWork],
) -> None:
    """`accounts_for_fxa_ids` returns each customer's subscriptions, items and their prices only."""
    async with stripe_uow_factory() as uow:
        repo = uow.stripe
        await repo.save_customer(customer())
        await repo.save_customer(customer("cus_2", "fxa-2"))
        await repo.save_price(price())
        await repo.save_price(price("price_unused"))
        await repo.save_subscription(subscription())
        await repo.save_subscription(subscription("sub_2", "cus_2"))
        await repo.save_subscription_item(item())
        await repo.save_subscription_item(item("si_2", "sub_2"))

        accounts = await repo.accounts_for_fxa_ids(["fxa-1", "fxa-none"])

    assert list(accounts) == ["fxa-1"]
    account = accounts["fxa-1"]
    assert account.customer == customer()
    assert [s.stripe_id for s in account.subscriptions] == ["sub_1"]
    assert [i.stripe_id for i in account.items] == ["si_1"]
    assert [x.stripe_id for x in account.prices] == ["price_1"]
