"""`HttpxBrazeGateway` against the fake Braze over real HTTP (tests/support/fake_braze.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from ctms_adapters.braze import HttpxBrazeGateway
from ctms_core.domain.braze import BrazeConfiguration, BrazeUser, deletion_of, map_contact
from ctms_core.ports.braze import TrackResult
from tests.builders import make_contact, make_newsletter
from tests.support.fake_braze import FakeBraze, running_fake_braze

RESET_AT = 1_760_000_100
GROUP = "8a2b4c61-0f6e-4c7f-9d0e-3b1d7e5a9c21"
CONFIGURATION = BrazeConfiguration(newsletter_groups={"firefox-news": GROUP})


@dataclass
class Sleeper:
    """The gateway's clock and sleep: the clock stands still 7 s before `RESET_AT`; sleeps are
    recorded, not waited."""

    now: float = RESET_AT - 7
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeBraze]:
    with running_fake_braze() as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def gateway_for(
    fake: FakeBraze, client: httpx.AsyncClient, sleeper: Sleeper | None = None, **options: Any
) -> HttpxBrazeGateway:
    sleeper = sleeper or Sleeper()
    return HttpxBrazeGateway(
        client,
        base_url=fake.base_url,
        api_key=options.pop("api_key", fake.api_key),
        wall_clock=sleeper.clock,
        sleep=sleeper.sleep,
        **options,
    )


def users(count: int) -> list[BrazeUser]:
    return [
        map_contact(make_contact(email_id=uuid.UUID(int=n)), CONFIGURATION)
        for n in range(1, count + 1)
    ]


async def test_a_contact_is_created_patched_unsubscribed_and_erased_in_braze(
    fake: FakeBraze, client: httpx.AsyncClient
) -> None:
    gateway = gateway_for(fake, client)
    email_id = uuid.UUID("67e52c77-950f-4f28-accb-bb3ea1a2c51a")
    external_id = str(email_id)
    contact = make_contact(
        email_id=email_id,
        primary_email="ada@example.com",
        first_name="Ada",
        newsletters=(make_newsletter("firefox-news"),),
    )

    created = map_contact(contact, CONFIGURATION)
    assert await gateway.track([created]) == _succeeded(external_id)

    later = datetime(2024, 3, 5, 8, 30, tzinfo=UTC)
    patched_contact = make_contact(
        email_id=email_id,
        primary_email="ada@example.com",
        first_name="Augusta",
        update_timestamp=later,
        newsletters=(make_newsletter("firefox-news"),),
    )
    patched = map_contact(patched_contact, CONFIGURATION, previous_digests=created.digests)
    assert await gateway.track([patched]) == _succeeded(external_id)

    unsubscribed_contact = make_contact(
        email_id=email_id,
        primary_email="ada@example.com",
        first_name="Augusta",
        update_timestamp=later,
        has_opted_out_of_email=True,
        newsletters=(make_newsletter("firefox-news", subscribed=False),),
    )
    unsubscribed = map_contact(
        unsubscribed_contact, CONFIGURATION, previous_digests=patched.digests
    )
    assert await gateway.track([unsubscribed]) == _succeeded(external_id)

    # Braze received exactly the three documents, in order...
    assert fake.tracked_objects() == [
        created.attributes,
        patched.attributes,
        unsubscribed.attributes,
    ]
    assert set(patched.attributes) == {
        "external_id",
        "_update_existing_only",
        "first_name",
        "user_attributes_v1",
    }
    # ...and holds their merge.
    profile = fake.profile(external_id)
    assert profile is not None
    assert profile["email"] == "ada@example.com"
    assert profile["first_name"] == "Augusta"
    assert profile["email_subscribe"] == "unsubscribed"
    assert profile["subscription_groups"] == {GROUP: "unsubscribed"}

    result = await gateway.delete([deletion_of(unsubscribed_contact).external_id])

    assert result.deleted == (external_id,)
    assert fake.delete_requests == [[external_id]]
    assert fake.profile(external_id) is None
    assert fake.authorizations == [f"Bearer {fake.api_key}"] * 4


def _succeeded(*external_ids: str) -> TrackResult:
    return TrackResult(succeeded=external_ids, requests=1)


async def test_track_sends_75_users_per_request_and_delete_50(
    fake: FakeBraze, client: httpx.AsyncClient
) -> None:
    gateway = gateway_for(fake, client)
    batch = users(160)

    tracked = await gateway.track(batch)
    deleted = await gateway.delete([user.external_id for user in batch[:120]])

    assert sorted(len(request) for request in fake.track_requests) == [10, 75, 75]
    assert sorted(len(request) for request in fake.delete_requests) == [20, 50, 50]
    assert tracked.succeeded == tuple(user.external_id for user in batch)
    assert deleted.deleted == tuple(user.external_id for user in batch[:120])
    assert len(fake.profiles) == 40


async def test_per_user_errors_fail_only_those_users_with_a_redacted_reason(
    fake: FakeBraze, client: httpx.AsyncClient
) -> None:
    batch = users(100)
    rejected = {batch[3].external_id, batch[80].external_id}
    for external_id in rejected:
        fake.reject(external_id, "'email' bad@example.com is not a valid email")

    result = await gateway_for(fake, client).track(batch)

    assert {failure.external_id for failure in result.failed} == rejected
    assert {failure.kind for failure in result.failed} == {"rejected"}
    assert {failure.reason for failure in result.failed} == {
        "'email' <address> is not a valid email"
    }
    assert set(result.succeeded) == {user.external_id for user in batch} - rejected
    assert set(fake.profiles) == set(result.succeeded)


async def test_a_429_waits_for_the_reset_the_headers_give_then_succeeds(
    fake: FakeBraze, client: httpx.AsyncClient
) -> None:
    sleeper = Sleeper()
    fake.fail_next("429", reset_at=RESET_AT, endpoint="/users/track")

    result = await gateway_for(fake, client, sleeper).track(users(1))

    assert sleeper.slept == [7.0]
    assert result.succeeded == (users(1)[0].external_id,)
    assert result.requests == 2
    assert fake.faults_served == 1


async def test_a_429_on_delete_waits_for_the_reset_too(
    fake: FakeBraze, client: httpx.AsyncClient
) -> None:
    sleeper = Sleeper()
    fake.fail_next("429", reset_at=RESET_AT, endpoint="/users/delete")

    result = await gateway_for(fake, client, sleeper).delete(["a", "b"])

    assert sleeper.slept == [7.0]
    assert result.deleted == ("a", "b")
    assert fake.delete_requests == [["a", "b"]]


@pytest.mark.parametrize("kind", ["5xx", "not_json", "hang"])
async def test_5xx_timeout_and_non_json_fail_the_whole_batch_as_retryable(
    fake: FakeBraze, client: httpx.AsyncClient, kind: Any
) -> None:
    fake.hang_seconds = 5.0
    fake.fail_next(kind)
    batch = users(80)
    gateway = gateway_for(fake, client, timeout=0.3, max_concurrent_requests=1)

    result = await gateway.track(batch)

    assert {failure.kind for failure in result.failed} == {"unavailable"}
    assert [failure.external_id for failure in result.failed] == [
        user.external_id for user in batch[:75]
    ]
    assert result.succeeded == tuple(user.external_id for user in batch[75:])
    # Resending the failed batch is safe and completes it.
    again = await gateway.track(batch[:75])
    assert again.failed == ()
    assert len(fake.profiles) == 80


async def test_a_wrong_api_key_is_unauthorized_without_the_key_in_the_reason(
    fake: FakeBraze, client: httpx.AsyncClient
) -> None:
    result = await gateway_for(fake, client, api_key="not-the-key").track(users(2))

    assert {failure.kind for failure in result.failed} == {"unauthorized"}
    assert all("not-the-key" not in failure.reason for failure in result.failed)
    assert fake.profiles == {}


async def test_requests_in_flight_never_exceed_the_gateway_limit(
    fake: FakeBraze, client: httpx.AsyncClient
) -> None:
    fake.latency_s = 0.05
    batch = users(600)  # 8 track requests

    result = await gateway_for(fake, client, max_concurrent_requests=3).track(batch)

    assert len(result.succeeded) == 600
    assert len(fake.track_requests) == 8
    assert fake.max_in_flight <= 3
