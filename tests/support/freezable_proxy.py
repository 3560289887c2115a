"""A loopback TCP proxy that can freeze: it stops forwarding bytes in both directions while keeping every
connection open, as a database whose processes are stopped (or a network black hole) does, and thaws.

The machine's PostgreSQL is shared by other test sessions and must never be frozen itself: the
application under test talks to it through this proxy instead (`url_through`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.engine import make_url

_CHUNK = 65536


class FreezableProxy:
    """Forwards every connection made to `port` to `upstream_host:upstream_port`."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._thawed = asyncio.Event()
        self._thawed.set()
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def url_through(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's."""
        rendered: str = (
            make_url(url)
            .set(host="127.0.0.1", port=self.port)
            .render_as_string(hide_password=False)
        )
        return rendered

    def freeze(self) -> None:
        """Stop forwarding: connections stay open, new ones are accepted, no byte gets through."""
        self._thawed.clear()

    def thaw(self) -> None:
        self._thawed.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        await self._thawed.wait()  # a frozen database does not even answer the startup message
        try:
            upstream_reader, upstream = await asyncio.open_connection(*self._upstream)
        except OSError:
            client.close()
            return
        for reader, writer in ((client_reader, upstream), (upstream_reader, client)):
            pump = asyncio.create_task(self._pump(reader, writer))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(_CHUNK):
                await self._thawed.wait()  # held while frozen, delivered after the thaw
                writer.write(chunk)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def freezable_proxy(url: str) -> AsyncIterator[FreezableProxy]:
    """A running proxy in front of the database of `url` (TCP host and port)."""
    parsed = make_url(url)
    proxy = FreezableProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    await proxy.start()
    try:
        yield proxy
    finally:
        proxy.thaw()
        await proxy.close()
