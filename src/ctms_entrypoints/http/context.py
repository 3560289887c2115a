"""Per-request facts the access log reports (docs/contract.md §11.2): who called, how authentication went, what to trace.

Handlers and the authentication helpers write them into a dict that lives in the request's ASGI scope
state under `ACCESS_LOG_STATE_KEY` (the key `observability.access_log` reads), created on first use:
every request gets its own, so nothing leaks between concurrent requests (docs/contract.md §11.2).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypedDict

from litestar.connection import ASGIConnection
from litestar.types import Scope

from ctms_core.domain.tracing import is_traced

ACCESS_LOG_STATE_KEY = "log_context"

# docs/contract.md §2.2: v3 traced `+trace-me-mozilla-` addresses; its docs said `+trace_me_mozilla_`; both are accepted.


class AccessLogFields(TypedDict, total=False):
    client_id: str  # the client id claimed (token subject, /token credentials), even when refused
    client_allowed: bool  # False once bearer authentication starts, True when it succeeded
    auth_fail: str
    token_creds_from: str
    token_fail: str
    trace: str
    trace_json: Any
    path_template: str  # the matched handler's own template (see `create_app`)
    # Not logged: the client that authenticated (bearer or a granted /token), for the metric label, and
    # an exception turned into a 5xx response, for an ERROR record with its traceback.
    api_client_id: str
    exception: BaseException


def access_log_fields(scope: Scope) -> AccessLogFields:
    """The access-log fields of the request `scope` belongs to (created empty on first use)."""
    state: dict[str, Any] = scope.setdefault("state", {})
    fields: AccessLogFields | None = state.get(ACCESS_LOG_STATE_KEY)
    if fields is None:
        fields = state[ACCESS_LOG_STATE_KEY] = AccessLogFields()
    return fields


def log_fields(connection: ASGIConnection[Any, Any, Any, Any]) -> AccessLogFields:
    return access_log_fields(connection.scope)


def record_trace(
    connection: ASGIConnection[Any, Any, Any, Any],
    primary_emails: Iterable[str],
    *,
    body: Any = None,
    with_body: bool = False,
) -> None:
    """Log `trace` (the traced addresses, sorted, comma-joined) and, for writes, `trace_json` (the
    request's JSON), when any of `primary_emails` is a tracing address (docs/contract.md §2.2)."""
    traced = sorted({email for email in primary_emails if is_traced(email)})
    if not traced:
        return
    fields = log_fields(connection)
    fields["trace"] = ",".join(traced)
    if with_body:
        fields["trace_json"] = body
