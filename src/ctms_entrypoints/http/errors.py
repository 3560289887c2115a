"""How errors become HTTP responses: the v3.3 status codes and `{"detail": ...}` bodies (docs/contract.md §2.6).

The core's errors carry their `detail`; this module only picks the status code and the body's shape.
Litestar looks a raised exception up by its class hierarchy, so the most specific entry wins.

| exception                                   | status | body                                          |
|---------------------------------------------|--------|-----------------------------------------------|
| ValidationFailedError                       | 422    | `{"detail": [{"loc", "msg", "type"}, ...]}`   |
| UnprocessableRequestError                   | 422    | `{"detail": "<text>"}`                        |
| AuthenticationError, NotAuthenticatedError  | 401    | `{"detail": ...}` + `WWW-Authenticate: Bearer`|
| ClientDisabledError                         | 400    | `{"detail": "API Client has been disabled"}`  |
| TokenRequestRejectedError                   | 400    | `{"detail": "Incorrect username or password"}`|
| BadRequestError (MissingIdentifiersError)   | 400    | `{"detail": ...}`                             |
| PermissionDeniedError                       | 403    | `{"detail": "Permission(s) required: ..."}`   |
| TooManyAttemptsError                        | 429    | `{"detail": ...}` + `Retry-After: <seconds>`  |
| NotFoundError (contact, e-mail, Pub/Sub off)| 404    | `{"detail": ...}`                             |
| ContactConflictError                        | 409    | `{"detail": ..., "conflicts": [fields]}`      |
| WriteConflictError (+ TransientWriteError)  | 409    | `{"detail": "Write conflict, try again"}`     |
| other CoreError                             | 400    | `{"detail": ...}`                             |
| Litestar NotFoundException (no route, file) | 404    | `{"detail": "Not Found"}`                     |
| Litestar HTTPException (405, 413, 401, ...) | its own| `{"detail": ...}` (+ its headers)             |
| Litestar ValidationException (form parsing) | 422    | `{"detail": [{"loc", "msg", "type"}, ...]}`   |
| OSError (ConnectionError, TimeoutError, ...)| 503    | `{"detail": "Service unavailable, try ..."}`  |
| any other Exception                         | 500    | `{"detail": "Internal Server Error"}`         |

OSError stands for "the database cannot be reached": the storage adapters raise it (or a subclass) for
refused connections, timeouts and exhausted connection pools. Every 503 carries `Retry-After` (added by
`responses.py` to any 503 without one): Basket's HTTP client only retries a 503 that has it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.response import Response
from litestar.types import ExceptionHandlersMap

from ctms_core.domain.errors import (
    AuthenticationError,
    BadRequestError,
    ClientDisabledError,
    ContactConflictError,
    CoreError,
    NotFoundError,
    PermissionDeniedError,
    TokenRequestRejectedError,
    UnprocessableRequestError,
    ValidationFailedError,
    WriteConflictError,
)
from ctms_core.domain.throttling import TooManyAttemptsError
from ctms_entrypoints.http.auth import BEARER_CHALLENGE
from ctms_entrypoints.http.context import log_fields
from ctms_entrypoints.http.responses import error_response

SERVICE_UNAVAILABLE = "Service unavailable, try again later"
INTERNAL_SERVER_ERROR = "Internal Server Error"

AnyRequest = Request[Any, Any, Any]


class ErrorDetail(msgspec.Struct, frozen=True):
    detail: str


class ConflictDetail(msgspec.Struct, frozen=True):
    """The v3.3 `detail`, plus the unique fields another contact already holds (docs/contract.md §14.3)."""

    detail: str
    conflicts: list[str]


class ValidationErrorItem(msgspec.Struct, frozen=True):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorDetail(msgspec.Struct, frozen=True):
    """Every invalid value of the request (a list), or why the request as a whole is refused."""

    detail: list[ValidationErrorItem] | str


def _detail(status_code: int, headers: dict[str, str] | None = None) -> Callable[[Any, Any], Any]:
    def handle(request: AnyRequest, error: CoreError) -> Response[bytes]:
        return error_response(ErrorDetail(error.detail), status_code=status_code, headers=headers)

    return handle


def _validation_failed(request: AnyRequest, error: ValidationFailedError) -> Response[bytes]:
    items = [ValidationErrorItem(list(item.loc), item.msg, item.type) for item in error.errors]
    return error_response(ValidationErrorDetail(items), status_code=422)


def _conflict(request: AnyRequest, error: ContactConflictError) -> Response[bytes]:
    return error_response(ConflictDetail(error.detail, list(error.fields)), status_code=409)


def _too_many_attempts(request: AnyRequest, error: TooManyAttemptsError) -> Response[bytes]:
    return error_response(
        ErrorDetail(error.detail),
        status_code=429,
        headers={"Retry-After": str(error.retry_after)},
    )


def _litestar_validation(request: AnyRequest, error: ValidationException) -> Response[bytes]:
    """Input Litestar itself refused. Handlers take raw input, so this only happens while Litestar
    parses a form (`POST /token`): the 422 shape, located in the body."""
    problems = error.extra if isinstance(error.extra, list) else []
    items = [
        ValidationErrorItem(
            ["body", str(problem["key"])] if problem.get("key") else ["body"],
            str(problem.get("message") or error.detail),
            "value_error",
        )
        for problem in problems
        if isinstance(problem, dict)
    ] or [ValidationErrorItem(["body"], error.detail, "value_error")]
    return error_response(ValidationErrorDetail(items), status_code=422)


def _not_found(request: AnyRequest, error: NotFoundException) -> Response[bytes]:
    return error_response(ErrorDetail("Not Found"), status_code=404)


def _http_exception(request: AnyRequest, error: HTTPException) -> Response[bytes]:
    detail = error.detail
    if error.status_code >= 500:
        log_fields(request)["exception"] = error
        detail = INTERNAL_SERVER_ERROR
    return error_response(
        ErrorDetail(detail), status_code=error.status_code, headers=dict(error.headers or {})
    )


def _service_unavailable(request: AnyRequest, error: OSError) -> Response[bytes]:
    log_fields(request)["exception"] = error
    return error_response(ErrorDetail(SERVICE_UNAVAILABLE), status_code=503)


def _internal_error(request: AnyRequest, error: Exception) -> Response[bytes]:
    log_fields(request)["exception"] = error
    return error_response(ErrorDetail(INTERNAL_SERVER_ERROR), status_code=500)


def exception_handlers() -> ExceptionHandlersMap:
    return {
        ValidationFailedError: _validation_failed,
        UnprocessableRequestError: _detail(422),
        AuthenticationError: _detail(401, BEARER_CHALLENGE),
        ClientDisabledError: _detail(400),
        TokenRequestRejectedError: _detail(400),
        BadRequestError: _detail(400),
        PermissionDeniedError: _detail(403),
        TooManyAttemptsError: _too_many_attempts,
        NotFoundError: _detail(404),
        ContactConflictError: _conflict,
        WriteConflictError: _detail(409),
        CoreError: _detail(400),
        ValidationException: _litestar_validation,
        NotFoundException: _not_found,
        HTTPException: _http_exception,
        OSError: _service_unavailable,
        Exception: _internal_error,
    }
