"""Token issuing, bearer authentication, revocation and last-access tracking (docs/contract.md §2.2, §3.1, §3.2)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from ctms_adapters.memory import ManualClock
from ctms_adapters.security import JwtTokenCodec
from ctms_core.domain.errors import (
    AuthenticationError,
    BadRequestError,
    ClientDisabledError,
    TokenRequestRejectedError,
)
from ctms_core.ports.repositories import UnitOfWork
from ctms_core.services.api_clients import (
    ApiClientExistsError,
    ApiClientNotFoundError,
    ApiClientService,
)
from ctms_core.services.auth import AuthService
from tests.doubles import PlainHasher

LIFETIME = timedelta(hours=1)


@pytest.fixture
def codec() -> JwtTokenCodec:
    return JwtTokenCodec("unit-test-key")


@pytest.fixture
def clients(uow_factory: Callable[[], UnitOfWork], clock: ManualClock) -> ApiClientService:
    return ApiClientService(uow_factory, PlainHasher(), clock)


@pytest.fixture
def auth(
    uow_factory: Callable[[], UnitOfWork], clock: ManualClock, codec: JwtTokenCodec
) -> AuthService:
    return AuthService(uow_factory, PlainHasher(), codec, clock, LIFETIME)


async def test_valid_credentials_get_a_bearer_token(
    auth: AuthService, clients: ApiClientService
) -> None:
    credentials = await clients.create("basket", "basket@example.com")
    assert credentials.client_id == "id_basket"
    assert credentials.client_secret.startswith("secret_") and len(credentials.client_secret) == 50
    issued = await auth.issue_token(credentials.client_id, credentials.client_secret)
    assert (issued.token_type, issued.expires_in) == ("bearer", 3600)
    client = await auth.authenticate(issued.access_token)
    assert client.client_id == "id_basket"


@pytest.mark.parametrize(
    ("client_id", "secret", "reason"),
    [
        (None, None, "No credentials"),
        ("id_basket", "", "No credentials"),
        ("id_nobody", "secret", "No client record"),
        ("id_basket", "wrong", "Bad credentials"),
    ],
)
async def test_bad_token_requests_are_refused_alike(
    auth: AuthService,
    clients: ApiClientService,
    client_id: str | None,
    secret: str | None,
    reason: str,
) -> None:
    await clients.create("basket", "basket@example.com")
    with pytest.raises(TokenRequestRejectedError) as raised:
        await auth.issue_token(client_id, secret)
    assert raised.value.reason == reason
    assert raised.value.detail == "Incorrect username or password"


async def test_disabled_client_gets_no_token_and_its_tokens_stop_working(
    auth: AuthService, clients: ApiClientService
) -> None:
    credentials = await clients.create("basket", "basket@example.com")
    token = (await auth.issue_token(credentials.client_id, credentials.client_secret)).access_token
    assert await clients.set_enabled("id_basket", False)
    with pytest.raises(TokenRequestRejectedError) as raised:
        await auth.issue_token(credentials.client_id, credentials.client_secret)
    assert raised.value.reason == "Client disabled"
    with pytest.raises(ClientDisabledError) as disabled:
        await auth.authenticate(token)
    assert disabled.value.detail == "API Client has been disabled"


async def test_re_enabled_client_does_not_revive_tokens_issued_before_disabling(
    auth: AuthService, clients: ApiClientService, clock: ManualClock
) -> None:
    credentials = await clients.create("basket", "basket@example.com")
    old = (await auth.issue_token(credentials.client_id, credentials.client_secret)).access_token
    clock.advance(timedelta(seconds=5))
    await clients.set_enabled("id_basket", False)
    await clients.set_enabled("id_basket", True)
    with pytest.raises(AuthenticationError) as raised:
        await auth.authenticate(old)
    assert raised.value.reason == "Token revoked"


async def test_rotating_the_secret_revokes_older_tokens_only(
    auth: AuthService, clients: ApiClientService, clock: ManualClock
) -> None:
    credentials = await clients.create("basket", "basket@example.com")
    old = (await auth.issue_token(credentials.client_id, credentials.client_secret)).access_token
    clock.advance(timedelta(seconds=5))
    rotated = await clients.rotate_secret("basket")
    with pytest.raises(AuthenticationError) as raised:
        await auth.authenticate(old)
    assert raised.value.reason == "Token revoked"
    with pytest.raises(TokenRequestRejectedError):
        await auth.issue_token(credentials.client_id, credentials.client_secret)
    new = (await auth.issue_token(rotated.client_id, rotated.client_secret)).access_token
    assert (await auth.authenticate(new)).client_id == "id_basket"


async def test_token_minted_in_the_same_second_as_a_rotation_is_valid(
    auth: AuthService, clients: ApiClientService, clock: ManualClock
) -> None:
    clock.set(datetime(2024, 1, 1, 12, 0, 0, 900000, tzinfo=UTC))
    await clients.create("basket", "basket@example.com")
    rotated = await clients.rotate_secret("basket")
    token = (await auth.issue_token(rotated.client_id, rotated.client_secret)).access_token
    assert (await auth.authenticate(token)).client_id == "id_basket"


async def test_v3_token_without_iat_stays_valid_unless_credentials_changed_since(
    auth: AuthService, clients: ApiClientService, clock: ManualClock, codec: JwtTokenCodec
) -> None:
    import base64
    import hashlib
    import hmac
    import json

    def v3_token(expires_at: datetime) -> str:
        def part(data: dict[str, object]) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        signing_input = (
            part({"alg": "HS256", "typ": "JWT"})
            + "."
            + part({"sub": "api_client:id_basket", "exp": int(expires_at.timestamp())})
        )
        signature = hmac.new(b"unit-test-key", signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()

    await clients.create("basket", "basket@example.com")
    clock.advance(LIFETIME)
    token = v3_token(clock.now() + timedelta(minutes=30))  # issued half an hour ago, by v3.3
    assert (await auth.authenticate(token)).client_id == "id_basket"
    clock.advance(timedelta(minutes=1))
    await clients.rotate_secret("basket")
    with pytest.raises(AuthenticationError):
        await auth.authenticate(token)


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        ("api_client", "No or bad token"),
        ("unknown:id_basket", "Bad namespace"),
        ("api_client:id_other", "No client record"),
    ],
)
async def test_bearer_subjects_are_checked(
    auth: AuthService,
    clients: ApiClientService,
    codec: JwtTokenCodec,
    clock: ManualClock,
    subject: str,
    reason: str,
) -> None:
    await clients.create("basket", "basket@example.com")
    now = clock.now()
    token = codec.encode(subject, issued_at=now, expires_at=now + LIFETIME)
    with pytest.raises(AuthenticationError) as raised:
        await auth.authenticate(token)
    assert raised.value.reason == reason
    assert raised.value.detail == "Could not validate credentials"


async def test_expired_and_foreign_tokens_are_refused(
    auth: AuthService, clients: ApiClientService, clock: ManualClock
) -> None:
    credentials = await clients.create("basket", "basket@example.com")
    token = (await auth.issue_token(credentials.client_id, credentials.client_secret)).access_token
    clock.advance(LIFETIME + timedelta(seconds=1))
    with pytest.raises(AuthenticationError) as raised:
        await auth.authenticate(token)
    assert raised.value.reason == "No or bad token"
    foreign = JwtTokenCodec("another-key").encode(
        "api_client:id_basket", issued_at=clock.now(), expires_at=clock.now() + LIFETIME
    )
    with pytest.raises(AuthenticationError):
        await auth.authenticate(foreign)
    assert auth.client_id_of("garbage") is None


async def test_client_id_of_reads_the_subject_for_logs(
    auth: AuthService, codec: JwtTokenCodec, clock: ManualClock
) -> None:
    now = clock.now()
    assert (
        auth.client_id_of(codec.encode("api_client:id_x", issued_at=now, expires_at=now + LIFETIME))
        == "id_x"
    )
    assert (
        auth.client_id_of(codec.encode("other:id_x", issued_at=now, expires_at=now + LIFETIME))
        is None
    )


async def test_last_access_is_written_at_most_once_a_minute(
    auth: AuthService, clients: ApiClientService, clock: ManualClock
) -> None:
    credentials = await clients.create("basket", "basket@example.com")
    token = (await auth.issue_token(credentials.client_id, credentials.client_secret)).access_token
    first_use = clock.now()
    await auth.authenticate(token)
    assert (await clients.get("id_basket")).last_access == first_use
    clock.advance(timedelta(seconds=30))
    await auth.authenticate(token)
    assert (await clients.get("id_basket")).last_access == first_use
    clock.advance(timedelta(seconds=31))
    await auth.authenticate(token)
    assert (await clients.get("id_basket")).last_access == clock.now()


async def test_client_administration_rules(clients: ApiClientService) -> None:
    with pytest.raises(BadRequestError):
        await clients.create("bad name!", "x@example.com")
    with pytest.raises(BadRequestError):
        await clients.create("good", "not-an-email")
    await clients.create("id_already_prefixed", "x@example.com")
    with pytest.raises(ApiClientExistsError):
        await clients.create("already_prefixed", "y@example.com")
    assert [c.client_id for c in await clients.list()] == ["id_already_prefixed"]
    assert not await clients.set_enabled("already_prefixed", True)  # no change
    assert await clients.set_email("already_prefixed", "z@example.com")
    assert (await clients.get("id_already_prefixed")).email == "z@example.com"


async def test_a_client_recreated_under_the_same_name_refuses_its_predecessors_tokens(
    auth: AuthService, clients: ApiClientService, clock: ManualClock
) -> None:
    first = await clients.create("basket", "basket@example.com")
    old = (await auth.issue_token(first.client_id, first.client_secret)).access_token
    await clients.delete("basket")
    clock.advance(timedelta(seconds=1))
    second = await clients.create("basket", "basket@example.com")
    with pytest.raises(AuthenticationError) as raised:
        await auth.authenticate(old)
    assert raised.value.reason == "Token revoked"
    new = (await auth.issue_token(second.client_id, second.client_secret)).access_token
    assert (await auth.authenticate(new)).client_id == "id_basket"


async def test_a_deleted_client_gets_no_token_and_its_tokens_stop_working(
    auth: AuthService, clients: ApiClientService
) -> None:
    credentials = await clients.create("basket", "basket@example.com")
    token = (await auth.issue_token(credentials.client_id, credentials.client_secret)).access_token
    deleted = await clients.delete("basket")
    assert deleted.client_id == "id_basket"
    with pytest.raises(AuthenticationError) as raised:
        await auth.authenticate(token)
    assert raised.value.reason == "No client record"
    with pytest.raises(TokenRequestRejectedError):
        await auth.issue_token(credentials.client_id, credentials.client_secret)
    with pytest.raises(ApiClientNotFoundError):
        await clients.delete("basket")


async def test_a_changed_email_keeps_the_credentials_valid(
    auth: AuthService, clients: ApiClientService
) -> None:
    credentials = await clients.create("basket", "basket@example.com")
    token = (await auth.issue_token(credentials.client_id, credentials.client_secret)).access_token
    assert await clients.set_email("basket", "owner@example.com")
    assert not await clients.set_email("id_basket", "owner@example.com")
    assert (await auth.authenticate(token)).email == "owner@example.com"
    with pytest.raises(BadRequestError):
        await clients.set_email("basket", "not-an-email")


# --- verified tokens are trusted for `recheck_interval` (CTMS_TOKEN_CACHE_SECONDS) -----------------


async def basket_token(auth: AuthService, clients: ApiClientService) -> str:
    """A token of a new `basket` client."""
    credentials = await clients.create("basket", "basket@example.com")
    return (await auth.issue_token(credentials.client_id, credentials.client_secret)).access_token


RECHECK = timedelta(seconds=1)


class CountingUnitOfWorkFactory:
    """Counts the units of work opened: each one is a pooled connection on PostgreSQL."""

    def __init__(self, factory: Callable[[], UnitOfWork]) -> None:
        self._factory = factory
        self.opened = 0

    def __call__(self) -> UnitOfWork:
        self.opened += 1
        return self._factory()


@pytest.fixture
def counting_uow_factory(uow_factory: Callable[[], UnitOfWork]) -> CountingUnitOfWorkFactory:
    return CountingUnitOfWorkFactory(uow_factory)


@pytest.fixture
def caching_auth(
    counting_uow_factory: CountingUnitOfWorkFactory, clock: ManualClock, codec: JwtTokenCodec
) -> AuthService:
    return AuthService(
        counting_uow_factory, PlainHasher(), codec, clock, LIFETIME, recheck_interval=RECHECK
    )


async def test_a_verified_token_is_served_without_reading_the_client_again_within_the_interval(
    caching_auth: AuthService,
    clients: ApiClientService,
    clock: ManualClock,
    counting_uow_factory: CountingUnitOfWorkFactory,
) -> None:
    token = await basket_token(caching_auth, clients)
    await caching_auth.authenticate(token)
    opened = counting_uow_factory.opened
    clock.advance(RECHECK / 2)
    assert (await caching_auth.authenticate(token)).client_id == "id_basket"
    assert counting_uow_factory.opened == opened
    clock.advance(RECHECK / 2)
    assert (await caching_auth.authenticate(token)).client_id == "id_basket"
    assert counting_uow_factory.opened == opened + 1


async def test_a_rotation_revokes_a_remembered_token_once_the_interval_has_passed(
    caching_auth: AuthService, clients: ApiClientService, clock: ManualClock
) -> None:
    old = await basket_token(caching_auth, clients)
    clock.advance(timedelta(seconds=5))
    await caching_auth.authenticate(old)
    await clients.rotate_secret("basket")
    assert (await caching_auth.authenticate(old)).client_id == "id_basket"  # within the interval
    clock.advance(RECHECK)
    with pytest.raises(AuthenticationError) as raised:
        await caching_auth.authenticate(old)
    assert raised.value.reason == "Token revoked"


async def test_disabling_a_client_refuses_its_remembered_token_once_the_interval_has_passed(
    caching_auth: AuthService, clients: ApiClientService, clock: ManualClock
) -> None:
    token = await basket_token(caching_auth, clients)
    await caching_auth.authenticate(token)
    await clients.set_enabled("id_basket", False)
    clock.advance(RECHECK)
    with pytest.raises((AuthenticationError, ClientDisabledError)):
        await caching_auth.authenticate(token)


async def test_a_remembered_token_is_never_accepted_past_its_expiry(
    counting_uow_factory: CountingUnitOfWorkFactory,
    clients: ApiClientService,
    clock: ManualClock,
    codec: JwtTokenCodec,
) -> None:
    auth = AuthService(
        counting_uow_factory,
        PlainHasher(),
        codec,
        clock,
        timedelta(seconds=10),
        recheck_interval=timedelta(minutes=5),
    )
    token = await basket_token(auth, clients)
    await auth.authenticate(token)
    clock.advance(timedelta(seconds=10))
    with pytest.raises(AuthenticationError) as raised:
        await auth.authenticate(token)
    assert raised.value.reason == "No or bad token"


async def test_refused_tokens_are_not_remembered(
    caching_auth: AuthService,
    clients: ApiClientService,
    codec: JwtTokenCodec,
    clock: ManualClock,
    counting_uow_factory: CountingUnitOfWorkFactory,
) -> None:
    token = codec.encode(
        "api_client:id_basket", issued_at=clock.now(), expires_at=clock.now() + LIFETIME
    )
    with pytest.raises(AuthenticationError):
        await caching_auth.authenticate(token)  # no such client yet
    await clients.create("basket", "basket@example.com")
    assert (await caching_auth.authenticate(token)).client_id == "id_basket"
