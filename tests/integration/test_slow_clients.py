"""Slow clients cannot hold a connection (issue #16 defect 7, docs/contract.md §16, docs/deployment.md).

The API runs under uvicorn on loopback as `ctms serve` runs it (`ReadDeadlineHttpToolsProtocol`), with a
short `CTMS_REQUEST_READ_TIMEOUT_SECONDS`. Clients trickle a byte at a time, far longer than the deadline:
each connection must be closed by the server long before the client is done (the bound is generous,
the trickle is longer still, so the outcome does not depend on the machine's speed).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn

from ctms_entrypoints.container import build_container, memory_storage
from ctms_entrypoints.http import create_app
from ctms_entrypoints.http.read_deadline import ReadDeadlineHttpToolsProtocol
from tests.http_harness import make_settings

pytestmark = pytest.mark.integration

READ_TIMEOUT = 0.5
CLOSED_WITHIN = 15.0  # seconds: the server must have closed the connection by then
TRICKLE_FOR = 60.0  # seconds a client would go on trickling if it were allowed to


class _ShortDeadlineProtocol(ReadDeadlineHttpToolsProtocol):
    read_timeout = READ_TIMEOUT


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # pytest keeps its own
        pass

    @contextlib.contextmanager
    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        yield


@contextlib.asynccontextmanager
async def slow_client_server() -> AsyncIterator[int]:
    """The API (in-memory storage) under uvicorn on a free loopback port; yields the port."""
    settings = make_settings(request_read_timeout_seconds=READ_TIMEOUT)
    app = create_app(build_container(settings, **memory_storage()))
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        access_log=False,
        ws="none",
        http=_ShortDeadlineProtocol,
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if serving.done():
                    await serving  # start-up failed: its error
                await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await serving
        listening.close()


async def _trickle(writer: asyncio.StreamWriter, data: bytes) -> None:
    """`data` one byte every 50 ms, for up to `TRICKLE_FOR` seconds; stops once the peer is gone."""
    loop = asyncio.get_running_loop()
    end = loop.time() + TRICKLE_FOR
    for index in range(len(data)):
        if loop.time() > end:
            return
        try:
            writer.write(data[index : index + 1])
            await writer.drain()
        except (ConnectionError, RuntimeError):
            return
        await asyncio.sleep(0.05)
    await asyncio.sleep(max(0.0, end - loop.time()))


async def _closed_by_the_server(port: int, before: bytes, trickled: bytes) -> bytes:
    """Sends `before` at once, then trickles `trickled`; everything the server sent until it closed
    the connection (it must, within `CLOSED_WITHIN`)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(before)
    trickling = asyncio.create_task(_trickle(writer, trickled))
    try:
        async with asyncio.timeout(CLOSED_WITHIN):
            received = await reader.read()  # until the server closes
    except ConnectionResetError:
        # Closed by the server while trickled bytes were in flight: closed, its answer possibly lost.
        received = RESET
    finally:
        trickling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await trickling
        writer.close()
    return received


RESET = b"<connection reset by the server>"
_SLOW_HEAD = b"GET /__lbheartbeat__ HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000 + b"\r\n\r\n"
_BODY = b'{"email": {"primary_email": "slow@example.com"}}' + b" " * 10_000
_SLOW_BODY_HEAD = (
    b"POST /ctms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(_BODY)).encode() + b"\r\n\r\n"
)
_QUICK_REQUEST = b"GET /__lbheartbeat__ HTTP/1.1\r\nHost: x\r\n\r\n"


async def test_a_connection_that_sends_nothing_is_closed() -> None:
    async with slow_client_server() as port:
        received = await _closed_by_the_server(port, b"", b"")
    assert received.startswith(b"HTTP/1.1 408 ")


async def test_request_headers_sent_slowly_get_a_408_and_the_connection_closed() -> None:
    async with slow_client_server() as port:
        received = await _closed_by_the_server(port, b"", _SLOW_HEAD)
    assert received.startswith(b"HTTP/1.1 408 ")
    assert received.endswith(b'{"detail":"Request timeout"}')


async def test_a_request_body_sent_slowly_gets_a_408_and_the_connection_closed() -> None:
    async with slow_client_server() as port:
        received = await _closed_by_the_server(port, _SLOW_BODY_HEAD, _BODY)
    assert received.startswith(b"HTTP/1.1 408 ")
    assert received.endswith(b'{"detail":"Request timeout"}')


async def test_the_next_request_on_a_kept_alive_connection_has_the_same_deadline() -> None:
    async with slow_client_server() as port:
        received = await _closed_by_the_server(port, _QUICK_REQUEST, _SLOW_HEAD)
    first, _, rest = received.partition(b'{"status":"OK"}')
    assert first.startswith(b"HTTP/1.1 200 ")
    assert rest.startswith(b"HTTP/1.1 408 ")


async def test_forty_slow_clients_are_all_closed() -> None:
    async with slow_client_server() as port:
        results = await asyncio.gather(
            *(
                _closed_by_the_server(port, b"", _SLOW_HEAD)
                if index % 2
                else _closed_by_the_server(port, _SLOW_BODY_HEAD, _BODY)
                for index in range(40)
            )
        )
    # Forty clients and the server share one event loop here: a reset may overtake an answer.
    assert all(received.startswith(b"HTTP/1.1 408 ") or received == RESET for received in results)
