"""Contact → Braze attributes object (docs/braze.md): the exact documents, `email_subscribe`, deltas."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import msgspec
import pytest

from ctms_core.domain.braze import (
    BrazeConfiguration,
    BrazeDeletion,
    braze_country,
    braze_language,
    changed_attributes,
    deletion_of,
    email_subscribe_of,
    map_contact,
)
from ctms_core.domain.contact import Amo, Contact, Fxa, Mofo
from tests.builders import DEFAULT_TIME, make_contact, make_newsletter, make_waitlist

EMAIL_ID = uuid.UUID("67e52c77-950f-4f28-accb-bb3ea1a2c51a")
LATER = datetime(2024, 3, 5, 8, 30, tzinfo=UTC)
FX_NEWS_GROUP = "8a2b4c61-0f6e-4c7f-9d0e-3b1d7e5a9c21"
FOUNDATION_GROUP = "1f0c2d9e-4b7a-4e3c-8a5d-6c9b0e2f4a17"
VPN_GROUP = "c3d5e7f9-1a2b-4c6d-8e0f-2a4c6e8b0d13"
CONFIGURATION = BrazeConfiguration(
    newsletter_groups={"firefox-news": FX_NEWS_GROUP, "mozilla-foundation": FOUNDATION_GROUP},
    waitlist_groups={"vpn": VPN_GROUP},
)


def ada(**overrides: object) -> Contact:
    """A contact with every part: e-mail, FxA, AMO, MoFo, a mapped and an unmapped newsletter, a
    mapped waitlist."""
    values: dict[str, object] = {
        "email_id": EMAIL_ID,
        "primary_email": "ada@example.com",
        "basket_token": "0c3ac53e-1fd1-4d48-8cbb-39b6c3a5e8c2",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "mailing_country": "gb",
        "email_lang": "en-GB",
        "double_opt_in": True,
        "fxa": Fxa(
            fxa_id="6eb6ed6ac3b64259968aa490c6c0b9df",
            primary_email="ada-fxa@example.com",
            created_date="2021-06-01T10:00:00+00:00",
            lang="en,en-US",
            first_service="sync",
        ),
        "amo": Amo(
            display_name="Ada L.",
            language="en",
            last_login=date(2024, 1, 2),
            user=True,
            user_id="12345",
            create_timestamp=DEFAULT_TIME,
            update_timestamp=DEFAULT_TIME,
        ),
        "mofo": Mofo(mofo_email_id="mofo-e-1", mofo_contact_id="mofo-c-1", mofo_relevant=True),
        "newsletters": (make_newsletter("firefox-news"), make_newsletter("knowledge-is-power")),
        "waitlists": (
            make_waitlist(
                "vpn", source="https://www.mozilla.org/", fields={"platform": "ios", "geo": "fr"}
            ),
        ),
    }
    values.update(overrides)
    return make_contact(**values)  # type: ignore[arg-type]


def user_attributes(**overrides: object) -> list[dict[str, object]]:
    """Ada's `user_attributes_v1`, with `overrides`."""
    values: dict[str, object] = {
        "basket_token": "0c3ac53e-1fd1-4d48-8cbb-39b6c3a5e8c2",
        "created_at": {"$time": "2024-01-01T12:00:00+00:00"},
        "updated_at": {"$time": "2024-01-01T12:00:00+00:00"},
        "email_lang": "en-GB",
        "mailing_country": "gb",
        "email_format": "H",
        "double_opt_in": True,
        "has_opted_out_of_email": False,
        "unsub_reason": None,
        "sfdc_id": None,
        "has_fxa": True,
        "fxa_id": "6eb6ed6ac3b64259968aa490c6c0b9df",
        "fxa_primary_email": "ada-fxa@example.com",
        "fxa_created_at": "2021-06-01T10:00:00+00:00",
        "fxa_lang": "en,en-US",
        "fxa_first_service": "sync",
        "fxa_deleted": False,
    }
    values.update(overrides)
    return [values]


def wire(document: dict[str, object]) -> str:
    """The JSON Braze receives, keys in the order sent."""
    return msgspec.json.encode(document).decode()


def test_a_created_contact_is_sent_in_full_and_may_create_the_profile() -> None:
    user = map_contact(ada(), CONFIGURATION)

    assert user.attributes == {
        "external_id": "67e52c77-950f-4f28-accb-bb3ea1a2c51a",
        "_update_existing_only": False,
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "country": "GB",
        "language": "en",
        "email_subscribe": "opted_in",
        "user_attributes_v1": user_attributes(),
        "amo_v1": {
            "add_on_ids": None,
            "display_name": "Ada L.",
            "email_opt_in": False,
            "language": "en",
            "last_login": {"$time": "2024-01-02"},
            "location": None,
            "profile_url": None,
            "user": True,
            "user_id": "12345",
            "username": None,
            "created_at": {"$time": "2024-01-01T12:00:00+00:00"},
            "updated_at": {"$time": "2024-01-01T12:00:00+00:00"},
        },
        "mofo_v1": {
            "mofo_email_id": "mofo-e-1",
            "mofo_contact_id": "mofo-c-1",
            "mofo_relevant": True,
        },
        "waitlists_v1": [
            {
                "name": "vpn",
                "source": "https://www.mozilla.org/",
                "subscribed": True,
                "unsub_reason": None,
                "fields": {"geo": "fr", "platform": "ios"},
                "created_at": {"$time": "2024-01-01T12:00:00+00:00"},
                "updated_at": {"$time": "2024-01-01T12:00:00+00:00"},
            }
        ],
        "subscription_groups": [
            {"subscription_group_id": FX_NEWS_GROUP, "subscription_state": "subscribed"},
            {"subscription_group_id": VPN_GROUP, "subscription_state": "subscribed"},
        ],
    }
    assert list(user.attributes)[:3] == ["external_id", "_update_existing_only", "email"]
    assert user.unmapped_names == ("knowledge-is-power",)
    assert user.has_changes


def test_a_new_contact_without_optional_data_sends_no_nulls() -> None:
    contact = make_contact(
        email_id=EMAIL_ID, primary_email="min@example.com", email_lang=None, create_timestamp=None
    )

    user = map_contact(contact, CONFIGURATION)

    assert wire(user.attributes) == wire(
        {
            "external_id": "67e52c77-950f-4f28-accb-bb3ea1a2c51a",
            "_update_existing_only": False,
            "email": "min@example.com",
            "email_subscribe": "subscribed",
            "user_attributes_v1": [
                {
                    "basket_token": None,
                    "created_at": None,
                    "updated_at": {"$time": "2024-01-01T12:00:00+00:00"},
                    "email_lang": None,
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
        }
    )


def test_a_patched_contact_sends_only_what_changed_and_never_creates_a_profile() -> None:
    created = map_contact(ada(), CONFIGURATION)
    patched = ada(
        first_name="Augusta",
        update_timestamp=LATER,
        newsletters=(
            make_newsletter("firefox-news"),
            make_newsletter("knowledge-is-power"),
            make_newsletter("mozilla-foundation", create_timestamp=LATER, update_timestamp=LATER),
        ),
    )

    user = map_contact(patched, CONFIGURATION, previous_digests=created.digests)

    assert wire(user.attributes) == wire(
        {
            "external_id": "67e52c77-950f-4f28-accb-bb3ea1a2c51a",
            "_update_existing_only": True,
            "first_name": "Augusta",
            "user_attributes_v1": user_attributes(
                updated_at={"$time": "2024-03-05T08:30:00+00:00"}
            ),
            "subscription_groups": [
                {"subscription_group_id": FOUNDATION_GROUP, "subscription_state": "subscribed"}
            ],
        }
    )


def test_an_unsubscribed_contact_sends_its_state_and_every_group_it_left() -> None:
    created = map_contact(ada(), CONFIGURATION)
    unsubscribed = ada(
        has_opted_out_of_email=True,
        unsubscribe_reason="too many e-mails",
        update_timestamp=LATER,
        newsletters=(
            make_newsletter("firefox-news", subscribed=False, update_timestamp=LATER),
            make_newsletter("knowledge-is-power", subscribed=False, update_timestamp=LATER),
        ),
    )

    user = map_contact(unsubscribed, CONFIGURATION, previous_digests=created.digests)

    assert wire(user.attributes) == wire(
        {
            "external_id": "67e52c77-950f-4f28-accb-bb3ea1a2c51a",
            "_update_existing_only": True,
            "email_subscribe": "unsubscribed",
            "user_attributes_v1": user_attributes(
                updated_at={"$time": "2024-03-05T08:30:00+00:00"},
                has_opted_out_of_email=True,
                unsub_reason="too many e-mails",
            ),
            "subscription_groups": [
                {"subscription_group_id": FX_NEWS_GROUP, "subscription_state": "unsubscribed"}
            ],
        }
    )


def test_an_erased_contact_is_its_external_id() -> None:
    deletion = deletion_of(ada())

    assert deletion == BrazeDeletion(email_id=EMAIL_ID)
    assert deletion.external_id == "67e52c77-950f-4f28-accb-bb3ea1a2c51a"


def test_an_unchanged_contact_has_nothing_to_send() -> None:
    created = map_contact(ada(), CONFIGURATION)

    again = map_contact(ada(), CONFIGURATION, previous_digests=created.digests)

    assert again.attributes == {
        "external_id": "67e52c77-950f-4f28-accb-bb3ea1a2c51a",
        "_update_existing_only": True,
    }
    assert not again.has_changes
    assert again.digests == created.digests


def test_a_removed_newsletter_leaves_its_group_unsubscribed_and_removed_data_is_cleared() -> None:
    created = map_contact(ada(), CONFIGURATION)
    reduced = ada(newsletters=(), waitlists=(), amo=None, last_name=None)

    user = map_contact(reduced, CONFIGURATION, previous_digests=created.digests)

    assert wire(user.attributes) == wire(
        {
            "external_id": "67e52c77-950f-4f28-accb-bb3ea1a2c51a",
            "_update_existing_only": True,
            "last_name": None,
            "amo_v1": None,
            "waitlists_v1": None,
            "subscription_groups": [
                {"subscription_group_id": FX_NEWS_GROUP, "subscription_state": "unsubscribed"},
                {"subscription_group_id": VPN_GROUP, "subscription_state": "unsubscribed"},
            ],
        }
    )
    # Sent once: the next pass has nothing more to say about them.
    after = map_contact(reduced, CONFIGURATION, previous_digests=user.digests)
    assert not after.has_changes


def test_a_group_shared_by_two_newsletters_is_subscribed_when_either_is() -> None:
    shared = BrazeConfiguration(
        newsletter_groups={"firefox-news": FX_NEWS_GROUP, "mozilla-and-you": FX_NEWS_GROUP}
    )
    contact = ada(
        newsletters=(
            make_newsletter("firefox-news", subscribed=False),
            make_newsletter("mozilla-and-you"),
        ),
        waitlists=(),
    )

    groups = map_contact(contact, shared).attributes["subscription_groups"]

    assert groups == [{"subscription_group_id": FX_NEWS_GROUP, "subscription_state": "subscribed"}]


def test_changed_attributes_sends_a_changed_value_and_stores_the_digest_of_every_value() -> None:
    previous = changed_attributes("u", {"a": 1, "b": "x"}, {})[1]

    changed, digests = changed_attributes("u", {"a": 1, "b": "y"}, previous)

    assert changed == {"b": "y"}
    assert digests.keys() == {"a", "b"}
    assert digests["a"] == previous["a"]
    assert digests["b"] != previous["b"]


def test_equal_values_of_two_contacts_have_different_digests() -> None:
    first = changed_attributes("contact-1", {"country": "FR"}, {})[1]
    second = changed_attributes("contact-2", {"country": "FR"}, {})[1]

    assert first["country"] != second["country"]


@pytest.mark.parametrize(
    ("opted_out", "double_opt_in", "subscriptions", "expected"),
    [
        (True, True, (True,), "unsubscribed"),  # opt-out wins over everything
        (False, True, (False, False), "unsubscribed"),  # left everything it had joined
        (False, True, (False, True), "opted_in"),
        (False, True, (), "opted_in"),
        (False, False, (True,), "subscribed"),
        (False, False, (), "subscribed"),
    ],
)
def test_email_subscribe_rule(
    opted_out: bool, double_opt_in: bool, subscriptions: tuple[bool, ...], expected: str
) -> None:
    contact = make_contact(
        has_opted_out_of_email=opted_out,
        double_opt_in=double_opt_in,
        newsletters=tuple(
            make_newsletter(f"news-{index}", subscribed=subscribed)
            for index, subscribed in enumerate(subscriptions)
        ),
    )

    assert email_subscribe_of(contact) == expected


def test_a_waitlist_counts_as_a_subscription_for_email_subscribe() -> None:
    contact = make_contact(
        newsletters=(make_newsletter(subscribed=False),), waitlists=(make_waitlist(),)
    )

    assert email_subscribe_of(contact) == "subscribed"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("gb", "GB"), (" fr ", "FR"), ("USA", None), ("Germany", None), ("", None), (None, None)],
)
def test_country_is_an_iso_alpha_2_code_or_null(raw: str | None, expected: str | None) -> None:
    assert braze_country(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("en", "en"), ("en-US", "en"), ("pt_BR", "pt"), ("FR", "fr"), ("eng", None), (None, None)],
)
def test_language_is_an_iso_639_1_code_or_null(raw: str | None, expected: str | None) -> None:
    assert braze_language(raw) == expected
