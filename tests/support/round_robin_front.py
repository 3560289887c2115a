"""A tiny round-robin TCP load balancer on 127.0.0.1, standing in for the Service in front of the API
replicas (docs/deployment.md, "Many instances").

Each client connection goes to the next backend in turn and is relayed byte for byte, both ways, until
either side closes. A backend that refuses the connection (a process stopped or not started yet) is
skipped: the connection goes to the next one, as a load balancer's connect-failure retry does.
`drain(i)` takes a backend out of the rotation, as Kubernetes removes a terminating pod from the
Service's endpoints while its `preStop` hook runs (deploy/kubernetes/base/web.yaml); `restore(i)` puts
it back. It runs on the caller's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools

_RELAY_CHUNK = 64 * 1024


@dataclasses.dataclass
class FrontStatistics:
    """What the front did, for assertions and failure messages."""

    connections: int = 0
    per_backend: list[int] = dataclasses.field(default_factory=list)
    refused: int = 0  # backend connections refused, each moved to the next backend
    unroutable: int = 0  # client connections closed because no backend accepted them
    unanswered: int = 0  # backend connections that ended (closed or reset) without a byte of answer


class RoundRobinFront:
    """`async with RoundRobinFront(backends) as front:` listens on `front.base_url`."""

    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = list(backends)
        self.statistics = FrontStatistics(per_backend=[0] * len(backends))
        self._rotation = itertools.cycle(range(len(backends)))
        self._drained: set[int] = set()
        self._open = [0] * len(backends)  # connections being opened or relayed, per backend
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def drain(self, index: int) -> None:
        """Send no new connection to backend `index`; those already open carry on."""
        self._drained.add(index)

    def restore(self, index: int) -> None:
        self._drained.discard(index)

    def open_connections(self, index: int) -> int:
        """Connections to backend `index` being opened or relayed right now."""
        return self._open[index]

    async def __aenter__(self) -> RoundRobinFront:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
        for relay in list(self._relays):
            relay.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        try:
            await self._relay(reader, writer)
        except asyncio.CancelledError:
            pass  # the front is closing
        finally:
            self._relays.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _relay(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        self.statistics.connections += 1
        first = next(self._rotation)
        for offset in range(len(self.backends)):
            index = (first + offset) % len(self.backends)
            if index in self._drained:
                continue
            self._open[index] += 1
            try:
                try:
                    backend_reader, backend = await asyncio.open_connection(*self.backends[index])
                except OSError:
                    self.statistics.refused += 1
                    continue
                self.statistics.per_backend[index] += 1
                try:
                    await self._pipe(client_reader, client, backend_reader, backend)
                finally:
                    backend.close()
                    with contextlib.suppress(OSError):
                        await backend.wait_closed()
                return
            finally:
                self._open[index] -= 1
        self.statistics.unroutable += 1

    async def _pipe(
        self,
        client_reader: asyncio.StreamReader,
        client: asyncio.StreamWriter,
        backend_reader: asyncio.StreamReader,
        backend: asyncio.StreamWriter,
    ) -> None:
        answered = await asyncio.gather(
            _copy(client_reader, backend), _copy(backend_reader, client)
        )
        if not answered[1]:
            self.statistics.unanswered += 1


async def _copy(source: asyncio.StreamReader, destination: asyncio.StreamWriter) -> bool:
    """Relay until `source` ends, then half-close `destination` (HTTP/1.1 allows either side to close
    first); a reset ends the relay and closes `destination`. True when any byte was relayed."""
    relayed = False
    try:
        while chunk := await source.read(_RELAY_CHUNK):
            relayed = True
            destination.write(chunk)
            await destination.drain()
        if destination.can_write_eof():
            destination.write_eof()
    except OSError:
        destination.close()
    return relayed
