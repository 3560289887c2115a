"""E-mail addresses in request paths (`DELETE /ctms/{primary_email}`) never reach the access log
(docs/contract.md §16.4): the path, its parameters and the message show `[OMITTED]` instead."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ctms_adapters.logging import OMITTED, redact_path, redact_path_value
from ctms_entrypoints.observability.access_log import AccessLogMiddleware, log_context
from tests.unit.observability.asgi import Message, Scope, call, http_scope, respond
from tests.unit.observability.conftest import CapturedLogs


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/ctms/someone@example.com", f"/ctms/{OMITTED}"),
        ("/ctms/someone%40example.com", f"/ctms/{OMITTED}"),
        (
            "/ctms/67e52c77-950f-4f28-accb-bb3ea1a2c51a",
            "/ctms/67e52c77-950f-4f28-accb-bb3ea1a2c51a",
        ),
        ("/a@b/c/d@e", f"/{OMITTED}/c/{OMITTED}"),
        ("/", "/"),
    ],
)
def test_path_segments_holding_an_address_are_omitted(path: str, expected: str) -> None:
    assert redact_path(path) == expected


def test_path_values_holding_an_address_are_omitted() -> None:
    assert redact_path_value("x@example.com") == OMITTED
    assert redact_path_value("plain") == "plain"


async def test_the_delete_record_shows_no_address(captured_logs: CapturedLogs) -> None:
    async def app(scope: Scope, receive: Any, send: Callable[[Message], Awaitable[None]]) -> None:
        scope["path_template"] = "/ctms/{primary_email}"
        scope["path_params"] = {"primary_email": "someone@example.com"}
        log_context(scope).update({"client_id": "id_basket", "client_allowed": True})
        await respond(send, 200)

    await call(AccessLogMiddleware(app), http_scope("DELETE", "/ctms/someone@example.com"))
    (record,) = captured_logs.records()
    assert record["Fields"]["path"] == f"/ctms/{OMITTED}"
    assert record["Fields"]["path_params"] == {"primary_email": OMITTED}
    assert "someone" not in captured_logs.stream.getvalue()
