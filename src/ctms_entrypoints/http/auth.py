"""Bearer authentication of API clients (docs/contract.md §2.2) and the credentials of `POST /token` (docs/contract.md §3.1).

The request pipeline (`ctms_entrypoints.http.pipeline`) calls `authenticate` at the point v3.3 did it:
after the body was decoded (malformed JSON is a 422 even for anonymous callers) and before anything else
is validated (missing credentials beat an invalid body: 401). Each route names the permissions its
operation needs (any one of them suffices), checked once the client is known, so 401/400 come before 403
(docs/contract.md §14.1).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException

from ctms_core.domain.api_client import ApiClient
from ctms_core.domain.errors import AuthenticationError, ClientDisabledError, NotAuthenticatedError
from ctms_core.services.auth import AuthService
from ctms_entrypoints.http.context import log_fields
from ctms_entrypoints.http.requests import request_header

BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}
BASIC_CHALLENGE = {"WWW-Authenticate": "Basic"}


def _scheme_and_credentials(header: str | None) -> tuple[str, str]:
    scheme, _, credentials = (header or "").partition(" ")
    return scheme.lower(), credentials


async def authenticate(
    connection: ASGIConnection[Any, Any, Any, Any], auth: AuthService, required: Sequence[str]
) -> ApiClient:
    """The enabled API client behind the request's bearer token, permitted to run an operation needing
    any of `required`.

    Raises `NotAuthenticatedError` without a bearer `Authorization` header, `AuthenticationError` for a
    bad token, `ClientDisabledError` for a disabled client and `PermissionDeniedError` (403) for a
    client without the permission. Records `client_allowed`, `client_id` and `auth_fail` for the access
    log.
    """
    header = request_header(connection, b"authorization")
    scheme, token = _scheme_and_credentials(header)
    if not header or scheme != "bearer":
        raise NotAuthenticatedError
    fields = log_fields(connection)
    fields["client_allowed"] = False
    try:
        client = await auth.authenticate(token)
    except Exception as error:
        # The client id a well-signed token names is logged even when it is refused (docs/contract.md §2.2). Decoding
        # it only on failure spares the hot path a second signature check; the log sees the same.
        client_id = auth.client_id_of(token)
        if client_id is not None:
            fields["client_id"] = client_id
        if isinstance(error, AuthenticationError | ClientDisabledError):
            fields["auth_fail"] = error.reason
        raise
    fields["client_id"] = fields["api_client_id"] = client.client_id
    fields["client_allowed"] = True
    auth.authorize(client, required)
    return client


class InvalidBasicCredentialsError(NotAuthorizedException):
    """An HTTP Basic header that is not base64 of `id:secret` (401, as v3.3's framework answered)."""

    def __init__(self) -> None:
        super().__init__(detail="Invalid authentication credentials", headers=BASIC_CHALLENGE)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """`(client_id, client_secret)` from an HTTP Basic `Authorization` header; None without one."""
    scheme, encoded = _scheme_and_credentials(header)
    if not header or scheme != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded).decode("ascii")
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidBasicCredentialsError from None
    client_id, separator, client_secret = decoded.partition(":")
    if not separator:
        raise InvalidBasicCredentialsError
    return client_id, client_secret
