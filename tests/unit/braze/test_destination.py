"""`BrazeDestination` on the memory adapters and an in-memory Braze gateway (docs/braze.md)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from ctms_adapters.memory import InMemoryBrazeDigestStore, InMemoryBrazeSubscriptionGroupRepository
from ctms_core.domain.acoustic import AcousticDeletion
from ctms_core.domain.braze import BrazeUser
from ctms_core.domain.contact import Contact
from ctms_core.ports.braze import (
    BrazeFailure,
    BrazeFailureKind,
    DeleteResult,
    TrackResult,
)
from ctms_core.ports.destinations import Delivery, DeliveryFailure
from ctms_core.services.braze_destination import BrazeDestination
from tests.builders import DEFAULT_TIME, make_contact, make_newsletter

GROUP = "8a2b4c61-0f6e-4c7f-9d0e-3b1d7e5a9c21"


@dataclass
class InMemoryBraze:
    """A `BrazeGateway` that records what it is given; `fail[external_id]` fails that user with a
    kind; `fail_all` fails every user of every call."""

    tracked: list[list[dict[str, object]]] = field(default_factory=list)
    deleted: list[list[str]] = field(default_factory=list)
    fail: dict[str, BrazeFailureKind] = field(default_factory=dict)
    fail_all: BrazeFailureKind | None = None

    def _failure(self, external_id: str) -> BrazeFailure | None:
        kind = self.fail_all or self.fail.get(external_id)
        if kind is None:
            return None
        return BrazeFailure(external_id=external_id, kind=kind, reason=f"{kind} by the test")

    async def track(self, users: Sequence[BrazeUser]) -> TrackResult:
        self.tracked.append([user.attributes for user in users])
        failed = [f for user in users if (f := self._failure(user.external_id))]
        failed_ids = {f.external_id for f in failed}
        return TrackResult(
            succeeded=tuple(u.external_id for u in users if u.external_id not in failed_ids),
            failed=tuple(failed),
            requests=(len(users) + 74) // 75,
        )

    async def delete(self, external_ids: Sequence[str]) -> DeleteResult:
        self.deleted.append(list(external_ids))
        failed = [f for eid in external_ids if (f := self._failure(eid))]
        failed_ids = {f.external_id for f in failed}
        return DeleteResult(
            deleted=tuple(eid for eid in external_ids if eid not in failed_ids),
            failed=tuple(failed),
            requests=(len(external_ids) + 49) // 50,
        )


@dataclass
class World:
    braze: InMemoryBraze
    digests: InMemoryBrazeDigestStore
    groups: InMemoryBrazeSubscriptionGroupRepository
    destination: BrazeDestination


@pytest.fixture
async def world() -> World:
    braze = InMemoryBraze()
    digests = InMemoryBrazeDigestStore()
    groups = InMemoryBrazeSubscriptionGroupRepository()
    await groups.add("newsletter", "firefox-news", GROUP)
    return World(braze, digests, groups, BrazeDestination(braze, groups.load, digests))


def contact(number: int, **overrides: object) -> Contact:
    values: dict[str, object] = {
        "email_id": uuid.UUID(int=number),
        "primary_email": f"person{number}@example.com",
        "newsletters": (make_newsletter("firefox-news"),),
    }
    values.update(overrides)
    return make_contact(**values)  # type: ignore[arg-type]


def update(person: Contact) -> Delivery:
    return Delivery(email_id=person.email.email_id, contact=person)


def erasure(number: int) -> Delivery:
    return Delivery(
        email_id=uuid.UUID(int=number),
        deletion=AcousticDeletion(
            email_id=uuid.UUID(int=number), primary_email=f"person{number}@example.com"
        ),
    )


def ids(failed: Sequence[DeliveryFailure]) -> list[uuid.UUID]:
    return [failure.email_id for failure in failed]


async def test_a_created_contact_is_sent_in_full_and_an_unchanged_one_not_at_all(
    world: World,
) -> None:
    person = contact(1)

    first = await world.destination.deliver([update(person)])
    again = await world.destination.deliver([update(person)])

    assert first.failed == () and first.requests == 1
    assert world.braze.tracked == [
        [
            {
                "external_id": str(uuid.UUID(int=1)),
                "_update_existing_only": False,
                "email": "person1@example.com",
                "email_subscribe": "subscribed",
                "user_attributes_v1": [
                    {
                        "basket_token": None,
                        "created_at": {"$time": DEFAULT_TIME.isoformat()},
                        "updated_at": {"$time": DEFAULT_TIME.isoformat()},
                        "email_lang": "en",
                        "mailing_country": None,
                        "email_format": "H",
                        "double_opt_in": False,
                        "has_opted_out_of_email": False,
                        "unsub_reason": None,
                        "sfdc_id": None,
                        "has_fxa": False,
                        "fxa_id": None,
                        "fxa_primary_email": None,
                        "fxa_created_at": None,
                        "fxa_lang": None,
                        "fxa_first_service": None,
                        "fxa_deleted": False,
                    }
                ],
                "language": "en",
                "subscription_groups": [
                    {"subscription_group_id": GROUP, "subscription_state": "subscribed"}
                ],
            }
        ]
    ]
    # Nothing changed: delivered without a request.
    assert again.failed == () and again.requests == 0
    assert len(world.braze.tracked) == 1


async def test_a_patched_contact_sends_only_what_changed(world: World) -> None:
    await world.destination.deliver([update(contact(1))])

    report = await world.destination.deliver([update(contact(1, first_name="Augusta"))])

    assert report.failed == ()
    assert world.braze.tracked[-1] == [
        {
            "external_id": str(uuid.UUID(int=1)),
            "_update_existing_only": True,
            "first_name": "Augusta",
        }
    ]


async def test_an_unsubscribed_contact_sends_its_state_and_group(world: World) -> None:
    await world.destination.deliver([update(contact(1))])

    await world.destination.deliver(
        [update(contact(1, newsletters=(make_newsletter("firefox-news", subscribed=False),)))]
    )

    assert world.braze.tracked[-1] == [
        {
            "external_id": str(uuid.UUID(int=1)),
            "_update_existing_only": True,
            "email_subscribe": "unsubscribed",
            "subscription_groups": [
                {"subscription_group_id": GROUP, "subscription_state": "unsubscribed"}
            ],
        }
    ]


async def test_the_mapping_is_read_at_each_delivery(world: World) -> None:
    await world.groups.remove("newsletter", "firefox-news")

    await world.destination.deliver([update(contact(1))])

    assert "subscription_groups" not in world.braze.tracked[-1][0]


async def test_contacts_go_to_the_gateway_together_and_erasures_too(world: World) -> None:
    report = await world.destination.deliver(
        [*(update(contact(n)) for n in range(1, 161)), erasure(500), erasure(501)]
    )

    assert report.failed == ()
    assert [len(call) for call in world.braze.tracked] == [160]
    assert world.braze.deleted == [[str(uuid.UUID(int=500)), str(uuid.UUID(int=501))]]
    assert report.requests == 3 + 1


async def test_a_user_braze_rejects_fails_alone_and_is_sent_in_full_next_time(
    world: World,
) -> None:
    world.braze.fail[str(uuid.UUID(int=2))] = "rejected"

    report = await world.destination.deliver([update(contact(n)) for n in (1, 2, 3)])

    assert [(f.email_id, f.kind) for f in report.failed] == [(uuid.UUID(int=2), "rejected")]
    assert set(world.digests.digests) == {uuid.UUID(int=1), uuid.UUID(int=3)}

    world.braze.fail.clear()
    await world.destination.deliver([update(contact(n)) for n in (1, 2, 3)])

    [resent] = world.braze.tracked[-1]  # 1 and 3 unchanged; 2 again in full, may create
    assert resent["external_id"] == str(uuid.UUID(int=2))
    assert resent["_update_existing_only"] is False
    assert resent["email"] == "person2@example.com"


@pytest.mark.parametrize(
    ("braze_kind", "kind"),
    [
        ("rejected", "rejected"),
        ("refused", "rejected"),
        ("unavailable", "outage"),
        ("rate_limited", "outage"),
        ("unauthorized", "outage"),
    ],
)
async def test_each_braze_failure_has_its_sync_failure_kind(
    world: World, braze_kind: BrazeFailureKind, kind: str
) -> None:
    world.braze.fail_all = braze_kind

    report = await world.destination.deliver([update(contact(1)), erasure(2)])

    assert [(f.email_id, f.kind) for f in report.failed] == [
        (uuid.UUID(int=1), kind),
        (uuid.UUID(int=2), kind),
    ]
    assert all(braze_kind in f.reason for f in report.failed)
    assert world.digests.digests == {}


async def test_an_erasure_deletes_the_user_and_forgets_its_digests(world: World) -> None:
    await world.destination.deliver([update(contact(1)), update(contact(2))])

    report = await world.destination.deliver([erasure(1)])

    assert report.failed == () and report.requests == 1
    assert world.braze.deleted == [[str(uuid.UUID(int=1))]]
    assert set(world.digests.digests) == {uuid.UUID(int=2)}


class BrokenDigestStore(InMemoryBrazeDigestStore):
    async def save(self, digests: Mapping[uuid.UUID, Mapping[str, str]]) -> None:
        raise ConnectionError("database unreachable (person1@example.com)")

    async def forget(self, email_ids: Sequence[uuid.UUID]) -> None:
        raise ConnectionError("database unreachable")


async def test_a_contact_whose_digests_are_not_stored_fails_as_an_error(world: World) -> None:
    destination = BrazeDestination(world.braze, world.groups.load, BrokenDigestStore())

    report = await destination.deliver([update(contact(1)), erasure(2)])

    assert [(f.email_id, f.kind) for f in report.failed] == [
        (uuid.UUID(int=1), "error"),
        (uuid.UUID(int=2), "error"),
    ]
    assert all("@" not in f.reason for f in report.failed)


async def test_a_delivery_without_contact_or_erasure_fails_alone(world: World) -> None:
    report = await world.destination.deliver(
        [Delivery(email_id=uuid.UUID(int=9)), update(contact(1))]
    )

    assert ids(report.failed) == [uuid.UUID(int=9)]
    assert report.failed[0].kind == "error"
    assert len(world.braze.tracked[0]) == 1
