"""The access-log + metrics middleware around a fake ASGI app (docs/contract.md §11.2, §11.5)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from uuid import UUID

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ctms_entrypoints.observability.access_log import (
    LOG_CONTEXT_KEY,
    AccessLogMiddleware,
    authenticated_client_id,
    log_context,
    record_exception,
)
from ctms_entrypoints.observability.metrics import Metrics
from tests.unit.observability.asgi import Message, Scope, call, http_scope, respond
from tests.unit.observability.conftest import CapturedLogs

EMAIL_ID = UUID("332de237-cab7-4461-bcc3-48e68f42bd5c")
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    built = Metrics()
    yield built
    built.shutdown()


def samples(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = metrics.render()[0].decode()
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def routed_app(
    status: int,
    *,
    path_template: str | None = None,
    path_params: dict[str, Any] | None = None,
    facts: dict[str, Any] | None = None,
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A fake framework: sets the route like Litestar's router, writes `facts` into the log context."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if path_template is not None:
            scope["path_template"] = path_template
            scope["path_params"] = path_params or {}
        log_context(scope).update(facts or {})
        await respond(send, status)

    return app


async def test_get_emits_one_record_with_the_documented_fields(captured_logs: CapturedLogs) -> None:
    """A GET yields exactly one ctms.web record: docs/contract.md §11.2 fields, redactions, rid from X-Request-Id, msg."""
    app = routed_app(
        200,
        path_template="/ctms/{email_id}",
        path_params={"email_id": EMAIL_ID},
        facts={"client_id": "id_basket", "client_allowed": True},
    )
    scope = http_scope(
        "GET",
        f"/ctms/{EMAIL_ID}",
        headers=[
            (b"host", b"testserver"),
            (b"authorization", b"Bearer secret.token.value"),
            (b"cookie", b"a=b"),
            (b"x-request-id", b"req-42"),
        ],
        query_string=b"primary_email=someone%40example.com&limit=2",
    )
    sent = await call(AccessLogMiddleware(app), scope)

    assert sent[0]["status"] == 200
    (record,) = captured_logs.records()
    assert record["Type"] == "ctms.web"
    assert record["Severity"] == 6
    fields = record["Fields"]
    duration = fields.pop("duration_s")
    assert isinstance(duration, float) and duration >= 0 and round(duration, 3) == duration
    assert fields == {
        "client_host": "10.0.0.1",
        "method": "GET",
        "path": f"/ctms/{EMAIL_ID}",
        "path_template": "/ctms/{email_id}",
        "path_params": {"email_id": str(EMAIL_ID)},
        "rid": "req-42",
        "headers": {
            "host": "testserver",
            "authorization": "[OMITTED]",
            "cookie": "[OMITTED]",
            "x-request-id": "req-42",
        },
        "query": {"primary_email": "[OMITTED]", "limit": "2"},
        "client_id": "id_basket",
        "client_allowed": True,
        "status_code": 200,
        "msg": f"10.0.0.1:54321 id_basket 'GET /ctms/{EMAIL_ID} HTTP/1.1' 200",
    }
    assert "someone" not in captured_logs.stream.getvalue()
    assert "secret.token" not in captured_logs.stream.getvalue()


async def test_rid_is_generated_and_visible_to_the_app(captured_logs: CapturedLogs) -> None:
    """Without X-Request-Id the rid is 32 random hex chars, put in the context before the app runs."""
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["state"][LOG_CONTEXT_KEY]["rid"])
        await respond(send, 200)

    middleware = AccessLogMiddleware(app)
    await call(middleware, http_scope(headers=[]))
    await call(middleware, http_scope(headers=[]))

    first, second = captured_logs.records()
    assert re.fullmatch(r"[0-9a-f]{32}", first["Fields"]["rid"])
    assert [first["Fields"]["rid"], second["Fields"]["rid"]] == seen
    assert seen[0] != seen[1]
    assert "headers" not in first["Fields"] and "query" not in first["Fields"]


async def test_traced_post_logs_trace_and_body(captured_logs: CapturedLogs) -> None:
    """A write for a traced address carries `trace` and `trace_json`; internal keys stay out."""
    body = {"email": {"primary_email": "x+trace-me-mozilla-1@example.com"}}
    app = routed_app(
        201,
        path_template="/ctms",
        facts={
            "client_id": "id_basket",
            "client_allowed": True,
            "trace": "x+trace-me-mozilla-1@example.com",
            "trace_json": body,
            "api_client_id": "id_basket",
        },
    )
    await call(AccessLogMiddleware(app), http_scope("POST", "/ctms", http_version="2"))

    (record,) = captured_logs.records()
    fields = record["Fields"]
    assert fields["trace"] == "x+trace-me-mozilla-1@example.com"
    assert fields["trace_json"] == body
    assert "api_client_id" not in fields and "exception" not in fields
    assert "path_params" not in fields
    assert fields["msg"] == "10.0.0.1:54321 id_basket 'POST /ctms HTTP/2' 201"


async def test_unauthorised_request_logs_the_failure(
    captured_logs: CapturedLogs, metrics: Metrics
) -> None:
    """A 401 records auth_fail and client_allowed=false; the client id label is not used."""
    app = routed_app(
        401,
        path_template="/ctms/{email_id}",
        path_params={"email_id": str(EMAIL_ID)},
        facts={"client_id": "id_claimed", "client_allowed": False, "auth_fail": "No client record"},
    )
    await call(AccessLogMiddleware(app, metrics=metrics), http_scope("GET", f"/ctms/{EMAIL_ID}"))

    (record,) = captured_logs.records()
    assert record["Severity"] == 6
    assert record["Fields"]["auth_fail"] == "No client record"
    assert record["Fields"]["client_allowed"] is False
    assert record["Fields"]["status_code"] == 401
    assert record["Fields"]["msg"].endswith(
        " id_claimed 'GET /ctms/" + str(EMAIL_ID) + " HTTP/1.1' 401"
    )
    assert samples(metrics, "ctms_api_requests_total") == {}
    assert samples(metrics, "ctms_requests_total") == {
        (
            ("method", "GET"),
            ("path_template", "/ctms/{email_id}"),
            ("status_code", "401"),
            ("status_code_family", "4xx"),
        ): 1.0
    }


async def test_token_failure_logs_credentials_origin(captured_logs: CapturedLogs) -> None:
    """A /token failure records token_creds_from, token_fail and the claimed client id."""
    app = routed_app(
        400,
        path_template="/token",
        facts={"client_id": "id_x", "token_creds_from": "form", "token_fail": "Bad credentials"},
    )
    await call(AccessLogMiddleware(app), http_scope("POST", "/token"))
    (record,) = captured_logs.records()
    fields = record["Fields"]
    assert (fields["client_id"], fields["token_creds_from"], fields["token_fail"]) == (
        "id_x",
        "form",
        "Bad credentials",
    )
    assert fields["msg"] == "10.0.0.1:54321 id_x 'POST /token HTTP/1.1' 400"


async def test_raising_app_logs_error_once_counts_500_and_reraises(
    captured_logs: CapturedLogs, metrics: Metrics
) -> None:
    """An exception from the app: one ERROR record with status 500 and the traceback, then re-raised."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["path_template"] = "/__crash__"
        raise RuntimeError("Test exception")

    with pytest.raises(RuntimeError, match="Test exception"):
        await call(AccessLogMiddleware(app, metrics=metrics), http_scope("GET", "/__crash__"))

    (record,) = captured_logs.records()
    assert record["Severity"] == 3
    fields = record["Fields"]
    assert fields["status_code"] == 500
    assert fields["error"] == "RuntimeError('Test exception')"
    assert "RuntimeError: Test exception" in fields["traceback"]
    assert fields["msg"] == "10.0.0.1:54321 - 'GET /__crash__ HTTP/1.1' 500"
    assert samples(metrics, "ctms_requests_total") == {
        (
            ("method", "GET"),
            ("path_template", "/__crash__"),
            ("status_code", "500"),
            ("status_code_family", "5xx"),
        ): 1.0
    }


async def test_exception_recorded_by_the_framework_makes_a_500_an_error(
    captured_logs: CapturedLogs,
) -> None:
    """A 500 the framework rendered itself is logged at ERROR with the exception it recorded."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            raise ZeroDivisionError("boom")
        except ZeroDivisionError as error:
            record_exception(error, scope)
        await respond(send, 500)

    await call(AccessLogMiddleware(app), http_scope())
    (record,) = captured_logs.records()
    assert record["Severity"] == 3
    assert record["Fields"]["error"] == "ZeroDivisionError('boom')"
    assert record["Fields"]["status_code"] == 500


async def test_exception_recorded_for_a_client_error_stays_info(
    captured_logs: CapturedLogs,
) -> None:
    """A handled 4xx exception does not make the record an error."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        record_exception(LookupError("not found"), scope)
        await respond(send, 404)

    await call(AccessLogMiddleware(app), http_scope())
    (record,) = captured_logs.records()
    assert record["Severity"] == 6
    assert "error" not in record["Fields"] and "traceback" not in record["Fields"]


async def test_concurrent_requests_never_share_a_context(captured_logs: CapturedLogs) -> None:
    """Two requests in flight at once get distinct context dicts, even if the server shared state."""
    both_started = asyncio.Event()
    contexts: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        context = log_context(scope)
        contexts.append(context)
        context["client_id"] = scope["path"].strip("/")
        if len(contexts) == 2:
            both_started.set()
        await both_started.wait()
        await respond(send, 200)

    shared_state: dict[str, Any] = {"lifespan": "value"}
    middleware = AccessLogMiddleware(app)
    await asyncio.gather(
        call(middleware, http_scope(path="/first", state=shared_state)),
        call(middleware, http_scope(path="/second", state=shared_state)),
    )

    assert contexts[0] is not contexts[1]
    assert LOG_CONTEXT_KEY not in shared_state
    by_path = {r["Fields"]["path"]: r["Fields"] for r in captured_logs.records()}
    assert by_path["/first"]["client_id"] == "first"
    assert by_path["/second"]["client_id"] == "second"


async def test_client_id_label_only_for_authenticated_clients(
    captured_logs: CapturedLogs, metrics: Metrics
) -> None:
    """ctms_api_requests_total is labelled with a client only once it authenticated."""
    middleware = AccessLogMiddleware
    template = "/ctms/{email_id}"
    for facts, status in (
        ({"client_id": "id_ok", "client_allowed": True}, 200),
        ({"client_id": "id_ok", "client_allowed": True}, 404),
        ({"client_id": "id_forged", "client_allowed": False}, 401),
        ({"client_id": "id_token", "api_client_id": "id_token"}, 200),
        ({"client_id": "id_unknown"}, 400),
    ):
        app = routed_app(status, path_template=template, facts=facts)
        await call(middleware(app, metrics=metrics), http_scope("GET", f"/ctms/{EMAIL_ID}"))

    assert samples(metrics, "ctms_api_requests_total") == {
        (
            ("client_id", "id_ok"),
            ("method", "GET"),
            ("path_template", template),
            ("status_code_family", "2xx"),
        ): 1.0,
        (
            ("client_id", "id_ok"),
            ("method", "GET"),
            ("path_template", template),
            ("status_code_family", "4xx"),
        ): 1.0,
        (
            ("client_id", "id_token"),
            ("method", "GET"),
            ("path_template", template),
            ("status_code_family", "2xx"),
        ): 1.0,
    }
    assert len(captured_logs.records()) == 5


async def test_unknown_paths_are_logged_but_not_counted(
    captured_logs: CapturedLogs, metrics: Metrics
) -> None:
    """No route template, no labelled sample; the request is still logged."""
    await call(AccessLogMiddleware(routed_app(404), metrics=metrics), http_scope("GET", "/nowhere"))
    assert samples(metrics, "ctms_requests_total") == {}
    assert samples(metrics, "ctms_requests_duration_seconds_count") == {}
    (record,) = captured_logs.records()
    assert "path_template" not in record["Fields"]


async def test_metrics_are_counted_even_when_the_access_log_is_silenced(
    captured_logs: CapturedLogs, metrics: Metrics
) -> None:
    """Above INFO no record is built, but the request still counts."""
    captured_logs.configure(level="WARNING")
    await call(
        AccessLogMiddleware(routed_app(200, path_template="/"), metrics=metrics), http_scope()
    )
    assert captured_logs.lines() == []
    assert sum(samples(metrics, "ctms_requests_total").values()) == 1.0


async def test_non_http_scopes_pass_through(captured_logs: CapturedLogs) -> None:
    """Lifespan (and websocket) scopes reach the app untouched and are not logged."""
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    scope: Scope = {"type": "lifespan", "state": {}}
    await AccessLogMiddleware(app)(scope, _never_receive, _never_send)
    assert seen == [scope] and scope["state"] == {}
    assert captured_logs.lines() == []


async def test_custom_context_key_is_honoured(captured_logs: CapturedLogs) -> None:
    """The HTTP layer may keep its own key for the context dict."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"]["ctms.access_log"]["client_id"] = "id_custom"
        await respond(send, 200)

    await call(AccessLogMiddleware(app, context_key="ctms.access_log"), http_scope())
    (record,) = captured_logs.records()
    assert record["Fields"]["client_id"] == "id_custom"


def test_authenticated_client_id_rules() -> None:
    """api_client_id wins; else client_id only with client_allowed=True."""
    assert authenticated_client_id({"api_client_id": "a", "client_id": "b"}) == "a"
    assert authenticated_client_id({"client_id": "b", "client_allowed": True}) == "b"
    assert authenticated_client_id({"client_id": "b", "client_allowed": False}) is None
    assert authenticated_client_id({"client_id": "b"}) is None


def test_log_context_creates_one_dict_per_scope() -> None:
    """log_context is get-or-create on the scope's state."""
    scope: Scope = {"type": "http"}
    assert log_context(scope) is log_context(scope)
    assert log_context({"type": "http"}) is not log_context(scope)


async def _never_receive() -> Message:
    raise AssertionError


async def _never_send(message: Message) -> None:
    raise AssertionError


async def test_console_mode_renders_the_access_record_readably(captured_logs: CapturedLogs) -> None:
    """With use_mozlog=False the same record is a readable line with key=value pairs."""
    captured_logs.configure(use_mozlog=False)
    app = routed_app(200, path_template="/__heartbeat__")
    await call(AccessLogMiddleware(app), http_scope("GET", "/__heartbeat__", headers=[]))
    (line,) = captured_logs.lines()
    assert "[info" in line and "[ctms.web]" in line
    assert "10.0.0.1:54321 - 'GET /__heartbeat__ HTTP/1.1' 200" in line
    assert "status_code=200" in line and "path_template=/__heartbeat__" in line
