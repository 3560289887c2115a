"""Per-request facts the access log reports (docs/contract.md §11.2): who called, how authentication went, what to trace.

Handlers and the request pipeline write them into the request's `LogContext` (declared, with its key
names, in `observability.access_log`), which lives in the request's ASGI scope state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from litestar.connection import ASGIConnection

from ctms_core.domain.tracing import is_traced
from ctms_entrypoints.observability.access_log import LogContext, log_context_in

# docs/contract.md §2.2: v3 traced `+trace-me-mozilla-` addresses; its docs said `+trace_me_mozilla_`; both are accepted.


def log_fields(connection: ASGIConnection[Any, Any, Any, Any]) -> LogContext:
    """The access-log facts of `connection`'s request."""
    return log_context_in(connection.scope["state"])  # Litestar gives every request a state dict


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
