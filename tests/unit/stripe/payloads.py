"""Builders of Stripe JSON objects, derived from the reference samples so they keep Stripe's real shape."""

from __future__ import annotations

from typing import Any

from tests.unit.stripe.conftest import sample

CUSTOMER_ID = "cus_Y3VzdG9tZXIxCg"
FXA_ID = "99d28f47808443d393d3-7f7c3100cc46"
SUBSCRIPTION_ID = "sub_c3Vic2NyaXB0aW9uMQo"
SUBSCRIPTION_CUSTOMER_ID = "cus_c3Vic2NyaXB0aW9uMQo"
ITEM_ID = "si_c3Vic2NyaXB0aW9uMQo"
PRICE_ID = "price_c3Vic2NyaXB0aW9uMQo"
PRODUCT_ID = "prod_c3Vic2NyaXB0aW9uMQo"
INVOICE_ID = "in_aW52b2ljZV8wMDEK"
INVOICE_CUSTOMER_ID = "cus_aW52b2ljZV8wMDEK"
LINE_ID = "il_aW52b2ljZV8wMDEK"
INVOICE_PRICE_ID = "price_aW52b2ljZV8wMDEK"


def customer(**overrides: Any) -> dict[str, Any]:
    data = sample("customer_01")
    data.update(overrides)
    return data


def deleted_customer(stripe_id: str = CUSTOMER_ID, **extra: Any) -> dict[str, Any]:
    """What Stripe sends for a deleted customer: the id and the flag, nothing else."""
    return {"id": stripe_id, "object": "customer", "deleted": True, **extra}


def price(price_id: str = PRICE_ID, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = sample("subscription_01")["items"]["data"][0]["price"]
    data["id"] = price_id
    data.update(overrides)
    return data


def subscription_item(
    item_id: str = ITEM_ID,
    *,
    subscription_id: str = SUBSCRIPTION_ID,
    item_price: dict[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = sample("subscription_01")["items"]["data"][0]
    data.update(id=item_id, subscription=subscription_id, price=item_price or price())
    data.update(overrides)
    return data


def subscription(
    *, with_items: list[dict[str, Any]] | None = None, **overrides: Any
) -> dict[str, Any]:
    data = sample("subscription_01")
    data.update(overrides)
    if with_items is not None:
        data["items"]["data"] = with_items
        for item in with_items:
            item["subscription"] = data["id"]
    return data


def line_item(line_id: str = LINE_ID, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = sample("invoice_01")["lines"]["data"][0]
    data["id"] = line_id
    data.update(overrides)
    return data


def invoice(*, with_lines: list[dict[str, Any]] | None = None, **overrides: Any) -> dict[str, Any]:
    data = sample("invoice_01")
    data.update(overrides)
    if with_lines is not None:
        data["lines"]["data"] = with_lines
    return data
