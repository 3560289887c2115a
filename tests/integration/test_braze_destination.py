"""`BrazeDestination` end to end: the httpx gateway against the fake Braze over real HTTP, the mapping
and the attribute digests in PostgreSQL (docs/braze.md)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.braze import HttpxBrazeGateway
from ctms_adapters.postgres import (
    PostgresBrazeDigestStore,
    PostgresBrazeSubscriptionGroupRepository,
)
from ctms_core.domain.acoustic import AcousticDeletion
from ctms_core.domain.contact import Contact, Fxa
from ctms_core.ports.destinations import Delivery
from ctms_core.services.braze_destination import BrazeDestination
from tests.builders import DEFAULT_TIME, make_contact, make_newsletter, make_waitlist
from tests.support.fake_braze import FakeBraze, running_fake_braze

pytestmark = pytest.mark.integration

EMAIL_ID = uuid.UUID("67e52c77-950f-4f28-accb-bb3ea1a2c51a")
EXTERNAL_ID = str(EMAIL_ID)
NEWS_GROUP = "8a2b4c61-0f6e-4c7f-9d0e-3b1d7e5a9c21"
VPN_GROUP = "c3d5e7f9-1a2b-4c6d-8e0f-2a4c6e8b0d13"
RESET_AT = 1_760_000_100
CREATED = {"$time": DEFAULT_TIME.isoformat()}


@dataclass
class Sleeper:
    """The gateway's wall clock, 7 s before `RESET_AT`; sleeps recorded, not waited."""

    now: float = RESET_AT - 7
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@dataclass
class Setup:
    fake: FakeBraze
    sleeper: Sleeper
    digests: PostgresBrazeDigestStore
    destination: BrazeDestination


@pytest.fixture
def fake() -> Iterator[FakeBraze]:
    with running_fake_braze() as server:
        yield server


@pytest.fixture
async def setup(fake: FakeBraze, empty_database: AsyncEngine) -> AsyncIterator[Setup]:
    groups = PostgresBrazeSubscriptionGroupRepository(empty_database)
    await groups.add("newsletter", "firefox-news", NEWS_GROUP)
    await groups.add("waitlist", "vpn", VPN_GROUP)
    digests = PostgresBrazeDigestStore(empty_database)
    sleeper = Sleeper()
    async with httpx.AsyncClient() as client:
        gateway = HttpxBrazeGateway(
            client,
            base_url=fake.base_url,
            api_key=fake.api_key,
            wall_clock=sleeper.clock,
            sleep=sleeper.sleep,
        )
        yield Setup(fake, sleeper, digests, BrazeDestination(gateway, groups.load, digests))


def ada(**overrides: object) -> Contact:
    values: dict[str, object] = {
        "email_id": EMAIL_ID,
        "primary_email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "mailing_country": "gb",
        "email_lang": "en-GB",
        "double_opt_in": True,
        "fxa": Fxa(fxa_id="6eb6ed6ac3b64259968aa490c6c0b9df", first_service="sync"),
        "newsletters": (make_newsletter("firefox-news"), make_newsletter("unmapped-news")),
        "waitlists": (make_waitlist("vpn", fields={"geo": "fr"}),),
    }
    values.update(overrides)
    return make_contact(**values)  # type: ignore[arg-type]


def update(contact: Contact) -> Delivery:
    return Delivery(email_id=contact.email.email_id, contact=contact)


def erasure(email_id: uuid.UUID) -> Delivery:
    return Delivery(
        email_id=email_id, deletion=AcousticDeletion(email_id=email_id, primary_email="x@y.example")
    )


async def test_the_exact_documents_of_a_created_patched_unsubscribed_and_erased_contact(
    setup: Setup,
) -> None:
    fake = setup.fake

    created = await setup.destination.deliver([update(ada())])
    patched = await setup.destination.deliver([update(ada(first_name="Augusta"))])
    unsubscribed = await setup.destination.deliver(
        [
            update(
                ada(
                    first_name="Augusta",
                    has_opted_out_of_email=True,
                    newsletters=(
                        make_newsletter("firefox-news", subscribed=False),
                        make_newsletter("unmapped-news"),
                    ),
                )
            )
        ]
    )
    erased = await setup.destination.deliver([erasure(EMAIL_ID)])

    assert [r.failed for r in (created, patched, unsubscribed, erased)] == [()] * 4
    assert fake.tracked_objects() == [
        {
            "external_id": EXTERNAL_ID,
            "_update_existing_only": False,
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "country": "GB",
            "language": "en",
            "email_subscribe": "opted_in",
            "user_attributes_v1": [
                {
                    "basket_token": None,
                    "created_at": CREATED,
                    "updated_at": CREATED,
                    "email_lang": "en-GB",
                    "mailing_country": "gb",
                    "email_format": "H",
                    "double_opt_in": True,
                    "has_opted_out_of_email": False,
                    "unsub_reason": None,
                    "sfdc_id": None,
                    "has_fxa": True,
                    "fxa_id": "6eb6ed6ac3b64259968aa490c6c0b9df",
                    "fxa_primary_email": None,
                    "fxa_created_at": None,
                    "fxa_lang": None,
                    "fxa_first_service": "sync",
                    "fxa_deleted": False,
                }
            ],
            "waitlists_v1": [
                {
                    "name": "vpn",
                    "source": None,
                    "subscribed": True,
                    "unsub_reason": None,
                    "fields": {"geo": "fr"},
                    "created_at": CREATED,
                    "updated_at": CREATED,
                }
            ],
            "subscription_groups": [
                {"subscription_group_id": NEWS_GROUP, "subscription_state": "subscribed"},
                {"subscription_group_id": VPN_GROUP, "subscription_state": "subscribed"},
            ],
        },
        {"external_id": EXTERNAL_ID, "_update_existing_only": True, "first_name": "Augusta"},
        {
            "external_id": EXTERNAL_ID,
            "_update_existing_only": True,
            "email_subscribe": "unsubscribed",
            "user_attributes_v1": [
                {
                    "basket_token": None,
                    "created_at": CREATED,
                    "updated_at": CREATED,
                    "email_lang": "en-GB",
                    "mailing_country": "gb",
                    "email_format": "H",
                    "double_opt_in": True,
                    "has_opted_out_of_email": True,
                    "unsub_reason": None,
                    "sfdc_id": None,
                    "has_fxa": True,
                    "fxa_id": "6eb6ed6ac3b64259968aa490c6c0b9df",
                    "fxa_primary_email": None,
                    "fxa_created_at": None,
                    "fxa_lang": None,
                    "fxa_first_service": "sync",
                    "fxa_deleted": False,
                }
            ],
            "subscription_groups": [
                {"subscription_group_id": NEWS_GROUP, "subscription_state": "unsubscribed"}
            ],
        },
    ]
    assert fake.delete_requests == [[EXTERNAL_ID]]
    assert fake.profile(EXTERNAL_ID) is None
    assert await setup.digests.load([EMAIL_ID]) == {}  # forgotten with the user


async def test_an_unchanged_contact_costs_no_request_after_a_restart(setup: Setup) -> None:
    """The digests live in PostgreSQL: a new destination (another worker) knows what Braze holds."""
    await setup.destination.deliver([update(ada())])
    stored = await setup.digests.load([EMAIL_ID])

    report = await setup.destination.deliver([update(ada())])

    assert report.requests == 0 and report.failed == ()
    assert len(setup.fake.track_requests) == 1
    assert set(stored[EMAIL_ID]) >= {"email", "subscription_groups." + NEWS_GROUP}


async def test_a_user_braze_lists_as_an_error_fails_alone(setup: Setup) -> None:
    contacts = [
        ada(email_id=uuid.UUID(int=n), primary_email=f"p{n}@example.com") for n in (1, 2, 3)
    ]
    setup.fake.reject(str(uuid.UUID(int=2)), "'email' is not a valid email (p2@example.com)")

    report = await setup.destination.deliver([update(c) for c in contacts])

    [failure] = report.failed
    assert (failure.email_id, failure.kind) == (uuid.UUID(int=2), "rejected")
    assert "p2@example.com" not in failure.reason
    assert len(setup.fake.track_requests) == 1
    assert set(setup.fake.profiles) == {str(uuid.UUID(int=1)), str(uuid.UUID(int=3))}
    assert set(await setup.digests.load([uuid.UUID(int=n) for n in (1, 2, 3)])) == {
        uuid.UUID(int=1),
        uuid.UUID(int=3),
    }


async def test_a_request_whose_every_user_braze_refuses_fails_each_as_rejected(
    setup: Setup,
) -> None:
    setup.fake.reject(EXTERNAL_ID, "'email' is not a valid email")

    report = await setup.destination.deliver([update(ada())])

    [failure] = report.failed
    assert (failure.email_id, failure.kind) == (EMAIL_ID, "rejected")
    assert "'email' is not a valid email" in failure.reason
    assert setup.fake.profiles == {}


async def test_a_429_waits_for_the_reset_then_delivers(setup: Setup) -> None:
    setup.fake.fail_next("429", reset_at=RESET_AT)

    report = await setup.destination.deliver([update(ada())])

    assert report.failed == ()
    assert setup.sleeper.slept == [7.0]
    assert setup.fake.profile(EXTERNAL_ID) is not None
    assert len(setup.fake.track_requests) == 1  # the 429 is not a received request


async def test_a_429_on_an_erasure_waits_for_the_reset_then_deletes(setup: Setup) -> None:
    setup.fake.fail_next("429", reset_at=RESET_AT)

    report = await setup.destination.deliver([erasure(uuid.UUID(int=7))])

    assert report.failed == ()
    assert setup.sleeper.slept == [7.0]
    assert setup.fake.deleted_ids() == [str(uuid.UUID(int=7))]


@pytest.mark.parametrize("kind", ["5xx", "not_json"])
async def test_no_usable_answer_is_an_outage_and_the_retry_sends_everything(
    setup: Setup, kind: str
) -> None:
    setup.fake.fail_next(kind)  # type: ignore[arg-type]

    failed = await setup.destination.deliver([update(ada())])
    retried = await setup.destination.deliver([update(ada())])

    assert [(f.email_id, f.kind) for f in failed.failed] == [(EMAIL_ID, "outage")]
    assert retried.failed == ()
    [sent] = setup.fake.tracked_objects()
    assert sent["_update_existing_only"] is False and sent["email"] == "ada@example.com"
