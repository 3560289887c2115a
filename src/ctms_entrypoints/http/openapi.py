"""What `/openapi.json`, `/docs` and `/redoc` show: schemas of the bodies, the security schemes, and
documentation pages that load their scripts from `/static` (no CDN). The contact request bodies are
generated here from the field declarations; the other bodies, the shared error responses and the links
between contact operations are written out in `openapi_parts`.

Handlers read their bodies as raw bytes (see `requests`), so Litestar cannot infer the request schemas from
their signatures; `documented_body` shows them to the schema generator instead. The bodies are
documentation only: the core validates them (`ctms_core.domain.inputs`, `ctms_core.domain.stripe`,
`ctms_core.domain.pubsub`) and `POST /token` reads its form itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

import msgspec
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Tag
from litestar.router import Router
from msgspec import UNSET, UnsetType

from ctms_core.domain.contact import Amo, Email, Fxa, Mofo, Newsletter, Waitlist
from ctms_core.domain.fields import (
    UUID4_PATTERN,
    UUID_SPELLING,
    Field,
    JsonObject,
    JsonSchema,
    Text,
    UuidText,
    input_fields,
)
from ctms_core.domain.inputs import LegacyRelayWaitlist, LegacyVpnWaitlist
from ctms_core.domain.waitlist_rules import (
    ANY_OTHER_WAITLIST,
    SEEDED_WAITLIST_FIELD_RULES,
    WaitlistFieldRule,
)
from ctms_entrypoints.http.openapi_parts import (
    GRANT_TYPE_PATTERN,
    PROTECTED_ERRORS,
    DocumentWithLinks,
    PushEnvelopeSchema,
    PushIngested,
    PushNotProcessed,
    PushOperation,
    StripeIngested,
    StripeObjectSchema,
    TokenRequestSchema,
    UpdatesOperation,
    pubsub_push,
    responses,
    stripe_object,
    token_request,
)

# The routes import every documented body and response helper from here.
__all__ = [
    "GRANT_TYPE_PATTERN",
    "PROTECTED_ERRORS",
    "PushEnvelopeSchema",
    "PushIngested",
    "PushNotProcessed",
    "PushOperation",
    "StripeIngested",
    "StripeObjectSchema",
    "TokenRequestSchema",
    "UpdatesOperation",
    "documented_body",
    "openapi_config",
    "responses",
]

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


PUBLIC = ["Public"]
PRIVATE = ["Private"]
PLATFORM = ["Platform"]
AUTHENTICATION = ["Authentication"]

# --- request bodies (documentation only) ------------------------------------------------------------------
#
# The contact bodies are generated from the field declarations of `ctms_core.domain.contact`: each field's
# rule renders the JSON Schemas of the values it accepts (`fields.Rule.json_schema`), so the document and
# the core's validation cannot drift apart. `email_id` and the shape of a PATCH are the inputs' own rules
# (`ctms_core.domain.inputs`).

_NULL: JsonSchema = {"type": "null"}


def _schema(*arms: JsonSchema, nullable: bool, description: str = "") -> Any:
    """A documented value that is `anyOf` the arms (and null when `nullable`). Litestar would render
    nested `Schema` objects with snake_case keys, so the arms are plain JSON Schema."""
    # A single arm is the schema itself (as Litestar renders a `Literal` or a constrained `str`).
    extra: dict[str, Any] = (
        dict(arms[0])
        if len(arms) == 1 and not nullable
        else {"any_of": [*arms, _NULL] if nullable else list(arms)}
    )
    if description:
        extra["description"] = description
    return Annotated[Any, msgspec.Meta(extra_json_schema={"extra": extra})]


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
            rule.field: {
                "anyOf": [*Text(rule.max_length).json_schema(), *([] if rule.required else [_NULL])]
            }
            for rule in open_rules
        },
    }
    required = [rule.field for rule in open_rules if rule.required]
    if required:
        schema["required"] = required
    return schema


def _documented(field: Field) -> Any:
    assert field.rule is not None
    if isinstance(field.rule, JsonObject):  # the one free-form object: a waitlist's `fields`
        schema = _waitlist_fields_schema(sorted(SEEDED_WAITLIST_FIELD_RULES))
        return Annotated[dict[str, Any], msgspec.Meta(extra_json_schema={"extra": schema})]
    return _schema(
        *field.rule.json_schema(), nullable=field.nullable, description=field.rule.description
    )


def _body(
    name: str,
    declared: Any,
    *,
    patch: bool = False,
    extra: Iterable[tuple[Any, ...]] = (),
    doc: str = "",
) -> Any:
    """A documentation struct of the fields `declared` reads (in a PATCH, each optional)."""
    members: list[tuple[Any, ...]] = []
    for field in input_fields(declared):
        default: tuple[Any, ...] = (field.default,)
        if patch:
            default = (UNSET,)
        elif field.required:
            default = ()
        elif field.default_factory is not None:
            default = (msgspec.field(default_factory=field.default_factory),)
        members.append((field.name, _documented(field), *default))
    struct = msgspec.defstruct(name, [*members, *extra], kw_only=True)
    struct.__doc__ = doc
    return struct


_UUID4 = ({"type": "string", "pattern": UUID4_PATTERN}, UUID_SPELLING)
_ANY_UUID = UuidText().json_schema()
_EMAIL_ID_IN = _schema(
    *_UUID4, nullable=True, description="A version 4 UUID; generated when absent or null"
)
_EMAIL_ID_PUT = _schema(
    *_UUID4, nullable=False, description="A version 4 UUID, equal to the one in the path"
)
_EMAIL_ID_PATCH = _schema(
    *_ANY_UUID,
    nullable=True,
    description="If given, must equal the one in the path; null is ignored",
)

EmailInSchema = _body("EmailInSchema", Email, extra=[("email_id", _EMAIL_ID_IN, None)])
EmailPutSchema = _body("EmailPutSchema", Email, extra=[("email_id", _EMAIL_ID_PUT)])
EmailPatchSchema = _body(
    "EmailPatchSchema",
    Email,
    patch=True,
    extra=[("email_id", _EMAIL_ID_PATCH, UNSET)],
    doc="Only the keys given change; `primary_email` may not be null.",
)
AddOnsInSchema = _body("AddOnsInSchema", Amo)
FirefoxAccountsInSchema = _body("FirefoxAccountsInSchema", Fxa)
MozillaFoundationInSchema = _body("MozillaFoundationInSchema", Mofo)
NewsletterInSchema = _body("NewsletterInSchema", Newsletter)
WaitlistInSchema = _body("WaitlistInSchema", Waitlist)
VpnWaitlistInSchema = _body(
    "VpnWaitlistInSchema",
    LegacyVpnWaitlist,
    doc="Legacy input, translated into the `vpn` waitlist.",
)
RelayWaitlistInSchema = _body(
    "RelayWaitlistInSchema",
    LegacyRelayWaitlist,
    doc="Legacy input, translated into `relay*` waitlists.",
)


# The bodies are types built at run time, which mypy cannot read as types (hence the `type: ignore`s).
def _contact_body(name: str, email: Any, doc: str) -> Any:
    struct = msgspec.defstruct(
        name,
        [
            ("email", email),
            ("amo", AddOnsInSchema | None, None),
            ("fxa", FirefoxAccountsInSchema | None, None),
            ("mofo", MozillaFoundationInSchema | None, None),
            ("newsletters", list[NewsletterInSchema], msgspec.field(default_factory=list)),  # type: ignore[valid-type]
            ("waitlists", list[WaitlistInSchema], msgspec.field(default_factory=list)),  # type: ignore[valid-type]
            ("vpn_waitlist", VpnWaitlistInSchema | None, None),
            ("relay_waitlist", RelayWaitlistInSchema | None, None),
        ],
        kw_only=True,
    )
    struct.__doc__ = doc
    return struct


ContactInSchema = _contact_body(
    "ContactInSchema", EmailInSchema, "A contact to create; unknown keys are ignored."
)
ContactPutSchema = _contact_body(
    "ContactPutSchema",
    EmailPutSchema,
    "The whole contact: omitted fields take their defaults, omitted items are removed.",
)
_DELETE, _UNSUBSCRIBE = Literal["DELETE"], Literal["UNSUBSCRIBE"]
ContactPatchSchema = msgspec.defstruct(
    "ContactPatchSchema",
    [
        ("email", EmailPatchSchema | UnsetType, UNSET),
        ("amo", AddOnsInSchema | _DELETE | UnsetType, UNSET),
        ("fxa", FirefoxAccountsInSchema | _DELETE | UnsetType, UNSET),
        ("mofo", MozillaFoundationInSchema | _DELETE | UnsetType, UNSET),
        ("newsletters", list[NewsletterInSchema] | _UNSUBSCRIBE | UnsetType, UNSET),  # type: ignore[valid-type]
        ("waitlists", list[WaitlistInSchema] | _UNSUBSCRIBE | UnsetType, UNSET),  # type: ignore[valid-type]
        ("vpn_waitlist", VpnWaitlistInSchema | _DELETE | UnsetType | None, UNSET),
        ("relay_waitlist", RelayWaitlistInSchema | _DELETE | UnsetType | None, UNSET),
    ],
    kw_only=True,
)
ContactPatchSchema.__doc__ = (
    "The changes: only the keys given apply; `null` is refused for every group and list (for the legacy "
    "waitlists it changes nothing)."
)


# Each function's `data` parameter shows the schema generator a body; they are never called, because no
# handler asks for these dependencies (Litestar documents the `data` of a handler's dependencies).
def _contact_in(data: ContactInSchema) -> None:  # type: ignore[valid-type]
    raise NotImplementedError


def _contact_put(data: ContactPutSchema) -> None:  # type: ignore[valid-type]
    raise NotImplementedError


def _contact_patch(data: ContactPatchSchema) -> None:  # type: ignore[valid-type]
    raise NotImplementedError


_BODY_DOCUMENTATION: dict[Any, Callable[..., None]] = {
    ContactInSchema: _contact_in,
    ContactPutSchema: _contact_put,
    ContactPatchSchema: _contact_patch,
    TokenRequestSchema: token_request,
    StripeObjectSchema: stripe_object,
    PushEnvelopeSchema: pubsub_push,
}


def documented_body(schema: Any) -> dict[str, Provide]:
    """Handler `dependencies` that document `schema` as the request body (see module docstring)."""
    return {"documented_request_body": Provide(_BODY_DOCUMENTATION[schema], sync_to_thread=False)}


# --- responses --------------------------------------------------------------------------------------------


def requires_api_bearer(security: SecurityRequirements | None) -> bool:
    """Whether an operation's security requirements ask for an API client's bearer token (not HTTP
    Basic on `/token`, not the Google token of the Pub/Sub push)."""
    return any(BEARER_SCHEME in requirement for requirement in security or ())


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
        render_plugins=[DocumentWithLinks(path="/")],
        openapi_router=Router(path="/openapi.json", route_handlers=[], include_in_schema=False),
    )
