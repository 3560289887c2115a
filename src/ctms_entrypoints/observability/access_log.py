"""The per-request access log (docs/contract.md §11.2) and request metrics (docs/contract.md §11.5), as a pure ASGI middleware.

Wrap the whole application with it (outside the framework's router, so requests for unknown paths are
logged too). For each HTTP request it gives the request a fresh context dict at
`scope["state"][LOG_CONTEXT_KEY]` before calling the app; handlers and authentication code write the
facts only they know into it (see `ContextKey`). After the response it emits exactly one record on the
`ctms.web` logger and, when a route matched, counts the request.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

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
    "ContextKey",
    "authenticated_client_id",
    "log_context",
    "record_exception",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ACCESS_LOGGER_NAME: Final = "ctms.web"
LOG_CONTEXT_KEY: Final = "log_context"


class ContextKey:
    """Keys of the per-request context dict that the middleware reads.

    Every key except the internal ones (`API_CLIENT_ID`, `EXCEPTION`) is copied into the access-log record
    as is, so handlers may add others (`fxa_id_conflict`, `ingest_actions`, `pubsub_<claim>`, …).
    """

    RID: Final = "rid"  # set by the middleware before the app runs; read-only for handlers
    PATH_TEMPLATE: Final = (
        "path_template"  # else taken from scope["path_template"] (Litestar sets it)
    )
    PATH_PARAMS: Final = "path_params"  # else taken from scope["path_params"]
    CLIENT_ID: Final = "client_id"  # the client id claimed (token subject, /token credentials)
    CLIENT_ALLOWED: Final = "client_allowed"  # False once auth starts, True when it succeeded
    AUTH_FAIL: Final = "auth_fail"
    TOKEN_CREDS_FROM: Final = "token_creds_from"  # noqa: S105 - a field name
    TOKEN_FAIL: Final = "token_fail"  # noqa: S105 - a field name
    TRACE: Final = "trace"
    TRACE_JSON: Final = "trace_json"
    # Internal, never logged: the id of the client that *authenticated* (bearer success or a successful
    # /token grant); the only source of the `client_id` metric label besides `client_allowed=True`.
    API_CLIENT_ID: Final = "api_client_id"
    # Internal, never logged: an exception the framework turned into a 5xx response itself (record it from
    # an after-exception hook with `record_exception`); makes the record ERROR with the traceback.
    EXCEPTION: Final = "exception"


_INTERNAL_KEYS = frozenset({ContextKey.API_CLIENT_ID, ContextKey.EXCEPTION})
# Written explicitly at their place in the record, or reserved by structlog.
_PLACED_KEYS = frozenset(
    {
        ContextKey.RID,
        ContextKey.PATH_TEMPLATE,
        ContextKey.PATH_PARAMS,
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


def log_context(scope: Scope, key: str = LOG_CONTEXT_KEY) -> dict[str, Any]:
    """The request's context dict (created empty when the middleware did not run, e.g. in unit tests)."""
    state: dict[str, Any] = scope.setdefault("state", {})
    context: dict[str, Any] | None = state.get(key)
    if context is None:
        context = state[key] = {}
    return context


def record_exception(exception: BaseException, scope: Scope) -> None:
    """After-exception hook: remember `exception` so a 5xx response is logged at ERROR with it."""
    log_context(scope)[ContextKey.EXCEPTION] = exception


def authenticated_client_id(context: MutableMapping[str, Any]) -> str | None:
    """The id of the client that authenticated during the request, or None (docs/contract.md §11.5)."""
    api_client_id = context.get(ContextKey.API_CLIENT_ID)
    if isinstance(api_client_id, str):
        return api_client_id
    if context.get(ContextKey.CLIENT_ALLOWED) is True:
        client_id = context.get(ContextKey.CLIENT_ID)
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
        context: dict[str, Any] = {ContextKey.RID: rid}
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
        context: dict[str, Any],
        rid: str,
        status_code: int,
        duration_s: float,
        raised: BaseException | None,
    ) -> None:
        path_template = context.get(ContextKey.PATH_TEMPLATE) or scope.get("path_template")
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
            recorded = context.get(ContextKey.EXCEPTION)
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
        context: dict[str, Any],
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
        path_params = context.get(ContextKey.PATH_PARAMS) or scope.get("path_params")
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
        client_id = context.get(ContextKey.CLIENT_ID)
        if isinstance(client_id, str):  # the caller's text, from a `/token` form or a token
            fields[ContextKey.CLIENT_ID] = loggable(client_id)
        fields["status_code"] = status_code
        fields["duration_s"] = duration_s
        return fields

    @staticmethod
    def _message(scope: Scope, context: dict[str, Any], status_code: int) -> str:
        client = scope.get("client")
        host, port = (loggable(client[0] or "-"), client[1]) if client else ("-", "-")
        client_id = context.get(ContextKey.CLIENT_ID)
        client_id = loggable(client_id) if isinstance(client_id, str) and client_id else "-"
        http_version = scope.get("http_version", "1.1")
        return (
            f"{host}:{port} {client_id} '{scope['method']} {redact_path(scope['path'])} "
            f"HTTP/{http_version}'"
            f" {status_code}"
        )
