"""What every adapter of the Braze repository ports must do (docs/braze.md): run against the memory
adapters (tests/unit/braze) and PostgreSQL (tests/integration). A test module subclasses the contract
classes and provides the `subscription_groups` or `digest_store` fixture."""

from __future__ import annotations

import uuid

from ctms_core.domain.braze import BrazeConfiguration
from ctms_core.ports.braze import BrazeDigestStore, BrazeSubscriptionGroupRepository


class BrazeSubscriptionGroupContract:
    async def test_a_mapping_is_added_replaced_listed_loaded_and_removed(
        self, subscription_groups: BrazeSubscriptionGroupRepository
    ) -> None:
        await subscription_groups.add("newsletter", "firefox-news", "g1")
        await subscription_groups.add("newsletter", "firefox-news", "g2")
        await subscription_groups.add("newsletter", "about-mozilla", "g3")
        await subscription_groups.add("waitlist", "vpn", "g4")
        await subscription_groups.add("waitlist", "firefox-news", "g5")

        assert await subscription_groups.load() == BrazeConfiguration(
            newsletter_groups={"about-mozilla": "g3", "firefox-news": "g2"},
            waitlist_groups={"firefox-news": "g5", "vpn": "g4"},
        )
        assert await subscription_groups.list("newsletter") == [
            ("about-mozilla", "g3"),
            ("firefox-news", "g2"),
        ]
        assert await subscription_groups.remove("waitlist", "vpn") == "g4"
        assert await subscription_groups.remove("waitlist", "vpn") is None
        assert await subscription_groups.list("waitlist") == [("firefox-news", "g5")]

    async def test_nothing_mapped_loads_an_empty_configuration(
        self, subscription_groups: BrazeSubscriptionGroupRepository
    ) -> None:
        assert await subscription_groups.load() == BrazeConfiguration()
        assert await subscription_groups.list("newsletter") == []


class BrazeDigestStoreContract:
    async def test_digests_are_saved_replaced_loaded_and_forgotten_by_contact(
        self, digest_store: BrazeDigestStore
    ) -> None:
        one, two, three = (uuid.UUID(int=n) for n in (1, 2, 3))
        await digest_store.save({one: {"email": "a1"}, two: {"email": "b1", "first_name": "b2"}})
        await digest_store.save({one: {"email": "a2"}})

        assert await digest_store.load([one, two, three]) == {
            one: {"email": "a2"},
            two: {"email": "b1", "first_name": "b2"},
        }
        await digest_store.forget([one, three])
        assert await digest_store.load([one, two]) == {two: {"email": "b1", "first_name": "b2"}}

    async def test_empty_batches_do_nothing(self, digest_store: BrazeDigestStore) -> None:
        await digest_store.save({})
        await digest_store.forget([])
        assert await digest_store.load([]) == {}
