"""Reading request input the way CTMS v3.3 did (docs/contract.md §2.2), before the core validates it.

Bodies are read as raw bytes and decoded here, not by Litestar: v3.3 rejected malformed JSON *before*
authentication but every other body problem *after* it, and its 422 items have their own shape.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from litestar import Request
from litestar.connection import ASGIConnection

from ctms_core.domain import fields
from ctms_core.domain.errors import FieldError, ValidationFailedError
from ctms_core.domain.json_documents import (
    MalformedJsonError,
    RefusedJsonError,
    decode_json_document,
)

T = TypeVar("T")

_BODY_MISSING = FieldError(("body",), "field required", "value_error.missing")
_BODY_NOT_JSON = FieldError(("body",), "value is not a valid dict", "type_error.dict")


@dataclass(frozen=True, slots=True)
class RequestJson:
    """A request body decoded as JSON, or the reason it cannot be used (reported after authentication)."""

    value: Any
    problem: FieldError | None = None


def _declares_json(content_type: str | None) -> bool:
    """v3.3 parsed the body as JSON when Content-Type was absent, `application/json` or
    `application/*+json`."""
    if not content_type:
        return True
    media_type = content_type.partition(";")[0].strip().lower()
    main_type, _, subtype = media_type.partition("/")
    return main_type == "application" and (subtype == "json" or subtype.endswith("+json"))


def request_header(connection: ASGIConnection[Any, Any, Any, Any], name: bytes) -> str | None:
    """The first value of header `name` (lower case, as ASGI servers pass names), read from the ASGI
    scope: Litestar's `headers` would build and cache a whole decoded header map for the one value the
    hot path needs."""
    for key, value in connection.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def read_json_body(request: Request[Any, Any, Any]) -> RequestJson:
    """The request's JSON. Malformed JSON raises the 422 at once (before authentication, as v3.3); an
    empty body, another content type or JSON that CTMS refuses (`ctms_core.domain.json_documents`) is
    returned as a `problem` the handler reports after authentication."""
    raw = await request.body()
    if not raw:
        return RequestJson(None, _BODY_MISSING)
    if not _declares_json(request_header(request, b"content-type")):
        return RequestJson(raw, _BODY_NOT_JSON)
    try:
        return RequestJson(decode_json_document(raw))
    except MalformedJsonError as error:
        loc: tuple[str | int, ...] = (
            ("body",) if error.position is None else ("body", error.position)
        )
        raise ValidationFailedError(
            [FieldError(loc, error.reason, "value_error.jsondecode")]
        ) from None
    except RefusedJsonError as error:
        return RequestJson(None, FieldError(("body",), error.reason, "value_error.jsondecode"))


def path_uuid(name: str, value: str, errors: list[FieldError]) -> uuid.UUID | None:
    """A UUID (any version) from the path; a problem is added to `errors` at `["path", name]`."""
    try:
        return fields.any_uuid(value)
    except fields.InvalidValue as invalid:
        errors.append(FieldError(("path", name), invalid.msg, invalid.type))
        return None


def require_path_uuid(name: str, value: str) -> uuid.UUID:
    errors: list[FieldError] = []
    parsed = path_uuid(name, value, errors)
    if parsed is None:
        raise ValidationFailedError(errors)
    return parsed


def parse_body(body: RequestJson, parse: Callable[[Any], T], errors: list[FieldError]) -> T:
    """`parse(body)`, reporting its errors together with `errors` found earlier (path, query), as v3.3
    reported every problem of a request in one 422."""
    if body.problem is not None:
        raise ValidationFailedError([*errors, body.problem])
    try:
        parsed = parse(body.value)
    except ValidationFailedError as failure:
        raise ValidationFailedError([*errors, *failure.errors]) from None
    if errors:
        raise ValidationFailedError(errors)
    return parsed
