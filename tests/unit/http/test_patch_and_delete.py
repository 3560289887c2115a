"""Partial updates and erasure: `PATCH /ctms/{email_id}`, `DELETE /ctms/{primary_email}`
(docs/contract.md §4.4, §4.5)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http_harness import Api
from tests.samples import sample

MINIMAL_ID = "93db83d4-4119-4e0c-af87-a713786fa81d"
MAXIMAL_ID = "67e52c77-950f-4f28-accb-bb3ea1a2c51a"
PATCH_CONFLICT = "Contact with primary_email, basket_token, mofo_email_id, or fxa_id already exists"


async def patched(api: Api, email_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.patch(f"/ctms/{email_id}", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def newsletter(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(item for item in document["newsletters"] if item["name"] == name)


@pytest.mark.parametrize(
    ("group", "field", "value"),
    [
        ("email", "primary_email", "new@example.com"),
        ("email", "basket_token", "a4d3d3a5-1d3c-4c8b-a0b0-0f1e2d3c4b5a"),
        ("email", "double_opt_in", True),
        ("email", "first_name", "Changed"),
        ("email", "email_format", "T"),
        ("email", "email_lang", "de"),
        ("email", "has_opted_out_of_email", True),
        ("amo", "display_name", "Someone"),
        ("amo", "last_login", "2021-02-03"),
        ("amo", "user", True),
        ("fxa", "fxa_id", "1337"),
        ("fxa", "account_deleted", True),
        ("mofo", "mofo_contact_id", "mc-1"),
        ("mofo", "mofo_relevant", True),
    ],
)
@pytest.mark.parametrize("email_id", [MINIMAL_ID, MAXIMAL_ID])
async def test_patching_one_field_changes_only_that_field(
    api: Api, email_id: str, group: str, field: str, value: Any
) -> None:
    await api.create(sample("minimal"))
    await api.create(sample("maximal"))
    before = await api.read(email_id)
    after = await patched(api, email_id, {group: {field: value}})
    assert after[group][field] == value
    for key in ("email", "amo", "fxa", "mofo"):
        for name, old in before[key].items():
            if (key, name) != (group, field) and name not in (
                "create_timestamp",
                "update_timestamp",
            ):
                assert after[key][name] == old, (key, name)
    assert after["newsletters"] == before["newsletters"]
    assert after["email"]["update_timestamp"] > before["email"]["update_timestamp"]


async def test_patching_amo_on_a_contact_without_it_creates_it(api: Api) -> None:
    await api.create(sample("minimal"))
    after = await patched(api, MINIMAL_ID, {"amo": {"user_id": "42"}})
    assert after["amo"]["user_id"] == "42"
    assert after["amo"]["create_timestamp"] is not None
    assert after["amo"]["create_timestamp"] == after["amo"]["update_timestamp"]


async def test_integers_are_accepted_for_string_identifiers(api: Api) -> None:
    await api.create(sample("minimal"))
    after = await patched(api, MINIMAL_ID, {"fxa": {"fxa_id": 1337}})
    assert after["fxa"]["fxa_id"] == "1337"


@pytest.mark.parametrize(
    ("group", "field", "default"),
    [
        ("email", "email_lang", "en"),
        ("email", "first_name", None),
        ("mofo", "mofo_relevant", False),
        ("amo", "user", False),
    ],
)
async def test_a_field_can_be_set_back_to_its_default(
    api: Api, group: str, field: str, default: Any
) -> None:
    await api.create(sample("maximal"))
    after = await patched(api, MAXIMAL_ID, {group: {field: default}})
    assert after[group][field] == default


async def test_timestamps_in_the_body_are_ignored(api: Api) -> None:
    created = await api.create(sample("maximal"))
    after = await patched(
        api,
        MAXIMAL_ID,
        {
            "email": {
                "create_timestamp": "2000-01-01T00:00:00+00:00",
                "update_timestamp": "2000-01-01T00:00:00+00:00",
            },
            "amo": {"create_timestamp": "2000-01-01T00:00:00+00:00"},
        },
    )
    assert after["email"]["create_timestamp"] == created["email"]["create_timestamp"]
    assert after["amo"]["create_timestamp"] == created["amo"]["create_timestamp"]


async def test_changing_the_email_id_is_422(api: Api) -> None:
    await api.create(sample("minimal"))
    response = await api.patch(f"/ctms/{MINIMAL_ID}", json={"email": {"email_id": MAXIMAL_ID}})
    assert response.status_code == 422
    assert response.json() == {"detail": "cannot change email_id"}


async def test_null_primary_email_is_422_with_the_assertion_item(api: Api) -> None:
    await api.create(sample("minimal"))
    response = await api.patch(f"/ctms/{MINIMAL_ID}", json={"email": {"primary_email": None}})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["body", "email", "primary_email"],
                "msg": "primary_email may not be None",
                "type": "assertion_error",
            }
        ]
    }


@pytest.mark.parametrize("group", ["email", "amo", "fxa", "mofo", "newsletters", "waitlists"])
@pytest.mark.parametrize("value", [None, "REMOVE"])
async def test_a_group_given_as_null_or_another_string_is_422(
    api: Api, group: str, value: str | None
) -> None:
    await api.create(sample("minimal"))
    response = await api.patch(f"/ctms/{MINIMAL_ID}", json={group: value})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", group]


async def test_patching_an_unknown_contact_is_404(api: Api) -> None:
    response = await api.patch(f"/ctms/{MINIMAL_ID}", json={})
    assert response.status_code == 404
    assert response.json() == {"detail": "Unknown email_id"}


async def test_patch_with_a_bad_path_and_a_bad_body_reports_both(api: Api) -> None:
    response = await api.patch("/ctms/nope", json={"amo": None})
    assert response.status_code == 422
    locations = [item["loc"] for item in response.json()["detail"]]
    assert locations == [["path", "email_id"], ["body", "amo"]]


@pytest.mark.parametrize(
    ("body", "conflicts"),
    [
        ({"email": {"primary_email": "mozilla-fan@example.com"}}, ["primary_email"]),
        ({"email": {"basket_token": "d9ba6182-f5dd-4728-a477-2cc11bf62b69"}}, ["basket_token"]),
        ({"fxa": {"fxa_id": "611b6788-2bba-42a6-98c9-9ce6eb9cbd34"}}, ["fxa_id"]),
        (
            {
                "mofo": {"mofo_email_id": "195207d2-63f2-4c9f-b149-80e9c408477a"},
                "vpn_waitlist": {"geo": "fr"},
            },
            ["mofo_email_id"],
        ),
    ],
)
async def test_taking_another_contacts_identifier_is_409_and_changes_nothing(
    api: Api, body: dict[str, Any], conflicts: list[str]
) -> None:
    await api.create(sample("maximal"))
    created = await api.create(sample("minimal"))
    response = await api.patch(
        f"/ctms/{MINIMAL_ID}", json={**body, "email": {**body.get("email", {}), "first_name": "X"}}
    )
    assert response.status_code == 409
    assert response.json() == {"detail": PATCH_CONFLICT, "conflicts": conflicts}
    assert await api.read(MINIMAL_ID) == created


async def test_subscribing_to_a_new_newsletter_appends_it_with_defaults(api: Api) -> None:
    await api.create(sample("minimal"))
    after = await patched(api, MINIMAL_ID, {"newsletters": [{"name": "zzz-newsletter"}]})
    added = newsletter(after, "zzz-newsletter")
    assert {k: added[k] for k in ("subscribed", "format", "lang", "source")} == {
        "subscribed": True,
        "format": "H",
        "lang": "en",
        "source": None,
    }
    assert len(after["newsletters"]) == 5


async def test_updating_a_newsletter_changes_only_the_given_keys(api: Api) -> None:
    created = await api.create(sample("maximal"))
    after = await patched(
        api, MAXIMAL_ID, {"newsletters": [{"name": "ambassadors", "format": "T", "lang": "XX"}]}
    )
    old, new = newsletter(created, "ambassadors"), newsletter(after, "ambassadors")
    assert (new["format"], new["lang"]) == ("T", "XX")
    for key in ("subscribed", "source", "unsub_reason", "create_timestamp"):
        assert new[key] == old[key]


async def test_unsubscribing_one_newsletter_keeps_it_with_the_reason(api: Api) -> None:
    await api.create(sample("maximal"))
    after = await patched(
        api,
        MAXIMAL_ID,
        {
            "newsletters": [
                {"name": "common-voice", "subscribed": False, "unsub_reason": "Too many emails."}
            ]
        },
    )
    item = newsletter(after, "common-voice")
    assert (item["subscribed"], item["unsub_reason"], item["lang"]) == (
        False,
        "Too many emails.",
        "fr",
    )


async def test_unsubscribing_from_an_unknown_newsletter_creates_nothing(api: Api) -> None:
    created = await api.create(sample("maximal"))
    after = await patched(
        api, MAXIMAL_ID, {"newsletters": [{"name": "unknown", "subscribed": False}]}
    )
    assert [n["name"] for n in after["newsletters"]] == [n["name"] for n in created["newsletters"]]


async def test_unsubscribe_all_newsletters_keeps_them_unsubscribed(api: Api) -> None:
    created = await api.create(sample("maximal"))
    after = await patched(api, MAXIMAL_ID, {"newsletters": "UNSUBSCRIBE"})
    assert len(after["newsletters"]) == len(created["newsletters"])
    assert not any(item["subscribed"] for item in after["newsletters"])


@pytest.mark.parametrize("group", ["amo", "fxa", "mofo"])
async def test_delete_returns_a_group_to_its_defaults(api: Api, group: str) -> None:
    await api.create(sample("maximal"))
    await api.create(sample("minimal"))
    after = await patched(api, MAXIMAL_ID, {group: "DELETE"})
    minimal = await patched(api, MINIMAL_ID, {group: "DELETE"})
    assert after[group] == minimal[group]
    assert getattr(await api.stored(MAXIMAL_ID), group) is None


async def test_invalid_waitlist_item_is_422_at_its_location(api: Api) -> None:
    await api.create(sample("maximal"))
    response = await api.patch(
        f"/ctms/{MAXIMAL_ID}", json={"waitlists": [{"name": "future-tech", "source": 42}]}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "waitlists", 0, "source"]


async def test_adding_and_unsubscribing_waitlists(api: Api) -> None:
    await api.create(sample("maximal"))
    after = await patched(
        api,
        MAXIMAL_ID,
        {
            "waitlists": [
                {"name": "future-tech", "fields": {"geo": "es"}},
                {"name": "never-seen", "subscribed": False},
                {"name": "super-product", "subscribed": False, "unsub_reason": "bye"},
            ]
        },
    )
    by_name = {item["name"]: item for item in after["waitlists"]}
    assert by_name["future-tech"]["subscribed"] is True
    assert by_name["future-tech"]["create_timestamp"] is not None
    assert "never-seen" not in by_name
    assert (by_name["super-product"]["subscribed"], by_name["super-product"]["unsub_reason"]) == (
        False,
        "bye",
    )


async def test_legacy_vpn_waitlist_input_creates_the_vpn_waitlist(api: Api) -> None:
    await api.create(sample("minimal"))
    after = await patched(api, MINIMAL_ID, {"vpn_waitlist": {"geo": "fr", "platform": "win32"}})
    assert after["vpn_waitlist"] == {"geo": "fr", "platform": "win32"}
    assert [w["name"] for w in after["waitlists"]] == ["vpn"]


async def test_relay_newsletter_without_a_country_is_422_on_patch(api: Api) -> None:
    await api.create(sample("minimal"))
    response = await api.patch(
        f"/ctms/{MINIMAL_ID}", json={"newsletters": [{"name": "relay-vpn-bundle-waitlist"}]}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "Relay country missing"


async def test_changing_the_email_to_a_traced_one_logs_the_new_address(api: Api) -> None:
    await api.create(sample("minimal"))
    body = {"email": {"primary_email": "new+trace-me-mozilla-2@example.com"}}
    await patched(api, MINIMAL_ID, body)
    assert api.log_fields()["trace"] == "new+trace-me-mozilla-2@example.com"
    assert api.log_fields()["trace_json"] == body


# --- DELETE /ctms/{primary_email} --------------------------------------------------------------------------


async def test_deleting_returns_the_identities_then_the_contact_is_gone(api: Api) -> None:
    await api.create(sample("maximal"))
    response = await api.delete("/ctms/Mozilla-Fan@example.com")
    assert response.status_code == 200
    assert response.json() == [
        {
            "email_id": MAXIMAL_ID,
            "primary_email": "mozilla-fan@example.com",
            "basket_token": "d9ba6182-f5dd-4728-a477-2cc11bf62b69",
            "sfdc_id": "001A000001aMozFan",
            "mofo_contact_id": "5e499cc0-eeb5-4f0e-aae6-a101721874b8",
            "mofo_email_id": "195207d2-63f2-4c9f-b149-80e9c408477a",
            "amo_user_id": "123",
            "fxa_id": "611b6788-2bba-42a6-98c9-9ce6eb9cbd34",
            "fxa_primary_email": "fxa-firefox-fan@example.com",
        }
    ]
    assert (await api.get(f"/ctms/{MAXIMAL_ID}")).status_code == 404
    again = await api.delete("/ctms/Mozilla-Fan@example.com")
    assert again.status_code == 404
    assert again.json() == {"detail": "email Mozilla-Fan@example.com not found!"}


async def test_deleting_an_unknown_address_is_404(api: Api) -> None:
    response = await api.delete("/ctms/nobody@example.com")
    assert response.status_code == 404
    assert response.json() == {"detail": "email nobody@example.com not found!"}


async def test_a_contact_without_basket_token_can_be_deleted(api: Api) -> None:
    await api.create(sample("most_minimal"))
    response = await api.delete("/ctms/ctms-most-minimal-user@example.com")
    assert response.status_code == 200
    assert response.json()[0]["basket_token"] is None
