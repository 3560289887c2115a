"""An httpx transport that gives each request in flight a connection pool of its own.

httpcore's connection pool reassigns every queued request on every request start and every response
close, and checks each idle connection's socket on the way: its cost grows with the requests in flight
times the connections held. A sync worker keeps `CTMS_ACOUSTIC_CONCURRENCY` uploads in flight against one
host, so with one shared pool that bookkeeping took a quarter of the worker's CPU (measured with 20
uploads in flight). Here each slot is a one-connection pool: a request takes a free slot, keeps it until
its response is closed, and the connection stays open for the next request of that slot. The slots share
one TLS context: building one loads the CA bundle (about 35 ms of CPU each, a third of a second for a
worker's eleven at start-up).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable

import httpx

__all__ = ["SlotTransport"]


def _one_connection_transport(ssl_context: ssl.SSLContext) -> httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport(
        verify=ssl_context, limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)
    )


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that hands its slot back once it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class SlotTransport(httpx.AsyncBaseTransport):
    """`slots` one-connection transports; a request waits for a free one at most the request's pool
    timeout (httpx's `timeout.pool`, as a shared pool would), then raises `httpx.PoolTimeout`."""

    def __init__(
        self,
        slots: int,
        *,
        transport_factory: Callable[[], httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        if slots < 1:
            raise ValueError("a SlotTransport needs at least one slot")
        if transport_factory is None:
            ssl_context = httpx.create_ssl_context()

            def transport_factory() -> httpx.AsyncBaseTransport:
                return _one_connection_transport(ssl_context)

        self._transports = [transport_factory() for _ in range(slots)]
        self._free: asyncio.Queue[httpx.AsyncBaseTransport] = asyncio.Queue()
        for transport in self._transports:
            self._free.put_nowait(transport)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool_timeout = request.extensions.get("timeout", {}).get("pool")
        try:
            async with asyncio.timeout(pool_timeout):
                transport = await self._free.get()
        except TimeoutError:
            raise httpx.PoolTimeout("no free connection slot", request=request) from None
        try:
            response = await transport.handle_async_request(request)
        except BaseException:
            self._free.put_nowait(transport)
            raise
        if (
            response.is_closed
        ):  # a body read in full already (as test transports answer): nothing to wait for
            self._free.put_nowait(transport)
        else:
            response.stream = _ReleasingStream(
                response.stream,  # type: ignore[arg-type]  # always async for an async transport
                lambda: self._free.put_nowait(transport),
            )
        return response

    async def aclose(self) -> None:
        for transport in self._transports:
            await transport.aclose()
