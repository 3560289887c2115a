"""The per-request access log (docs/contract.md §11.2) and request metrics (docs/contract.md §11.5), as a pure ASGI middleware.

Wrap the whole application with it (outside the framework's router, so requests for unknown paths are
logged too). For each HTTP request it gives the request a fresh context dict at
`scope["state"][LOG_CONTEXT_KEY]` before calling the app; handlers and authentication code write the
facts only they know into it, with the key names `LogContext` declares (the one vocabulary of the
record's request facts). After the response it emits exactly one record on the
`ctms.web` logger and, when a route matched, counts the request.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Final, TypedDict, cast

from ctms_adapters.logging import (
    log_event,
    loggable,
    redact_headers,
    redact_path,
    redact_path_value,
    redact_query,
)
from ctms_entrypoints.observability.metrics import Metrics

__all__ = [
    "ACCESS_LOGGER_NAME",
    "LOG_CONTEXT_KEY",
    "AccessLogMiddleware",
    "LogContext",
    "authenticated_client_id",
    "log_context",
    "log_context_in",
    "record_claims",
    "record_exception",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ACCESS_LOGGER_NAME: Final = "ctms.web"
LOG_CONTEXT_KEY: Final = "log_context"


class LogContext(TypedDict, total=False):
    """The request facts that handlers and authentication record for the access-log record.

    Every key except the internal ones (`api_client_id`, `exception`) is copied into the record as is.
    The Pub/Sub push handler also records its token's claims as `pubsub_<claim>` (any claim the token
    has), the one family of keys not declared here.
    """

    rid: str  # set by the middleware before the app runs; read-only for handlers
    path_template: str  # the matched handler's own template; else scope["path_template"]
    path_params: dict[str, Any]  # else taken from scope["path_params"]
    client_id: str  # the client id claimed (token subject, /token credentials), even when refused
    client_allowed: bool  # False once authentication starts, True when it succeeded
    auth_fail: str
    token_creds_from: str
    token_fail: str
    trace: str  # the traced addresses (docs/contract.md §2.2), sorted, comma-joined
    trace_json: Any  # the request's JSON, for a traced write
    ingest_actions: Any  # Stripe ingestion (docs/contract.md §8.1, §8.2)
    fxa_id_conflict: str
    ingest_errors: list[str]
    pubsub_config_error: str
    # Internal, never logged: the id of the client that *authenticated* (bearer success or a successful
    # /token grant); the only source of the `client_id` metric label besides `client_allowed=True`.
    api_client_id: str
    # Internal, never logged: an exception the framework turned into a 5xx response itself (record it from
    # an after-exception hook with `record_exception`); makes the record ERROR with the traceback.
    exception: BaseException


_INTERNAL_KEYS = frozenset({"api_client_id", "exception"})
# Written explicitly at their place in the record, or reserved by structlog.
_PLACED_KEYS = frozenset(
    {
        "rid",
        "path_template",
        "path_params",
        "client_host",
        "method",
        "path",
        "headers",
        "query",
        "status_code",
        "duration_s",
        "event",
        "exc_info",
        "stack_info",
    }
)
_SKIPPED_KEYS = _INTERNAL_KEYS | _PLACED_KEYS
_JSON_SCALARS = (str, int, float, bool)


def log_context(scope: Scope) -> LogContext:
    """The request's context dict (created empty when the middleware did not run, e.g. in unit tests)."""
    return log_context_in(scope.setdefault("state", {}))


def log_context_in(state: dict[str, Any]) -> LogContext:
    """The context dict in a request's scope `state`, created empty on first use. Every request gets its
    own, so nothing leaks between concurrent requests."""
    context: LogContext | None = state.get(LOG_CONTEXT_KEY)
    if context is None:
        context = state[LOG_CONTEXT_KEY] = LogContext()
    return context


def record_claims(context: LogContext, prefix: str, claims: Mapping[str, Any]) -> None:
    """Record each claim as `<prefix><name>`: the one family of keys outside `LogContext` (a token's
    claims are whatever its issuer put in it)."""
    undeclared = cast(dict[str, Any], context)
    for name, value in claims.items():
        undeclared[prefix + name] = value


def record_exception(exception: BaseException, scope: Scope) -> None:
    """After-exception hook: remember `exception` so a 5xx response is logged at ERROR with it."""
    log_context(scope)["exception"] = exception


def authenticated_client_id(context: LogContext) -> str | None:
    """The id of the client that authenticated during the request, or None (docs/contract.md §11.5)."""
    api_client_id = context.get("api_client_id")
    if isinstance(api_client_id, str):
        return api_client_id
    if context.get("client_allowed") is True:
        client_id = context.get("client_id")
        if isinstance(client_id, str):
            return client_id
    return None


def _request_id(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == b"x-request-id":
            return loggable(value.decode("latin-1"))  # the caller's text: it is logged
    return secrets.token_hex(16)


class AccessLogMiddleware:
    """Pure ASGI middleware: one `ctms.web` record per HTTP request (INFO, or ERROR with the exception and
    status 500 when the app raised), plus the request metrics when `metrics` is given."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics | None = None,
        logger_name: str = ACCESS_LOGGER_NAME,
        context_key: str = LOG_CONTEXT_KEY,
    ) -> None:
        self.app = app
        self._metrics = metrics
        self._context_key = context_key
        self._stdlib_logger = logging.getLogger(logger_name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # A fresh state dict per request, even if a server shared one between requests.
        state = scope.get("state")
        scope["state"] = state = dict(state) if state else {}
        headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
        rid = _request_id(headers)
        context: LogContext = {"rid": rid}
        state[self._context_key] = context

        status_code = 500
        start = time.perf_counter()

        async def send_capturing_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_capturing_status)
        except Exception as exception:
            duration_s = round(time.perf_counter() - start, 3)
            self._finish(scope, context, rid, 500, duration_s, exception)
            raise
        duration_s = round(time.perf_counter() - start, 3)
        self._finish(scope, context, rid, status_code, duration_s, None)

    def _finish(
        self,
        scope: Scope,
        context: LogContext,
        rid: str,
        status_code: int,
        duration_s: float,
        raised: BaseException | None,
    ) -> None:
        path_template = context.get("path_template") or scope.get("path_template")
        if self._metrics is not None and path_template:
            self._metrics.observe_request(
                scope["method"],
                path_template,
                status_code,
                duration_s,
                authenticated_client_id(context),
            )

        exception = raised
        if exception is None and status_code >= 500:
            recorded = context.get("exception")
            if isinstance(recorded, BaseException):
                exception = recorded
        level = logging.ERROR if exception is not None else logging.INFO
        if not self._stdlib_logger.isEnabledFor(level):
            return
        log_event(
            self._stdlib_logger,
            level,
            self._message(scope, context, status_code),
            self._fields(scope, context, rid, path_template, status_code, duration_s),
            exc_info=exception,
        )

    @staticmethod
    def _fields(
        scope: Scope,
        context: LogContext,
        rid: str,
        path_template: str | None,
        status_code: int,
        duration_s: float,
    ) -> dict[str, Any]:
        client = scope.get("client")
        fields: dict[str, Any] = {
            # A server trusting a proxy takes it from `X-Forwarded-For`: the caller's text.
            "client_host": loggable(client[0]) if client and client[0] else None,
            "method": scope["method"],
            "path": redact_path(scope["path"]),
        }
        if path_template:
            fields["path_template"] = path_template
        path_params = context.get("path_params") or scope.get("path_params")
        if path_params:
            fields["path_params"] = {
                name: redact_path_value(value)
                if isinstance(value, str)
                else value
                if isinstance(value, _JSON_SCALARS)
                else str(value)
                for name, value in path_params.items()
            }
        fields["rid"] = rid
        headers = scope.get("headers")
        if headers:
            fields["headers"] = redact_headers(headers)
        query_string = scope.get("query_string")
        if query_string:
            query = redact_query(query_string)
            if query:
                fields["query"] = query
        for key, value in context.items():
            if key not in _SKIPPED_KEYS:
                fields[key] = value
        client_id = context.get("client_id")
        if isinstance(client_id, str):  # the caller's text, from a `/token` form or a token
            fields["client_id"] = loggable(client_id)
        fields["status_code"] = status_code
        fields["duration_s"] = duration_s
        return fields

    @staticmethod
    def _message(scope: Scope, context: LogContext, status_code: int) -> str:
        client = scope.get("client")
        host, port = (loggable(client[0] or "-"), client[1]) if client else ("-", "-")
        client_id = context.get("client_id")
        client_id = loggable(client_id) if isinstance(client_id, str) and client_id else "-"
        http_version = scope.get("http_version", "1.1")
        return (
            f"{host}:{port} {client_id} '{scope['method']} {redact_path(scope['path'])} "
            f"HTTP/{http_version}'"
            f" {status_code}"
        )
