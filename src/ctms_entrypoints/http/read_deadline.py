"""A deadline on reading each request, so a slow client cannot hold a connection (docs/deployment.md).

`CTMS_REQUEST_READ_TIMEOUT_SECONDS` bounds two waits:

* the request's head: from the moment the server waits for a request (a new connection, or the previous
  response sent) until its headers are in. uvicorn has no such bound (its keep-alive timeout stops at
  the first byte, and a new connection has none), so `ctms serve` runs uvicorn with
  `ReadDeadlineHttpToolsProtocol`, which answers 408 and closes the connection when it passes;
* the request's body: from the headers until the last byte of the body, enforced where the application
  reads it (`read_body_by_deadline`): 408 `{"detail": "Request timeout"}` and `Connection: close`.
"""

from __future__ import annotations

import asyncio
import functools
from asyncio import TimerHandle
from typing import Any

from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ctms_entrypoints.settings import Settings

_METHODS_WITH_BODIES = frozenset({"POST", "PUT", "PATCH"})
_TIMEOUT_DETAIL = b'{"detail":"Request timeout"}'
_HEAD_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: application/json\r\n"
    b"connection: close\r\n"
    b"content-length: " + str(len(_TIMEOUT_DETAIL)).encode() + b"\r\n\r\n" + _TIMEOUT_DETAIL
)


class RequestTimeoutError(HTTPException):
    """408: the body did not arrive in time. The connection is closed after the answer."""

    status_code = 408

    def __init__(self) -> None:
        super().__init__(detail="Request timeout", headers={"Connection": "close"})


def read_body_by_deadline(seconds: float) -> Any:
    """Litestar middleware: a request's body must be read within `seconds` of its headers."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def with_deadline(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or scope["method"] not in _METHODS_WITH_BODIES:
                await app(scope, receive, send)
                return
            deadline = asyncio.get_running_loop().time() + seconds

            async def receive_by_deadline() -> Any:
                try:
                    async with asyncio.timeout_at(deadline):
                        return await receive()
                except TimeoutError:
                    raise RequestTimeoutError from None

            await app(scope, receive_by_deadline, send)

        return with_deadline

    return middleware


@functools.cache
def _configured_read_timeout() -> float:
    # Server processes get their settings from the environment (`ctms serve` exports them).
    return Settings.from_env().request_read_timeout_seconds


class ReadDeadlineHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request head is not in within the read
    timeout (with a 408). `read_timeout` None → `CTMS_REQUEST_READ_TIMEOUT_SECONDS`."""

    read_timeout: float | None = None

    _head_deadline: TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._head_arrived()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Wait for the next head unless a pipelined request (already read) is being answered.
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._await_head()

    def _await_head(self) -> None:
        self._head_arrived()
        seconds = self.read_timeout if self.read_timeout is not None else _configured_read_timeout()
        self._head_deadline = self.loop.call_later(seconds, self._head_too_late)

    def _head_arrived(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_late(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.write(_HEAD_TIMEOUT_RESPONSE)
            self.transport.close()
