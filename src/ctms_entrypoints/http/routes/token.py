"""`POST /token`: the OAuth2 client-credentials grant (docs/contract.md §3.1)."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.exceptions import ClientException
from litestar.response.base import ASGIResponse

from ctms_core.domain.errors import TokenRequestRejectedError
from ctms_core.domain.throttling import TooManyAttemptsError
from ctms_core.services.auth import AuthService
from ctms_entrypoints.http.auth import basic_credentials
from ctms_entrypoints.http.context import log_fields
from ctms_entrypoints.http.errors import ErrorDetail, ValidationErrorDetail
from ctms_entrypoints.http.openapi import (
    AUTHENTICATION,
    BASIC_OR_FORM,
    GRANT_TYPE_PATTERN,
    TokenRequestSchema,
    documented_body,
    responses,
)
from ctms_entrypoints.http.responses import TokenResponse, json_response, raw_json_response

_GRANT_TYPE = re.compile(GRANT_TYPE_PATTERN)
# The exact item v3.3's framework produced, `ctx` included (docs/contract.md §3.1).
_GRANT_TYPE_ERROR = msgspec.json.encode(
    {
        "detail": [
            {
                "loc": ["body", "grant_type"],
                "msg": f'string does not match regex "{GRANT_TYPE_PATTERN}"',
                "type": "value_error.str.regex",
                "ctx": {"pattern": GRANT_TYPE_PATTERN},
            }
        ]
    }
)


def _form_text(form: FormMultiDict, name: str) -> str | None:
    """A form field's text; empty or non-text values count as absent (as v3.3's form parsing)."""
    value = form.get(name)
    return value if isinstance(value, str) and value else None


@post(
    "/token",
    status_code=200,
    tags=AUTHENTICATION,
    summary="Get an access token (OAuth2 client credentials)",
    operation_id="login_for_access_token",
    security=BASIC_OR_FORM,
    dependencies=documented_body(TokenRequestSchema),
    responses=responses(
        {
            200: (TokenResponse, "An access token to send as `Authorization: Bearer <token>`"),
            400: (
                ErrorDetail,
                "`Incorrect username or password`: no credentials, an unknown or disabled client, "
                "or a wrong secret; or a multipart body that cannot be parsed",
            ),
            401: (
                ErrorDetail,
                "`Invalid authentication credentials`: an HTTP Basic header that is not base64 "
                "of `<id>:<secret>` (with `WWW-Authenticate: Basic`)",
            ),
            422: (
                ValidationErrorDetail,
                "A `grant_type` other than `client_credentials` or `refresh_token` (the item "
                "carries `ctx.pattern`), or a form that cannot be parsed",
            ),
            429: (
                ErrorDetail,
                "Too many failed attempts for this client id or from this address; "
                "`Retry-After` says when to try again",
            ),
        },
        413,
        503,
    ),
)
async def token(
    request: Request[Any, Any, Any], auth: NamedDependency[AuthService]
) -> ASGIResponse:
    """Exchange client credentials (form fields, else HTTP Basic) for an access token.

    `grant_type` may be absent, `client_credentials` or `refresh_token` (Basket's workers send the latter;
    it behaves the same). Every refusal is the same 400; the reason goes to the log as `token_fail`.
    Too many failures from the client id or the caller's address: 429 with `Retry-After`.
    """
    try:
        form = await request.form()
    except (UnicodeDecodeError, LookupError):  # a multipart field not text in its (known) charset
        raise ClientException("Invalid multipart/form-data") from None
    basic = basic_credentials(request.headers.get("authorization"))
    grant_type = _form_text(form, "grant_type")
    if grant_type is not None and not _GRANT_TYPE.match(grant_type):
        return raw_json_response(_GRANT_TYPE_ERROR, status_code=422)

    fields = log_fields(request)
    client_id, client_secret = _form_text(form, "client_id"), _form_text(form, "client_secret")
    if client_id and client_secret:
        fields["token_creds_from"] = "form"  # noqa: S105 - where the credentials came from
    elif basic is not None:
        fields["token_creds_from"] = "header"  # noqa: S105
        client_id, client_secret = basic
    else:
        client_id = client_secret = None
    if client_id:
        fields["client_id"] = client_id
    address = request.client.host if request.client else None
    try:
        issued = await auth.issue_token(client_id, client_secret, address=address)
    except TokenRequestRejectedError as rejected:
        fields["token_fail"] = rejected.reason
        raise
    except TooManyAttemptsError as throttled:
        fields["token_fail"] = throttled.reason
        raise
    if client_id:
        fields["api_client_id"] = client_id
    return json_response(TokenResponse(issued.access_token, issued.token_type, issued.expires_in))
