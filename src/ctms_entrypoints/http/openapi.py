"""What `/openapi.json`, `/docs` and `/redoc` show: schemas of the bodies, documented responses, the
security schemes, the links between contact operations, and documentation pages that load their scripts
from `/static` (no CDN).

Handlers read their bodies as raw bytes (see `requests`), so Litestar cannot infer the request schemas from
their signatures; `documented_body` shows them to the schema generator instead. The input Structs below are
documentation only: the core validates bodies (`ctms_core.domain.inputs`, `ctms_core.domain.stripe`,
`ctms_core.domain.pubsub`) and `POST /token` reads its form itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request
from litestar.di import Provide
from litestar.enums import ParamType, RequestEncodingType
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, Operation, Schema, SecurityScheme, Tag
from litestar.openapi.spec import Parameter as OpenAPIParameter
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import Body
from litestar.router import Router
from msgspec import UNSET, UnsetType

from ctms_core.domain.pubsub import (
    ACCEPTED_NOT_PROCESSED,
    NOT_FROM_PUBSUB,
    PROCESSING_ERRORS,
    UNDECODABLE_DATA,
    UNKNOWN_PAYLOAD,
)
from ctms_core.domain.stripe import (
    INTEGER_MAX,
    INTEGER_MIN,
    INVOICE_STATUSES,
    SUBSCRIPTION_STATUSES,
)
from ctms_core.domain.waitlist_rules import (
    ANY_OTHER_WAITLIST,
    SEEDED_WAITLIST_FIELD_RULES,
    WaitlistFieldRule,
)
from ctms_entrypoints.http.errors import (
    ConflictDetail,
    ErrorDetail,
    ValidationErrorDetail,
)

API_TITLE = "ConTact Management System (CTMS)"
STATIC_PATH = "/static"

SecurityRequirements = list[dict[str, list[str]]]
BEARER_SCHEME = "HTTPBearer"
BASIC_SCHEME = "HTTPBasic"
PUBSUB_SCHEME = "GoogleOIDC"
BEARER: SecurityRequirements = [{BEARER_SCHEME: []}]
# `POST /token`: HTTP Basic, or no header at all when the form carries the credentials.
BASIC_OR_FORM: SecurityRequirements = [{BASIC_SCHEME: []}, {}]
PUBSUB_BEARER: SecurityRequirements = [{PUBSUB_SCHEME: []}]

GRANT_TYPE_PATTERN = "^(client_credentials|refresh_token)$"

PUBLIC = ["Public"]
PRIVATE = ["Private"]
PLATFORM = ["Platform"]
AUTHENTICATION = ["Authentication"]

# --- request bodies (documentation only) ------------------------------------------------------------------
#
# The contact bodies describe exactly the JSON values the core's coercers (`ctms_core.domain.fields`, applied
# by `ctms_core.domain.inputs` with the field tables of `ctms_core.domain.contact`) accept, never fewer: v3.3
# is lenient (numbers for text, `"yes"`/`1` for booleans, UUIDs in any form Python reads), and a fuzzer
# sending a value the document calls invalid expects a 4xx. Where the exact set cannot be written as JSON
# Schema (UUID spellings, ISO dates, URLs), the schema is the tightest simple superset; the canonical form is
# its first arm. Patterns are ECMA-262 and Python alike: no inline flags, no `\s`/`\d` (they differ).

# Python's `str.isspace()`, which `str.strip()` removes and the core's checks use.
_ASCII_WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x1f "
WHITESPACE = _ASCII_WHITESPACE + r"\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_WS = f"[{WHITESPACE}]*"
NO_NUL_PATTERN = r"^[^\x00]*$"  # PostgreSQL text holds no U+0000: the core refuses it everywhere

# Arms are plain JSON Schema (Litestar would render nested `Schema` objects with snake_case keys).
JsonSchema = dict[str, Any]
_NULL: JsonSchema = {"type": "null"}


def _schema(*arms: JsonSchema, nullable: bool, description: str | None = None) -> dict[str, Any]:
    """`extra_json_schema` making a field's schema `anyOf` the given arms (and null when `nullable`)."""
    extra: dict[str, Any] = {"any_of": [*arms, _NULL] if nullable else list(arms)}
    if description is not None:
        extra["description"] = description
    return {"extra": extra}


def _text(max_length: int | None = None, min_length: int = 0) -> list[JsonSchema]:
    """`fields.text`: a string without NUL of bounded length, or any number (stored as its decimal
    text, so a huge one may still be too long)."""
    string: JsonSchema = {"type": "string", "pattern": NO_NUL_PATTERN}
    if min_length:
        string["minLength"] = min_length
    if max_length is not None:
        string["maxLength"] = max_length
    return [string, {"type": "number"}]


def _case_insensitive(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


# `fields.boolean`: the words it reads, any case, surrounding whitespace ignored.
TRUE_WORDS = ("true", "yes", "on", "t", "y", "1")
FALSE_WORDS = ("false", "off", "no", "f", "n", "0")
BOOLEAN_PATTERN = (
    f"^{_WS}(?:{'|'.join(_case_insensitive(w) for w in (*TRUE_WORDS, *FALSE_WORDS))}){_WS}$"
)
_BOOLEAN: list[JsonSchema] = [
    {"type": "boolean"},
    {"type": "integer", "enum": [0, 1]},
    {"type": "string", "pattern": BOOLEAN_PATTERN},
]

# An RFC 4122 UUID of version 4, as the core requires of a contact's `email_id`.
UUID4_PATTERN = (
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
)
# Python's `uuid.UUID(text)` drops every `urn:` and `uuid:`, the outer braces and every hyphen, then reads 32
# characters as a base-16 integer (which allows surrounding whitespace, `+`, `0x`, `_` and any Unicode
# decimal digit). So: at least 32 characters, each one of those or non-ASCII.
UUID_SPELLING_PATTERN = f"^(?:[-0-9a-fA-F{{}}:_+xXurnid{_ASCII_WHITESPACE}]|[^\\x00-\\x7f])+$"
_UUID_SPELLING: JsonSchema = {
    "type": "string",
    "minLength": 32,
    "pattern": UUID_SPELLING_PATTERN,
    "description": "Any other spelling Python's `uuid.UUID` reads: without hyphens, in braces, "
    "`urn:uuid:`-prefixed...",
}
_ANY_UUID: list[JsonSchema] = [{"type": "string", "format": "uuid"}, _UUID_SPELLING]
_UUID4: list[JsonSchema] = [{"type": "string", "pattern": UUID4_PATTERN}, _UUID_SPELLING]

# `fields.iso_date`: Python 3.11's `date.fromisoformat` or `datetime.fromisoformat`, surrounding whitespace
# ignored. What may follow the date is not worth spelling out: `datetime.fromisoformat` takes any separator and
# skips stray characters in the time and zone, and `date.fromisoformat` ignores the last two of ten
# characters after a date without hyphens (`20201205xy`).
ISO_DATE_PATTERN = (
    f"^{_WS}[0-9]{{4}}(?:-?[0-9]{{2}}-?[0-9]{{2}}|-?W[0-9]{{2}}(?:-?[0-9])?)[\\s\\S]*$"
)
_ISO_DATE: list[JsonSchema] = [
    {"type": "string", "format": "date"},
    {
        "type": "string",
        "pattern": ISO_DATE_PATTERN,
        "description": "Also `YYYYMMDD`, ISO week dates, and datetimes (the date part is kept)",
    },
]

# `fields.url`: its absolute-URL expression, made case-insensitive by hand (Python's case-insensitive `[a-z]`
# also matches `İ ı ſ K`), without NUL, surrounding whitespace ignored; port digits may be any Unicode digit.
_NOT_URL_TEXT = f"{WHITESPACE}\\x00"
_SCHEME_LETTER = r"a-zA-Z\u0130\u0131\u017f\u212a"
URL_PATTERN = (
    f"^{_WS}[{_SCHEME_LETTER}][{_SCHEME_LETTER}0-9+\\-.]+://"
    f"(?:[^{_NOT_URL_TEXT}:@/]+(?::[^{_NOT_URL_TEXT}@/]*)?@)?"
    f"(?:\\[[0-9a-fA-F:.]+\\]|[^{_NOT_URL_TEXT}:/?#\\[\\]@]+)"
    r"(?::(?:[0-9]|[^\x00-\x7f]){1,5})?"
    f"(?:[/?#][^{_NOT_URL_TEXT}]*)?{_WS}$"
)
_URL: list[JsonSchema] = [{"type": "string", "pattern": URL_PATTERN}]

_LENIENT = "numbers are accepted as their decimal text"


def _lenient_text(max_length: int | None = None, min_length: int = 0) -> Any:
    return msgspec.Meta(
        extra_json_schema=_schema(
            *_text(max_length, min_length), nullable=True, description=f"Text; {_LENIENT}"
        )
    )


Text5 = Annotated[Any, _lenient_text(5)]
Text40 = Annotated[Any, _lenient_text(40)]
Text50 = Annotated[Any, _lenient_text(50)]
Text100 = Annotated[Any, _lenient_text(100)]
Text255 = Annotated[Any, _lenient_text(255)]
Text500 = Annotated[Any, _lenient_text(500)]
AnyText = Annotated[Any, _lenient_text()]
Lang = Annotated[Any, _lenient_text(5, min_length=2)]
Name = Annotated[
    Any,
    msgspec.Meta(
        extra_json_schema=_schema(*_text(255, 1), nullable=False, description=f"Unique; {_LENIENT}")
    ),
]
Boolean = Annotated[
    Any,
    msgspec.Meta(
        extra_json_schema=_schema(
            *_BOOLEAN,
            nullable=False,
            description="`true`/`false`, `1`/`0`, or one of the words "
            f"{', '.join(TRUE_WORDS)} / {', '.join(FALSE_WORDS)} in any case",
        )
    ),
]
BasketToken = Annotated[
    Any, msgspec.Meta(extra_json_schema=_schema(*_ANY_UUID, nullable=True, description="A UUID"))
]
IsoDate = Annotated[
    Any, msgspec.Meta(extra_json_schema=_schema(*_ISO_DATE, nullable=True, description="A date"))
]
Url = Annotated[
    Any,
    msgspec.Meta(extra_json_schema=_schema(*_URL, nullable=True, description="An absolute URL")),
]
EmailIdIn = Annotated[
    Any,
    msgspec.Meta(
        extra_json_schema=_schema(
            *_UUID4, nullable=True, description="A version 4 UUID; generated when absent or null"
        )
    ),
]
EmailIdPut = Annotated[
    Any,
    msgspec.Meta(
        extra_json_schema=_schema(
            *_UUID4, nullable=False, description="A version 4 UUID, equal to the one in the path"
        )
    ),
]
EmailIdPatch = Annotated[
    Any,
    msgspec.Meta(
        extra_json_schema=_schema(
            *_ANY_UUID,
            nullable=True,
            description="If given, must equal the one in the path; null is ignored",
        )
    ),
]


def _waitlist_fields_schema(rules: Iterable[WaitlistFieldRule]) -> JsonSchema:
    """The schema of a waitlist's `fields`, derived from the waitlist field rules as seeded
    (docs/waitlists.md): the rules of every waitlist without rules of its own as properties, each
    waitlist's own rules in words. The rules are data and may differ at run time."""

    def rule_text(rule: WaitlistFieldRule) -> str:
        required = ", required" if rule.required else ""
        return f"`{rule.field}` (text of at most {rule.max_length} characters{required})"

    open_rules = [rule for rule in rules if rule.waitlist == ANY_OTHER_WAITLIST]
    own_rules: dict[str, list[WaitlistFieldRule]] = {}
    for rule in rules:
        if rule.waitlist != ANY_OTHER_WAITLIST:
            own_rules.setdefault(rule.waitlist, []).append(rule)
    shipped = [
        f"`{waitlist}` accepts only {', '.join(rule_text(rule) for rule in ruled)}"
        for waitlist, ruled in sorted(own_rules.items())
    ]
    checked = ", ".join(rule_text(rule) for rule in open_rules) or "no key"
    shipped.append(f"any other waitlist accepts any key and checks {checked}")
    schema: JsonSchema = {
        "description": "Free-form (no NUL character in any key or text), checked by the waitlist "
        "field rules. The rules are data that operators change at run time (`ctms waitlists rules`, "
        f"enforced within `CTMS_WAITLIST_RULES_CACHE_SECONDS`); the rules as shipped: "
        f"{'; '.join(shipped)}. A key a waitlist does not accept is a 422 "
        "`extra fields not permitted`",
        "properties": {
            rule.field: {"anyOf": [*_text(rule.max_length), *([] if rule.required else [_NULL])]}
            for rule in open_rules
        },
    }
    required = [rule.field for rule in open_rules if rule.required]
    if required:
        schema["required"] = required
    return schema


WaitlistFields = Annotated[
    dict[str, Any],
    msgspec.Meta(
        extra_json_schema={"extra": _waitlist_fields_schema(sorted(SEEDED_WAITLIST_FIELD_RULES))}
    ),
]


# One `@` with text on both sides, no whitespace (Python's `str.isspace`) and no NUL (docs/contract.md §5.2).
_NOT_IN_ADDRESS = f"@\\x00{WHITESPACE}"
EMAIL_ADDRESS_PATTERN = f"^[^{_NOT_IN_ADDRESS}]+@[^{_NOT_IN_ADDRESS}]+$"
PrimaryEmail = Annotated[
    str,
    msgspec.Meta(
        max_length=255,
        pattern=EMAIL_ADDRESS_PATTERN,
        description="An e-mail address (one `@` with text on both sides, no whitespace), unique "
        "ignoring case",
    ),
]


class EmailInSchema(msgspec.Struct, kw_only=True):
    primary_email: PrimaryEmail
    basket_token: BasketToken = None
    double_opt_in: Boolean = False
    sfdc_id: Text255 = None
    first_name: Text255 = None
    last_name: Text255 = None
    mailing_country: Text255 = None
    email_format: Literal["H", "T", "N", ""] = "H"
    email_lang: Text5 = "en"
    has_opted_out_of_email: Boolean = False
    unsubscribe_reason: AnyText = None
    email_id: EmailIdIn = None


class EmailPutSchema(EmailInSchema, kw_only=True):
    email_id: EmailIdPut


class EmailPatchSchema(msgspec.Struct, kw_only=True):
    """Only the keys given change; `primary_email` may not be null."""

    primary_email: PrimaryEmail | UnsetType = UNSET
    basket_token: BasketToken = UNSET
    double_opt_in: Boolean = UNSET
    sfdc_id: Text255 = UNSET
    first_name: Text255 = UNSET
    last_name: Text255 = UNSET
    mailing_country: Text255 = UNSET
    email_format: Literal["H", "T", "N", ""] | UnsetType = UNSET
    email_lang: Text5 = UNSET
    has_opted_out_of_email: Boolean = UNSET
    unsubscribe_reason: AnyText = UNSET
    email_id: EmailIdPatch = UNSET


class AddOnsInSchema(msgspec.Struct, kw_only=True):
    add_on_ids: Text500 = None
    display_name: Text255 = None
    email_opt_in: Boolean = False
    language: Text5 = None
    last_login: IsoDate = None
    location: Text255 = None
    profile_url: Text40 = None
    user: Boolean = False
    user_id: Text40 = None
    username: Text100 = None


class FirefoxAccountsInSchema(msgspec.Struct, kw_only=True):
    fxa_id: Text50 = None
    primary_email: Text255 = None
    created_date: Text50 = None
    lang: Text255 = None
    first_service: Text50 = None
    account_deleted: Boolean = False


class MozillaFoundationInSchema(msgspec.Struct, kw_only=True):
    mofo_email_id: Text255 = None
    mofo_contact_id: Text255 = None
    mofo_relevant: Boolean = False


class NewsletterInSchema(msgspec.Struct, kw_only=True):
    name: Name
    subscribed: Boolean = True
    format: Literal["H", "T"] = "H"
    lang: Lang = "en"
    source: Url = None
    unsub_reason: AnyText = None


class WaitlistInSchema(msgspec.Struct, kw_only=True):
    name: Name
    source: Url = None
    fields: WaitlistFields = msgspec.field(default_factory=dict)
    subscribed: Boolean = True
    unsub_reason: AnyText = None


class VpnWaitlistInSchema(msgspec.Struct, kw_only=True):
    """Legacy input, translated into the `vpn` waitlist."""

    geo: Text100 = None
    platform: Text100 = None


class RelayWaitlistInSchema(msgspec.Struct, kw_only=True):
    """Legacy input, translated into `relay*` waitlists."""

    geo: Text100 = None


class ContactInSchema(msgspec.Struct, kw_only=True):
    """A contact to create; unknown keys are ignored."""

    email: EmailInSchema
    amo: AddOnsInSchema | None = None
    fxa: FirefoxAccountsInSchema | None = None
    mofo: MozillaFoundationInSchema | None = None
    newsletters: list[NewsletterInSchema] = msgspec.field(default_factory=list)
    waitlists: list[WaitlistInSchema] = msgspec.field(default_factory=list)
    vpn_waitlist: VpnWaitlistInSchema | None = None
    relay_waitlist: RelayWaitlistInSchema | None = None


class ContactPutSchema(ContactInSchema, kw_only=True):
    """The whole contact: omitted fields take their defaults, omitted items are removed."""

    email: EmailPutSchema


class ContactPatchSchema(msgspec.Struct, kw_only=True):
    """The changes: only the keys given apply; `null` is refused for every group and list (for the legacy
    waitlists it changes nothing)."""

    email: EmailPatchSchema | UnsetType = UNSET
    amo: AddOnsInSchema | Literal["DELETE"] | UnsetType = UNSET
    fxa: FirefoxAccountsInSchema | Literal["DELETE"] | UnsetType = UNSET
    mofo: MozillaFoundationInSchema | Literal["DELETE"] | UnsetType = UNSET
    newsletters: list[NewsletterInSchema] | Literal["UNSUBSCRIBE"] | UnsetType = UNSET
    waitlists: list[WaitlistInSchema] | Literal["UNSUBSCRIBE"] | UnsetType = UNSET
    vpn_waitlist: VpnWaitlistInSchema | Literal["DELETE"] | UnsetType | None = UNSET
    relay_waitlist: RelayWaitlistInSchema | Literal["DELETE"] | UnsetType | None = UNSET


class TokenRequestSchema(msgspec.Struct, kw_only=True):
    """OAuth2 client-credentials grant. The credentials come from `client_id` and `client_secret` when
    both are non-empty, else from an HTTP Basic `Authorization` header. Empty fields count as absent;
    other fields are ignored."""

    grant_type: (
        Annotated[
            str,
            msgspec.Meta(
                pattern=GRANT_TYPE_PATTERN,
                description="`refresh_token` behaves as `client_credentials` (no refresh token is "
                "issued or read); absent means `client_credentials`",
            ),
        ]
        | UnsetType
    ) = UNSET
    client_id: Annotated[str, msgspec.Meta(description="The API client's id")] | UnsetType = UNSET
    client_secret: (
        Annotated[str, msgspec.Meta(description="The API client's secret")] | UnsetType
    ) = UNSET
    scope: Annotated[str, msgspec.Meta(description="Ignored")] | UnsetType = UNSET


# Stripe objects (docs/contract.md §8.3), as `ctms_core.domain.stripe` parses them. Keys not listed are ignored.

_FIRST_SECOND = -62135596800  # 0001-01-01T00:00:00Z
_LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z

StripeId = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
StripeTimestamp = Annotated[
    int,
    msgspec.Meta(
        ge=_FIRST_SECOND,
        le=_LAST_SECOND,
        description="Unix seconds (not 0, which means none)",
        extra_json_schema={"extra": {"schema_not": Schema(const=0)}},
    ),
]
StripeOptionalTimestamp = Annotated[
    int, msgspec.Meta(ge=_FIRST_SECOND, le=_LAST_SECOND, description="Unix seconds; 0 means none")
]
StripeInteger = Annotated[int, msgspec.Meta(ge=INTEGER_MIN, le=INTEGER_MAX)]
Currency = Annotated[
    str, msgspec.Meta(pattern="^[A-Za-z]{3}$", description="ISO 4217 code, stored lower-case")
]


class ExpandedIdentifier(msgspec.Struct, kw_only=True):
    """An expanded Stripe object: only its `id` is read."""

    id: StripeId


class ExpandedReference(msgspec.Struct, kw_only=True):
    """An expanded Stripe object: only its `id` is read (absent, null or empty: no reference)."""

    id: Annotated[str, msgspec.Meta(max_length=255)] | UnsetType | None = UNSET


# Litestar drops the constraints of a union's string arm; set at the union's level, JSON Schema applies
# them to strings only, which is what they mean.
_ID_LENGTH = {"min_length": 1, "max_length": 255}
_REFERENCE_LENGTH = {"max_length": 255}

# An id (or the expanded object) that must be given.
StripeIdentifier = Annotated[
    str | ExpandedIdentifier, msgspec.Meta(extra_json_schema={"extra": _ID_LENGTH})
]
# An id (or the expanded object); null or empty means none.
StripeReference = Annotated[
    str | ExpandedReference | None,
    msgspec.Meta(
        description="An id, or the expanded object; null or empty means none",
        extra_json_schema={"extra": _REFERENCE_LENGTH},
    ),
]


class InvoiceSettingsSchema(msgspec.Struct, kw_only=True):
    default_payment_method: StripeReference


class StripeCustomerSchema(msgspec.Struct, kw_only=True):
    """A customer; `description` is the Firefox Account id it belongs to."""

    object: Literal["customer"]
    id: StripeId
    description: Annotated[str, msgspec.Meta(min_length=1, max_length=255, description="FxA id")]
    created: StripeTimestamp
    default_source: StripeReference
    invoice_settings: InvoiceSettingsSchema
    deleted: Literal[False] | UnsetType | None = UNSET
    email: Annotated[Any, msgspec.Meta(description="Read only to trace the request")] = UNSET


class StripeDeletedCustomerSchema(msgspec.Struct, kw_only=True):
    """A deleted customer: only its `id` is read."""

    object: Literal["customer"]
    id: StripeId
    deleted: Literal[True]
    email: Annotated[Any, msgspec.Meta(description="Read only to trace the request")] = UNSET


class StripeRecurringSchema(msgspec.Struct, kw_only=True):
    interval: Literal["day", "week", "month", "year"] | UnsetType | None = UNSET
    interval_count: StripeInteger | UnsetType | None = UNSET


class StripePriceSchema(msgspec.Struct, kw_only=True):
    """A price of a product."""

    object: Literal["price"]
    id: StripeId
    product: StripeIdentifier
    created: StripeTimestamp
    active: bool
    currency: Currency
    recurring: StripeRecurringSchema | UnsetType | None = UNSET
    unit_amount: StripeInteger | UnsetType | None = UNSET


class StripeSubscriptionItemSchema(msgspec.Struct, kw_only=True):
    """A subscription item with its price."""

    object: Literal["subscription_item"]
    id: StripeId
    subscription: Annotated[
        StripeIdentifier,
        msgspec.Meta(description="Inside a subscription: that subscription's id"),
    ]
    price: StripePriceSchema
    created: StripeTimestamp


class SubscriptionItemsSchema(msgspec.Struct, kw_only=True):
    data: list[StripeSubscriptionItemSchema]


class StripeSubscriptionSchema(msgspec.Struct, kw_only=True):
    """A subscription with its items (`items.data`), each of this subscription."""

    object: Literal["subscription"]
    id: StripeId
    customer: StripeIdentifier
    default_payment_method: StripeReference
    default_source: StripeReference
    created: StripeTimestamp
    cancel_at_period_end: bool
    canceled_at: StripeOptionalTimestamp | None
    current_period_end: StripeTimestamp
    current_period_start: StripeTimestamp
    ended_at: StripeOptionalTimestamp | None
    start_date: StripeTimestamp
    status: Annotated[
        str, msgspec.Meta(extra_json_schema={"extra": {"enum": list(SUBSCRIPTION_STATUSES)}})
    ]
    items: SubscriptionItemsSchema


class StripeLineItemSchema(msgspec.Struct, kw_only=True):
    """An invoice line item with its price."""

    object: Literal["line_item"]
    id: StripeId
    type: Literal["subscription", "invoiceitem"]
    price: StripePriceSchema
    amount: StripeInteger
    currency: Currency
    invoice_item: StripeReference | UnsetType = UNSET
    subscription: StripeReference | UnsetType = UNSET
    subscription_item: StripeReference | UnsetType = UNSET


class InvoiceLinesSchema(msgspec.Struct, kw_only=True):
    data: list[StripeLineItemSchema]


class StripeInvoiceSchema(msgspec.Struct, kw_only=True):
    """An invoice with its line items (`lines.data`)."""

    object: Literal["invoice"]
    id: StripeId
    customer: StripeIdentifier
    default_payment_method: StripeReference
    default_source: StripeReference
    created: StripeTimestamp
    currency: Currency
    total: StripeInteger
    status: Annotated[
        str, msgspec.Meta(extra_json_schema={"extra": {"enum": list(INVOICE_STATUSES)}})
    ]
    lines: InvoiceLinesSchema


StripeObjectSchema = (
    StripeCustomerSchema
    | StripeDeletedCustomerSchema
    | StripeSubscriptionSchema
    | StripeSubscriptionItemSchema
    | StripePriceSchema
    | StripeInvoiceSchema
)


_NOT_READ = msgspec.Meta(description="Pub/Sub's; not read")


class PushMessageSchema(msgspec.Struct, kw_only=True):
    data: Annotated[
        str,
        msgspec.Meta(
            description="Base64 of a JSON payload: one Stripe object, or an object whose every key "
            'holds one ":" (`"<firestore table>:<id>"`) mapping to a Stripe object (empty values '
            "are skipped)"
        ),
    ]
    attributes: Annotated[Any, _NOT_READ] = UNSET
    messageId: Annotated[Any, _NOT_READ] = UNSET
    message_id: Annotated[Any, _NOT_READ] = UNSET
    publishTime: Annotated[Any, _NOT_READ] = UNSET
    publish_time: Annotated[Any, _NOT_READ] = UNSET


class PushEnvelopeSchema(msgspec.Struct, kw_only=True):
    """A Google Pub/Sub push request. A body that is not such an envelope, whose `data` is not base64
    of JSON, or whose payload is not a JSON object is accepted (202) and never processed."""

    message: PushMessageSchema
    subscription: Annotated[
        Any,
        msgspec.Meta(
            description="`projects/<project>/subscriptions/<name>`; only its presence is checked"
        ),
    ]


# Each function's `data` parameter shows the schema generator a body; they are never called, because no
# handler asks for these dependencies (Litestar documents the `data` of a handler's dependencies).
def _contact_in(data: ContactInSchema) -> None:
    raise NotImplementedError


def _contact_put(data: ContactPutSchema) -> None:
    raise NotImplementedError


def _contact_patch(data: ContactPatchSchema) -> None:
    raise NotImplementedError


def _token_request(
    data: Annotated[
        TokenRequestSchema,
        Body(
            media_type=RequestEncodingType.URL_ENCODED,
            description="The grant (a multipart form works too). Without `client_id` and "
            "`client_secret`, the credentials come from HTTP Basic.",
        ),
    ],
) -> None:
    raise NotImplementedError


def _stripe_object(
    data: Annotated[
        StripeObjectSchema,
        Body(
            description="One Stripe object: a customer, subscription, subscription item, price or "
            "invoice; keys not described are ignored. A body that is not a JSON object with `object` "
            "and `id` is a 400 `Request JSON is not recognized.`; another `object` type is a 400 "
            "naming it; an object missing data CTMS needs, or holding an invalid value (ids hold no "
            "NUL character), is a 400 `Unable to process Stripe object.`",
        ),
    ],
) -> None:
    raise NotImplementedError


def _pubsub_push(data: PushEnvelopeSchema) -> None:
    raise NotImplementedError


_BODY_DOCUMENTATION: dict[Any, Callable[..., None]] = {
    ContactInSchema: _contact_in,
    ContactPutSchema: _contact_put,
    ContactPatchSchema: _contact_patch,
    TokenRequestSchema: _token_request,
    StripeObjectSchema: _stripe_object,
    PushEnvelopeSchema: _pubsub_push,
}


def documented_body(schema: Any) -> dict[str, Provide]:
    """Handler `dependencies` that document `schema` as the request body (see module docstring)."""
    return {"documented_request_body": Provide(_BODY_DOCUMENTATION[schema], sync_to_thread=False)}


# --- responses --------------------------------------------------------------------------------------------


class StripeIngested(msgspec.Struct, kw_only=True):
    status: Literal["OK"]


class PushIngested(msgspec.Struct, kw_only=True):
    status: Literal["OK"]
    count: Annotated[int, msgspec.Meta(ge=0, description="Stripe objects ingested")]


class PushNotProcessed(msgspec.Struct, kw_only=True):
    """Pub/Sub must not send this push again."""

    status: Annotated[
        str, msgspec.Meta(extra_json_schema={"extra": {"enum": [ACCEPTED_NOT_PROCESSED]}})
    ]
    message: Annotated[
        str,
        msgspec.Meta(
            extra_json_schema={
                "extra": {
                    "enum": [NOT_FROM_PUBSUB, UNDECODABLE_DATA, UNKNOWN_PAYLOAD, PROCESSING_ERRORS]
                }
            }
        ),
    ]


_ERROR_RESPONSES: dict[int, ResponseSpec] = {
    400: ResponseSpec(
        ErrorDetail,
        description="The API client is disabled, or the request cannot be served as asked",
        generate_examples=False,
    ),
    401: ResponseSpec(
        ErrorDetail, description="Missing or invalid bearer token", generate_examples=False
    ),
    403: ResponseSpec(
        ErrorDetail,
        description="The API client lacks every permission the operation accepts",
        generate_examples=False,
    ),
    404: ResponseSpec(ErrorDetail, description="Not found", generate_examples=False),
    409: ResponseSpec(
        ConflictDetail,
        description="A unique identifier is already used by another contact; `conflicts` names them",
        generate_examples=False,
    ),
    413: ResponseSpec(
        ErrorDetail, description="The request body is too large", generate_examples=False
    ),
    422: ResponseSpec(
        ValidationErrorDetail,
        description="Invalid input: every invalid value with its location, or a reason",
        generate_examples=False,
    ),
    503: ResponseSpec(
        ErrorDetail, description="The database cannot be reached", generate_examples=False
    ),
}

PROTECTED_ERRORS = (400, 401, 403, 422, 503)


def responses(specific: dict[int, tuple[Any, str]], *errors: int) -> dict[int, ResponseSpec]:
    """ResponseSpecs for the operation's own statuses (`{status: (body type, description)}`: its
    successes, and errors it answers unlike the shared ones) and the shared `errors`."""
    documented = {
        status: ResponseSpec(body, description=description, generate_examples=False)
        for status, (body, description) in specific.items()
    }
    documented.update(
        {status: _ERROR_RESPONSES[status] for status in errors if status not in documented}
    )
    return documented


@dataclass
class UpdatesOperation(Operation):
    """`start` is required, but checked by the core after authentication (a missing one is a 422 in the
    standard shape), so Litestar only documents it as required."""

    def __post_init__(self) -> None:
        for parameter in self.parameters or ():
            if getattr(parameter, "name", None) == "start":
                parameter.required = True  # type: ignore[union-attr]


@dataclass
class PushOperation(Operation):
    """`POST /stripe_from_pubsub` reads its query itself: the operation documents `pubsub_client`, and
    not the 400 Litestar assumes for any operation with a body (the push never answers 400)."""

    def __post_init__(self) -> None:
        if self.responses is not None:
            self.responses.pop("400", None)
        self.parameters = [
            *(self.parameters or ()),
            OpenAPIParameter(
                name="pubsub_client",
                param_in=ParamType.QUERY,
                required=True,
                schema=Schema(type=OpenAPIType.STRING),
                description="The shared secret `CTMS_PUBSUB_CLIENT`; missing or wrong: 401, before "
                "the token is looked at",
            ),
        ]


def requires_api_bearer(security: SecurityRequirements | None) -> bool:
    """Whether an operation's security requirements ask for an API client's bearer token (not HTTP
    Basic on `/token`, not the Google token of the Pub/Sub push)."""
    return any(BEARER_SCHEME in requirement for requirement in security or ())


# --- links ------------------------------------------------------------------------------------------------

# From a response carrying one contact to the operations on that contact (OpenAPI links; Litestar's
# ResponseSpec cannot declare them, so the served document gets them, see `_DocumentWithLinks`).
_EMAIL_ID = "$response.body#/email/email_id"
_PRIMARY_EMAIL = "$response.body#/email/primary_email"
_CONTACT_LINKS: dict[str, dict[str, Any]] = {
    "ReadContact": {
        "operationId": "read_ctms_by_email_id",
        "parameters": {"path.email_id": _EMAIL_ID},
        "description": "Read the contact",
    },
    "ReplaceContact": {
        "operationId": "create_or_update_ctms_contact",
        "parameters": {"path.email_id": _EMAIL_ID},
        "requestBody": "$response.body",
        "description": "Replace the contact, starting from its representation",
    },
    "UpdateContact": {
        "operationId": "partial_update_ctms_contact",
        "parameters": {"path.email_id": _EMAIL_ID},
        "description": "Change some of the contact's data",
    },
    "LookUpContact": {
        "operationId": "read_ctms_by_any_id",
        "parameters": {"query.primary_email": _PRIMARY_EMAIL},
        "description": "Find the contact by its primary e-mail",
    },
    "ReadIdentity": {
        "operationId": "read_identity",
        "parameters": {"path.email_id": _EMAIL_ID},
        "description": "Read the contact's identifiers",
    },
    "LookUpIdentities": {
        "operationId": "read_identities",
        "parameters": {"query.primary_email": _PRIMARY_EMAIL},
        "description": "Find the contact's identifiers by its primary e-mail",
    },
    "DeleteContact": {
        "operationId": "delete_contact_by_primary_email",
        "parameters": {"path.primary_email": _PRIMARY_EMAIL},
        "description": "Erase the contact",
    },
}
# (path, method, status) of the responses that carry one contact.
LINKED_RESPONSES = (
    ("/ctms", "post", "201"),
    ("/ctms", "post", "200"),
    ("/ctms/{email_id}", "get", "200"),
    ("/ctms/{email_id}", "put", "201"),
    ("/ctms/{email_id}", "patch", "200"),
)


def add_links(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with the contact links on every response of `LINKED_RESPONSES` (in place)."""
    paths = document.get("paths", {})
    for path, method, status in LINKED_RESPONSES:
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is not None:
            response["links"] = _CONTACT_LINKS
    return document


class _DocumentWithLinks(JsonRenderPlugin):
    """`/openapi.json`: Litestar's document plus the contact links."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, add_links(openapi_schema))


# --- documentation pages ----------------------------------------------------------------------------------

_FAVICON = f"<link rel='icon' type='image/png' href='{STATIC_PATH}/swagger-ui/favicon-32x32.png'>"

SWAGGER_UI = SwaggerRenderPlugin(
    path="/docs",
    js_url=f"{STATIC_PATH}/swagger-ui/swagger-ui-bundle.js",
    css_url=f"{STATIC_PATH}/swagger-ui/swagger-ui.css",
    standalone_preset_js_url=f"{STATIC_PATH}/swagger-ui/swagger-ui-standalone-preset.js",
    favicon=_FAVICON,
)
REDOC = RedocRenderPlugin(
    path="/redoc",
    js_url=f"{STATIC_PATH}/redoc/redoc.standalone.js",
    google_fonts=False,
    favicon=_FAVICON,
)


def openapi_config(version: str) -> OpenAPIConfig:
    """The schema document, served at `/openapi.json`.

    Litestar's documentation router adds a catch-all page and a root page under its path; mounted at
    `/openapi.json` they stay out of the way of CTMS's own `GET /` and 404/405 answers. `/docs` and
    `/redoc` are ordinary routes (see `routes.platform`).
    """
    return OpenAPIConfig(
        title=API_TITLE,
        version=version,
        description="Marketing contacts: e-mail identity, add-ons, Firefox Account, Mozilla "
        "Foundation data, newsletters and waitlists. Get an access token from `POST /token` "
        "(OAuth2 client credentials) and send it as `Authorization: Bearer <token>`.",
        tags=[
            Tag(name="Public", description="The contacts API and Stripe objects"),
            Tag(name="Private", description="Identifiers of contacts; Stripe objects from Pub/Sub"),
            Tag(name="Platform", description="Health and version of the service"),
            Tag(name="Authentication", description="Access tokens (OAuth2 client credentials)"),
        ],
        components=Components(
            security_schemes={
                BEARER_SCHEME: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="An access token from `POST /token`",
                ),
                BASIC_SCHEME: SecurityScheme(
                    type="http",
                    scheme="basic",
                    description="An API client's id and secret, for `POST /token`",
                ),
                PUBSUB_SCHEME: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="A Google-signed OpenID Connect token of the Pub/Sub push "
                    "subscription: issuer Google, audience `CTMS_PUBSUB_AUDIENCE`, `email` "
                    "`CTMS_PUBSUB_EMAIL` and `email_verified` true",
                ),
            }
        ),
        render_plugins=[_DocumentWithLinks(path="/")],
        openapi_router=Router(path="/openapi.json", route_handlers=[], include_in_schema=False),
    )
