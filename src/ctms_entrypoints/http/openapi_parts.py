"""The hand-written parts of the OpenAPI document (the contact bodies are generated in `openapi`): the
bodies of the token, Stripe and Pub/Sub operations (documentation only: `POST /token` reads its form itself;
`ctms_core.domain.stripe` and `ctms_core.domain.pubsub` parse the others), the shared error responses, and
the links between contact operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request
from litestar.enums import ParamType, RequestEncodingType
from litestar.openapi import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Operation, Schema
from litestar.openapi.spec import Parameter as OpenAPIParameter
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import Body
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
from ctms_entrypoints.http.errors import ConflictDetail, ErrorDetail, ValidationErrorDetail

GRANT_TYPE_PATTERN = "^(client_credentials|refresh_token)$"


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


def token_request(
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


def stripe_object(
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


def pubsub_push(data: PushEnvelopeSchema) -> None:
    raise NotImplementedError


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


# --- links ------------------------------------------------------------------------------------------------

# From a response carrying one contact to the operations on that contact (OpenAPI links; Litestar's
# ResponseSpec cannot declare them, so the served document gets them, see `DocumentWithLinks`).
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


# The parts of a contact response, documented from the domain structs (`responses.CTMSResponse`): every key
# is always present, though the structs have defaults (which Litestar would document as optional).
_COMPLETE_PARTS = ("EmailSchema", "AddOnsSchema", "NewsletterSchema", "WaitlistSchema")


def mark_complete(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with every property of the contact response parts required (in place)."""
    schemas = document.get("components", {}).get("schemas", {})
    for name in _COMPLETE_PARTS:
        if name in schemas:
            schemas[name].update(title=name, required=sorted(schemas[name]["properties"]))
    return document


class DocumentWithLinks(JsonRenderPlugin):
    """`/openapi.json`: Litestar's document plus the contact links."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, mark_complete(add_links(openapi_schema)))
