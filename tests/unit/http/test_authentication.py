"""Bearer authentication and `POST /token` (docs/contract.md §2.2, §3.1)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ctms_adapters.security import JwtTokenCodec
from tests.http_harness import Api

GRANT_TYPE_ITEM = {
    "loc": ["body", "grant_type"],
    "msg": 'string does not match regex "^(client_credentials|refresh_token)$"',
    "type": "value_error.str.regex",
    "ctx": {"pattern": "^(client_credentials|refresh_token)$"},
}

PROTECTED_ROUTES = [
    ("GET", "/ctms/67e52c77-950f-4f28-accb-bb3ea1a2c51a"),
    ("GET", "/ctms?primary_email=a@example.com"),
    ("POST", "/ctms"),
    ("PUT", "/ctms/67e52c77-950f-4f28-accb-bb3ea1a2c51a"),
    ("PATCH", "/ctms/67e52c77-950f-4f28-accb-bb3ea1a2c51a"),
    ("DELETE", "/ctms/a@example.com"),
    ("GET", "/updates?start=2020-01-01"),
    ("GET", "/identities?primary_email=a@example.com"),
    ("GET", "/identity/67e52c77-950f-4f28-accb-bb3ea1a2c51a"),
    ("GET", "/__crash__"),
]


def basic(client_id: str, client_secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def jwt_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


# --- bearer authentication ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "url"), PROTECTED_ROUTES)
async def test_protected_route_without_authorization_is_401_not_authenticated(
    api: Api, method: str, url: str
) -> None:
    response = await api.request(method, url, headers={}, json={"email": {}})
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_non_bearer_scheme_is_not_authenticated(api: Api) -> None:
    response = await api.get(
        "/identity/67e52c77-950f-4f28-accb-bb3ea1a2c51a", headers=basic("id_test", "secret")
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


async def test_bearer_scheme_is_case_insensitive(api: Api) -> None:
    response = await api.get(
        "/ctms/67e52c77-950f-4f28-accb-bb3ea1a2c51a",
        headers={"Authorization": f"bEaReR {api.token()}"},
    )
    assert response.status_code == 404


async def test_successful_authentication_records_the_client(api: Api) -> None:
    await api.get("/ctms/67e52c77-950f-4f28-accb-bb3ea1a2c51a")
    fields = api.log_fields()
    assert fields["client_id"] == "id_test"
    assert fields["client_allowed"] is True
    assert "auth_fail" not in fields


async def test_token_signed_with_another_key_is_401(api: Api) -> None:
    now = datetime.now(UTC)
    foreign_token = JwtTokenCodec("another key").encode(
        "api_client:id_test", issued_at=now, expires_at=now + timedelta(minutes=5)
    )
    response = await api.get(
        "/identity/67e52c77-950f-4f28-accb-bb3ea1a2c51a",
        headers={"Authorization": f"Bearer {foreign_token}"},
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Could not validate credentials"}
    assert response.headers["WWW-Authenticate"] == "Bearer"
    fields = api.log_fields()
    assert fields["auth_fail"] == "No or bad token"
    assert fields["client_allowed"] is False
    assert "client_id" not in fields


async def test_garbage_bearer_token_is_401(api: Api) -> None:
    response = await api.get(
        "/identity/67e52c77-950f-4f28-accb-bb3ea1a2c51a",
        headers={"Authorization": "Bearer not.a.token"},
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Could not validate credentials"}


async def test_token_of_another_namespace_is_401_bad_namespace(api: Api) -> None:
    response = await api.get(
        "/identity/67e52c77-950f-4f28-accb-bb3ea1a2c51a", headers=api.auth(namespace="unknown")
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Could not validate credentials"}
    assert api.log_fields()["auth_fail"] == "Bad namespace"


async def test_token_of_unknown_client_is_401_and_logs_the_claimed_id(api: Api) -> None:
    response = await api.get(
        "/identity/67e52c77-950f-4f28-accb-bb3ea1a2c51a", headers=api.auth("id_nobody")
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Could not validate credentials"}
    fields = api.log_fields()
    assert fields["auth_fail"] == "No client record"
    assert fields["client_id"] == "id_nobody"
    assert fields["client_allowed"] is False


async def test_expired_token_is_401(api: Api) -> None:
    response = await api.get(
        "/identity/67e52c77-950f-4f28-accb-bb3ea1a2c51a",
        headers=api.auth(expires_in=timedelta(seconds=-5)),
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Could not validate credentials"}


async def test_token_of_disabled_client_is_400_api_client_disabled(api: Api) -> None:
    response = await api.get(
        "/identity/67e52c77-950f-4f28-accb-bb3ea1a2c51a", headers=api.auth("id_disabled")
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "API Client has been disabled"}
    fields = api.log_fields()
    assert fields["auth_fail"] == "Client disabled"
    assert fields["client_id"] == "id_disabled"


async def test_each_request_records_into_its_own_log_fields(api: Api) -> None:
    """Request-scoped context is never shared (docs/contract.md §11.2), even between concurrent requests."""
    await asyncio.gather(
        api.get("/identity/67e52c77-950f-4f28-accb-bb3ea1a2c51a"),
        api.get("/identity/67e52c77-950f-4f28-accb-bb3ea1a2c51a", headers=api.auth("id_nobody")),
    )
    first, second = api.log_fields(0), api.log_fields(1)
    assert first is not second
    assert {first["client_id"], second["client_id"]} == {"id_test", "id_nobody"}
    assert {first.get("auth_fail"), second.get("auth_fail")} == {None, "No client record"}


# --- POST /token -------------------------------------------------------------------------------------------


async def test_token_from_basic_header_is_an_hs256_jwt_for_the_client(api: Api) -> None:
    enabled = api.clients.enabled
    before = time.time()
    response = await api.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers=basic(enabled.client_id, enabled.client_secret),
    )
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["access_token", "token_type", "expires_in"]
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 300
    assert jwt_part(body["access_token"], 0) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt_part(body["access_token"], 1)
    assert claims["sub"] == "api_client:id_test"
    assert before + 300 - 2 <= claims["exp"] <= time.time() + 300 + 2
    fields = api.log_fields()
    assert fields["token_creds_from"] == "header"
    assert fields["client_id"] == "id_test"
    assert "token_fail" not in fields


async def test_token_from_form_credentials_authenticates_later_requests(api: Api) -> None:
    enabled = api.clients.enabled
    response = await api.post(
        "/token",
        data={"client_id": enabled.client_id, "client_secret": enabled.client_secret},
        headers={},
    )
    assert response.status_code == 200
    assert api.log_fields()["token_creds_from"] == "form"
    token = response.json()["access_token"]
    reading = await api.get(
        "/identity/67e52c77-950f-4f28-accb-bb3ea1a2c51a",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reading.status_code == 404


@pytest.mark.parametrize("grant_type", ["refresh_token", ""])
async def test_token_accepts_refresh_token_grant_and_no_grant_type(
    api: Api, grant_type: str
) -> None:
    enabled = api.clients.enabled
    form = {"client_id": enabled.client_id, "client_secret": enabled.client_secret}
    if grant_type:
        form |= {"grant_type": grant_type, "refresh_token": "ignored"}
    response = await api.post("/token", data=form, headers={})
    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"


async def test_token_accepts_a_multipart_form(api: Api) -> None:
    enabled = api.clients.enabled
    response = await api.post(
        "/token",
        files={
            "client_id": (None, enabled.client_id),
            "client_secret": (None, enabled.client_secret),
        },
        headers={},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "field",
    [
        b'Content-Disposition: form-data; name="client_id"\r\n\r\n\xed\xa0\x80',
        b'Content-Disposition: form-data; name="client_id"\r\n'
        b"Content-Type: text/plain; charset=no-such-charset\r\n\r\nid_test",
    ],
)
async def test_token_refuses_a_multipart_field_that_is_not_text_with_a_400(
    api: Api, field: bytes
) -> None:
    body = (
        b"--b\r\n" + field + b"\r\n"
        b'--b\r\nContent-Disposition: form-data; name="client_secret"\r\n\r\nx\r\n--b--\r\n'
    )
    response = await api.post(
        "/token", content=body, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid multipart/form-data"}


async def test_token_with_password_grant_is_422_with_the_regex_item(api: Api) -> None:
    enabled = api.clients.enabled
    response = await api.post(
        "/token",
        data={
            "grant_type": "password",
            "client_id": enabled.client_id,
            "client_secret": enabled.client_secret,
        },
        headers={},
    )
    assert response.status_code == 422
    assert response.json() == {"detail": [GRANT_TYPE_ITEM]}


async def test_form_credentials_win_over_the_basic_header(api: Api) -> None:
    enabled = api.clients.enabled
    response = await api.post(
        "/token",
        data={"client_id": enabled.client_id, "client_secret": enabled.client_secret},
        headers=basic("id_nobody", "wrong"),
    )
    assert response.status_code == 200
    assert api.log_fields()["token_creds_from"] == "form"


async def test_token_without_credentials_is_400(api: Api) -> None:
    response = await api.post("/token", data={"grant_type": "client_credentials"}, headers={})
    assert response.status_code == 400
    assert response.json() == {"detail": "Incorrect username or password"}
    fields = api.log_fields()
    assert fields["token_fail"] == "No credentials"
    assert "client_id" not in fields


@pytest.mark.parametrize(
    ("client_id", "client_secret", "reason"),
    [
        ("id_nobody", "secret_whatever", "No client record"),
        ("id_test", "secret_wrong", "Bad credentials"),
        ("id_disabled", "secret_whatever", "Client disabled"),
    ],
)
async def test_refused_credentials_are_400_with_the_reason_logged(
    api: Api, client_id: str, client_secret: str, reason: str
) -> None:
    response = await api.post("/token", headers=basic(client_id, client_secret))
    assert response.status_code == 400
    assert response.json() == {"detail": "Incorrect username or password"}
    fields = api.log_fields()
    assert fields["token_fail"] == reason
    assert fields["client_id"] == client_id


@pytest.mark.parametrize("credentials", ["%%%not-base64", base64.b64encode(b"no-colon").decode()])
async def test_malformed_basic_header_is_401_with_a_basic_challenge(
    api: Api, credentials: str
) -> None:
    response = await api.post("/token", headers={"Authorization": f"Basic {credentials}"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid authentication credentials"}
    assert response.headers["WWW-Authenticate"] == "Basic"
