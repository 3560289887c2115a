"""The contacts API (docs/contract.md §4.1, §4.2, §4.3, §4.4, §4.5, §4.6, §4.7, §7): thin handlers over `ContactService`.

Each route declares v3.3's decode → authenticate → permit steps with `@pipeline` (see
`ctms_entrypoints.http.pipeline`); its handler validates path, query and body together (one 422), then
runs the use case.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from litestar import Request, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import Parameter
from litestar.response.base import ASGIResponse

from ctms_core.domain.api_client import ApiClient
from ctms_core.domain.contact import Identity
from ctms_core.domain.errors import ContactConflictError, FieldError
from ctms_core.domain.inputs import (
    ContactInput,
    ContactPatch,
    parse_contact_input,
    parse_contact_patch,
)
from ctms_core.domain.lookup import parse_lookup_criteria
from ctms_core.domain.permissions import CONTACTS_DELETE, CONTACTS_READ, CONTACTS_WRITE
from ctms_core.domain.updates import parse_updates_query
from ctms_core.domain.waitlist_rules import WaitlistFieldRules
from ctms_entrypoints.http.context import record_trace
from ctms_entrypoints.http.dependencies import ContactsApi
from ctms_entrypoints.http.openapi import (
    BEARER,
    PRIVATE,
    PROTECTED_ERRORS,
    PUBLIC,
    ContactInSchema,
    ContactPatchSchema,
    ContactPutSchema,
    UpdatesOperation,
    documented_body,
    responses,
)
from ctms_entrypoints.http.pipeline import pipeline
from ctms_entrypoints.http.requests import RequestJson, parse_body, path_uuid, require_path_uuid
from ctms_entrypoints.http.responses import (
    CTMSBulkResponse,
    CTMSResponse,
    CTMSSingleResponse,
    contact_body,
    json_response,
    single_contact_body,
    updates_body,
)

AnyRequest = Request[Any, Any, Any]
T = TypeVar("T")
Api = NamedDependency[ContactsApi]

# The permissions each operation needs (any one suffices).
READ = (CONTACTS_READ,)
WRITE = (CONTACTS_WRITE,)
DELETE = (CONTACTS_DELETE,)


def _optional(description: str, *, type: str = "string", **schema: Any) -> Any:
    """An optional query parameter, documented as `type`; Litestar hands it over as text and the core
    validates it after authentication (so an anonymous request with bad parameters is a 401, as in v3.3)."""
    return Parameter(
        description=description,
        required=False,
        schema_extra={"one_of": None, "type": type, **schema},
    )


def _given(**values: str | None) -> dict[str, str]:
    return {name: value for name, value in values.items() if value is not None}


def _post_body(value: Any, rules: WaitlistFieldRules) -> ContactInput:
    return parse_contact_input(value, require_email_id=False, waitlist_rules=rules)


def _put_body(value: Any, rules: WaitlistFieldRules) -> ContactInput:
    return parse_contact_input(value, require_email_id=True, waitlist_rules=rules)


def _patch_body(value: Any, rules: WaitlistFieldRules) -> ContactPatch:
    return parse_contact_patch(value, waitlist_rules=rules)


async def _validated_body(
    contacts_api: ContactsApi,
    body: RequestJson,
    parse: Callable[[Any, WaitlistFieldRules], T],
    errors: list[FieldError] | None = None,
) -> T:
    """The body as the core validates it (with the waitlist field rules in force), its problems
    reported in one 422 with `errors` found before (the path's)."""
    rules = await contacts_api.waitlist_rules.current()
    return parse_body(body, lambda value: parse(value, rules), errors or [])


async def _validated_path_and_body(
    contacts_api: ContactsApi,
    email_id: str,
    body: RequestJson,
    parse: Callable[[Any, WaitlistFieldRules], T],
) -> tuple[uuid.UUID, T]:
    """The path's `email_id` and the body, validated together: one 422 lists the problems of both."""
    errors: list[FieldError] = []
    path_id = path_uuid("email_id", email_id, errors)
    parsed = await _validated_body(contacts_api, body, parse, errors)
    assert path_id is not None  # else `parse_body` raised the 422
    return path_id, parsed


EmailIdPath = Annotated[
    str, Parameter(description="The contact's `email_id`", schema_extra={"format": "uuid"})
]

# Alternate identifiers of `GET /ctms` and `GET /identities`: at least one non-empty, all must match.
# v3.3 treats an empty identifier as "not given" (or, beside a real one, as a filter matching nothing).
_UUID_OR_EMPTY = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$"
EmailIdQuery = Annotated[
    str | None, _optional("`email_id` (a UUID, or empty)", pattern=_UUID_OR_EMPTY)
]
PrimaryEmailQuery = Annotated[str | None, _optional("Primary e-mail, ignoring case")]
BasketTokenQuery = Annotated[
    str | None, _optional("Basket token (a UUID, or empty)", pattern=_UUID_OR_EMPTY)
]
SfdcIdQuery = Annotated[str | None, _optional("Salesforce id")]
MofoContactIdQuery = Annotated[str | None, _optional("Mozilla Foundation contact id")]
MofoEmailIdQuery = Annotated[str | None, _optional("Mozilla Foundation e-mail id")]
AmoUserIdQuery = Annotated[str | None, _optional("addons.mozilla.org user id")]
FxaIdQuery = Annotated[str | None, _optional("Firefox Account id")]
FxaPrimaryEmailQuery = Annotated[
    str | None, _optional("Firefox Account primary e-mail, ignoring case")
]


@get(
    "/ctms/{email_id:str}",
    tags=PUBLIC,
    summary="Get a contact by email_id",
    operation_id="read_ctms_by_email_id",
    security=BEARER,
    responses=responses({200: (CTMSSingleResponse, "The contact")}, *PROTECTED_ERRORS, 404),
)
@pipeline(READ)
async def read_contact(
    request: AnyRequest, email_id: EmailIdPath, contacts_api: Api
) -> ASGIResponse:
    contact = await contacts_api.contacts.get(require_path_uuid("email_id", email_id))
    record_trace(request, [contact.email.primary_email])
    return json_response(single_contact_body(contact))


@get(
    "/ctms",
    tags=PUBLIC,
    summary="Get contacts by alternate identifiers",
    operation_id="read_ctms_by_any_id",
    security=BEARER,
    responses=responses({200: (list[CTMSResponse], "The matching contacts")}, *PROTECTED_ERRORS),
)
@pipeline(READ)
async def lookup_contacts(
    request: AnyRequest,
    contacts_api: Api,
    email_id: EmailIdQuery = None,
    primary_email: PrimaryEmailQuery = None,
    basket_token: BasketTokenQuery = None,
    sfdc_id: SfdcIdQuery = None,
    mofo_contact_id: MofoContactIdQuery = None,
    mofo_email_id: MofoEmailIdQuery = None,
    amo_user_id: AmoUserIdQuery = None,
    fxa_id: FxaIdQuery = None,
    fxa_primary_email: FxaPrimaryEmailQuery = None,
) -> ASGIResponse:
    criteria = parse_lookup_criteria(
        _given(
            email_id=email_id,
            primary_email=primary_email,
            basket_token=basket_token,
            sfdc_id=sfdc_id,
            mofo_contact_id=mofo_contact_id,
            mofo_email_id=mofo_email_id,
            amo_user_id=amo_user_id,
            fxa_id=fxa_id,
            fxa_primary_email=fxa_primary_email,
        )
    )
    found = await contacts_api.contacts.lookup(criteria)
    record_trace(request, [contact.email.primary_email for contact in found])
    return json_response([contact_body(contact) for contact in found])


@post(
    "/ctms",
    status_code=201,
    tags=PUBLIC,
    summary="Create a contact, generating an id if not specified",
    description="201 with `Location` for a new contact; 200 with `Location` for an identical replay.",
    operation_id="create_ctms_contact",
    security=BEARER,
    dependencies=documented_body(ContactInSchema),
    responses=responses(
        {
            201: (CTMSSingleResponse, "Created; `Location` is `/ctms/<email_id>`"),
            200: (CTMSSingleResponse, "Identical to the stored contact; nothing changed"),
        },
        *PROTECTED_ERRORS,
        409,
        413,
    ),
)
@pipeline(WRITE, body=True)
async def create_contact(request: AnyRequest, body: RequestJson, contacts_api: Api) -> ASGIResponse:
    proposed = await _validated_body(contacts_api, body, _post_body)
    try:
        result = await contacts_api.contacts.create(proposed)
    except ContactConflictError:
        record_trace(request, [proposed.email["primary_email"]], body=body.value, with_body=True)
        raise
    contact = result.contact
    record_trace(request, [contact.email.primary_email], body=body.value, with_body=True)
    return json_response(
        single_contact_body(contact),
        status_code=201 if result.created else 200,
        headers={"Location": f"/ctms/{contact.email_id}"},
    )


@put(
    "/ctms/{email_id:str}",
    status_code=201,
    tags=PUBLIC,
    summary="Create or replace a contact",
    description="Always 201, without `Location`.",
    operation_id="create_or_update_ctms_contact",
    security=BEARER,
    dependencies=documented_body(ContactPutSchema),
    responses=responses(
        {201: (CTMSSingleResponse, "The contact as stored")}, *PROTECTED_ERRORS, 409, 413
    ),
)
@pipeline(WRITE, body=True)
async def replace_contact(
    request: AnyRequest, body: RequestJson, email_id: EmailIdPath, contacts_api: Api
) -> ASGIResponse:
    path_id, proposed = await _validated_path_and_body(contacts_api, email_id, body, _put_body)
    record_trace(request, [proposed.email["primary_email"]], body=body.value, with_body=True)
    result = await contacts_api.contacts.replace(path_id, proposed)
    return json_response(single_contact_body(result.contact), status_code=201)


@patch(
    "/ctms/{email_id:str}",
    tags=PUBLIC,
    summary="Partially update a contact",
    operation_id="partial_update_ctms_contact",
    security=BEARER,
    dependencies=documented_body(ContactPatchSchema),
    responses=responses(
        {200: (CTMSSingleResponse, "The contact as stored")}, *PROTECTED_ERRORS, 404, 409, 413
    ),
)
@pipeline(WRITE, body=True)
async def patch_contact(
    request: AnyRequest, body: RequestJson, email_id: EmailIdPath, contacts_api: Api
) -> ASGIResponse:
    path_id, changes = await _validated_path_and_body(contacts_api, email_id, body, _patch_body)
    result = await contacts_api.contacts.patch(path_id, changes)
    contact = result.contact
    record_trace(request, [contact.email.primary_email], body=body.value, with_body=True)
    return json_response(single_contact_body(contact))


@delete(
    "/ctms/{primary_email:str}",
    status_code=200,
    tags=PUBLIC,
    summary="Delete all contact information from CTMS",
    operation_id="delete_contact_by_primary_email",
    security=BEARER,
    responses=responses(
        {200: (list[Identity], "The identities of the deleted contacts")}, *PROTECTED_ERRORS, 404
    ),
)
@pipeline(DELETE)
async def delete_contact(
    request: AnyRequest,
    client: ApiClient,
    primary_email: Annotated[str, Parameter(description="The primary e-mail, ignoring case")],
    contacts_api: Api,
) -> ASGIResponse:
    record_trace(request, [primary_email])
    deleted = await contacts_api.contacts.delete(primary_email, erased_by=client.client_id)
    return json_response(deleted)


@get(
    "/updates",
    tags=PUBLIC,
    summary="Get contacts updated in a time range, page by page",
    operation_id="read_ctms_in_date_range",
    security=BEARER,
    operation_class=UpdatesOperation,
    responses=responses({200: (CTMSBulkResponse, "One page of contacts")}, *PROTECTED_ERRORS),
)
@pipeline(READ)
async def read_updates(
    contacts_api: Api,
    start: Annotated[
        str | None,
        _optional(
            "Lower bound (inclusive) of `update_timestamp`: ISO 8601 or unix seconds",
            format="date-time",
        ),
    ] = None,
    end: Annotated[
        str | None,
        _optional(
            "Upper bound (exclusive) of `update_timestamp` (ISO 8601 or unix seconds); empty or"
            " absent means now"
        ),
    ] = None,
    limit: Annotated[
        str | None,
        _optional(
            "Page size, 1 to 1000; empty or absent means 100",
            pattern="^(|[1-9][0-9]{0,2}|1000)$",
        ),
    ] = None,
    after: Annotated[
        str | None, _optional("The cursor of the previous page (its `after` value)")
    ] = None,
    mofo_relevant: Annotated[
        str | None,
        _optional(
            "Only contacts whose Mozilla Foundation data is (or is not) relevant: true/false,"
            " 1/0, yes/no, on/off (any case); empty or absent means no filter"
        ),
    ] = None,
) -> ASGIResponse:
    query = parse_updates_query(
        _given(start=start, end=end, limit=limit, after=after, mofo_relevant=mofo_relevant)
    )
    page = await contacts_api.contacts.updates(query)
    return json_response(updates_body(page, contacts_api.server_prefix))


@get(
    "/identities",
    tags=PRIVATE,
    summary="Get identities by alternate identifiers",
    operation_id="read_identities",
    security=BEARER,
    responses=responses({200: (list[Identity], "The matching identities")}, *PROTECTED_ERRORS),
)
@pipeline(READ)
async def lookup_identities(
    contacts_api: Api,
    email_id: EmailIdQuery = None,
    primary_email: PrimaryEmailQuery = None,
    basket_token: BasketTokenQuery = None,
    sfdc_id: SfdcIdQuery = None,
    mofo_contact_id: MofoContactIdQuery = None,
    mofo_email_id: MofoEmailIdQuery = None,
    amo_user_id: AmoUserIdQuery = None,
    fxa_id: FxaIdQuery = None,
    fxa_primary_email: FxaPrimaryEmailQuery = None,
) -> ASGIResponse:
    criteria = parse_lookup_criteria(
        _given(
            email_id=email_id,
            primary_email=primary_email,
            basket_token=basket_token,
            sfdc_id=sfdc_id,
            mofo_contact_id=mofo_contact_id,
            mofo_email_id=mofo_email_id,
            amo_user_id=amo_user_id,
            fxa_id=fxa_id,
            fxa_primary_email=fxa_primary_email,
        )
    )
    return json_response(await contacts_api.contacts.identities(criteria))


@get(
    "/identity/{email_id:str}",
    tags=PRIVATE,
    summary="Get the identity of a contact by email_id",
    operation_id="read_identity",
    security=BEARER,
    responses=responses({200: (Identity, "The identity")}, *PROTECTED_ERRORS, 404),
)
@pipeline(READ)
async def read_identity(email_id: EmailIdPath, contacts_api: Api) -> ASGIResponse:
    identity = await contacts_api.contacts.identity(require_path_uuid("email_id", email_id))
    return json_response(identity)


CONTACT_ROUTES = [
    read_contact,
    lookup_contacts,
    create_contact,
    replace_contact,
    patch_contact,
    delete_contact,
    read_updates,
    lookup_identities,
    read_identity,
]
