"""The product-segment algorithm of docs/contract.md §8.5; docs/compatibility.md §2 (docs/contract.md §8.5)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from ctms_core.domain.segments import compute_products, segment_and_changed
from ctms_core.domain.stripe import (
    StripeAccount,
    StripeCustomer,
    StripePrice,
    StripeSubscription,
    StripeSubscriptionItem,
)

CUSTOMER = StripeCustomer(
    stripe_id="cus_1", fxa_id="fxa-1", stripe_created=datetime(2021, 1, 1, tzinfo=UTC)
)


def day(month: int, day_: int) -> datetime:
    return datetime(2021, month, day_, tzinfo=UTC)


def make_price(stripe_id: str, product_id: str = "prod_P", **overrides: Any) -> StripePrice:
    values: dict[str, Any] = {
        "stripe_id": stripe_id,
        "stripe_product_id": product_id,
        "stripe_created": day(1, 1),
        "currency": "usd",
        "recurring_interval": "month",
        "recurring_interval_count": 1,
        "unit_amount": 999,
    }
    values.update(overrides)
    return StripePrice(**values)


def make_subscription(stripe_id: str, **overrides: Any) -> StripeSubscription:
    values: dict[str, Any] = {
        "stripe_id": stripe_id,
        "stripe_customer_id": CUSTOMER.stripe_id,
        "stripe_created": day(1, 2),
        "cancel_at_period_end": False,
        "current_period_start": day(9, 1),
        "current_period_end": day(10, 1),
        "start_date": day(1, 3),
        "status": "active",
    }
    values.update(overrides)
    return StripeSubscription(**values)


def make_item(stripe_id: str, subscription_id: str, price_id: str) -> StripeSubscriptionItem:
    return StripeSubscriptionItem(
        stripe_id=stripe_id,
        stripe_subscription_id=subscription_id,
        stripe_price_id=price_id,
        stripe_created=day(1, 2),
    )


@dataclass
class Case:
    """A customer's subscriptions, one item per (subscription, price) pair given in `holdings`."""

    subscriptions: list[StripeSubscription]
    holdings: list[tuple[str, str]]  # (subscription id, price id)
    prices: list[StripePrice] = field(default_factory=lambda: [make_price("price_1")])

    def account(self) -> StripeAccount:
        items = tuple(
            make_item(f"si_{n}", sub_id, price_id)
            for n, (sub_id, price_id) in enumerate(self.holdings)
        )
        return StripeAccount(
            customer=CUSTOMER,
            subscriptions=tuple(self.subscriptions),
            items=items,
            prices=tuple(self.prices),
        )


OLD = {"current_period_start": day(5, 1), "current_period_end": day(6, 1)}
OLD_CANCELED = {
    **OLD,
    "status": "canceled",
    "canceled_at": day(5, 20),
    "ended_at": day(6, 1),
}
TWO_PRICES = [make_price("price_1"), make_price("price_2")]

# (case id, Case, expected segment, expected changed, expected sub_count)
SEGMENT_TABLE: list[tuple[str, Case, str, datetime, int]] = [
    (
        "1 active",
        Case([make_subscription("sub_a")], [("sub_a", "price_1")]),
        "active",
        day(1, 3),
        1,
    ),
    (
        "2 cancelling",
        Case(
            [make_subscription("sub_a", canceled_at=day(10, 29), cancel_at_period_end=True)],
            [("sub_a", "price_1")],
        ),
        "cancelling",
        day(10, 29),
        1,
    ),
    (
        "3 canceled",
        Case(
            [
                make_subscription(
                    "sub_a", status="canceled", canceled_at=day(10, 1), ended_at=day(10, 29)
                )
            ],
            [("sub_a", "price_1")],
        ),
        "canceled",
        day(10, 29),
        1,
    ),
    (
        "5 re-active",
        Case(
            [
                make_subscription("sub_old", **OLD_CANCELED),
                make_subscription("sub_new", start_date=day(6, 2)),
            ],
            [("sub_old", "price_1"), ("sub_new", "price_2")],
            TWO_PRICES,
        ),
        "re-active",
        day(6, 2),
        2,
    ),
    (
        "6 re-cancelling",
        Case(
            [
                make_subscription("sub_old", **OLD_CANCELED),
                make_subscription("sub_new", canceled_at=day(9, 15)),
            ],
            [("sub_old", "price_1"), ("sub_new", "price_1")],
        ),
        "re-cancelling",
        day(9, 15),
        2,
    ),
    (
        "7 re-canceled",
        Case(
            [
                make_subscription("sub_old", **OLD_CANCELED),
                make_subscription(
                    "sub_new", status="canceled", canceled_at=day(9, 15), ended_at=day(10, 1)
                ),
            ],
            [("sub_old", "price_1"), ("sub_new", "price_1")],
        ),
        "re-canceled",
        day(10, 1),
        2,
    ),
    (
        "8 other is never prefixed",
        Case(
            [
                make_subscription("sub_old", **OLD_CANCELED),
                make_subscription("sub_new", status="past_due", stripe_created=day(8, 8)),
            ],
            [("sub_old", "price_1"), ("sub_new", "price_1")],
        ),
        "other",
        day(8, 8),
        2,
    ),
    (
        "9 one subscription holding two items of the product",
        Case(
            [make_subscription("sub_a")],
            [("sub_a", "price_1"), ("sub_a", "price_2")],
            TWO_PRICES,
        ),
        "active",
        day(1, 3),
        1,
    ),
    (
        "fallback: canceled without ended_at uses canceled_at",
        Case(
            [make_subscription("sub_a", status="canceled", canceled_at=day(9, 20))],
            [("sub_a", "price_1")],
        ),
        "canceled",
        day(9, 20),
        1,
    ),
    (
        "fallback: canceled without ended_at nor canceled_at uses current_period_end",
        Case([make_subscription("sub_a", status="canceled")], [("sub_a", "price_1")]),
        "canceled",
        day(10, 1),
        1,
    ),
    (
        "re- fallback: re-canceled without ended_at",
        Case(
            [
                make_subscription("sub_old", **OLD_CANCELED),
                make_subscription("sub_new", status="canceled", canceled_at=day(9, 9)),
            ],
            [("sub_old", "price_1"), ("sub_new", "price_1")],
        ),
        "re-canceled",
        day(9, 9),
        2,
    ),
]


@pytest.mark.parametrize(
    ("case", "segment", "changed", "sub_count"),
    [
        pytest.param(case, segment, changed, count, id=name)
        for name, case, segment, changed, count in SEGMENT_TABLE
    ],
)
def test_segment_table(case: Case, segment: str, changed: datetime, sub_count: int) -> None:
    """Each case of docs/contract.md §8.5 (and the docs/compatibility.md §2 fallbacks) yields its segment, `changed` and `sub_count`."""
    (product,) = compute_products(case.account())

    assert (product.segment, product.changed, product.sub_count) == (segment, changed, sub_count)


@pytest.mark.parametrize(
    "status", ["trialing", "past_due", "unpaid", "incomplete", "incomplete_expired", "paused"]
)
def test_case_4_other_statuses_change_at_subscription_creation(status: str) -> None:
    """Any status but active/canceled is `other`, changed at the subscription's Stripe creation."""
    case = Case([make_subscription("sub_a", status=status)], [("sub_a", "price_1")])

    (product,) = compute_products(case.account())

    assert (product.segment, product.changed, product.status) == ("other", day(1, 2), status)


def test_product_record_carries_latest_subscription_and_price_fields() -> None:
    """The record of docs/contract.md §8.5: price and subscription fields come from the latest subscription."""
    subscription = make_subscription(
        "sub_a", canceled_at=day(9, 9), cancel_at_period_end=True, ended_at=None
    )
    case = Case(
        [subscription],
        [("sub_a", "price_1")],
        [make_price("price_1", currency="eur", unit_amount=500, recurring_interval="year")],
    )

    (product,) = compute_products(case.account())

    assert product.payment_service == "stripe"
    assert product.product_id == "prod_P"
    assert (product.price_id, product.currency, product.amount) == ("price_1", "eur", 500)
    assert (product.interval, product.interval_count) == ("year", 1)
    assert (product.status, product.created, product.start) == ("active", day(1, 2), day(1, 3))
    assert (product.current_period_start, product.current_period_end) == (day(9, 1), day(10, 1))
    assert (product.canceled_at, product.cancel_at_period_end, product.ended_at) == (
        day(9, 9),
        True,
        None,
    )
    assert product.product_name is None
    assert product.payment_type is None
    assert product.card_brand is None
    assert product.card_last4 is None
    assert product.billing_country is None


def test_case_10_one_record_per_product_sorted_by_product_id() -> None:
    """Subscriptions to P and Q are evaluated separately and listed by product id."""
    case = Case(
        [
            make_subscription("sub_q", status="canceled", ended_at=day(7, 7)),
            make_subscription("sub_p"),
        ],
        [("sub_q", "price_q"), ("sub_p", "price_p")],
        [make_price("price_q", "prod_Q"), make_price("price_p", "prod_P")],
    )

    products = compute_products(case.account())

    assert [(x.product_id, x.segment, x.sub_count) for x in products] == [
        ("prod_P", "active", 1),
        ("prod_Q", "canceled", 1),
    ]


def test_case_11_no_customer_or_no_subscription_means_no_products() -> None:
    """No customer, or a customer without subscriptions, has no products."""
    assert compute_products(None) == []
    assert compute_products(StripeAccount(customer=CUSTOMER)) == []


def test_items_without_their_subscription_or_price_are_ignored() -> None:
    """Items that cannot be attributed (dangling references) contribute nothing."""
    case = Case([make_subscription("sub_a")], [("sub_a", "price_gone"), ("sub_gone", "price_1")])

    assert compute_products(case.account()) == []


def test_latest_subscription_wins_whatever_the_storage_order() -> None:
    """The latest is chosen by `current_period_end`, not by position."""
    subscriptions = [
        make_subscription("sub_old", **OLD_CANCELED),
        make_subscription("sub_new", start_date=day(6, 2)),
    ]
    for ordered in itertools.permutations(subscriptions):
        case = Case(list(ordered), [(s.stripe_id, "price_1") for s in ordered])
        (product,) = compute_products(case.account())
        assert (product.segment, product.changed) == ("re-active", day(6, 2))


def test_ties_on_current_period_end_are_broken_by_creation_then_id() -> None:
    """Fix of docs/contract.md §8.5: equal `current_period_end` → later `stripe_created`, then greater id."""
    earlier = make_subscription("sub_z", status="canceled", stripe_created=day(1, 1))
    later = make_subscription("sub_a", stripe_created=day(2, 2))
    same_created = make_subscription("sub_b", status="past_due", stripe_created=day(2, 2))

    for subscriptions in itertools.permutations([earlier, later]):
        case = Case(list(subscriptions), [(s.stripe_id, "price_1") for s in subscriptions])
        assert compute_products(case.account())[0].status == "active"
    for subscriptions in itertools.permutations([later, same_created]):
        case = Case(list(subscriptions), [(s.stripe_id, "price_1") for s in subscriptions])
        assert compute_products(case.account())[0].status == "past_due"  # "sub_b" > "sub_a"


def test_segment_and_changed_never_fails_for_a_canceled_subscription() -> None:
    """docs/contract.md §8.5: no assertion, whatever timestamps are missing."""
    subscription = make_subscription("sub_a", status="canceled")

    assert segment_and_changed(subscription, resubscribed=True) == ("re-canceled", day(10, 1))
