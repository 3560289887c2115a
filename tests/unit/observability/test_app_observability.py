"""Issue #4 acceptance on the real application: access-log records, /metrics, Sentry reports.

The app runs on the in-memory adapters, driven in-process through httpx; logging goes to a StringIO.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sentry_sdk
from prometheus_client.parser import text_string_to_metric_families
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from ctms_adapters.logging import configure_logging
from ctms_entrypoints.container import build_container, memory_storage
from ctms_entrypoints.http import create_app
from ctms_entrypoints.observability.sentry import init_sentry
from ctms_entrypoints.settings import Settings
from tests.doubles import PlainHasher
from tests.http_harness import lifespan_task
from tests.samples import sample

MOZLOG_KEYS = ["Timestamp", "Type", "Logger", "Hostname", "EnvVersion", "Severity", "Pid", "Fields"]


@dataclass
class RunningApi:
    http: httpx.AsyncClient
    log: io.StringIO
    client_id: str
    client_secret: str

    def records(self, logger: str = "ctms.web") -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.log.getvalue().splitlines() if line.strip()]
        return [line for line in lines if line["Type"] == logger]

    def clear(self) -> None:
        self.log.seek(0)
        self.log.truncate()

    async def token(self) -> str:
        response = await self.http.post(
            "/token", data={"client_id": self.client_id, "client_secret": self.client_secret}
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


@pytest.fixture
async def running() -> AsyncIterator[RunningApi]:
    log = io.StringIO()
    configure_logging(use_mozlog=True, level="INFO", log_sqlalchemy=False, stream=log)
    container = build_container(
        Settings(secret_key="observability-tests"),
        **memory_storage(),
        password_hasher=PlainHasher(),
    )
    credentials = await container.api_client_service().create("observer", "observer@example.com")
    app = create_app(container)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4321))
    async with (
        lifespan_task(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        yield RunningApi(http, log, credentials.client_id, credentials.client_secret)
    configure_logging(use_mozlog=True, level="INFO", log_sqlalchemy=False)


def only_record(running: RunningApi) -> dict[str, Any]:
    [record] = running.records()
    assert list(record) == MOZLOG_KEYS
    assert (record["Logger"], record["EnvVersion"], record["Type"]) == ("ctms", "2.0", "ctms.web")
    assert isinstance(record["Timestamp"], int) and record["Timestamp"] > 10**18
    assert isinstance(record["Pid"], int) and isinstance(record["Hostname"], str)
    fields: dict[str, Any] = record["Fields"]
    assert fields["client_host"] == "203.0.113.9"
    assert len(fields["rid"]) == 32
    assert isinstance(fields["duration_s"], float)
    return record


async def test_authenticated_get_is_one_info_record_with_redacted_headers(
    running: RunningApi,
) -> None:
    token = await running.token()
    created = await running.http.post(
        "/ctms", json=sample("minimal"), headers={"Authorization": f"Bearer {token}"}
    )
    assert created.status_code == 201
    running.clear()
    email_id = sample("minimal")["email"]["email_id"]
    response = await running.http.get(
        f"/ctms/{email_id}",
        headers={"Authorization": f"Bearer {token}", "Cookie": "session=1", "X-Request-Id": "r-1"},
    )
    assert response.status_code == 200
    record = only_record_with_rid(running, "r-1")
    fields = record["Fields"]
    assert record["Severity"] == 6
    assert fields["method"] == "GET"
    assert fields["path"] == f"/ctms/{email_id}"
    assert fields["path_template"] == "/ctms/{email_id}"
    assert fields["path_params"] == {"email_id": email_id}
    assert fields["headers"]["authorization"] == "[OMITTED]"
    assert fields["headers"]["cookie"] == "[OMITTED]"
    assert fields["status_code"] == 200
    assert fields["client_id"] == "id_observer"
    assert fields["client_allowed"] is True
    assert "trace" not in fields
    assert fields["msg"] == f"203.0.113.9:4321 id_observer 'GET /ctms/{email_id} HTTP/1.1' 200"


def only_record_with_rid(running: RunningApi, rid: str) -> dict[str, Any]:
    [record] = running.records()
    assert record["Fields"]["rid"] == rid
    assert list(record) == MOZLOG_KEYS
    return record


async def test_post_of_a_traced_address_logs_trace_and_body(running: RunningApi) -> None:
    token = await running.token()
    running.clear()
    body = {"email": {"primary_email": "someone+trace-me-mozilla-2024@example.com"}}
    response = await running.http.post(
        "/ctms", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201
    fields = only_record(running)["Fields"]
    assert fields["trace"] == "someone+trace-me-mozilla-2024@example.com"
    assert fields["trace_json"] == body
    assert fields["status_code"] == 201


async def test_unauthenticated_request_is_one_record_without_a_client(running: RunningApi) -> None:
    response = await running.http.get(
        "/ctms?primary_email=private@example.com", headers={"Authorization": "Bearer garbage"}
    )
    assert response.status_code == 401
    fields = only_record(running)["Fields"]
    assert fields["status_code"] == 401
    assert fields["auth_fail"] == "No or bad token"
    assert fields["client_allowed"] is False
    assert fields["query"] == {"primary_email": "[OMITTED]"}
    assert "private@example.com" not in json.dumps(running.records())


async def test_token_failure_is_one_record_naming_the_reason(running: RunningApi) -> None:
    response = await running.http.post(
        "/token", data={"client_id": running.client_id, "client_secret": "wrong"}
    )
    assert response.status_code == 400
    fields = only_record(running)["Fields"]
    assert fields["token_fail"] == "Bad credentials"
    assert fields["token_creds_from"] == "form"
    assert fields["client_id"] == "id_observer"
    assert "wrong" not in json.dumps(fields)


async def test_server_error_is_one_error_record_with_the_exception(running: RunningApi) -> None:
    token = await running.token()
    running.clear()
    response = await running.http.get("/__crash__", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 500
    record = only_record(running)
    assert record["Severity"] == 3
    assert record["Fields"]["status_code"] == 500
    assert "error" in record["Fields"] and "traceback" in record["Fields"]


async def test_metrics_count_traffic_with_the_documented_names_labels_and_buckets(
    running: RunningApi,
) -> None:
    token = await running.token()
    auth = {"Authorization": f"Bearer {token}"}
    await running.http.post("/ctms", json=sample("maximal"), headers=auth)
    email_id = sample("maximal")["email"]["email_id"]
    for _ in range(3):
        assert (await running.http.get(f"/ctms/{email_id}", headers=auth)).status_code == 200
    assert (await running.http.get(f"/ctms/{uuid.uuid4()}", headers=auth)).status_code == 404
    assert (await running.http.get("/ctms/not-a-uuid", headers=auth)).status_code == 422
    patch = {"relay_waitlist": {"geo": "fr"}}
    assert (
        await running.http.patch(f"/ctms/{email_id}", json={"waitlists": []}, headers=auth)
    ).status_code == 200
    assert (
        await running.http.patch(f"/ctms/{email_id}", json=patch, headers=auth)
    ).status_code == 200
    assert (await running.http.get("/no/such/path")).status_code == 404
    assert (await running.http.get("/__heartbeat__")).status_code == 200

    text = (await running.http.get("/metrics")).text
    assert "otel_scope" not in text and "target_info" not in text
    families = {family.name: family for family in text_string_to_metric_families(text)}

    def value(family: str, sample_name: str, **labels: str) -> float:
        for metric_sample in families[family].samples:
            if metric_sample.name == sample_name and all(
                metric_sample.labels.get(k) == v for k, v in labels.items()
            ):
                return float(metric_sample.value)
        raise AssertionError(f"no {sample_name} {labels}")

    template = "/ctms/{email_id}"
    assert (
        value(
            "ctms_requests",
            "ctms_requests_total",
            method="GET",
            path_template=template,
            status_code="200",
            status_code_family="2xx",
        )
        == 3
    )
    assert (
        value(
            "ctms_requests",
            "ctms_requests_total",
            method="GET",
            path_template=template,
            status_code="404",
            status_code_family="4xx",
        )
        == 1
    )
    assert (
        value(
            "ctms_requests",
            "ctms_requests_total",
            method="GET",
            path_template=template,
            status_code="422",
            status_code_family="4xx",
        )
        == 1
    )
    assert (
        value(
            "ctms_api_requests",
            "ctms_api_requests_total",
            method="GET",
            path_template=template,
            client_id="id_observer",
            status_code_family="2xx",
        )
        == 3
    )
    buckets = [
        metric_sample.labels["le"]
        for metric_sample in families["ctms_requests_duration_seconds"].samples
        if metric_sample.name == "ctms_requests_duration_seconds_bucket"
        and metric_sample.labels["path_template"] == template
        and metric_sample.labels["method"] == "GET"
        and metric_sample.labels["status_code_family"] == "2xx"
    ]
    assert [float(b) for b in buckets] == [0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, float("inf")]
    assert (
        value(
            "ctms_requests_duration_seconds",
            "ctms_requests_duration_seconds_count",
            method="GET",
            path_template=template,
            status_code_family="2xx",
        )
        == 3
    )
    assert value("ctms_legacy_waitlists_requests", "ctms_legacy_waitlists_requests_total") == 1
    assert value("ctms_contacts_total", "ctms_contacts_total") == 1
    all_templates = {s.labels.get("path_template") for f in families.values() for s in f.samples}
    assert "/no/such/path" not in all_templates
    # pre-initialised series exist with zero before any traffic on them
    assert (
        value(
            "ctms_requests",
            "ctms_requests_total",
            method="GET",
            path_template="/updates",
            status_code="401",
            status_code_family="4xx",
        )
        == 0
    )


class RecordingTransport(Transport):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        for item in envelope.items:
            if item.type == "event" and item.payload.json is not None:
                self.events.append(item.payload.json)


@pytest.fixture
def sentry_events() -> Iterator[list[dict[str, Any]]]:
    transport = RecordingTransport()
    init_sentry(None, transport=transport, release="test")
    try:
        yield transport.events
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init(dsn=None)


async def test_sentry_gets_each_server_error_once_and_no_client_error(
    sentry_events: list[dict[str, Any]], running: RunningApi
) -> None:
    token = await running.token()
    auth = {"Authorization": f"Bearer {token}"}
    await running.http.post("/ctms", json=sample("minimal"), headers=auth)
    assert (await running.http.get(f"/ctms/{uuid.uuid4()}", headers=auth)).status_code == 404
    conflict = sample("minimal")
    conflict["email"]["mailing_country"] = "fr"
    assert (await running.http.post("/ctms", json=conflict, headers=auth)).status_code == 409
    assert (await running.http.post("/ctms", json={"email": {}}, headers=auth)).status_code == 422
    assert sentry_events == []
    assert (await running.http.get("/__crash__", headers=auth)).status_code == 500
    sentry_sdk.flush()
    assert len(sentry_events) == 1
    serialized = json.dumps(sentry_events[0])
    assert token not in serialized
    assert "observer@example.com" not in serialized
