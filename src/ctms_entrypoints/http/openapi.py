"""What `/openapi.json`, `/docs` and `/redoc` show: schemas of the bodies, documented responses, the
security schemes, the links between contact operations, and documentation pages that load their scripts
from `/static` (no CDN).

Handlers read their bodies as raw bytes (see `requests`), so Litestar cannot infer the request schemas from
their signatures; `documented_body` shows them to the schema generator instead. The input Structs below are
documentation only: the core validates bodies (`ctms_core.domain.inputs`, `ctms_core.domain.stripe`,
`ctms_core.domain.pubsub`) and `POST /token` reads its form itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
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

Text255 = Annotated[str, msgspec.Meta(max_length=255)]
GeoOrPlatform = Annotated[str, msgspec.Meta(max_length=100)]
Url = Annotated[
    str, msgspec.Meta(description="An absolute URL", extra_json_schema={"format": "uri"})
]


# One `@` with text on both sides, no whitespace (Python's `str.isspace`) and no NUL (SPEC §6 item 11).
_NOT_IN_ADDRESS = (
    r"@\x00\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
)
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


# An RFC 4122 UUID of version 4, as the core requires of a contact's `email_id`.
UUID4_PATTERN = (
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
)


class EmailInSchema(msgspec.Struct, kw_only=True):
    primary_email: PrimaryEmail
    basket_token: uuid.UUID | None = None
    double_opt_in: bool = False
    sfdc_id: Text255 | None = None
    first_name: Text255 | None = None
    last_name: Text255 | None = None
    mailing_country: Text255 | None = None
    email_format: Literal["H", "T", "N", ""] = "H"
    email_lang: Annotated[str, msgspec.Meta(max_length=5)] | None = "en"
    has_opted_out_of_email: bool = False
    unsubscribe_reason: str | None = None
    email_id: (
        Annotated[
            uuid.UUID,
            msgspec.Meta(
                description="A version 4 UUID; generated when absent",
                extra_json_schema={"extra": {"pattern": UUID4_PATTERN}},
            ),
        ]
        | None
    ) = None


class EmailPutSchema(EmailInSchema, kw_only=True):
    email_id: Annotated[
        uuid.UUID,
        msgspec.Meta(
            description="A version 4 UUID, equal to the one in the path",
            extra_json_schema={"extra": {"pattern": UUID4_PATTERN}},
        ),
    ]


class EmailPatchSchema(msgspec.Struct, kw_only=True):
    """Only the keys given change; `primary_email` may not be null."""

    primary_email: PrimaryEmail | UnsetType = UNSET
    basket_token: uuid.UUID | UnsetType | None = UNSET
    double_opt_in: bool | UnsetType = UNSET
    sfdc_id: Text255 | UnsetType | None = UNSET
    first_name: Text255 | UnsetType | None = UNSET
    last_name: Text255 | UnsetType | None = UNSET
    mailing_country: Text255 | UnsetType | None = UNSET
    email_format: Literal["H", "T", "N", ""] | UnsetType = UNSET
    email_lang: Annotated[str, msgspec.Meta(max_length=5)] | UnsetType | None = UNSET
    has_opted_out_of_email: bool | UnsetType = UNSET
    unsubscribe_reason: str | UnsetType | None = UNSET
    email_id: (
        Annotated[uuid.UUID, msgspec.Meta(description="If given, must equal the one in the path")]
        | UnsetType
    ) = UNSET


class AddOnsInSchema(msgspec.Struct, kw_only=True):
    add_on_ids: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    display_name: Text255 | None = None
    email_opt_in: bool = False
    language: Annotated[str, msgspec.Meta(max_length=5)] | None = None
    last_login: date | None = None
    location: Text255 | None = None
    profile_url: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    user: bool = False
    user_id: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    username: Annotated[str, msgspec.Meta(max_length=100)] | None = None


class FirefoxAccountsInSchema(msgspec.Struct, kw_only=True):
    fxa_id: Annotated[str, msgspec.Meta(max_length=50)] | None = None
    primary_email: Text255 | None = None
    created_date: Annotated[str, msgspec.Meta(max_length=50)] | None = None
    lang: Text255 | None = None
    first_service: Annotated[str, msgspec.Meta(max_length=50)] | None = None
    account_deleted: bool = False


class MozillaFoundationInSchema(msgspec.Struct, kw_only=True):
    mofo_email_id: Text255 | None = None
    mofo_contact_id: Text255 | None = None
    mofo_relevant: bool = False


class NewsletterInSchema(msgspec.Struct, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    subscribed: bool = True
    format: Literal["H", "T"] = "H"
    lang: Annotated[str, msgspec.Meta(min_length=2, max_length=5)] | None = "en"
    source: Url | None = None
    unsub_reason: str | None = None


class WaitlistInSchema(msgspec.Struct, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    source: Url | None = None
    fields: Annotated[
        dict[str, Any],
        msgspec.Meta(
            description="Free-form; `geo` and `platform` are strings of at most 100 characters; "
            "the `vpn` waitlist accepts only those two keys, `relay` only `geo`"
        ),
    ] = msgspec.field(default_factory=dict)
    subscribed: bool = True
    unsub_reason: str | None = None


class VpnWaitlistInSchema(msgspec.Struct, kw_only=True):
    """Legacy input, translated into the `vpn` waitlist."""

    geo: GeoOrPlatform | None = None
    platform: GeoOrPlatform | None = None


class RelayWaitlistInSchema(msgspec.Struct, kw_only=True):
    """Legacy input, translated into `relay*` waitlists."""

    geo: GeoOrPlatform | None = None


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
    """The changes: only the keys given apply; `null` is refused for every group."""

    email: EmailPatchSchema | UnsetType = UNSET
    amo: AddOnsInSchema | Literal["DELETE"] | UnsetType = UNSET
    fxa: FirefoxAccountsInSchema | Literal["DELETE"] | UnsetType = UNSET
    mofo: MozillaFoundationInSchema | Literal["DELETE"] | UnsetType = UNSET
    newsletters: list[NewsletterInSchema] | Literal["UNSUBSCRIBE"] | UnsetType = UNSET
    waitlists: list[WaitlistInSchema] | Literal["UNSUBSCRIBE"] | UnsetType = UNSET
    vpn_waitlist: VpnWaitlistInSchema | Literal["DELETE"] | UnsetType = UNSET
    relay_waitlist: RelayWaitlistInSchema | Literal["DELETE"] | UnsetType = UNSET


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


# Stripe objects (R§5.1–§5.2), as `ctms_core.domain.stripe` parses them. Keys not listed are ignored.

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
