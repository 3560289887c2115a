"""What `/openapi.json`, `/docs` and `/redoc` show: schemas of the bodies, documented responses, the
bearer security scheme, and documentation pages that load their scripts from `/static` (no CDN).

Handlers read their bodies as raw bytes (see `requests`), so Litestar cannot infer the request schemas from
their signatures; `documented_body` shows them to the schema generator instead. The input Structs below are
documentation only: the core validates bodies (`ctms_core.domain.inputs`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

import msgspec
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, Operation, SecurityScheme, Tag
from litestar.router import Router
from msgspec import UNSET, UnsetType

from ctms_entrypoints.http.errors import (
    ConflictDetail,
    ErrorDetail,
    ValidationErrorDetail,
)

API_TITLE = "ConTact Management System (CTMS)"
STATIC_PATH = "/static"
BEARER_SCHEME = "HTTPBearer"
BEARER: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]

PUBLIC = ["Public"]
PRIVATE = ["Private"]
PLATFORM = ["Platform"]

# --- request bodies (documentation only) ------------------------------------------------------------------

Text255 = Annotated[str, msgspec.Meta(max_length=255)]
GeoOrPlatform = Annotated[str, msgspec.Meta(max_length=100)]
Url = Annotated[
    str, msgspec.Meta(description="An absolute URL", extra_json_schema={"format": "uri"})
]


class EmailInSchema(msgspec.Struct, kw_only=True):
    primary_email: Annotated[
        str, msgspec.Meta(max_length=255, description="An e-mail address, unique ignoring case")
    ]
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
        Annotated[uuid.UUID, msgspec.Meta(description="A version 4 UUID; generated when absent")]
        | None
    ) = None


class EmailPutSchema(EmailInSchema, kw_only=True):
    email_id: Annotated[
        uuid.UUID, msgspec.Meta(description="A version 4 UUID, equal to the one in the path")
    ]


class EmailPatchSchema(msgspec.Struct, kw_only=True):
    """Only the keys given change; `primary_email` may not be null."""

    primary_email: Annotated[str, msgspec.Meta(max_length=255)] | UnsetType = UNSET
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


# Each function's `data` parameter shows the schema generator a body; they are never called, because no
# handler asks for these dependencies (Litestar documents the `data` of a handler's dependencies).
def _contact_in(data: ContactInSchema) -> None:
    raise NotImplementedError


def _contact_put(data: ContactPutSchema) -> None:
    raise NotImplementedError


def _contact_patch(data: ContactPatchSchema) -> None:
    raise NotImplementedError


_BODY_DOCUMENTATION: dict[type[msgspec.Struct], Callable[..., None]] = {
    ContactInSchema: _contact_in,
    ContactPutSchema: _contact_put,
    ContactPatchSchema: _contact_patch,
}


def documented_body(schema: type[msgspec.Struct]) -> dict[str, Provide]:
    """Handler `dependencies` that document `schema` as the request body (see module docstring)."""
    return {"documented_request_body": Provide(_BODY_DOCUMENTATION[schema], sync_to_thread=False)}


# --- responses --------------------------------------------------------------------------------------------

_ERROR_RESPONSES: dict[int, ResponseSpec] = {
    400: ResponseSpec(
        ErrorDetail,
        description="The API client is disabled, or the request cannot be served as asked",
        generate_examples=False,
    ),
    401: ResponseSpec(
        ErrorDetail, description="Missing or invalid bearer token", generate_examples=False
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

PROTECTED_ERRORS = (400, 401, 422, 503)


def responses(success: dict[int, tuple[Any, str]], *errors: int) -> dict[int, ResponseSpec]:
    """ResponseSpecs for the success statuses (`{status: (body type, description)}`) and `errors`."""
    documented = {
        status: ResponseSpec(body, description=description, generate_examples=False)
        for status, (body, description) in success.items()
    }
    documented.update({status: _ERROR_RESPONSES[status] for status in errors})
    return documented


@dataclass
class UpdatesOperation(Operation):
    """`start` is required, but checked by the core after authentication (a missing one is a 422 in the
    standard shape), so Litestar only documents it as required."""

    def __post_init__(self) -> None:
        for parameter in self.parameters or ():
            if getattr(parameter, "name", None) == "start":
                parameter.required = True  # type: ignore[union-attr]


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
            Tag(name="Public", description="The contacts API"),
            Tag(name="Private", description="Identifiers of contacts"),
            Tag(name="Platform", description="Health and version of the service"),
        ],
        components=Components(
            security_schemes={
                BEARER_SCHEME: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="An access token from `POST /token`",
                )
            }
        ),
        render_plugins=[JsonRenderPlugin(path="/")],
        openapi_router=Router(path="/openapi.json", route_handlers=[], include_in_schema=False),
    )
