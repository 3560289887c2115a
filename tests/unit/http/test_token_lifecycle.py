"""Token revocation, forged tokens and `last_access` over HTTP (issue #7, SPEC §7)."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta

from tests.http_harness import Api, RunApi, make_settings

CONTACTS = "/ctms?primary_email=nobody@example.com"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token_issued(api: Api, ago: timedelta, client_id: str = "id_test") -> str:
    now = datetime.now(UTC)
    token: str = api.container.token_codec().encode(
        f"api_client:{client_id}", issued_at=now - ago, expires_at=now + timedelta(minutes=5)
    )
    return token


def _unsigned(claims: dict[str, object], header: dict[str, str]) -> str:
    def part(value: dict[str, object] | dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}."


async def _grant_token(api: Api, client_id: str, secret: str) -> str:
    response = await api.http.post("/token", data={"client_id": client_id, "client_secret": secret})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def test_rotating_the_secret_revokes_earlier_tokens(api: Api) -> None:
    earlier = _token_issued(api, timedelta(seconds=30))
    assert (await api.get(CONTACTS, headers=_bearer(earlier))).status_code == 200
    rotated = await api.container.api_client_service().rotate_secret("id_test")
    refused = await api.get(CONTACTS, headers=_bearer(earlier))
    assert refused.status_code == 401
    assert refused.json() == {"detail": "Could not validate credentials"}
    assert api.log_fields()["auth_fail"] == "Token revoked"
    fresh = await _grant_token(api, rotated.client_id, rotated.client_secret)
    assert (await api.get(CONTACTS, headers=_bearer(fresh))).status_code == 200


async def test_disabling_refuses_and_re_enabling_does_not_revive_earlier_tokens(api: Api) -> None:
    earlier = _token_issued(api, timedelta(seconds=30))
    service = api.container.api_client_service()
    await service.set_enabled("id_test", False)
    disabled = await api.get(CONTACTS, headers=_bearer(earlier))
    assert disabled.status_code == 400
    assert disabled.json() == {"detail": "API Client has been disabled"}
    await service.set_enabled("id_test", True)
    assert (await api.get(CONTACTS, headers=_bearer(earlier))).status_code == 401
    credentials = api.clients.enabled
    fresh = await _grant_token(api, credentials.client_id, credentials.client_secret)
    assert (await api.get(CONTACTS, headers=_bearer(fresh))).status_code == 200


async def test_unsigned_alg_none_token_is_401(api: Api) -> None:
    now = int(datetime.now(UTC).timestamp())
    forged = _unsigned(
        {"sub": "api_client:id_test", "exp": now + 300, "iat": now},
        {"alg": "none", "typ": "JWT"},
    )
    response = await api.get(CONTACTS, headers=_bearer(forged))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_token_signed_with_another_algorithm_is_401(api: Api) -> None:
    import hashlib
    import hmac

    now = int(datetime.now(UTC).timestamp())
    header_and_claims = _unsigned(
        {"sub": "api_client:id_test", "exp": now + 300, "iat": now},
        {"alg": "HS512", "typ": "JWT"},
    ).rstrip(".")
    signature = hmac.new(
        b"test-secret-key-for-the-http-tier", header_and_claims.encode(), hashlib.sha512
    ).digest()
    forged = header_and_claims + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    assert (await api.get(CONTACTS, headers=_bearer(forged))).status_code == 401


async def test_an_authenticated_read_records_last_access(api: Api) -> None:
    service = api.container.api_client_service()
    before = datetime.now(UTC)
    assert (await api.get(CONTACTS)).status_code == 200
    client = await service.get("id_test")
    assert client.last_access is not None
    assert client.last_access >= before - timedelta(seconds=1)


CACHE_SECONDS = 0.5


async def test_revocation_reaches_a_remembered_token_within_the_cache_interval(
    running_api: RunApi,
) -> None:
    """With `CTMS_TOKEN_CACHE_SECONDS`, a token verified moments before a rotation keeps working until
    the interval is over, and is refused as revoked after it."""
    async with running_api(make_settings(token_cache_seconds=CACHE_SECONDS)) as api:
        earlier = _token_issued(api, timedelta(seconds=30))
        assert (await api.get(CONTACTS, headers=_bearer(earlier))).status_code == 200
        await api.container.api_client_service().rotate_secret("id_test")
        assert (await api.get(CONTACTS, headers=_bearer(earlier))).status_code == 200
        await asyncio.sleep(CACHE_SECONDS + 0.1)
        refused = await api.get(CONTACTS, headers=_bearer(earlier))
        assert refused.status_code == 401
        assert api.log_fields()["auth_fail"] == "Token revoked"


async def test_a_remembered_token_still_logs_and_labels_its_client(running_api: RunApi) -> None:
    async with running_api(make_settings(token_cache_seconds=CACHE_SECONDS)) as api:
        token = _token_issued(api, timedelta(seconds=1))
        for _ in range(2):  # the second request is served from the remembered verification
            assert (await api.get(CONTACTS, headers=_bearer(token))).status_code == 200
            fields = api.log_fields()
            assert (fields["client_id"], fields["client_allowed"]) == ("id_test", True)
