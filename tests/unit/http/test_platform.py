"""Platform endpoints and framework-level answers: version, heartbeats, crash, redirects, 404/405, 413,
503 and 500 (docs/contract.md §2.1, §10, §16.3 reliability)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import pytest

from ctms_core.ports.repositories import (
    ApiClientRepository,
    ContactRepository,
    ErasureAuditRepository,
    RoleRepository,
    UnitOfWork,
)
from tests.http_harness import Api, RunApi, make_settings
from tests.samples import sample

REPOSITORY_VERSION = json.loads((Path(__file__).parents[3] / "version.json").read_text())


# --- version, redirect, crash ------------------------------------------------------------------------------


async def test_root_redirects_to_the_docs(api: Api) -> None:
    response = await api.get("/", headers={})
    assert response.status_code == 307
    assert response.headers["Location"] == "./docs"
    followed = await api.http.get("/", follow_redirects=True)
    assert followed.status_code == 200
    assert followed.url.path == "/docs"


async def test_version_is_the_repository_version_json(api: Api) -> None:
    response = await api.get("/__version__", headers={})
    assert response.status_code == 200
    assert response.json() == REPOSITORY_VERSION


async def test_version_reads_the_configured_file(running_api: RunApi, tmp_path: Path) -> None:
    version_file = tmp_path / "version.json"
    version_file.write_text('{"commit": "abc", "version": "v9.9.9"}')
    settings = make_settings(version_file=version_file)
    async with running_api(settings) as custom:
        response = await custom.get("/__version__", headers={})
    assert response.json() == {"commit": "abc", "version": "v9.9.9"}


async def test_version_without_a_file_is_an_empty_object(
    running_api: RunApi, tmp_path: Path
) -> None:
    settings = make_settings(version_file=tmp_path / "missing.json")
    async with running_api(settings) as custom:
        response = await custom.get("/__version__", headers={})
    assert response.status_code == 200
    assert response.json() == {}


async def test_crash_with_credentials_is_a_500(api: Api) -> None:
    response = await api.get("/__crash__")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
    assert isinstance(api.log_fields()["exception"], RuntimeError)


# --- heartbeats --------------------------------------------------------------------------------------------


async def test_heartbeat_reports_the_database_round_trip(api: Api) -> None:
    response = await api.get("/__heartbeat__", headers={})
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["up"] is True
    assert body["database"]["acoustic"]["success"] is True  # the full block: test_acoustic_http.py
    assert isinstance(body["database"]["time_ms"], int)


async def test_heartbeat_is_503_when_the_database_is_down(api: Api) -> None:
    api.database_down()
    response = await api.get("/__heartbeat__", headers={})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["database"]["up"] is False
    assert response.json()["database"]["acoustic"] == {}


class SlowDatabaseHealth:
    """A database that answers after `delay` seconds (or never, with None)."""

    def __init__(self, delay: float | None) -> None:
        self.delay = delay

    async def ping(self) -> None:
        if self.delay is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(self.delay)

    async def estimate_contact_count(self) -> int:
        return 0


async def test_heartbeat_time_is_the_measured_round_trip_in_milliseconds(
    running_api: RunApi,
) -> None:
    async with running_api(database_health=SlowDatabaseHealth(0.03)) as slow:
        response = await slow.get("/__heartbeat__", headers={})
    assert response.status_code == 200
    assert 30 <= response.json()["database"]["time_ms"] < 1000


async def test_heartbeat_of_a_hanging_database_is_503_within_the_timeout(
    running_api: RunApi,
) -> None:
    settings = make_settings(db_pool_timeout_in_seconds=1)
    async with running_api(settings, database_health=SlowDatabaseHealth(None)) as hanging:
        response = await asyncio.wait_for(hanging.get("/__heartbeat__", headers={}), timeout=5)
    assert response.status_code == 503
    assert response.json()["database"]["up"] is False
    assert response.json()["database"]["time_ms"] >= 1000


@pytest.mark.parametrize("path", ["/__heartbeat__", "/__lbheartbeat__"])
async def test_heartbeats_answer_head_without_a_body(api: Api, path: str) -> None:
    response = await api.request("HEAD", path, headers={})
    assert response.status_code == 200
    assert response.content == b""


async def test_lbheartbeat_is_ok_without_the_database(api: Api) -> None:
    api.database_down()
    response = await api.get("/__lbheartbeat__", headers={})
    assert response.status_code == 200
    assert response.json() == {"status": "OK"}


# --- framework answers -------------------------------------------------------------------------------------


async def test_unknown_path_is_404_not_found(api: Api) -> None:
    response = await api.get("/nowhere", headers={})
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


async def test_missing_static_file_is_404_not_found(api: Api) -> None:
    response = await api.get("/static/nothing-here.js", headers={})
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


async def test_form_the_framework_cannot_parse_is_422(api: Api) -> None:
    response = await api.post(
        "/token", content=b"garbage", headers={"Content-Type": "multipart/form-data"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]


async def test_wrong_method_is_405_method_not_allowed(api: Api) -> None:
    response = await api.request("POST", "/__lbheartbeat__", headers={})
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/ctms/", "/ctms"),
        ("/ctms/?primary_email=a%40b.c", "/ctms?primary_email=a%40b.c"),
        ("/__heartbeat__/", "/__heartbeat__"),
        (
            "/identity/67e52c77-950f-4f28-accb-bb3ea1a2c51a/",
            "/identity/67e52c77-950f-4f28-accb-bb3ea1a2c51a",
        ),
    ],
)
async def test_trailing_slash_on_a_known_path_redirects_without_it(
    api: Api, path: str, location: str
) -> None:
    response = await api.get(path)
    assert response.status_code == 307
    assert response.headers["Location"] == location


async def test_trailing_slash_on_an_unknown_path_is_404(api: Api) -> None:
    response = await api.get("/nowhere/", headers={})
    assert response.status_code == 404


class UnreachableContacts:
    """A contact repository whose database cannot be reached."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> None:
            raise self.error

        return fail


class ContactsUnreachableUnitOfWork:
    """The storage's unit of work with its contact repository failing with `error` (the others work)."""

    contacts: ContactRepository
    api_clients: ApiClientRepository
    roles: RoleRepository
    erasures: ErasureAuditRepository

    def __init__(self, inner: UnitOfWork, error: Exception) -> None:
        self.inner = inner
        self.error = error

    async def __aenter__(self) -> Self:
        await self.inner.__aenter__()
        self.api_clients = self.inner.api_clients
        self.roles = self.inner.roles
        self.erasures = self.inner.erasures
        self.waitlist_rules = self.inner.waitlist_rules
        self.contacts = cast(ContactRepository, UnreachableContacts(self.error))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.inner.__aexit__(exc_type, exc, traceback)

    async def commit(self) -> None:
        await self.inner.commit()

    async def rollback(self) -> None:
        await self.inner.rollback()


class UnreachableUnitOfWork(ContactsUnreachableUnitOfWork):
    """A unit of work that cannot even be opened: the database is down."""

    async def __aenter__(self) -> Self:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError("refused"),
        TimeoutError("pool timeout"),
        OSError("Connect call failed"),
    ],
)
async def test_unreachable_database_during_a_request_is_503(
    running_api: RunApi, error: Exception
) -> None:
    async with running_api(
        wrap_uow=lambda inner: ContactsUnreachableUnitOfWork(inner, error)
    ) as broken:
        response = await broken.get("/ctms/67e52c77-950f-4f28-accb-bb3ea1a2c51a")
        assert response.status_code == 503
        assert response.json() == {"detail": "Service unavailable, try again later"}
        assert response.headers["retry-after"] == "5"  # Basket only retries a 503 that has it
        assert broken.log_fields()["client_allowed"] is True
        created = await broken.post("/ctms", json=sample("minimal"))
        assert created.status_code == 503
        assert created.headers["retry-after"] == "5"


async def test_unreachable_database_during_authentication_is_503(running_api: RunApi) -> None:
    async with running_api(
        wrap_uow=lambda inner: UnreachableUnitOfWork(inner, ConnectionError("down"))
    ) as broken:
        response = await broken.get("/identity/67e52c77-950f-4f28-accb-bb3ea1a2c51a")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert broken.log_fields()["client_id"] == "id_test"


async def test_unexpected_error_is_a_json_500(running_api: RunApi) -> None:
    async with running_api(
        wrap_uow=lambda inner: ContactsUnreachableUnitOfWork(inner, KeyError("bug"))
    ) as broken:
        response = await broken.get("/ctms/67e52c77-950f-4f28-accb-bb3ea1a2c51a")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}


async def test_oversized_body_announced_by_content_length_is_413(
    running_api: RunApi,
) -> None:
    async with running_api(make_settings(max_body_bytes=1000)) as small:
        response = await small.post("/ctms", content=b"{" + b" " * 2000 + b"}")
        assert response.status_code == 413
        assert response.json() == {"detail": "Request Entity Too Large"}
        token = await small.post("/token", data={"client_secret": "x" * 2000}, headers={})
        assert token.status_code == 413
