"""Products and their marketing segments, derived from a contact's Stripe data (docs/contract.md §8.5).

Differences from v3.3, on purpose:

* `changed` of a `canceled` subscription falls back to `canceled_at`, then `current_period_end` when Stripe
  sent no `ended_at` (docs/compatibility.md §2; docs/contract.md §8.5): computing products never fails.
* `sub_count` counts the distinct *subscriptions* holding the product, not their items (docs/contract.md §8.5).
  The `re-` prefix follows it: one subscription holding two items of a product is not a re-subscription
  (v3.3 table case 9 gave `re-…` with a count of 2; we give the unprefixed segment with a count of 1).
* The latest subscription of a product is the one with the greatest `current_period_end`; ties are broken
  deterministically (greater `stripe_created`, then greater subscription id, then greater item id), never by
  storage order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

from ctms_core.domain.stripe import (
    StripeAccount,
    StripePrice,
    StripeSubscription,
    StripeSubscriptionItem,
)

SEGMENTS: Final = (
    "active",
    "cancelling",
    "canceled",
    "re-active",
    "re-cancelling",
    "re-canceled",
    "other",
)
PAYMENT_SERVICES: Final = ("stripe", "unknown")


class Product(msgspec.Struct, frozen=True, kw_only=True):
    """One product a contact subscribed to, in the field order of docs/contract.md §8.5."""

    payment_service: str
    product_id: str
    segment: str
    changed: datetime
    sub_count: int
    product_name: str | None = None
    price_id: str
    payment_type: str | None = None
    card_brand: str | None = None
    card_last4: str | None = None
    billing_country: str | None = None
    currency: str
    amount: int | None
    status: str
    interval_count: int | None
    interval: str | None
    created: datetime
    start: datetime
    current_period_start: datetime
    current_period_end: datetime
    canceled_at: datetime | None
    cancel_at_period_end: bool
    ended_at: datetime | None


class _Holding(msgspec.Struct, frozen=True):
    subscription: StripeSubscription
    item: StripeSubscriptionItem
    price: StripePrice


def _recency(holding: _Holding) -> tuple[datetime, datetime, str, str]:
    subscription = holding.subscription
    return (
        subscription.current_period_end,
        subscription.stripe_created,
        subscription.stripe_id,
        holding.item.stripe_id,
    )


def segment_and_changed(
    subscription: StripeSubscription, *, resubscribed: bool
) -> tuple[str, datetime]:
    """The segment of a product whose latest subscription is `subscription`, and when it last changed."""
    prefix = "re-" if resubscribed else ""
    if subscription.status == "active":
        if subscription.canceled_at is not None:
            return prefix + "cancelling", subscription.canceled_at
        return prefix + "active", subscription.start_date
    if subscription.status == "canceled":
        changed = (
            subscription.ended_at or subscription.canceled_at or subscription.current_period_end
        )
        return prefix + "canceled", changed
    return "other", subscription.stripe_created


def compute_products(account: StripeAccount | None) -> list[Product]:
    """The products of one Stripe customer (all subscriptions, any status or age), sorted by product id.

    Items whose subscription or price is not in `account` are ignored (they cannot be attributed).
    """
    if account is None:
        return []
    subscriptions = {s.stripe_id: s for s in account.subscriptions}
    prices = {p.stripe_id: p for p in account.prices}
    groups: dict[str, list[_Holding]] = {}
    for item in account.items:
        subscription = subscriptions.get(item.stripe_subscription_id)
        price = prices.get(item.stripe_price_id)
        if subscription is None or price is None:
            continue
        groups.setdefault(price.stripe_product_id, []).append(_Holding(subscription, item, price))

    products = []
    for product_id in sorted(groups):
        holdings = groups[product_id]
        latest = max(holdings, key=_recency)
        sub_count = len({holding.subscription.stripe_id for holding in holdings})
        s, price = latest.subscription, latest.price
        segment, changed = segment_and_changed(s, resubscribed=sub_count > 1)
        products.append(
            Product(
                payment_service="stripe",
                product_id=product_id,
                segment=segment,
                changed=changed,
                sub_count=sub_count,
                price_id=price.stripe_id,
                currency=price.currency,
                amount=price.unit_amount,
                status=s.status,
                interval_count=price.recurring_interval_count,
                interval=price.recurring_interval,
                created=s.stripe_created,
                start=s.start_date,
                current_period_start=s.current_period_start,
                current_period_end=s.current_period_end,
                canceled_at=s.canceled_at,
                cancel_at_period_end=s.cancel_at_period_end,
                ended_at=s.ended_at,
            )
        )
    return products
