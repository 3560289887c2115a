"""Validation of POST/PUT/PATCH bodies (docs/contract.md §4.4, §5.1, §5.2, §5.7, §5.8, §5.9, §6.3 and duplicates)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from msgspec import UNSET

from ctms_core.domain.errors import ValidationFailedError
from ctms_core.domain.inputs import (
    LegacyRelayWaitlist,
    LegacyVpnWaitlist,
    parse_contact_input,
    parse_contact_patch,
)
from tests.samples import sample, sample_names


def errors_of(
    body: Any, *, patch: bool = False, put: bool = False
) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationFailedError) as raised:  # noqa: PT012 - one call either way
        if patch:
            parse_contact_patch(body)
        else:
            parse_contact_input(body, require_email_id=put)
    return [(error.loc, error.msg) for error in raised.value.errors]


@pytest.mark.parametrize("name", sample_names())
def test_every_sample_contact_is_a_valid_post_and_put_body(name: str) -> None:
    assert parse_contact_input(sample(name), require_email_id=False).email["primary_email"]
    assert parse_contact_input(sample(name), require_email_id=True).email_id is not None


def test_post_applies_email_defaults() -> None:
    parsed = parse_contact_input(
        {"email": {"primary_email": "a@example.com"}}, require_email_id=False
    )
    assert parsed.email_id is None
    assert parsed.email == {
        "primary_email": "a@example.com",
        "basket_token": None,
        "double_opt_in": False,
        "sfdc_id": None,
        "first_name": None,
        "last_name": None,
        "mailing_country": None,
        "email_format": "H",
        "email_lang": "en",
        "has_opted_out_of_email": False,
        "unsubscribe_reason": None,
    }


def test_post_accepts_a_null_email_id() -> None:
    body = {"email": {"primary_email": "a@example.com", "email_id": None}}
    assert parse_contact_input(body, require_email_id=False).email_id is None


def test_post_email_id_must_be_uuid_version_4() -> None:
    body = {
        "email": {
            "primary_email": "a@example.com",
            "email_id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        }
    }
    assert errors_of(body) == [(("body", "email", "email_id"), "uuid version 4 expected")]


@pytest.mark.parametrize(
    "email",
    [{"primary_email": "a@example.com"}, {"primary_email": "a@example.com", "email_id": None}],
)
def test_put_requires_an_email_id(email: dict[str, Any]) -> None:
    [(loc, _)] = errors_of({"email": email}, put=True)
    assert loc == ("body", "email", "email_id")


def test_missing_email_is_located() -> None:
    assert errors_of({"amo": {}}) == [(("body", "email"), "field required")]
    assert errors_of({"email": {}}) == [(("body", "email", "primary_email"), "field required")]


def test_body_must_be_an_object() -> None:
    assert errors_of([1, 2]) == [(("body",), "value is not a valid dict")]
    assert errors_of("x", patch=True) == [(("body",), "value is not a valid dict")]


def test_all_field_errors_of_a_body_are_reported_together() -> None:
    body = {
        "email": {"primary_email": "not-an-address", "email_lang": "toolong", "basket_token": "x"},
        "amo": {"profile_url": "p" * 41, "user": "maybe"},
        "newsletters": [{"name": "n", "format": "X"}],
    }
    locations = [loc for loc, _ in errors_of(body)]
    assert locations == [
        ("body", "email", "primary_email"),
        ("body", "email", "basket_token"),
        ("body", "email", "email_lang"),
        ("body", "amo", "profile_url"),
        ("body", "amo", "user"),
        ("body", "newsletters", 0, "format"),
    ]


@pytest.mark.parametrize(
    ("group", "field", "size"),
    [
        ("email", "first_name", 255),
        ("email", "primary_email", 255),
        ("amo", "add_on_ids", 500),
        ("amo", "profile_url", 40),
        ("amo", "username", 100),
        ("fxa", "created_date", 50),
        ("fxa", "fxa_id", 50),
        ("fxa", "primary_email", 255),
        ("fxa", "first_service", 50),
        ("mofo", "mofo_email_id", 255),
    ],
)
def test_strings_are_limited_to_their_column_size(group: str, field: str, size: int) -> None:
    too_long = "a" * (size + 1) if field != "primary_email" else "a" * (size - 11) + "@example.com"
    body: dict[str, Any] = {"email": {"primary_email": "x@example.com"}}
    body.setdefault(group, {})[field] = too_long
    [(loc, msg)] = errors_of(body)
    assert loc == ("body", group, field)
    assert str(size) in msg


def test_newsletter_and_waitlist_names_are_limited_to_255() -> None:
    body = {
        "email": {"primary_email": "x@example.com"},
        "newsletters": [{"name": "n" * 256}],
        "waitlists": [{"name": "w" * 256}],
    }
    assert [loc for loc, _ in errors_of(body)] == [
        ("body", "newsletters", 0, "name"),
        ("body", "waitlists", 0, "name"),
    ]


def test_identifiers_sent_as_numbers_become_strings() -> None:
    body = {
        "email": {"primary_email": "x@example.com"},
        "fxa": {"fxa_id": 1337},
        "amo": {"user_id": 123},
    }
    parsed = parse_contact_input(body, require_email_id=False)
    assert parsed.fxa is not None and parsed.fxa.fxa_id == "1337"
    assert parsed.amo is not None and parsed.amo.user_id == "123"


def test_unknown_keys_are_ignored_everywhere() -> None:
    body = {
        "email": {"primary_email": "x@example.com", "favourite_colour": "blue"},
        "waitlist": [{"name": "ignored"}],
        "newsletters": [{"name": "n", "extra": 1}],
        "status": "ok",
    }
    parsed = parse_contact_input(body, require_email_id=False)
    assert [n.name for n in parsed.newsletters] == ["n"]
    assert parsed.waitlists == ()


def test_all_default_satellites_are_dropped() -> None:
    body = sample("simple_default")
    body["fxa"] = {"fxa_id": None, "account_deleted": False}
    body["mofo"] = {}
    parsed = parse_contact_input(body, require_email_id=False)
    assert (parsed.amo, parsed.fxa, parsed.mofo) == (None, None, None)


def test_basket_token_is_canonical_lower_case() -> None:
    parsed = parse_contact_input(sample("default_waitlist"), require_email_id=True)
    assert parsed.email["basket_token"] == "6d9a4e1b-52a6-4c8e-9d7b-31d3c7b5e0a2"
    assert str(parsed.email_id) == "0a6ecca3-d007-4bd4-b596-c09da94f0fef"


def test_newsletter_item_defaults() -> None:
    parsed = parse_contact_input(
        {"email": {"primary_email": "x@example.com"}, "newsletters": [{"name": "n"}]},
        require_email_id=False,
    )
    [item] = parsed.newsletters
    assert (item.subscribed, item.format, item.lang, item.source, item.unsub_reason) == (
        True,
        "H",
        "en",
        None,
        None,
    )


@pytest.mark.parametrize("lang", ["e", "toolong"])
def test_newsletter_lang_is_two_to_five_characters(lang: str) -> None:
    body = {
        "email": {"primary_email": "x@example.com"},
        "newsletters": [{"name": "n", "lang": lang}],
    }
    [(loc, _)] = errors_of(body)
    assert loc == ("body", "newsletters", 0, "lang")


def test_duplicate_names_in_one_body_are_refused() -> None:
    body = {
        "email": {"primary_email": "x@example.com"},
        "newsletters": [{"name": "a"}, {"name": "a", "subscribed": False}],
        "waitlists": [{"name": "w"}, {"name": "w"}],
    }
    assert [loc for loc, _ in errors_of(body)] == [
        ("body", "newsletters", 1, "name"),
        ("body", "waitlists", 1, "name"),
    ]
    patch = {"newsletters": [{"name": "a"}, {"name": "a"}]}
    assert [loc for loc, _ in errors_of(patch, patch=True)] == [("body", "newsletters", 1, "name")]


VALID_WAITLISTS = [
    {"name": "vpn"},
    {"name": "vpn", "fields": {"geo": "b", "platform": ""}},
    {"name": "a", "fields": {"foo": "bar", "geo": "br"}},
    {"name": "relay", "fields": {"geo": None}},
    {"name": "relay-vpn", "fields": {"anything": [1, 2], "geo": 12}},
]


@pytest.mark.parametrize("item", VALID_WAITLISTS)
def test_valid_waitlist_items(item: dict[str, Any]) -> None:
    parsed = parse_contact_input(
        {"email": {"primary_email": "x@example.com"}, "waitlists": [item]}, require_email_id=False
    )
    assert parsed.waitlists[0].fields == item.get("fields", {})  # stored exactly as sent


INVALID_WAITLISTS = [
    ({"name": ""}, ("name",)),
    ({"name": None}, ("name",)),
    ({"name": "a", "fields": None}, ("fields",)),
    ({"name": "a", "fields": "foo"}, ("fields",)),
    ({"name": "a", "fields": [{}]}, ("fields",)),
    ({"name": "a", "fields": {"geo": "g" * 101}}, ("fields", "geo")),
    ({"name": "a", "fields": {"platform": "p" * 101}}, ("fields", "platform")),
    ({"name": "vpn", "fields": {"geo": "b", "extra": "x"}}, ("fields", "extra")),
    ({"name": "relay", "fields": {"foo": "bar"}}, ("fields", "foo")),
    ({"name": "relay", "fields": {"platform": "x"}}, ("fields", "platform")),
    ({"name": "a", "source": 42}, ("source",)),
    ({"name": "a", "source": "not a url"}, ("source",)),
]


@pytest.mark.parametrize(("item", "where"), INVALID_WAITLISTS)
def test_invalid_waitlist_items_are_located(item: dict[str, Any], where: tuple[str, ...]) -> None:
    body = {"email": {"primary_email": "x@example.com"}, "waitlists": [item]}
    assert [loc for loc, _ in errors_of(body)] == [("body", "waitlists", 0, *where)]


@pytest.mark.parametrize(("item", "where"), INVALID_WAITLISTS[2:])
def test_waitlist_items_are_validated_in_patch_too(
    item: dict[str, Any], where: tuple[str, ...]
) -> None:
    assert [loc for loc, _ in errors_of({"waitlists": [item]}, patch=True)] == [
        ("body", "waitlists", 0, *where)
    ]


def test_relay_newsletter_needs_a_country() -> None:
    body = {
        "email": {"primary_email": "x@example.com"},
        "newsletters": [{"name": "relay-phone-masking-waitlist"}],
    }
    assert errors_of(body) == [(("body", "__root__"), "Relay country missing")]
    assert errors_of({"newsletters": [{"name": "relay-waitlist"}]}, patch=True) == [
        (("body", "__root__"), "Relay country missing")
    ]


@pytest.mark.parametrize(
    "extra",
    [
        {"relay_waitlist": {"geo": "fr"}},
        {"waitlists": [{"name": "relay", "fields": {"geo": "fr"}}]},
    ],
)
def test_relay_country_from_legacy_object_or_relay_waitlist(extra: dict[str, Any]) -> None:
    body = {
        "email": {"primary_email": "x@example.com"},
        "newsletters": [{"name": "relay-waitlist"}],
        **extra,
    }
    parse_contact_input(body, require_email_id=False)


def test_unsubscribing_from_a_relay_newsletter_needs_no_country() -> None:
    parse_contact_patch({"newsletters": [{"name": "relay-waitlist", "subscribed": False}]})


def test_relay_delete_with_relay_newsletter_is_a_422_not_a_crash() -> None:
    body = {"relay_waitlist": "DELETE", "newsletters": [{"name": "relay-waitlist"}]}
    assert errors_of(body, patch=True) == [(("body", "__root__"), "Relay country missing")]


def test_legacy_keys_are_unset_unless_sent() -> None:
    parsed = parse_contact_input(
        {"email": {"primary_email": "x@example.com"}}, require_email_id=False
    )
    assert parsed.vpn_waitlist is UNSET and parsed.relay_waitlist is UNSET
    parsed = parse_contact_input(
        {
            "email": {"primary_email": "x@example.com"},
            "vpn_waitlist": {"geo": "fr"},
            "relay_waitlist": None,
        },
        require_email_id=False,
    )
    assert parsed.vpn_waitlist == LegacyVpnWaitlist(geo="fr", platform=None)
    assert parsed.relay_waitlist is None


def test_legacy_delete_is_a_patch_only_word() -> None:
    assert parse_contact_patch({"relay_waitlist": "DELETE"}).relay_waitlist == "DELETE"
    assert parse_contact_patch(
        {"relay_waitlist": {"geo": "de"}}
    ).relay_waitlist == LegacyRelayWaitlist("de")
    [(loc, _)] = errors_of({"email": {"primary_email": "x@example.com"}, "vpn_waitlist": "DELETE"})
    assert loc == ("body", "vpn_waitlist")


def test_patch_keeps_only_present_keys() -> None:
    patch = parse_contact_patch(
        {
            "email": {"first_name": "Jo"},
            "amo": {"user": "yes"},
            "newsletters": [{"name": "x", "subscribed": False}],
        }
    )
    assert patch.email == {"first_name": "Jo"}
    assert patch.groups == {"amo": {"user": True}}
    assert patch.newsletters == ({"name": "x", "subscribed": False},)
    assert patch.waitlists is UNSET


def test_patch_accepts_the_delete_and_unsubscribe_words() -> None:
    patch = parse_contact_patch(
        {
            "amo": "DELETE",
            "fxa": "DELETE",
            "mofo": "DELETE",
            "newsletters": "UNSUBSCRIBE",
            "waitlists": "UNSUBSCRIBE",
        }
    )
    assert patch.groups == {"amo": "DELETE", "fxa": "DELETE", "mofo": "DELETE"}
    assert patch.newsletters == "UNSUBSCRIBE" and patch.waitlists == "UNSUBSCRIBE"


@pytest.mark.parametrize("group", ["email", "amo", "fxa", "mofo", "newsletters", "waitlists"])
def test_patch_null_group_is_a_422(group: str) -> None:
    assert errors_of({group: None}, patch=True) == [
        ((("body", group)), "none is not an allowed value")
    ]


@pytest.mark.parametrize(
    ("group", "word"),
    [
        ("amo", "REMOVE"),
        ("fxa", "UNSUBSCRIBE"),
        ("newsletters", "DELETE"),
        ("waitlists", "remove"),
        ("mofo", 3),
    ],
)
def test_patch_group_given_as_another_word_is_a_422(group: str, word: Any) -> None:
    [(loc, _)] = errors_of({group: word}, patch=True)
    assert loc == ("body", group)


def test_patch_primary_email_may_not_be_null() -> None:
    with pytest.raises(ValidationFailedError) as raised:
        parse_contact_patch({"email": {"primary_email": None}})
    [error] = raised.value.errors
    assert (error.loc, error.msg, error.type) == (
        ("body", "email", "primary_email"),
        "primary_email may not be None",
        "assertion_error",
    )


def test_patch_items_need_a_name() -> None:
    assert errors_of({"newsletters": [{"subscribed": False}]}, patch=True) == [
        (("body", "newsletters", 0, "name"), "field required")
    ]


def test_patch_email_id_is_parsed_for_the_mismatch_check() -> None:
    email_id = uuid.uuid4()
    assert parse_contact_patch({"email": {"email_id": str(email_id)}}).email == {
        "email_id": email_id
    }
