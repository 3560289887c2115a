"""The request-body deadline inside the application (docs/deployment.md, slow clients): a body that
stops arriving gets 408 and `Connection: close` once `CTMS_REQUEST_READ_TIMEOUT_SECONDS` has passed.
(The head deadline lives in the server protocol: tests/integration/test_slow_clients.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

from ctms_entrypoints.container import build_container, memory_storage
from ctms_entrypoints.http import create_app
from tests.http_harness import make_settings


async def test_a_body_that_stops_arriving_gets_a_408_with_connection_close() -> None:
    app = create_app(
        build_container(make_settings(request_read_timeout_seconds=0.05), **memory_storage())
    )
    stalled = asyncio.Event()  # never set: the rest of the body never comes
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"email": {"primary_', "more_body": True}
    ]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await stalled.wait()
        raise AssertionError("unreachable")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/ctms",
        "raw_path": b"/ctms",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"400")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    async with asyncio.timeout(10):  # far above the deadline: the answer does not wait for the body
        await app(scope, receive, send)
    start, body = sent[0], sent[1]
    assert start["status"] == 408
    assert (b"connection", b"close") in start["headers"]
    assert body["body"] == b'{"detail":"Request timeout"}'
