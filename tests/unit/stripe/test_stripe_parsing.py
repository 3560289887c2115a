"""Parsing of incoming Stripe objects: timestamps, required keys, enumerations, actions log field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ctms_core.domain.stripe import (
    CustomerPayload,
    IngestActions,
    InvoicePayload,
    StripeObjectError,
    StripePrice,
    SubscriptionPayload,
    from_stripe_timestamp,
    merge_actions,
    parse_customer,
    parse_stripe_object,
)
from tests.unit.stripe import payloads as p


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (0, None),
        (1622844943, datetime(2021, 6, 4, 22, 15, 43, tzinfo=UTC)),
    ],
)
def test_stripe_timestamps_become_utc_datetimes(value: Any, expected: datetime | None) -> None:
    """Unix seconds → aware UTC datetime; 0 and null → None (docs/contract.md §8.3)."""
    assert from_stripe_timestamp(value) == expected


@pytest.mark.parametrize("value", ["1622844943", 1.5, True])
def test_non_integer_timestamps_are_refused(value: Any) -> None:
    """Only integers are Stripe timestamps."""
    with pytest.raises(ValueError, match="unix seconds"):
        from_stripe_timestamp(value)


def test_dispatch_returns_the_payload_of_each_supported_type() -> None:
    """`object` selects the parser (docs/contract.md §8.3)."""
    assert isinstance(parse_stripe_object(p.customer()), CustomerPayload)
    assert isinstance(parse_stripe_object(p.subscription()), SubscriptionPayload)
    assert isinstance(parse_stripe_object(p.invoice()), InvoicePayload)
    assert isinstance(parse_stripe_object(p.price()), StripePrice)


def test_nullable_subscription_timestamps_accept_zero() -> None:
    """`canceled_at: 0` and `ended_at: 0` mean not canceled / not ended."""
    payload = parse_stripe_object(p.subscription(canceled_at=0, ended_at=None))

    assert isinstance(payload, SubscriptionPayload)
    assert payload.subscription.canceled_at is None
    assert payload.subscription.ended_at is None


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"current_period_end": None}, "current_period_end"),
        ({"start_date": 0}, "start_date"),
        ({"cancel_at_period_end": None}, "cancel_at_period_end"),
        ({"customer": ""}, "customer"),
        ({"customer": "c" * 256}, "customer"),
        ({"status": None}, "status"),
        ({"items": {"data": "nope"}}, "data"),
        ({"items": None}, "items"),
    ],
)
def test_invalid_subscription_values_name_the_key(override: dict[str, Any], key: str) -> None:
    """Each refusal says which key was wrong, for the logs."""
    with pytest.raises(StripeObjectError) as raised:
        parse_stripe_object(p.subscription(**override))

    assert key in raised.value.reason
    assert raised.value.reason.startswith("subscription")


@pytest.mark.parametrize("key", ["created", "default_source", "invoice_settings"])
def test_customer_required_keys(key: str) -> None:
    """A non-deleted customer needs `created`, `default_source` and `invoice_settings`."""
    data = p.customer()
    del data[key]

    with pytest.raises(StripeObjectError, match=key):
        parse_customer(data)


def test_deleted_customer_needs_only_its_id() -> None:
    """Stripe sends `{"id", "object", "deleted"}` for a deleted customer."""
    payload = parse_customer(p.deleted_customer())

    assert payload.deleted
    assert payload.customer is None


@pytest.mark.parametrize("key", ["total", "currency", "customer", "lines", "default_source"])
def test_invoice_required_keys(key: str) -> None:
    """Invoices need the keys of docs/contract.md §8.3."""
    data = p.invoice()
    del data[key]

    with pytest.raises(StripeObjectError, match=key):
        parse_stripe_object(data)


def test_error_string_keeps_the_contract_detail_and_the_reason() -> None:
    """`detail` is the fixed 400 text; `str()` adds the reason for logs."""
    with pytest.raises(StripeObjectError) as raised:
        parse_stripe_object(p.price(currency="us"))

    assert raised.value.detail == "Unable to process Stripe object."
    assert str(raised.value).startswith("Unable to process Stripe object. price ")


def test_actions_log_field_is_sorted_and_merges() -> None:
    """`ingest_actions`: keys sorted, values sorted lists, merged across objects (docs/contract.md §8.4)."""
    first = IngestActions()
    first.add("updated", "subscription", "sub_y")
    first.add("created", "customer", "cus_b")
    first.add("created", "customer", "cus_a")

    merged = merge_actions(first.as_log_field(), {"skipped": ["payment_method:pm_1"]})

    assert merged == {
        "created": ["customer:cus_a", "customer:cus_b"],
        "skipped": ["payment_method:pm_1"],
        "updated": ["subscription:sub_y"],
    }
    assert list(merged) == sorted(merged)
