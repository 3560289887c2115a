"""StripeIngestService on the in-memory store: the ingesters of docs/contract.md §8.2, §8.3, §8.5, §18.3."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ctms_adapters.memory import ManualClock
from ctms_adapters.memory.stripe import (
    InMemoryStripeStore,
    InMemoryStripeUnitOfWork,
    StripeTables,
)
from ctms_core.domain.errors import UniqueConstraintViolation, WriteConflictError
from ctms_core.domain.stripe import (
    StripeObjectError,
    StripeRequestNotRecognized,
    UnknownStripeObject,
)
from ctms_core.services.stripe import StripeIngestService
from tests.unit.stripe import payloads as p
from tests.unit.stripe.conftest import sample


def ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def snapshot(store: InMemoryStripeStore) -> StripeTables:
    return store.tables.copy()


@pytest.fixture
def ingest(stripe_service: StripeIngestService, clock: ManualClock) -> Any:
    async def run(data: Any) -> Any:
        clock.advance(timedelta(seconds=1))
        return await stripe_service.ingest(data)

    return run


# --- the three reference samples ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["customer_01", "subscription_01", "invoice_01"])
async def test_each_reference_sample_ingests_then_replays_as_no_change(
    ingest: Any, stripe_store: InMemoryStripeStore, name: str
) -> None:
    """Every sample is created, and ingesting it again changes nothing (idempotent)."""
    first = await ingest(sample(name))
    assert set(first.actions) == {"created"}
    before = snapshot(stripe_store)

    replay = await ingest(sample(name))

    assert set(replay.actions) == {"no_change"}
    assert replay.actions["no_change"] == first.actions["created"]
    assert not replay.changed
    assert snapshot(stripe_store) == before


# --- customers ---------------------------------------------------------------------------------------------


async def test_new_customer_is_created_with_its_columns(
    ingest: Any, stripe_store: InMemoryStripeStore, clock: ManualClock
) -> None:
    """A new customer stores its FxA id (description), sources and Stripe creation time."""
    result = await ingest(p.customer())

    assert result.actions == {"created": [f"customer:{p.CUSTOMER_ID}"]}
    assert result.fxa_ids == (p.FXA_ID,)
    assert result.customer_email == "customer_001@example.com"
    assert result.fxa_id_conflict is None
    assert (result.object_type, result.stripe_id) == ("customer", p.CUSTOMER_ID)
    stored = stripe_store.tables.customers[p.CUSTOMER_ID]
    assert stored.fxa_id == p.FXA_ID
    assert stored.default_source_id is None
    assert stored.invoice_settings_default_payment_method_id == "pm_cGF5bWVudGkgbWV0aG9kIDEK"
    assert stored.stripe_created == ts(1622844943)
    assert stored.deleted is False
    assert stored.create_timestamp == stored.update_timestamp == clock.now()


async def test_customer_update_sets_stripe_created_and_reports_updated(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """Fix of docs/contract.md §8.3: `created` reaches `stripe_created`; only the update timestamp moves."""
    await ingest(p.customer())
    created = stripe_store.tables.customers[p.CUSTOMER_ID]

    result = await ingest(p.customer(created=1622844999, default_source="src_1"))

    assert result.actions == {"updated": [f"customer:{p.CUSTOMER_ID}"]}
    stored = stripe_store.tables.customers[p.CUSTOMER_ID]
    assert stored.stripe_created == ts(1622844999)
    assert stored.default_source_id == "src_1"
    assert stored.create_timestamp == created.create_timestamp
    assert stored.update_timestamp is not None
    assert created.update_timestamp is not None
    assert stored.update_timestamp > created.update_timestamp


async def test_customer_replay_is_no_change_and_keeps_timestamps(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """An identical customer payload reports `no_change` (v3.3 always said `updated`)."""
    await ingest(p.customer())
    before = stripe_store.tables.customers[p.CUSTOMER_ID]

    result = await ingest(p.customer())

    assert result.actions == {"no_change": [f"customer:{p.CUSTOMER_ID}"]}
    assert stripe_store.tables.customers[p.CUSTOMER_ID] == before
    assert result.fxa_ids == (p.FXA_ID,)


async def test_new_customer_without_description_is_rejected(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """The FxA id is required: a customer without `description` is a 400, nothing is stored."""
    data = p.customer()
    del data["description"]

    with pytest.raises(StripeObjectError) as raised:
        await ingest(data)

    assert raised.value.detail == "Unable to process Stripe object."
    assert "description" in raised.value.reason
    assert stripe_store.tables.customers == {}


async def test_customer_update_without_description_is_rejected_not_a_write_conflict(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """Fix of docs/contract.md §8.3: validation, not a NOT NULL violation at commit; the row stays."""
    await ingest(p.customer())
    before = snapshot(stripe_store)

    with pytest.raises(StripeObjectError):
        await ingest(p.customer(description=None))

    assert snapshot(stripe_store) == before


async def test_deleted_unknown_customer_is_skipped_and_not_stored(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """A deletion of a customer CTMS never saw is reported `skipped` (docs/contract.md §8)."""
    result = await ingest(p.deleted_customer())

    assert result.actions == {"skipped": [f"customer:{p.CUSTOMER_ID}"]}
    assert result.fxa_ids == ()
    assert stripe_store.tables.customers == {}


async def test_deleted_known_customer_is_marked_deleted_keeping_its_columns(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """A deletion sets `deleted` only; replaying it is `no_change`."""
    await ingest(p.customer())
    before = stripe_store.tables.customers[p.CUSTOMER_ID]

    result = await ingest(p.deleted_customer())
    replay = await ingest(p.deleted_customer())

    assert result.actions == {"updated": [f"customer:{p.CUSTOMER_ID}"]}
    assert result.fxa_ids == (p.FXA_ID,)
    assert replay.actions == {"no_change": [f"customer:{p.CUSTOMER_ID}"]}
    stored = stripe_store.tables.customers[p.CUSTOMER_ID]
    assert stored.deleted is True
    assert (
        stored.fxa_id,
        stored.stripe_created,
        stored.invoice_settings_default_payment_method_id,
    ) == (
        before.fxa_id,
        before.stripe_created,
        before.invoice_settings_default_payment_method_id,
    )


async def test_deleted_customer_is_never_undeleted_by_a_late_event(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """A non-deleted payload arriving after the deletion updates data but keeps `deleted`."""
    await ingest(p.customer())
    await ingest(p.deleted_customer())

    await ingest(p.customer(default_source="src_late"))

    stored = stripe_store.tables.customers[p.CUSTOMER_ID]
    assert stored.deleted is True
    assert stored.default_source_id == "src_late"


async def test_customer_changing_fxa_id_touches_both_contacts(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """When a customer moves to another FxA id, both contacts need a resync."""
    await ingest(p.customer())

    result = await ingest(p.customer(description="fxa-new"))

    assert result.actions == {"updated": [f"customer:{p.CUSTOMER_ID}"]}
    assert result.fxa_ids == tuple(sorted((p.FXA_ID, "fxa-new")))
    assert stripe_store.tables.customers[p.CUSTOMER_ID].fxa_id == "fxa-new"


async def test_expanded_references_are_stored_by_id(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """An expanded object where Stripe usually sends an id is stored as that id."""
    data = p.customer(default_source={"id": "card_1", "object": "card"})
    data["invoice_settings"]["default_payment_method"] = {"id": "pm_2", "object": "payment_method"}

    await ingest(data)

    stored = stripe_store.tables.customers[p.CUSTOMER_ID]
    assert (stored.default_source_id, stored.invoice_settings_default_payment_method_id) == (
        "card_1",
        "pm_2",
    )


# --- FxA-id conflicts --------------------------------------------------------------------------------------


async def _old_customer_with_everything(ingest: Any) -> None:
    await ingest(p.customer(id="cus_old"))
    await ingest(p.subscription(customer="cus_old"))
    await ingest(p.invoice(customer="cus_old", subscription=p.SUBSCRIPTION_ID))


async def test_fxa_id_conflict_deletes_the_other_customer_and_its_data(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """Fix of docs/contract.md §8.3: the previous holder of the FxA id goes with its subscriptions, items,
    invoices and line items; prices stay; the new customer is created."""
    await _old_customer_with_everything(ingest)

    result = await ingest(p.customer(id="cus_new"))

    assert result.actions == {
        "created": ["customer:cus_new"],
        "deleted": [
            "customer:cus_old",
            f"invoice:{p.INVOICE_ID}",
            f"line_item:{p.LINE_ID}",
            f"subscription:{p.SUBSCRIPTION_ID}",
            f"subscription_item:{p.ITEM_ID}",
        ],
    }
    assert result.fxa_id_conflict == p.FXA_ID
    assert result.fxa_ids == (p.FXA_ID,)
    tables = stripe_store.tables
    assert list(tables.customers) == ["cus_new"]
    assert tables.subscriptions == {}
    assert tables.subscription_items == {}
    assert tables.invoices == {}
    assert tables.invoice_line_items == {}
    assert set(tables.prices) == {p.PRICE_ID, p.INVOICE_PRICE_ID}


async def test_fxa_id_conflict_with_a_bare_customer_reports_created_and_deleted(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """The log of docs/contract.md §8: `{"created":["customer:<new>"],"deleted":["customer:<old>"]}`."""
    await ingest(p.customer(id="cus_old"))

    result = await ingest(p.customer(id="cus_new"))

    assert result.actions == {"created": ["customer:cus_new"], "deleted": ["customer:cus_old"]}
    assert result.fxa_id_conflict == p.FXA_ID


async def test_existing_customer_taking_a_held_fxa_id_resolves_the_conflict(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """A known customer switching to an FxA id another customer holds also removes that customer."""
    await ingest(p.customer(id="cus_a", description="fxa-a"))
    await ingest(p.customer(id="cus_b", description="fxa-b"))

    result = await ingest(p.customer(id="cus_a", description="fxa-b"))

    assert result.actions == {"deleted": ["customer:cus_b"], "updated": ["customer:cus_a"]}
    assert result.fxa_id_conflict == "fxa-b"
    assert result.fxa_ids == ("fxa-a", "fxa-b")
    assert {c.stripe_id: c.fxa_id for c in stripe_store.tables.customers.values()} == {
        "cus_a": "fxa-b"
    }


async def test_deletion_payload_never_triggers_a_conflict(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """A deleted customer carrying another customer's FxA id does not delete that customer."""
    await ingest(p.customer(id="cus_holder"))

    result = await ingest(p.deleted_customer("cus_gone", description=p.FXA_ID))

    assert result.actions == {"skipped": ["customer:cus_gone"]}
    assert result.fxa_id_conflict is None
    assert list(stripe_store.tables.customers) == ["cus_holder"]


# --- subscriptions, items, prices --------------------------------------------------------------------------


async def test_new_subscription_creates_subscription_item_and_price(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """docs/contract.md §8.4: new subscription → created {subscription, subscription_item, price}."""
    result = await ingest(p.subscription())

    assert result.actions == {
        "created": [
            f"price:{p.PRICE_ID}",
            f"subscription:{p.SUBSCRIPTION_ID}",
            f"subscription_item:{p.ITEM_ID}",
        ]
    }
    assert result.fxa_ids == ()  # its customer is not known yet
    tables = stripe_store.tables
    sub = tables.subscriptions[p.SUBSCRIPTION_ID]
    assert sub.stripe_customer_id == p.SUBSCRIPTION_CUSTOMER_ID
    assert sub.status == "active"
    assert sub.canceled_at is None
    assert sub.ended_at is None
    assert sub.cancel_at_period_end is False
    assert sub.current_period_end == ts(1635237953)
    assert sub.current_period_start == ts(1635151553)
    assert sub.start_date == sub.stripe_created == ts(1623833153)
    item = tables.subscription_items[p.ITEM_ID]
    assert (item.stripe_subscription_id, item.stripe_price_id) == (p.SUBSCRIPTION_ID, p.PRICE_ID)
    assert item.stripe_created == ts(1623833154)
    price = tables.prices[p.PRICE_ID]
    assert price.stripe_product_id == p.PRODUCT_ID
    assert (price.currency, price.unit_amount, price.active) == ("usd", 100, True)
    assert (price.recurring_interval, price.recurring_interval_count) == ("day", 1)


async def test_subscription_of_a_known_customer_touches_its_contact(ingest: Any) -> None:
    """The result names the FxA id reached through the subscription's customer."""
    await ingest(p.customer(id=p.SUBSCRIPTION_CUSTOMER_ID))

    result = await ingest(p.subscription())

    assert result.fxa_ids == (p.FXA_ID,)


async def test_subscription_switched_to_new_item_and_price(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """docs/contract.md §8.4: created {new item, new price}, updated {subscription}, deleted {old item}."""
    await ingest(p.subscription())
    new_item = p.subscription_item("si_new", item_price=p.price("price_new"))

    result = await ingest(p.subscription(with_items=[new_item], current_period_end=1635237999))

    assert result.actions == {
        "created": ["price:price_new", "subscription_item:si_new"],
        "deleted": [f"subscription_item:{p.ITEM_ID}"],
        "updated": [f"subscription:{p.SUBSCRIPTION_ID}"],
    }
    assert list(stripe_store.tables.subscription_items) == ["si_new"]
    assert set(stripe_store.tables.prices) == {p.PRICE_ID, "price_new"}


async def test_orphan_items_are_deleted_even_when_the_subscription_is_unchanged(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """Items missing from the payload are deleted; the subscription itself reports no_change."""
    extra = p.subscription_item("si_extra")
    await ingest(p.subscription(with_items=[p.subscription_item(), extra]))

    result = await ingest(p.subscription())

    assert result.actions == {
        "deleted": ["subscription_item:si_extra"],
        "no_change": [
            f"price:{p.PRICE_ID}",
            f"subscription:{p.SUBSCRIPTION_ID}",
            f"subscription_item:{p.ITEM_ID}",
        ],
    }
    assert result.changed
    assert list(stripe_store.tables.subscription_items) == [p.ITEM_ID]


async def test_subscription_cancellation_updates_only_the_subscription(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """docs/contract.md §8.4: cancellation → updated {subscription}, no_change {price, item}."""
    await ingest(p.subscription())

    result = await ingest(p.subscription(cancel_at_period_end=True, canceled_at=1635237000))

    assert result.actions == {
        "no_change": [f"price:{p.PRICE_ID}", f"subscription_item:{p.ITEM_ID}"],
        "updated": [f"subscription:{p.SUBSCRIPTION_ID}"],
    }
    sub = stripe_store.tables.subscriptions[p.SUBSCRIPTION_ID]
    assert sub.cancel_at_period_end is True
    assert sub.canceled_at == ts(1635237000)


async def test_price_deactivated_through_a_subscription(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """docs/contract.md §8.4: price deactivated → updated {price}, no_change {subscription, item}."""
    await ingest(p.subscription())
    item = p.subscription_item(item_price=p.price(active=False))

    result = await ingest(p.subscription(with_items=[item]))

    assert result.actions == {
        "no_change": [f"subscription:{p.SUBSCRIPTION_ID}", f"subscription_item:{p.ITEM_ID}"],
        "updated": [f"price:{p.PRICE_ID}"],
    }
    assert stripe_store.tables.prices[p.PRICE_ID].active is False


async def test_paused_subscription_is_accepted(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """Fix of docs/contract.md §8.3: Stripe's `paused` status is valid."""
    await ingest(p.subscription(status="paused"))

    assert stripe_store.tables.subscriptions[p.SUBSCRIPTION_ID].status == "paused"


async def test_invalid_subscription_status_is_rejected_on_create(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """An unknown status on a new subscription is a 400 and nothing is stored (not even the price)."""
    with pytest.raises(StripeObjectError) as raised:
        await ingest(p.subscription(status="exploded"))

    assert "status" in raised.value.reason
    assert snapshot(stripe_store) == StripeTables()


async def test_invalid_subscription_status_is_rejected_on_update(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """Fix of docs/contract.md §8.3: enumerations are validated on update too; the stored row stays."""
    await ingest(p.subscription())
    before = snapshot(stripe_store)

    with pytest.raises(StripeObjectError):
        await ingest(p.subscription(status="exploded"))

    assert snapshot(stripe_store) == before


async def test_subscription_missing_a_required_key_is_rejected(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """Required keys must be present even when their value may be null (docs/contract.md §8.3)."""
    data = p.subscription()
    del data["ended_at"]

    with pytest.raises(StripeObjectError) as raised:
        await ingest(data)

    assert "ended_at" in raised.value.reason
    assert snapshot(stripe_store) == StripeTables()


async def test_invalid_embedded_item_rejects_the_whole_subscription(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """A bad second item leaves nothing behind: the object is validated before any write."""
    bad = p.subscription_item("si_bad", item_price=p.price("price_bad", currency="dollars"))

    with pytest.raises(StripeObjectError):
        await ingest(p.subscription(with_items=[p.subscription_item(), bad]))

    assert snapshot(stripe_store) == StripeTables()


async def test_item_of_another_subscription_inside_a_subscription_is_rejected(ingest: Any) -> None:
    """An item claiming another parent subscription is inconsistent data."""
    data = p.subscription()
    data["items"]["data"][0]["subscription"] = "sub_other"

    with pytest.raises(StripeObjectError):
        await ingest(data)


async def test_standalone_subscription_item_of_a_known_subscription(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """A subscription item posted alone upserts its price, then itself."""
    await ingest(p.customer(id=p.SUBSCRIPTION_CUSTOMER_ID))
    await ingest(p.subscription())

    created = await ingest(p.subscription_item("si_two", item_price=p.price("price_two")))
    replay = await ingest(p.subscription_item("si_two", item_price=p.price("price_two")))

    assert created.actions == {"created": ["price:price_two", "subscription_item:si_two"]}
    assert created.fxa_ids == (p.FXA_ID,)
    assert replay.actions == {"no_change": ["price:price_two", "subscription_item:si_two"]}
    assert stripe_store.tables.subscription_items["si_two"].stripe_price_id == "price_two"


async def test_standalone_subscription_item_of_an_unknown_subscription_is_rejected(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """The item table references its subscription: an unknown one is a 400, nothing stored."""
    with pytest.raises(StripeObjectError) as raised:
        await ingest(p.subscription_item(subscription_id="sub_unknown"))

    assert "sub_unknown" in raised.value.reason
    assert snapshot(stripe_store) == StripeTables()


async def test_standalone_price_create_update_and_no_change(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """A price is created, updated on a change, and `no_change` on replay; it touches no contact."""
    created = await ingest(p.price())
    updated = await ingest(p.price(unit_amount=200))
    replay = await ingest(p.price(unit_amount=200))

    assert created.actions == {"created": [f"price:{p.PRICE_ID}"]}
    assert updated.actions == {"updated": [f"price:{p.PRICE_ID}"]}
    assert replay.actions == {"no_change": [f"price:{p.PRICE_ID}"]}
    assert created.fxa_ids == updated.fxa_ids == ()
    assert stripe_store.tables.prices[p.PRICE_ID].unit_amount == 200


async def test_one_time_price_without_recurring(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """`recurring: null` (one-time price) and a null `unit_amount` (tiered) are stored as nulls."""
    await ingest(p.price(recurring=None, unit_amount=None, currency="EUR"))

    stored = stripe_store.tables.prices[p.PRICE_ID]
    assert (stored.recurring_interval, stored.recurring_interval_count, stored.unit_amount) == (
        None,
        None,
        None,
    )
    assert stored.currency == "eur"


@pytest.mark.parametrize(
    "override",
    [
        {"currency": "us"},
        {"currency": 840},
        {"active": "yes"},
        {"created": 0},
        {"created": "yesterday"},
        {"recurring": {"interval": "fortnight", "interval_count": 1}},
        {"unit_amount": "100"},
        {"product": None},
    ],
)
async def test_invalid_price_is_rejected(ingest: Any, override: dict[str, Any]) -> None:
    """Price validation: currency, booleans, timestamps, interval enumeration, integers, product."""
    with pytest.raises(StripeObjectError):
        await ingest(p.price(**override))


# --- invoices and line items -------------------------------------------------------------------------------


async def test_new_invoice_creates_invoice_line_item_and_price(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """A new invoice stores its columns, its line items and their prices."""
    result = await ingest(p.invoice(default_source="src_inv"))

    assert result.actions == {
        "created": [
            f"invoice:{p.INVOICE_ID}",
            f"line_item:{p.LINE_ID}",
            f"price:{p.INVOICE_PRICE_ID}",
        ]
    }
    tables = stripe_store.tables
    invoice = tables.invoices[p.INVOICE_ID]
    assert invoice.stripe_customer_id == p.INVOICE_CUSTOMER_ID
    assert (invoice.currency, invoice.total, invoice.status) == ("eur", 100, "paid")
    assert invoice.stripe_created == ts(1635161071)
    assert invoice.default_source_id == "src_inv"  # fix of docs/contract.md §8.3
    line = tables.invoice_line_items[p.LINE_ID]
    assert line.stripe_invoice_id == p.INVOICE_ID
    assert (line.stripe_type, line.amount, line.currency) == ("subscription", 100, "eur")
    assert line.stripe_price_id == p.INVOICE_PRICE_ID
    assert line.stripe_subscription_id == "sub_aW52b2ljZV8wMDEK"
    assert line.stripe_subscription_item_id == "si_aW52b2ljZV8wMDEK"
    assert line.stripe_invoice_item_id is None


async def test_invoice_of_a_known_customer_touches_its_contact(ingest: Any) -> None:
    """The result names the FxA id reached through the invoice's customer."""
    await ingest(p.customer(id=p.INVOICE_CUSTOMER_ID))

    result = await ingest(p.invoice())

    assert result.fxa_ids == (p.FXA_ID,)


async def test_invoice_status_change(ingest: Any, stripe_store: InMemoryStripeStore) -> None:
    """docs/contract.md §8.4: invoice status change → updated {invoice}, no_change {line item, price}."""
    await ingest(p.invoice(status="open"))

    result = await ingest(p.invoice(status="paid"))

    assert result.actions == {
        "no_change": [f"line_item:{p.LINE_ID}", f"price:{p.INVOICE_PRICE_ID}"],
        "updated": [f"invoice:{p.INVOICE_ID}"],
    }
    assert stripe_store.tables.invoices[p.INVOICE_ID].status == "paid"


async def test_replaced_invoice_line(ingest: Any, stripe_store: InMemoryStripeStore) -> None:
    """docs/contract.md §8.4: replaced line → created {new line}, no_change {invoice, price}, deleted {old line}."""
    await ingest(p.invoice())

    result = await ingest(p.invoice(with_lines=[p.line_item("il_new")]))

    assert result.actions == {
        "created": ["line_item:il_new"],
        "deleted": [f"line_item:{p.LINE_ID}"],
        "no_change": [f"invoice:{p.INVOICE_ID}", f"price:{p.INVOICE_PRICE_ID}"],
    }
    assert list(stripe_store.tables.invoice_line_items) == ["il_new"]


async def test_uncollectible_invoice_is_accepted(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """Fix of docs/contract.md §8.3: Stripe spells it `uncollectible`."""
    await ingest(p.invoice(status="uncollectible"))

    assert stripe_store.tables.invoices[p.INVOICE_ID].status == "uncollectible"


async def test_misspelled_invoice_status_is_rejected_on_create(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """v3.3's `uncollectable` is not a Stripe value."""
    with pytest.raises(StripeObjectError):
        await ingest(p.invoice(status="uncollectable"))

    assert snapshot(stripe_store) == StripeTables()


async def test_invalid_invoice_status_is_rejected_on_update(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """Enumerations are validated for known invoices too; the stored invoice stays."""
    await ingest(p.invoice())
    before = snapshot(stripe_store)

    with pytest.raises(StripeObjectError):
        await ingest(p.invoice(status="lost"))

    assert snapshot(stripe_store) == before


async def test_invalid_line_item_type_is_rejected(ingest: Any) -> None:
    """A line item type outside `subscription|invoiceitem` is refused."""
    with pytest.raises(StripeObjectError):
        await ingest(p.invoice(with_lines=[p.line_item(type="credit")]))


async def test_line_item_with_wrong_object_is_rejected(ingest: Any) -> None:
    """Elements of `lines.data` must be line items (v3.3 asserted, a 500)."""
    with pytest.raises(StripeObjectError):
        await ingest(p.invoice(with_lines=[p.line_item(object="invoiceitem")]))


# --- dispatch ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("object_type", ["payment_method", "line_item", "plan"])
async def test_unsupported_object_type_is_unknown(
    ingest: Any, stripe_store: InMemoryStripeStore, object_type: str
) -> None:
    """An object type CTMS does not ingest raises `UnknownStripeObject` carrying its skip label."""
    with pytest.raises(UnknownStripeObject) as raised:
        await ingest({"object": object_type, "id": "x_ABC123"})

    assert raised.value.label == f"{object_type}:x_ABC123"
    assert (raised.value.object_type, raised.value.stripe_id) == (object_type, "x_ABC123")
    assert "x_ABC123" not in raised.value.detail
    assert snapshot(stripe_store) == StripeTables()


@pytest.mark.parametrize(
    "body",
    [
        {"email": "someone@example.com"},
        {"object": "customer"},
        {"id": "cus_1"},
        {"object": None, "id": "cus_1"},
        ["customer"],
        "customer",
        None,
    ],
)
async def test_body_without_object_or_id_is_not_recognized(ingest: Any, body: Any) -> None:
    """docs/contract.md §8.1: `Request JSON is not recognized.`"""
    with pytest.raises(StripeRequestNotRecognized) as raised:
        await ingest(body)

    assert raised.value.detail == "Request JSON is not recognized."


async def test_products_after_ingesting_a_customer_and_its_subscription(
    ingest: Any, stripe_service: StripeIngestService
) -> None:
    """`products_for` computes the docs/contract.md §8.5 records from what was ingested."""
    await ingest(p.customer(id=p.SUBSCRIPTION_CUSTOMER_ID))
    await ingest(p.subscription())

    products = await stripe_service.products_for(p.FXA_ID)

    assert [(x.product_id, x.segment, x.sub_count, x.price_id) for x in products] == [
        (p.PRODUCT_ID, "active", 1, p.PRICE_ID)
    ]
    assert products[0].changed == ts(1623833153)
    assert await stripe_service.products_for("fxa-unknown") == []
    many = await stripe_service.products_for_many([p.FXA_ID, "fxa-unknown"])
    assert many == {p.FXA_ID: products, "fxa-unknown": []}


async def test_failed_ingest_leaves_earlier_commits_alone(
    ingest: Any, stripe_store: InMemoryStripeStore
) -> None:
    """One object, one transaction: a later failure does not undo an earlier object."""
    await ingest(p.customer())

    with pytest.raises(StripeObjectError):
        await ingest(p.subscription(status="exploded"))

    assert list(stripe_store.tables.customers) == [p.CUSTOMER_ID]
    assert stripe_store.tables.subscriptions == {}


# --- write conflicts ---------------------------------------------------------------------------------------


class ConflictAtCommit(InMemoryStripeUnitOfWork):
    """A unit of work whose commit finds that a concurrent transaction wrote the same rows first."""

    async def commit(self) -> None:
        raise WriteConflictError() from UniqueConstraintViolation(("fxa_id",))


async def test_a_write_conflict_is_logged_as_an_error_without_the_customer_data(
    stripe_store: InMemoryStripeStore, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Operators see conflict storms: each conflict answered 409 is an ERROR naming the object, not its
    data (the customer's address)."""
    service = StripeIngestService(lambda: ConflictAtCommit(stripe_store), clock)
    data = sample("customer_01")
    with caplog.at_level(logging.INFO, logger="ctms.stripe"), pytest.raises(WriteConflictError):
        await service.ingest(data)
    (record,) = [r for r in caplog.records if r.name == "ctms.stripe"]
    assert record.levelno == logging.ERROR
    assert record.stripe_object == f"customer:{data['id']}"  # type: ignore[attr-defined]
    assert data["email"] not in repr(record.__dict__)
