"""Contact → Acoustic rows: the pure mapping of docs/contract.md §9.2, §9.3.

`map_contact` turns one contact (and its Stripe-derived products) into an `AcousticRecord`: the main-table
row (column → text), the newsletter, waitlist and product relational rows, and the log facts of docs/contract.md §11.3
(`newsletters_skipped`, `skipped_fields`, `fxa_created_date_*`, `trace`). Every value is text, formatted by
`acoustic_text` (docs/contract.md §9.3 "F").

Differences from v3.3, on purpose:

* Aware datetimes are converted to UTC before formatting (docs/contract.md §9.3); naive ones are taken as UTC.
* A waitlist `fields` value that is not a string (number, list, object…) is sent as text (JSON for lists
  and objects) instead of breaking the XML serialisation (docs/contract.md §9.2).
* Flat waitlist columns (`<name>_waitlist_<field>`) split on the first `_waitlist_`, so names with more
  underscores map instead of crashing the sync.
* `email_id` is always sent as a main-table column (it is the sync key), even when the configuration
  forgets it; v3.3 crashed.
* `fxa_created_date` is parsed with the stdlib (ISO 8601 and a few common layouts) instead of dateutil;
  what it cannot parse is sent unchanged, as v3.3 did for what dateutil could not parse.
* Column and row order is deterministic: fields in schema order, newsletter flags in mapping-source order,
  flat waitlist columns and waitlist `fields` columns sorted by name, rows sorted by their key.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, Final

import msgspec

from ctms_core.domain.contact import Contact, Email, Newsletter, Waitlist
from ctms_core.domain.segments import Product
from ctms_core.domain.tracing import is_traced

__all__ = [
    "DATETIME_FORMAT",
    "DATE_FORMAT",
    "DEFAULT_MAIN_FIELDS",
    "DEFAULT_NEWSLETTER_MAPPING",
    "DEFAULT_WAITLIST_FIELDS",
    "NEWSLETTER_COLUMNS",
    "PRODUCT_COLUMNS",
    "WAITLIST_BASE_COLUMNS",
    "AcousticConfiguration",
    "AcousticDeletion",
    "AcousticRecord",
    "acoustic_datetime",
    "acoustic_text",
    "default_configuration",
    "deletion_of",
    "map_contact",
]

DATETIME_FORMAT: Final = "%m/%d/%Y %H:%M:%S"
DATE_FORMAT: Final = "%m/%d/%Y"

# docs/contract.md §9.7: the `acoustic_field` rows seeded by the v3 migrations, in their listed order.
DEFAULT_MAIN_FIELDS: Final[tuple[str, ...]] = (
    "sfdc_id",
    "email",
    "amo_add_on_ids",
    "amo_display_name",
    "amo_email_opt_in",
    "amo_language",
    "amo_last_login",
    "amo_location",
    "amo_profile_url",
    "amo_user",
    "amo_user_id",
    "amo_username",
    "create_timestamp",
    "email_format",
    "email_id",
    "email_lang",
    "vpn_waitlist_geo",
    "vpn_waitlist_platform",
    "relay_waitlist_geo",
    "fxa_id",
    "fxa_account_deleted",
    "fxa_lang",
    "fxa_login_date",
    "fxa_first_service",
    "fxa_created_date",
    "fxa_primary_email",
    "double_opt_in",
    "has_opted_out_of_email",
    "mailing_country",
    "first_name",
    "last_name",
    "sumo_contributor",
    "sumo_user",
    "sumo_username",
    "basket_token",
    "unsubscribe_reason",
)
DEFAULT_WAITLIST_FIELDS: Final[tuple[str, ...]] = ("geo", "platform")
DEFAULT_NEWSLETTER_MAPPING: Final[Mapping[str, str]] = {
    "about-mozilla": "sub_about_mozilla",
    "app-dev": "sub_apps_and_hacks",
    "common-voice": "sub_common_voice",
    "firefox-accounts-journey": "sub_firefox_accounts_journey",
    "firefox-news": "sub_firefox_news",
    "firefox-sweepstakes": "sub_firefox_sweepstakes",
    "hubs": "sub_hubs",
    "internet-health-report": "sub_internet_health_report",
    "knowledge-is-power": "sub_knowledge_is_power",
    "miti": "sub_miti",
    "mixed-reality": "sub_mixed_reality",
    "mozilla-and-you": "sub_firefox_news",
    "mozilla-fellowship-awardee-alumni": "sub_mozilla_fellowship_awardee_alumni",
    "mozilla-festival": "sub_mozilla_festival",
    "mozilla-foundation": "sub_mozilla_foundation",
    "mozilla-rally": "sub_rally",
    "mozilla-technology": "sub_mozilla_technology",
    "mozillians-nda": "sub_mozillians_nda",
    "security-privacy-news": "sub_security_privacy_news",
    "take-action-for-the-internet": "sub_take_action_for_the_internet",
    "test-pilot": "sub_test_pilot",
}

# Main-table booleans sent as "1"/"0"; every other boolean is "Yes"/"No" (docs/contract.md §9.3).
_NUMERIC_BOOLEAN_COLUMNS: Final = frozenset(
    {"double_opt_in", "has_opted_out_of_email", "fxa_account_deleted", "amo_email_opt_in"}
)
# Candidates never reported in `skipped_fields` (docs/contract.md §9.3).
_KNOWN_IGNORED: Final = frozenset(
    {"email.update_timestamp", "amo.create_timestamp", "amo.update_timestamp"}
)
# Waitlist attributes a flat `<name>_waitlist_<field>` column reads before looking into `fields` (docs/contract.md §9.3).
_WAITLIST_ATTRIBUTES: Final = frozenset(
    {"name", "source", "subscribed", "unsub_reason", "create_timestamp", "update_timestamp"}
)
_WAITLIST_MARKER: Final = "_waitlist_"

NEWSLETTER_COLUMNS: Final[tuple[str, ...]] = (
    "email_id",
    "newsletter_name",
    "newsletter_source",
    "newsletter_format",
    "newsletter_lang",
    "subscribed",
    "newsletter_unsub_reason",
    "create_timestamp",
    "update_timestamp",
)
WAITLIST_BASE_COLUMNS: Final[tuple[str, ...]] = (
    "email_id",
    "waitlist_name",
    "waitlist_source",
    "subscribed",
    "unsub_reason",
    "create_timestamp",
    "update_timestamp",
)
PRODUCT_COLUMNS: Final[tuple[str, ...]] = (
    "email_id",
    "product_name",
    "product_id",
    "price_id",
    "segment",
    "changed",
    "sub_count",
    "payment_service",
    "payment_type",
    "card_brand",
    "card_last4",
    "billing_country",
    "currency",
    "amount",
    "status",
    "interval_count",
    "interval",
    "created",
    "start",
    "current_period_start",
    "current_period_end",
    "canceled_at",
    "ended_at",
    "cancel_at_period_end",
)


class AcousticConfiguration(msgspec.Struct, frozen=True, kw_only=True):
    """What to send (docs/contract.md §1.4): main-table columns, extra waitlist `fields` keys, newsletter → `sub_*` column.

    Read from the `acoustic_field` / `acoustic_newsletter_mapping` tables on every sync pass, so operators
    can change it without a restart.
    """

    main_fields: frozenset[str]
    waitlist_fields: frozenset[str]
    newsletter_mapping: dict[str, str]


def default_configuration() -> AcousticConfiguration:
    """The configuration the v3 migrations seeded (docs/contract.md §9.7)."""
    return AcousticConfiguration(
        main_fields=frozenset(DEFAULT_MAIN_FIELDS),
        waitlist_fields=frozenset(DEFAULT_WAITLIST_FIELDS),
        newsletter_mapping=dict(DEFAULT_NEWSLETTER_MAPPING),
    )


class AcousticRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one contact upload sends, plus the per-contact log facts of docs/contract.md §11.3.

    `main` is the main-table row in request order; relational rows are in upload order. All values are
    text. `fxa_created_date_converted` is `success`, `failure` or `skipped` (no fxa or a null date).
    """

    email_id: uuid.UUID
    main: dict[str, str]
    newsletters: tuple[dict[str, str], ...] = ()
    waitlists: tuple[dict[str, str], ...] = ()
    products: tuple[dict[str, str], ...] = ()
    newsletters_skipped: tuple[str, ...] = ()
    skipped_fields: tuple[str, ...] = ()
    fxa_created_date_converted: str = "skipped"
    fxa_created_date_type: str = "NoneType"
    trace: str | None = None

    @property
    def newsletter_count(self) -> int:
        return len(self.newsletters)

    @property
    def product_count(self) -> int:
        return len(self.products)

    def log_context(self) -> dict[str, Any]:
        """The contact-level fields of the per-contact sync log (docs/contract.md §9.4, §11.3); `trace` only when set."""
        context: dict[str, Any] = {
            "email_id": str(self.email_id),
            "newsletter_count": self.newsletter_count,
            "product_count": self.product_count,
            "newsletters_skipped": list(self.newsletters_skipped),
            "skipped_fields": list(self.skipped_fields),
            "fxa_created_date_converted": self.fxa_created_date_converted,
            "fxa_created_date_type": self.fxa_created_date_type,
        }
        if self.trace is not None:
            context["trace"] = self.trace
        return context


class AcousticDeletion(msgspec.Struct, frozen=True, kw_only=True):
    """What erasing a contact removes from Acoustic (docs/contract.md §9.5): the main-table recipient and the contact's
    relational rows.

    The names (newsletter slugs, waitlist names, product ids) are the rows CTMS knew when the contact was
    erased; they let the gateway address rows by their full key. When a tuple is empty, the gateway deletes
    by `email_id` alone in that table.
    """

    email_id: uuid.UUID
    primary_email: str
    newsletter_names: tuple[str, ...] = ()
    waitlist_names: tuple[str, ...] = ()
    product_ids: tuple[str, ...] = ()

    def key_rows(self) -> dict[str, list[dict[str, str]]]:
        """The DeleteRelationalTableData key rows per relational table (`newsletter`, `waitlist`,
        `product`): one per row CTMS knew of, or the bare `email_id` key when it knew of none there."""
        email_id = str(self.email_id)
        names = {
            "newsletter": ("newsletter_name", self.newsletter_names),
            "waitlist": ("waitlist_name", self.waitlist_names),
            "product": ("product_id", self.product_ids),
        }
        return {
            table: [{"email_id": email_id, key: name} for name in values]
            or [{"email_id": email_id}]
            for table, (key, values) in names.items()
        }


def deletion_of(contact: Contact, products: Iterable[Product] = ()) -> AcousticDeletion:
    """The erasure of `contact`, captured before its rows are deleted from CTMS."""
    return AcousticDeletion(
        email_id=contact.email.email_id,
        primary_email=contact.email.primary_email,
        newsletter_names=tuple(sorted({n.name for n in contact.newsletters})),
        waitlist_names=tuple(sorted({w.name for w in contact.waitlists})),
        product_ids=tuple(sorted({p.product_id for p in products})),
    )


# --- value formatting (docs/contract.md §9.3 "F") -----------------------------------------------------------


def acoustic_datetime(value: datetime) -> str:
    """`MM/DD/YYYY HH:MM:SS` in UTC (aware values are converted; naive ones are taken as UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime(DATETIME_FORMAT)


def _acoustic_date(value: date | datetime) -> str:
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime(DATE_FORMAT)


def acoustic_text(value: Any) -> str:
    """docs/contract.md §9.3's F, total: booleans `Yes`/`No`, datetimes and dates in Acoustic's formats (UTC), UUIDs
    canonical, null empty; numbers in decimal; lists and objects as compact JSON; anything else `str()`."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, datetime):
        return acoustic_datetime(value)
    if isinstance(value, date):
        return _acoustic_date(value)
    if isinstance(value, int | float | uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple | dict):
        try:
            return msgspec.json.encode(value).decode("utf-8")
        except (TypeError, msgspec.EncodeError):
            return str(value)
    return str(value)


def _numeric_boolean(value: bool) -> str:
    return "1" if value else "0"


# --- fxa_created_date -------------------------------------------------------------------------------------

_CREATED_DATE_LAYOUTS: Final = (
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%d %B %Y",
    "%B %d, %Y",
    "%b %d %Y",
    "%a, %d %b %Y %H:%M:%S %z",
)


def _parse_created_date(text: str) -> datetime | None:
    candidate = text.strip()
    if not candidate:
        return None
    try:
        return datetime.fromisoformat(candidate.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        pass
    for layout in _CREATED_DATE_LAYOUTS:
        try:
            return datetime.strptime(candidate, layout)
        except ValueError:
            continue
    return None


def _fxa_created_date(value: str | None) -> tuple[str, str, str]:
    """(column text, `fxa_created_date_converted`, `fxa_created_date_type`)."""
    if not isinstance(value, str):
        return acoustic_text(value), "skipped", type(value).__name__
    parsed = _parse_created_date(value)
    if parsed is None:
        return value, "failure", "str"
    return acoustic_datetime(parsed), "success", "str"


# --- main table (docs/contract.md §9.3) -------------------------------------------------------------------


def _email_candidates(email: Email) -> Iterable[tuple[str, str, Any]]:
    """(`email.<field>` label, column, value) in schema order."""
    for name in email.__struct_fields__:
        column = "email" if name == "primary_email" else name
        yield f"email.{name}", column, getattr(email, name)


def _main_value(column: str, value: Any) -> str:
    if isinstance(value, bool) and column in _NUMERIC_BOOLEAN_COLUMNS:
        return _numeric_boolean(value)
    return acoustic_text(value)


def _waitlist_column_value(contact: Contact, column: str) -> str | None:
    """The value of a flat `<name>_waitlist_<field>` column, or None when `column` is not one."""
    name, marker, field = column.partition(_WAITLIST_MARKER)
    if not marker or not name or not field:
        return None
    waitlist = next((w for w in contact.waitlists if w.name == name), None)
    if waitlist is None:
        return ""
    if field in _WAITLIST_ATTRIBUTES:
        return acoustic_text(getattr(waitlist, field))
    return acoustic_text(waitlist.fields.get(field))


def _main_row(
    contact: Contact, configuration: AcousticConfiguration
) -> tuple[dict[str, str], list[str], str, str]:
    main_fields = configuration.main_fields
    row: dict[str, str] = {}
    skipped: list[str] = []
    created_converted, created_type = "skipped", "NoneType"

    candidates: list[tuple[str, str, Any]] = list(_email_candidates(contact.email))
    if contact.amo is not None:
        amo = contact.amo
        candidates.extend(
            (f"amo.{name}", f"amo_{name}", getattr(amo, name)) for name in amo.__struct_fields__
        )
    if contact.fxa is not None:
        fxa = contact.fxa
        candidates.extend(
            (f"fxa.{name}", name if name == "fxa_id" else f"fxa_{name}", getattr(fxa, name))
            for name in fxa.__struct_fields__
        )

    for label, column, value in candidates:
        if column not in main_fields and column != "email_id":
            if label not in _KNOWN_IGNORED:
                skipped.append(label)
            continue
        if label == "email.create_timestamp":
            row[column] = "" if value is None else _acoustic_date(value)
        elif label == "fxa.created_date":
            row[column], created_converted, created_type = _fxa_created_date(value)
        else:
            row[column] = _main_value(column, value)

    # Newsletter flags: every destination "0", then "1" for each subscribed mapped newsletter.
    mapping = configuration.newsletter_mapping
    for source in sorted(mapping):
        row[mapping[source]] = "0"
    for newsletter in contact.newsletters:
        destination = mapping.get(newsletter.name)
        if destination is not None and newsletter.subscribed:
            row[destination] = "1"

    # Flat waitlist columns, in name order.
    for column in sorted(main_fields):
        value = _waitlist_column_value(contact, column)
        if value is not None:
            row[column] = value

    return row, skipped, created_converted, created_type


# --- relational rows (docs/contract.md §9.3) --------------------------------------------------------------


def _newsletter_row(email_id: str, newsletter: Newsletter) -> dict[str, str]:
    return {
        "email_id": email_id,
        "newsletter_name": newsletter.name,
        "newsletter_source": acoustic_text(newsletter.source),
        "newsletter_format": newsletter.format,
        "newsletter_lang": acoustic_text(newsletter.lang),
        "subscribed": acoustic_text(newsletter.subscribed),
        "newsletter_unsub_reason": acoustic_text(newsletter.unsub_reason),
        "create_timestamp": acoustic_text(newsletter.create_timestamp),
        "update_timestamp": acoustic_text(newsletter.update_timestamp),
    }


def _waitlist_row(
    email_id: str, waitlist: Waitlist, waitlist_fields: Iterable[str]
) -> dict[str, str]:
    row = {
        "email_id": email_id,
        "waitlist_name": waitlist.name,
        "waitlist_source": acoustic_text(waitlist.source),
        "subscribed": acoustic_text(waitlist.subscribed),
        "unsub_reason": acoustic_text(waitlist.unsub_reason),
        "create_timestamp": acoustic_text(waitlist.create_timestamp),
        "update_timestamp": acoustic_text(waitlist.update_timestamp),
    }
    for field in waitlist_fields:
        row[f"waitlist_{field}"] = acoustic_text(waitlist.fields.get(field))
    return row


def _product_row(email_id: str, product: Product) -> dict[str, str]:
    return {
        "email_id": email_id,
        "product_name": acoustic_text(product.product_name),
        "product_id": product.product_id,
        "price_id": product.price_id,
        "segment": product.segment,
        "changed": acoustic_text(product.changed),
        "sub_count": str(product.sub_count),
        "payment_service": product.payment_service,
        "payment_type": acoustic_text(product.payment_type),
        "card_brand": acoustic_text(product.card_brand),
        "card_last4": acoustic_text(product.card_last4),
        "billing_country": acoustic_text(product.billing_country),
        "currency": product.currency,
        "amount": "-1" if product.amount is None else str(product.amount),
        "status": acoustic_text(product.status),
        "interval_count": "-1" if product.interval_count is None else str(product.interval_count),
        "interval": acoustic_text(product.interval),
        "created": acoustic_text(product.created),
        "start": acoustic_text(product.start),
        "current_period_start": acoustic_text(product.current_period_start),
        "current_period_end": acoustic_text(product.current_period_end),
        "canceled_at": acoustic_text(product.canceled_at),
        "ended_at": acoustic_text(product.ended_at),
        "cancel_at_period_end": acoustic_text(product.cancel_at_period_end),
    }


def map_contact(
    contact: Contact, products: Iterable[Product], configuration: AcousticConfiguration
) -> AcousticRecord:
    """Convert one contact for upload (docs/contract.md §9.3). Total: never raises on stored contact data."""
    email_id = str(contact.email.email_id)
    main, skipped_fields, created_converted, created_type = _main_row(contact, configuration)
    mapping = configuration.newsletter_mapping
    waitlist_fields = sorted(configuration.waitlist_fields)
    primary_email = contact.email.primary_email
    return AcousticRecord(
        email_id=contact.email.email_id,
        main=main,
        newsletters=tuple(
            _newsletter_row(email_id, n) for n in sorted(contact.newsletters, key=lambda n: n.name)
        ),
        waitlists=tuple(
            _waitlist_row(email_id, w, waitlist_fields)
            for w in sorted(contact.waitlists, key=lambda w: w.name)
        ),
        products=tuple(
            _product_row(email_id, p)
            for p in sorted(products, key=lambda p: (p.product_id, p.price_id))
        ),
        newsletters_skipped=tuple(
            sorted(n.name for n in contact.newsletters if n.name not in mapping)
        ),
        skipped_fields=tuple(skipped_fields),
        fxa_created_date_converted=created_converted,
        fxa_created_date_type=created_type,
        trace=primary_email if is_traced(primary_email) else None,
    )
