"""The Stripe data CTMS mirrors (docs/contract.md §1.5) and the parsing of incoming Stripe objects (docs/contract.md §8.3).

Stored rows are frozen structs whose fields are the columns of docs/contract.md §1.5; timestamps are timezone-aware UTC
datetimes. `create_timestamp`/`update_timestamp` are CTMS bookkeeping: they never take part in change
detection (`same_data`).

Parsing turns a Stripe JSON object (a mapping decoded from JSON) into the rows it describes, validating the
whole object before anything is written: required keys, types, column sizes and Stripe's real enumerations
(invoice status `uncollectible`, subscription status `paused`; docs/contract.md §8.2, §8.3, §8.5, §18.3). The same parse runs for
new and for already known objects, so validation never depends on whether a row exists (docs/contract.md §8.3).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from ctms_core.domain.errors import BadRequestError, CoreError

# --- enumerations ------------------------------------------------------------------------------------------

SUBSCRIPTION_STATUSES: Final = (
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
)
INVOICE_STATUSES: Final = ("draft", "open", "paid", "uncollectible", "void")
PRICE_INTERVALS: Final = ("day", "week", "month", "year")
LINE_ITEM_TYPES: Final = ("subscription", "invoiceitem")

#: Top-level `object` values CTMS ingests (docs/contract.md §8.3); `line_item` only arrives inside an invoice.
SUPPORTED_OBJECTS: Final = ("customer", "subscription", "subscription_item", "price", "invoice")

ACTION_NAMES: Final = ("created", "updated", "no_change", "deleted", "skipped")

_ID_MAX_LENGTH = 255
# The integer columns (amounts, totals, interval counts) are PostgreSQL INTEGER.
INTEGER_MIN, INTEGER_MAX = -(2**31), 2**31 - 1

# --- errors ------------------------------------------------------------------------------------------------


class StripeRequestNotRecognized(BadRequestError):
    """The body is not a Stripe object at all: not a JSON object, or without `object`/`id` (docs/contract.md §8.1)."""

    detail = "Request JSON is not recognized."


class StripeObjectError(BadRequestError):
    """A Stripe object lacks data the ingester needs or holds an invalid value (400, docs/contract.md §8.1).

    `detail` is the contract's fixed text; `reason` says what exactly is wrong, for logs.
    """

    detail = "Unable to process Stripe object."

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.detail} {self.reason}"


class UnknownStripeObject(BadRequestError):
    """An `object` type CTMS does not ingest: pub/sub records it as `skipped`, `/stripe` answers 400."""

    def __init__(self, object_type: str, stripe_id: str) -> None:
        super().__init__(f"Unsupported Stripe object type {object_type!r}.")
        self.object_type = object_type
        self.stripe_id = stripe_id

    @property
    def label(self) -> str:
        """The `"<object>:<id>"` string for the `skipped` action of `ingest_actions`."""
        return f"{self.object_type}:{self.stripe_id}"


class FxaIdConflict(CoreError):
    """Another Stripe customer already holds the FxA id of the customer being ingested."""

    def __init__(self, other_customer_id: str, fxa_id: str) -> None:
        super().__init__(f"Existing Stripe customer {other_customer_id!r} has FxA ID {fxa_id!r}.")
        self.other_customer_id = other_customer_id
        self.fxa_id = fxa_id


# --- stored rows (docs/contract.md §1.5) -------------------------------------------------------------------


class StripeCustomer(msgspec.Struct, frozen=True, kw_only=True):
    stripe_id: str
    fxa_id: str
    default_source_id: str | None = None
    invoice_settings_default_payment_method_id: str | None = None
    stripe_created: datetime
    deleted: bool = False
    create_timestamp: datetime | None = None
    update_timestamp: datetime | None = None


class StripePrice(msgspec.Struct, frozen=True, kw_only=True):
    stripe_id: str
    stripe_product_id: str
    stripe_created: datetime
    active: bool = True
    currency: str
    recurring_interval: str | None = None
    recurring_interval_count: int | None = None
    unit_amount: int | None = None
    create_timestamp: datetime | None = None
    update_timestamp: datetime | None = None


class StripeSubscription(msgspec.Struct, frozen=True, kw_only=True):
    stripe_id: str
    stripe_customer_id: str
    default_payment_method_id: str | None = None
    default_source_id: str | None = None
    stripe_created: datetime
    cancel_at_period_end: bool
    canceled_at: datetime | None = None
    current_period_end: datetime
    current_period_start: datetime
    ended_at: datetime | None = None
    start_date: datetime
    status: str
    create_timestamp: datetime | None = None
    update_timestamp: datetime | None = None


class StripeSubscriptionItem(msgspec.Struct, frozen=True, kw_only=True):
    stripe_id: str
    stripe_subscription_id: str
    stripe_price_id: str
    stripe_created: datetime
    create_timestamp: datetime | None = None
    update_timestamp: datetime | None = None


class StripeInvoice(msgspec.Struct, frozen=True, kw_only=True):
    stripe_id: str
    stripe_customer_id: str
    default_payment_method_id: str | None = None
    default_source_id: str | None = None
    stripe_created: datetime
    currency: str
    total: int
    status: str
    create_timestamp: datetime | None = None
    update_timestamp: datetime | None = None


class StripeInvoiceLineItem(msgspec.Struct, frozen=True, kw_only=True):
    stripe_id: str
    stripe_invoice_id: str
    stripe_type: str
    stripe_price_id: str
    stripe_invoice_item_id: str | None = None
    stripe_subscription_id: str | None = None
    stripe_subscription_item_id: str | None = None
    amount: int
    currency: str
    create_timestamp: datetime | None = None
    update_timestamp: datetime | None = None


StripeRow = (
    StripeCustomer
    | StripePrice
    | StripeSubscription
    | StripeSubscriptionItem
    | StripeInvoice
    | StripeInvoiceLineItem
)

_BOOKKEEPING = frozenset({"create_timestamp", "update_timestamp"})


def same_data(left: StripeRow, right: StripeRow) -> bool:
    """Whether two rows hold the same Stripe data, ignoring CTMS's create/update timestamps."""
    if type(left) is not type(right):
        return False
    return all(
        getattr(left, name) == getattr(right, name)
        for name in left.__struct_fields__
        if name not in _BOOKKEEPING
    )


class StripeAccount(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the product-segment algorithm needs about one Stripe customer: its subscriptions, their
    items and the prices those items reference (rows of other customers never appear here)."""

    customer: StripeCustomer
    subscriptions: tuple[StripeSubscription, ...] = ()
    items: tuple[StripeSubscriptionItem, ...] = ()
    prices: tuple[StripePrice, ...] = ()


# --- parsed payloads ---------------------------------------------------------------------------------------


class CustomerPayload(msgspec.Struct, frozen=True, kw_only=True):
    """A customer object. `customer` is the row it describes, None for a deleted customer (Stripe sends
    nothing but the id of a deleted customer). `email` serves trace logging only."""

    stripe_id: str
    deleted: bool
    customer: StripeCustomer | None
    email: str | None


class SubscriptionItemPayload(msgspec.Struct, frozen=True, kw_only=True):
    item: StripeSubscriptionItem
    price: StripePrice


class SubscriptionPayload(msgspec.Struct, frozen=True, kw_only=True):
    subscription: StripeSubscription
    items: tuple[SubscriptionItemPayload, ...]


class LineItemPayload(msgspec.Struct, frozen=True, kw_only=True):
    line_item: StripeInvoiceLineItem
    price: StripePrice


class InvoicePayload(msgspec.Struct, frozen=True, kw_only=True):
    invoice: StripeInvoice
    lines: tuple[LineItemPayload, ...]


StripePayload = (
    CustomerPayload | SubscriptionPayload | SubscriptionItemPayload | StripePrice | InvoicePayload
)


# --- parsing -----------------------------------------------------------------------------------------------

_ABSENT: Any = object()


def from_stripe_timestamp(value: Any) -> datetime | None:
    """Stripe's integer unix seconds as a UTC datetime; `0` and `null` mean "no time" (docs/contract.md §8.3)."""
    if value is None or value == 0:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"expected unix seconds, got {value!r}")
    return datetime.fromtimestamp(value, tz=UTC)


class _Reader:
    """Typed access to the keys of one Stripe object; every failure becomes a `StripeObjectError` naming
    the object and the key."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise StripeObjectError(f"{where}: expected an object, got {type(data).__name__}")
        self.data: Mapping[str, Any] = data
        self.where = where

    def fail(self, key: str, problem: str) -> StripeObjectError:
        return StripeObjectError(f"{self.where}: {key} {problem}")

    def raw(self, key: str, *, required: bool) -> Any:
        value = self.data.get(key, _ABSENT)
        if value is _ABSENT:
            if required:
                raise self.fail(key, "is missing")
            return None
        return value

    def reference(
        self, key: str, *, required: bool = True, nullable: bool = True, expandable: bool = True
    ) -> str | None:
        """An id, given as a string or (when `expandable`) as an expanded object carrying an `id`."""
        value = self.raw(key, required=required)
        if expandable and isinstance(value, Mapping):
            value = value.get("id")
        if value is None or value == "":
            if not nullable:
                raise self.fail(key, "must be a non-empty id")
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"must be an id string, got {value!r}")
        if len(value) > _ID_MAX_LENGTH:
            raise self.fail(key, f"is longer than {_ID_MAX_LENGTH} characters")
        if "\x00" in value:  # PostgreSQL text cannot hold NUL
            raise self.fail(key, "contains a NUL character")
        return value

    def identifier(self, key: str) -> str:
        value = self.reference(key, nullable=False)
        assert value is not None
        return value

    def timestamp(self, key: str, *, nullable: bool) -> datetime | None:
        value = self.raw(key, required=True)
        try:
            moment = from_stripe_timestamp(value)
        except (ValueError, OverflowError, OSError) as error:
            raise self.fail(key, f"is not a valid timestamp ({error})") from None
        if moment is None and not nullable:
            raise self.fail(key, "must be a timestamp, got none")
        return moment

    def required_timestamp(self, key: str) -> datetime:
        moment = self.timestamp(key, nullable=False)
        assert moment is not None
        return moment

    def boolean(self, key: str, *, required: bool = True, default: bool = False) -> bool:
        value = self.raw(key, required=required)
        if value is None and not required:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def integer(self, key: str, *, required: bool = True, nullable: bool = False) -> int | None:
        value = self.raw(key, required=required)
        if value is None and nullable:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, f"must be an integer, got {value!r}")
        if not INTEGER_MIN <= value <= INTEGER_MAX:
            raise self.fail(key, f"is outside {INTEGER_MIN}..{INTEGER_MAX}, got {value}")
        return value

    def required_integer(self, key: str) -> int:
        value = self.integer(key)
        assert value is not None
        return value

    def choice(self, key: str, allowed: Iterable[str], *, required: bool = True) -> str | None:
        value = self.raw(key, required=required)
        if value is None and not required:
            return None
        choices = tuple(allowed)
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}; got {value!r}")
        assert isinstance(value, str)
        return value

    def required_choice(self, key: str, allowed: Iterable[str]) -> str:
        value = self.choice(key, allowed)
        assert value is not None
        return value

    def currency(self, key: str) -> str:
        value = self.raw(key, required=True)
        if (
            not isinstance(value, str)
            or len(value) != 3
            or not value.isascii()
            or not value.isalpha()
        ):
            raise self.fail(key, f"must be a three-letter currency code, got {value!r}")
        return value.lower()

    def nested(self, key: str, *, required: bool = True) -> _Reader | None:
        value = self.raw(key, required=required)
        if value is None and not required:
            return None
        return _Reader(value, f"{self.where}.{key}")

    def expect_object(self, expected: str) -> None:
        found = self.data.get("object")
        if found != expected:
            raise StripeObjectError(f"{self.where}: object must be {expected!r}, got {found!r}")

    def list_data(self, key: str) -> list[Any]:
        container = self.nested(key)
        assert container is not None
        elements = container.raw("data", required=True)
        if not isinstance(elements, list):
            raise container.fail("data", "must be a list")
        return elements


def object_type_and_id(data: Any) -> tuple[str, str]:
    """The `object` and `id` of a Stripe object, or `StripeRequestNotRecognized` (docs/contract.md §8.1)."""
    if not isinstance(data, Mapping):
        raise StripeRequestNotRecognized()
    object_type, stripe_id = data.get("object"), data.get("id")
    if not isinstance(object_type, str) or not object_type:
        raise StripeRequestNotRecognized()
    if not isinstance(stripe_id, str) or not stripe_id:
        raise StripeRequestNotRecognized()
    return object_type, stripe_id


def parse_customer(data: Any) -> CustomerPayload:
    """A customer (docs/contract.md §8.3): `description` is the FxA id; a deleted customer needs nothing but its id."""
    reader = _Reader(data, "customer")
    reader.expect_object("customer")
    stripe_id = reader.identifier("id")
    reader.where = f"customer {stripe_id}"
    email = reader.data.get("email")
    email = email if isinstance(email, str) else None
    if reader.boolean("deleted", required=False):
        return CustomerPayload(stripe_id=stripe_id, deleted=True, customer=None, email=email)
    fxa_id = reader.reference("description", required=False, expandable=False)
    if fxa_id is None:
        raise reader.fail("description", "(the FxA id) is missing")
    settings = reader.nested("invoice_settings")
    assert settings is not None
    customer = StripeCustomer(
        stripe_id=stripe_id,
        fxa_id=fxa_id,
        default_source_id=reader.reference("default_source"),
        invoice_settings_default_payment_method_id=settings.reference("default_payment_method"),
        stripe_created=reader.required_timestamp("created"),
    )
    return CustomerPayload(stripe_id=stripe_id, deleted=False, customer=customer, email=email)


def parse_price(data: Any) -> StripePrice:
    """A price (docs/contract.md §8.3): currency is three letters, stored lower-cased; `recurring` is null for one-time
    prices."""
    reader = _Reader(data, "price")
    reader.expect_object("price")
    stripe_id = reader.identifier("id")
    reader.where = f"price {stripe_id}"
    recurring = reader.nested("recurring", required=False)
    return StripePrice(
        stripe_id=stripe_id,
        stripe_product_id=reader.identifier("product"),
        stripe_created=reader.required_timestamp("created"),
        active=reader.boolean("active"),
        currency=reader.currency("currency"),
        recurring_interval=None
        if recurring is None
        else recurring.choice("interval", PRICE_INTERVALS, required=False),
        recurring_interval_count=None
        if recurring is None
        else recurring.integer("interval_count", required=False, nullable=True),
        unit_amount=reader.integer("unit_amount", required=False, nullable=True),
    )


def parse_subscription_item(
    data: Any, *, subscription_id: str | None = None
) -> SubscriptionItemPayload:
    """A subscription item with its embedded price. Inside a subscription (`subscription_id` given) the
    item must belong to that subscription."""
    reader = _Reader(data, "subscription_item")
    reader.expect_object("subscription_item")
    stripe_id = reader.identifier("id")
    reader.where = f"subscription_item {stripe_id}"
    price = parse_price(reader.raw("price", required=True))
    owner = reader.identifier("subscription")
    if subscription_id is not None and owner != subscription_id:
        raise reader.fail("subscription", f"is {owner!r}, not its parent {subscription_id!r}")
    item = StripeSubscriptionItem(
        stripe_id=stripe_id,
        stripe_subscription_id=owner,
        stripe_price_id=price.stripe_id,
        stripe_created=reader.required_timestamp("created"),
    )
    return SubscriptionItemPayload(item=item, price=price)


def parse_subscription(data: Any) -> SubscriptionPayload:
    """A subscription with its items (`items.data`), each with its price."""
    reader = _Reader(data, "subscription")
    reader.expect_object("subscription")
    stripe_id = reader.identifier("id")
    reader.where = f"subscription {stripe_id}"
    subscription = StripeSubscription(
        stripe_id=stripe_id,
        stripe_customer_id=reader.identifier("customer"),
        default_payment_method_id=reader.reference("default_payment_method"),
        default_source_id=reader.reference("default_source"),
        stripe_created=reader.required_timestamp("created"),
        cancel_at_period_end=reader.boolean("cancel_at_period_end"),
        canceled_at=reader.timestamp("canceled_at", nullable=True),
        current_period_end=reader.required_timestamp("current_period_end"),
        current_period_start=reader.required_timestamp("current_period_start"),
        ended_at=reader.timestamp("ended_at", nullable=True),
        start_date=reader.required_timestamp("start_date"),
        status=reader.required_choice("status", SUBSCRIPTION_STATUSES),
    )
    items = tuple(
        parse_subscription_item(element, subscription_id=stripe_id)
        for element in reader.list_data("items")
    )
    return SubscriptionPayload(subscription=subscription, items=items)


def parse_line_item(data: Any, *, invoice_id: str) -> LineItemPayload:
    """An invoice line item with its price; it belongs to the invoice that carries it."""
    reader = _Reader(data, "line_item")
    reader.expect_object("line_item")
    stripe_id = reader.identifier("id")
    reader.where = f"line_item {stripe_id}"
    price = parse_price(reader.raw("price", required=True))
    line_item = StripeInvoiceLineItem(
        stripe_id=stripe_id,
        stripe_invoice_id=invoice_id,
        stripe_type=reader.required_choice("type", LINE_ITEM_TYPES),
        stripe_price_id=price.stripe_id,
        stripe_invoice_item_id=reader.reference("invoice_item", required=False),
        stripe_subscription_id=reader.reference("subscription", required=False),
        stripe_subscription_item_id=reader.reference("subscription_item", required=False),
        amount=reader.required_integer("amount"),
        currency=reader.currency("currency"),
    )
    return LineItemPayload(line_item=line_item, price=price)


def parse_invoice(data: Any) -> InvoicePayload:
    """An invoice with its line items (`lines.data`), each with its price."""
    reader = _Reader(data, "invoice")
    reader.expect_object("invoice")
    stripe_id = reader.identifier("id")
    reader.where = f"invoice {stripe_id}"
    invoice = StripeInvoice(
        stripe_id=stripe_id,
        stripe_customer_id=reader.identifier("customer"),
        default_payment_method_id=reader.reference("default_payment_method"),
        default_source_id=reader.reference("default_source"),
        stripe_created=reader.required_timestamp("created"),
        currency=reader.currency("currency"),
        total=reader.required_integer("total"),
        status=reader.required_choice("status", INVOICE_STATUSES),
    )
    lines = tuple(
        parse_line_item(element, invoice_id=stripe_id) for element in reader.list_data("lines")
    )
    return InvoicePayload(invoice=invoice, lines=lines)


def parse_stripe_object(data: Any) -> StripePayload:
    """Dispatch on `object` (docs/contract.md §8.3): `StripeRequestNotRecognized` without `object`/`id`,
    `UnknownStripeObject` for a type CTMS does not ingest, `StripeObjectError` for invalid content."""
    object_type, stripe_id = object_type_and_id(data)
    match object_type:
        case "customer":
            return parse_customer(data)
        case "subscription":
            return parse_subscription(data)
        case "subscription_item":
            return parse_subscription_item(data)
        case "price":
            return parse_price(data)
        case "invoice":
            return parse_invoice(data)
        case _:
            raise UnknownStripeObject(object_type, stripe_id)


# --- ingest actions (docs/contract.md §8.4) ----------------------------------------------------------------


class IngestActions:
    """What ingestion did, as action name → set of `"<label>:<id>"` strings (docs/contract.md §8.4)."""

    def __init__(self) -> None:
        self._actions: dict[str, set[str]] = {}

    def add(self, action: str, label: str, stripe_id: str) -> None:
        self._actions.setdefault(action, set()).add(f"{label}:{stripe_id}")

    def merge(self, other: IngestActions | Mapping[str, Iterable[str]]) -> None:
        source = other._actions if isinstance(other, IngestActions) else other
        for action, labels in source.items():
            self._actions.setdefault(action, set()).update(labels)

    def as_log_field(self) -> dict[str, list[str]]:
        """Keys sorted, values sorted lists: the `ingest_actions` log field."""
        return {action: sorted(self._actions[action]) for action in sorted(self._actions)}


def merge_actions(*many: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Merge the `ingest_actions` of several objects (pub/sub item dictionaries) into one log field."""
    merged = IngestActions()
    for actions in many:
        merged.merge(actions)
    return merged.as_log_field()
