"""Token revocation, forged tokens and `last_access` over HTTP (issue #7, docs/contract.md §3.2)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from ctms_adapters.memory import ManualClock
from tests.http_harness import SECRET_KEY, Api, CheapArgon2Hasher, RunApi, make_settings

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
    the interval is over, and is refused as revoked after it (on the application's own clock)."""
    clock = ManualClock(datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    settings = make_settings(token_cache_seconds=CACHE_SECONDS)
    async with running_api(settings, clock=clock) as api:
        earlier = _token_issued_at(api, clock.now() - timedelta(seconds=30))
        assert (await api.get(CONTACTS, headers=_bearer(earlier))).status_code == 200
        await api.container.api_client_service().rotate_secret("id_test")
        clock.advance(timedelta(seconds=CACHE_SECONDS) - timedelta(microseconds=1))
        assert (await api.get(CONTACTS, headers=_bearer(earlier))).status_code == 200
        clock.advance(timedelta(microseconds=1))
        refused = await api.get(CONTACTS, headers=_bearer(earlier))
        assert refused.status_code == 401
        assert api.log_fields()["auth_fail"] == "Token revoked"


def _token_issued_at(api: Api, moment: datetime, *, credentials_version: int | None = None) -> str:
    token: str = api.container.token_codec().encode(
        "api_client:id_test",
        issued_at=moment,
        expires_at=moment + timedelta(minutes=5),
        credentials_version=credentials_version,
    )
    return token


# A moment with a fraction of a second: tokens minted in its second before and after it.
SAME_SECOND = datetime(2024, 5, 1, 12, 0, 0, 500_000, tzinfo=UTC)


@pytest.mark.parametrize("change", ["rotate-secret", "disable"])
async def test_every_token_granted_before_a_change_is_revoked_even_in_the_same_second(
    running_api: RunApi, change: str
) -> None:
    clock = ManualClock(SAME_SECOND - timedelta(milliseconds=300))
    async with running_api(make_settings(), clock=clock) as api:
        credentials = api.clients.enabled
        granted = await _grant_token(api, credentials.client_id, credentials.client_secret)
        legacy = _token_issued_at(api, clock.now())  # an older release's token: no version claim
        clock.set(SAME_SECOND)
        service = api.container.api_client_service()
        if change == "rotate-secret":
            credentials = await service.rotate_secret("id_test")
        else:
            await service.set_enabled("id_test", False)
            await service.set_enabled("id_test", True)
        clock.advance(timedelta(milliseconds=200))  # still the same second
        for token in (granted, legacy):
            refused = await api.get(CONTACTS, headers=_bearer(token))
            assert refused.status_code == 401, refused.text
            assert api.log_fields()["auth_fail"] == "Token revoked"
        fresh = await _grant_token(api, credentials.client_id, credentials.client_secret)
        assert (await api.get(CONTACTS, headers=_bearer(fresh))).status_code == 200


class GatedHasher(CheapArgon2Hasher):
    """Verifications wait at a gate the test opens: a secret rotation can complete meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.verifying = threading.Event()
        self.gate = threading.Event()

    def verify(self, hashed: str, secret: str) -> bool:
        self.verifying.set()
        assert self.gate.wait(timeout=30)
        return super().verify(hashed, secret)


async def test_a_token_granted_on_the_old_secret_after_a_rotation_completed_is_revoked(
    running_api: RunApi,
) -> None:
    """The grant checked the old secret; the rotation committed before the token was minted."""
    hasher = GatedHasher()
    async with running_api(make_settings(), password_hasher=hasher) as api:
        credentials = api.clients.enabled
        granting = asyncio.create_task(
            api.http.post(
                "/token",
                data={
                    "client_id": credentials.client_id,
                    "client_secret": credentials.client_secret,
                },
            )
        )
        await asyncio.to_thread(hasher.verifying.wait, 30)
        await api.container.api_client_service().rotate_secret("id_test")
        hasher.gate.set()
        response = await granting
        assert response.status_code == 200, response.text
        late = response.json()["access_token"]
        refused = await api.get(CONTACTS, headers=_bearer(late))
        assert refused.status_code == 401
        assert api.log_fields()["auth_fail"] == "Token revoked"


@pytest.mark.parametrize("name", ["id_te\x00st", "id_\ud800"])
async def test_a_signed_token_naming_an_impossible_client_id_is_401(api: Api, name: str) -> None:
    now = int(datetime.now(UTC).timestamp())
    # Signed by hand: JSON escapes the lone surrogate (`\\ud800`), which joserfc cannot encode.
    unsigned = _unsigned(
        {"sub": f"api_client:{name}", "exp": now + 300, "iat": now},
        {"alg": "HS256", "typ": "JWT"},
    ).rstrip(".")
    signature = hmac.new(SECRET_KEY.encode(), unsigned.encode(), hashlib.sha256).digest()
    token = unsigned + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    response = await api.get(CONTACTS, headers=_bearer(token))
    assert response.status_code == 401
    assert api.log_fields()["auth_fail"] == "No client record"
    assert "client_id" not in api.log_fields()


class RecordingHasher(CheapArgon2Hasher):
    def __init__(self) -> None:
        super().__init__()
        self.verified: list[str] = []

    def verify(self, hashed: str, secret: str) -> bool:
        self.verified.append(hashed)
        return super().verify(hashed, secret)


def _argon2_costs(phc: str) -> list[str]:
    """`$argon2id$v=19$m=..,t=..,p=..$salt$hash` → the algorithm, version and costs."""
    return phc.split("$")[1:4]


@pytest.mark.parametrize("client_id", ["id_nobody", "id_\x00", "id_disabled"])
async def test_an_unknown_or_disabled_client_costs_a_secret_verification(
    running_api: RunApi, client_id: str
) -> None:
    """Unknown ids are verified against a dummy hash of the same argon2 costs as real ones, so the
    answer's timing does not tell which ids exist."""
    hasher = RecordingHasher()
    async with running_api(make_settings(), password_hasher=hasher) as api:
        response = await api.http.post(
            "/token", data={"client_id": client_id, "client_secret": "secret_guess"}
        )
        assert response.status_code == 400
        assert len(hasher.verified) == 1
        real_hash = api.clients.records["id_test"].hashed_secret
        assert _argon2_costs(hasher.verified[0]) == _argon2_costs(real_hash)


async def test_a_remembered_token_still_logs_and_labels_its_client(running_api: RunApi) -> None:
    async with running_api(make_settings(token_cache_seconds=CACHE_SECONDS)) as api:
        token = _token_issued(api, timedelta(seconds=1))
        for _ in range(2):  # the second request is served from the remembered verification
            assert (await api.get(CONTACTS, headers=_bearer(token))).status_code == 200
            fields = api.log_fields()
            assert (fields["client_id"], fields["client_allowed"]) == ("id_test", True)
