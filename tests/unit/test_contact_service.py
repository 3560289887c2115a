"""ContactService on the in-memory adapters: the contact rules of docs/contract.md §4.1, §4.2, §4.3, §4.4, §4.5, §4.6, §4.7, §7; docs/compatibility.md §2 fixes."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ctms_adapters.memory import ManualClock
from ctms_core.domain.contact import Contact, identity_of, relay_waitlist_of, vpn_waitlist_of
from ctms_core.domain.errors import (
    ContactConflictError,
    ContactNotFoundError,
    EmailNotFoundError,
    UnprocessableRequestError,
)
from ctms_core.domain.inputs import parse_contact_input, parse_contact_patch
from ctms_core.domain.lookup import LookupCriteria
from ctms_core.domain.updates import Cursor, UpdatesQuery
from ctms_core.ports.repositories import UnitOfWork
from ctms_core.services.contacts import (
    PATCH_CONFLICT,
    POST_CONFLICT,
    PUT_CONFLICT,
    ContactService,
)
from tests.samples import sample, sample_names
from tests.unit.conftest import ContactActions

TIMESTAMPS = {"create_timestamp", "update_timestamp"}


def data_view(contact: Contact) -> dict[str, Any]:
    """The client-controlled data of a contact, without timestamps."""

    def strip(struct: Any) -> Any:
        if struct is None:
            return None
        return {k: getattr(struct, k) for k in struct.__struct_fields__ if k not in TIMESTAMPS}

    return {
        "email": strip(contact.email),
        "amo": strip(contact.amo),
        "fxa": strip(contact.fxa),
        "mofo": strip(contact.mofo),
        "newsletters": [strip(n) for n in contact.newsletters],
        "waitlists": [strip(w) for w in contact.waitlists],
    }


def expected_view(body: dict[str, Any]) -> dict[str, Any]:
    parsed = parse_contact_input(body, require_email_id=True)
    return {
        "email": {**parsed.email, "email_id": parsed.email_id},
        "amo": None
        if parsed.amo is None
        else data_view(Contact(email=_dummy(), amo=parsed.amo))["amo"],
        "fxa": None
        if parsed.fxa is None
        else data_view(Contact(email=_dummy(), fxa=parsed.fxa))["fxa"],
        "mofo": None
        if parsed.mofo is None
        else data_view(Contact(email=_dummy(), mofo=parsed.mofo))["mofo"],
        "newsletters": sorted(
            (
                data_view(Contact(email=_dummy(), newsletters=(n,)))["newsletters"][0]
                for n in parsed.newsletters
            ),
            key=lambda item: item["name"],
        ),
        "waitlists": sorted(
            (
                data_view(Contact(email=_dummy(), waitlists=(w,)))["waitlists"][0]
                for w in parsed.waitlists
            ),
            key=lambda item: item["name"],
        ),
    }


def _dummy() -> Any:
    from tests.builders import make_email

    return make_email()


# --- POST ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sample_names())
async def test_created_sample_contact_equals_its_input(act: ContactActions, name: str) -> None:
    result = await act.post(sample(name))
    assert result.created
    stored = await act.get(result.contact)
    assert stored == result.contact
    assert data_view(stored) == expected_view(sample(name))


@pytest.mark.parametrize("email_id", ["absent", None])
async def test_create_without_id_generates_one(act: ContactActions, email_id: Any) -> None:
    body = sample("minimal")
    if email_id == "absent":
        del body["email"]["email_id"]
    else:
        body["email"]["email_id"] = None
    result = await act.post(body)
    assert result.created and result.contact.email_id.version == 4


async def test_created_contact_gets_timestamps_from_the_clock(
    act: ContactActions, clock: ManualClock
) -> None:
    result = await act.post(sample("maximal"))
    now = result.contact.email.create_timestamp
    assert now is not None and now == result.contact.email.update_timestamp
    assert result.contact.amo is not None and result.contact.amo.create_timestamp == now
    assert all(n.create_timestamp == now == n.update_timestamp for n in result.contact.newsletters)


async def test_default_satellites_and_empty_lists_store_nothing(act: ContactActions) -> None:
    for name in ("simple_default", "default_newsletter", "default_waitlist"):
        stored = await act.get((await act.post(sample(name))).contact)
        assert (stored.amo, stored.fxa, stored.mofo) == (None, None, None)
        assert stored.newsletters == () and stored.waitlists == ()


async def test_unsubscribed_items_are_stored_on_create(act: ContactActions) -> None:
    stored = await act.get((await act.post(sample("maximal"))).contact)
    assert {n.name for n in stored.newsletters if not n.subscribed} == {
        "ambassadors",
        "firefox-accounts-journey",
    }


async def test_replaying_the_same_post_returns_the_stored_contact(act: ContactActions) -> None:
    first = await act.post(sample("maximal"))
    replay = await act.post(sample("maximal"))
    assert not replay.created
    assert replay.contact == first.contact  # nothing written: timestamps unchanged


async def test_replay_ignores_computed_and_output_only_keys(act: ContactActions) -> None:
    first = await act.post(sample("example"))
    body = sample("example")
    body["vpn_waitlist"] = {"geo": "fr", "platform": "ios,mac"}
    body["relay_waitlist"] = {"geo": "fr"}
    body["status"] = "ok"
    body["email"]["create_timestamp"] = "2020-03-28T15:41:00+00:00"
    replay = await act.post(body)
    assert not replay.created and replay.contact == first.contact


async def test_same_id_with_different_data_is_a_conflict(act: ContactActions) -> None:
    first = await act.post(sample("minimal"))
    body = sample("minimal")
    body["email"]["mailing_country"] = "fr"
    with pytest.raises(ContactConflictError) as raised:
        await act.post(body)
    assert raised.value.detail == POST_CONFLICT and raised.value.fields == ("email_id",)
    assert await act.get(first.contact) == first.contact


class FixedIdGenerator:
    """Generates the same id every time: a generated id that happens to be taken."""

    def __init__(self, email_id: uuid.UUID) -> None:
        self._email_id = email_id

    def new_email_id(self) -> uuid.UUID:
        return self._email_id


async def test_a_generated_id_that_is_taken_is_a_conflict_and_writes_nothing(
    act: ContactActions, uow_factory: Callable[[], UnitOfWork], clock: ManualClock
) -> None:
    first = await act.post(sample("minimal"))
    unlucky = ContactService(uow_factory, clock, FixedIdGenerator(first.contact.email_id))
    body = sample("to_add")
    del body["email"]["email_id"]
    with pytest.raises(ContactConflictError) as raised:
        await unlucky.create(parse_contact_input(body, require_email_id=False))
    assert raised.value.detail == POST_CONFLICT and raised.value.fields == ("email_id",)
    assert await act.get(first.contact) == first.contact


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("primary_email", "CTMS-USER@example.com"),
        ("basket_token", "142e20b6-1ef5-43d8-b5f4-597430e956d7"),
    ],
)
async def test_another_contact_with_a_taken_identifier_is_a_conflict(
    act: ContactActions, field: str, value: str
) -> None:
    await act.post(sample("minimal"))
    body = sample("to_add")
    body["email"][field] = value
    with pytest.raises(ContactConflictError) as raised:
        await act.post(body)
    assert raised.value.detail == POST_CONFLICT and raised.value.fields == (field,)
    with pytest.raises(ContactNotFoundError):
        await act.service.get(uuid.UUID(body["email"]["email_id"]))


async def test_conflict_lists_every_clashing_identifier(act: ContactActions) -> None:
    await act.post(sample("maximal"))
    body = sample("to_add")
    body["email"]["primary_email"] = "Mozilla-Fan@example.com"
    body["fxa"] = {"fxa_id": "611b6788-2bba-42a6-98c9-9ce6eb9cbd34"}
    body["mofo"] = {"mofo_email_id": "195207d2-63f2-4c9f-b149-80e9c408477a"}
    with pytest.raises(ContactConflictError) as raised:
        await act.post(body)
    assert set(raised.value.fields) == {"primary_email", "fxa_id", "mofo_email_id"}


# --- PUT -----------------------------------------------------------------------------------------------


async def test_put_requires_the_path_id_in_the_body(contacts: ContactService) -> None:
    parsed = parse_contact_input(sample("minimal"), require_email_id=True)
    with pytest.raises(UnprocessableRequestError) as raised:
        await contacts.replace(uuid.uuid4(), parsed)
    assert raised.value.detail == "email_id in path must match email_id in contact"


async def test_put_creates_then_replaces(act: ContactActions) -> None:
    created = await act.put(sample("maximal"))
    assert created.created
    again = await act.put(sample("maximal"))
    assert not again.created
    assert data_view(await act.get(again.contact)) == expected_view(sample("maximal"))


async def test_put_keeps_unchanged_children_untouched(act: ContactActions) -> None:
    """docs/contract.md §4.3: children that stay keep their create timestamp; unchanged ones keep both."""
    first = (await act.put(sample("maximal"))).contact
    body = sample("maximal")
    body["newsletters"][1]["lang"] = "de"  # common-voice changes
    second = (await act.put(body)).contact
    before = {n.name: n for n in first.newsletters}
    after = {n.name: n for n in second.newsletters}
    assert after["hubs"] == before["hubs"]
    assert after["common-voice"].create_timestamp == before["common-voice"].create_timestamp
    assert after["common-voice"].update_timestamp > before["common-voice"].update_timestamp  # type: ignore[operator]
    assert second.amo == first.amo
    assert second.email.create_timestamp == first.email.create_timestamp
    assert second.email.update_timestamp > first.email.update_timestamp  # type: ignore[operator]


async def test_put_omitted_fields_take_defaults_and_absent_satellites_go(
    act: ContactActions,
) -> None:
    await act.put(sample("maximal"))
    body = sample("maximal")
    del body["amo"], body["mofo"]
    body["email"] = {k: v for k, v in body["email"].items() if k in ("email_id", "primary_email")}
    stored = await act.get((await act.put(body)).contact)
    assert stored.amo is None and stored.mofo is None and stored.fxa is not None
    assert (stored.email.email_lang, stored.email.double_opt_in, stored.email.first_name) == (
        "en",
        False,
        None,
    )


async def test_put_can_change_email_and_basket_token(act: ContactActions) -> None:
    await act.put(sample("minimal"))
    body = sample("minimal")
    body["email"]["primary_email"] = "new-address@example.com"
    body["email"]["basket_token"] = str(uuid.uuid4())
    stored = await act.get((await act.put(body)).contact)
    assert stored.email.primary_email == "new-address@example.com"


async def test_put_with_another_contacts_identifier_is_a_conflict(act: ContactActions) -> None:
    original = (await act.put(sample("minimal"))).contact
    body = sample("to_add")
    body["email"]["primary_email"] = "ctms-user@example.com"
    with pytest.raises(ContactConflictError) as raised:
        await act.put(body)
    assert raised.value.detail == PUT_CONFLICT and raised.value.fields == ("primary_email",)
    assert await act.get(original) == original


def _basket_modifiers() -> list[tuple[str, Any]]:
    def add_newsletter(body: dict[str, Any]) -> None:
        body.setdefault("newsletters", []).append({"name": "zzz-new"})

    def drop_last_newsletter(body: dict[str, Any]) -> None:
        if body.get("newsletters"):
            body["newsletters"].pop()

    def drop_amo(body: dict[str, Any]) -> None:
        body.pop("amo", None)

    def change_email(body: dict[str, Any]) -> None:
        body["email"]["primary_email"] = "changed-" + body["email"]["primary_email"]

    def flip_newsletters(body: dict[str, Any]) -> None:
        items = body.setdefault("newsletters", [])
        if items:
            items[-1]["subscribed"] = not items[-1].get("subscribed", True)
        items += [{"name": "added-1"}, {"name": "added-2", "subscribed": False}]

    def flip_waitlists(body: dict[str, Any]) -> None:
        items = body.setdefault("waitlists", [])
        if items:
            items[-1]["subscribed"] = not items[-1].get("subscribed", True)
        items += [
            {"name": "added-w1", "fields": {"geo": "fr"}},
            {"name": "added-w2", "subscribed": False},
        ]

    return [
        ("add_newsletter", add_newsletter),
        ("drop_last_newsletter", drop_last_newsletter),
        ("drop_amo", drop_amo),
        ("change_email", change_email),
        ("flip_newsletters", flip_newsletters),
        ("flip_waitlists", flip_waitlists),
    ]


@pytest.mark.parametrize("name", sample_names())
@pytest.mark.parametrize(("modifier_name", "modify"), _basket_modifiers())
async def test_basket_round_trip_post_modify_put(
    act: ContactActions, name: str, modifier_name: str, modify: Any
) -> None:
    body = sample(name)
    await act.post(body)
    modified = copy.deepcopy(body)
    modify(modified)
    stored = await act.get((await act.put(modified)).contact)
    assert data_view(stored) == expected_view(modified), modifier_name


async def test_put_without_legacy_keys_sets_waitlists_exactly(act: ContactActions) -> None:
    """docs/contract.md §6.1: the legacy path does not keep vpn/relay alive when a PUT has no waitlists."""
    body = sample("maximal")
    await act.put(body)
    body["waitlists"] = []
    stored = await act.get((await act.put(body)).contact)
    assert stored.waitlists == ()


async def test_put_legacy_relay_with_relay_newsletter_adds_its_waitlist(
    act: ContactActions,
) -> None:
    body = sample("minimal")
    body["waitlists"] = [{"name": "relay", "fields": {"geo": "es"}}]
    await act.put(body)
    body = sample("minimal")
    body["relay_waitlist"] = {"geo": "es"}
    body["newsletters"].append({"name": "relay-phone-masking-waitlist"})
    result = await act.put(body)
    waitlists = {w.name: w for w in result.contact.waitlists}
    assert set(waitlists) == {"relay", "relay-phone-masking"}
    assert waitlists["relay-phone-masking"].fields == {"geo": "es"}
    assert waitlists["relay"].fields == {"geo": "es"}
    assert result.legacy_waitlists_used


# --- PATCH ---------------------------------------------------------------------------------------------

EMAIL_CHANGES = [
    ("email", "primary_email", "changed@example.com"),
    ("email", "basket_token", "e3fdb6c4-5f6e-4b1b-8f5a-2f2a6f1a0b9c"),
    ("email", "double_opt_in", True),
    ("email", "sfdc_id", "001A000001aNEW"),
    ("email", "first_name", "Changed"),
    ("email", "last_name", "Name"),
    ("email", "mailing_country", "de"),
    ("email", "email_format", "T"),
    ("email", "email_lang", "de"),
    ("email", "has_opted_out_of_email", True),
    ("email", "unsubscribe_reason", "bored"),
    ("amo", "add_on_ids", "one,two"),
    ("amo", "display_name", "Someone"),
    ("amo", "email_opt_in", False),
    ("amo", "language", "de"),
    ("amo", "last_login", "2021-02-03"),
    ("amo", "location", "Berlin"),
    ("amo", "profile_url", "firefox/user/1"),
    ("amo", "user", False),
    ("amo", "user_id", "999"),
    ("amo", "username", "someone"),
    ("fxa", "fxa_id", "new-fxa-id"),
    ("fxa", "primary_email", "new-fxa@example.com"),
    ("fxa", "created_date", "2021-01-01"),
    ("fxa", "lang", "de"),
    ("fxa", "first_service", "sync"),
    ("fxa", "account_deleted", True),
    ("mofo", "mofo_email_id", "new-mofo-email"),
    ("mofo", "mofo_contact_id", "new-mofo-contact"),
    ("mofo", "mofo_relevant", False),
]


@pytest.mark.parametrize("name", ["minimal", "maximal"])
@pytest.mark.parametrize(("group", "field", "value"), EMAIL_CHANGES)
async def test_patch_changes_only_the_given_field(
    act: ContactActions, name: str, group: str, field: str, value: Any
) -> None:
    before = (await act.post(sample(name))).contact
    after = (await act.patch(before, {group: {field: value}})).contact
    expected = data_view(before)
    parsed_value = parse_contact_patch({group: {field: value}})
    section = parsed_value.email if group == "email" else parsed_value.groups[group]
    assert isinstance(section, dict)
    if expected[group] is None:
        defaults = data_view(Contact(email=before.email, **{group: _group_type(group)()}))[group]
        expected[group] = defaults
    expected[group][field] = section[field]
    if group != "email" and _is_default(group, expected[group]):
        expected[group] = None
    assert data_view(after) == expected
    assert after.email.update_timestamp > before.email.update_timestamp  # type: ignore[operator]
    assert await act.get(after) == after


def _group_type(group: str) -> Any:
    from ctms_core.domain.contact import GROUP_TYPES

    return GROUP_TYPES[group]


def _is_default(group: str, values: dict[str, Any]) -> bool:
    return values == data_view(Contact(email=_dummy(), **{group: _group_type(group)()}))[group]


async def test_patching_a_missing_satellite_creates_it_with_equal_timestamps(
    act: ContactActions,
) -> None:
    before = (await act.post(sample("minimal"))).contact
    after = (await act.patch(before, {"amo": {"display_name": "Fan"}})).contact
    assert after.amo is not None
    assert after.amo.create_timestamp == after.amo.update_timestamp is not None


@pytest.mark.parametrize(
    ("group", "field", "default"),
    [
        ("email", "email_lang", "en"),
        ("email", "double_opt_in", False),
        ("email", "first_name", None),
        ("email", "email_format", "H"),
        ("amo", "user", False),
        ("amo", "username", None),
        ("fxa", "account_deleted", False),
        ("fxa", "lang", None),
        ("mofo", "mofo_relevant", False),
    ],
)
async def test_patch_can_set_a_field_back_to_its_default(
    act: ContactActions, group: str, field: str, default: Any
) -> None:
    before = (await act.post(sample("maximal"))).contact
    after = (await act.patch(before, {group: {field: default}})).contact
    section = after.email if group == "email" else getattr(after, group)
    assert getattr(section, field) == default


async def test_satellite_that_becomes_all_default_is_removed(act: ContactActions) -> None:
    contact = (await act.post(sample("minimal"))).contact
    contact = (await act.patch(contact, {"mofo": {"mofo_relevant": True}})).contact
    assert contact.mofo is not None
    contact = (await act.patch(contact, {"mofo": {"mofo_relevant": False}})).contact
    assert contact.mofo is None
    assert (await act.get(contact)).mofo is None


async def test_patch_with_default_object_creates_nothing(act: ContactActions) -> None:
    contact = (await act.post(sample("minimal"))).contact
    after = (await act.patch(contact, {"amo": {"user": False}, "fxa": {}})).contact
    assert after.amo is None and after.fxa is None


@pytest.mark.parametrize("group", ["amo", "fxa", "mofo"])
async def test_patch_delete_removes_a_satellite_and_is_a_no_op_when_absent(
    act: ContactActions, group: str
) -> None:
    maximal = (await act.post(sample("maximal"))).contact
    assert getattr((await act.patch(maximal, {group: "DELETE"})).contact, group) is None
    minimal = (await act.post(sample("minimal"))).contact
    assert getattr((await act.patch(minimal, {group: "DELETE"})).contact, group) is None


async def test_empty_patch_still_moves_the_update_timestamp(act: ContactActions) -> None:
    before = (await act.post(sample("maximal"))).contact
    after = (await act.patch(before, {})).contact
    assert after.email.update_timestamp > before.email.update_timestamp  # type: ignore[operator]
    assert data_view(after) == data_view(before)


async def test_patch_cannot_change_the_email_id(act: ContactActions) -> None:
    contact = (await act.post(sample("minimal"))).contact
    with pytest.raises(UnprocessableRequestError) as raised:
        await act.patch(contact, {"email": {"email_id": str(uuid.uuid4())}})
    assert raised.value.detail == "cannot change email_id"
    same = await act.patch(
        contact, {"email": {"email_id": str(contact.email_id), "first_name": "X"}}
    )
    assert same.contact.email.first_name == "X"


async def test_patch_of_unknown_contact_is_not_found(contacts: ContactService) -> None:
    with pytest.raises(ContactNotFoundError) as raised:
        await contacts.patch(uuid.uuid4(), parse_contact_patch({}))
    assert raised.value.detail == "Unknown email_id"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": {"primary_email": "MOZILLA-FAN@example.com"}}, "primary_email"),
        ({"email": {"basket_token": "d9ba6182-f5dd-4728-a477-2cc11bf62b69"}}, "basket_token"),
        ({"mofo": {"mofo_email_id": "195207d2-63f2-4c9f-b149-80e9c408477a"}}, "mofo_email_id"),
        (
            {
                "fxa": {"fxa_id": "611b6788-2bba-42a6-98c9-9ce6eb9cbd34"},
                "relay_waitlist": {"geo": "fr"},
            },
            "fxa_id",
        ),
    ],
)
async def test_patch_to_another_contacts_identifier_changes_nothing(
    act: ContactActions, changes: dict[str, Any], field: str
) -> None:
    await act.post(sample("maximal"))
    mine = (await act.post(sample("minimal"))).contact
    with pytest.raises(ContactConflictError) as raised:
        await act.patch(
            mine, {**changes, "email": {**changes.get("email", {}), "first_name": "Changed"}}
        )
    assert raised.value.detail == PATCH_CONFLICT and field in raised.value.fields
    assert await act.get(mine) == mine


async def test_patch_subscribes_a_new_newsletter_with_defaults(act: ContactActions) -> None:
    contact = (await act.post(sample("minimal"))).contact
    after = (await act.patch(contact, {"newsletters": [{"name": "zzz-newsletter"}]})).contact
    new = after.newsletters[-1]
    assert (new.name, new.subscribed, new.format, new.lang, new.source) == (
        "zzz-newsletter",
        True,
        "H",
        "en",
        None,
    )
    assert len(after.newsletters) == len(contact.newsletters) + 1


async def test_patch_updates_only_the_given_newsletter_keys(act: ContactActions) -> None:
    contact = (await act.post(sample("maximal"))).contact
    after = (
        await act.patch(
            contact, {"newsletters": [{"name": "ambassadors", "format": "T", "lang": "XX"}]}
        )
    ).contact
    before_item = next(n for n in contact.newsletters if n.name == "ambassadors")
    after_item = next(n for n in after.newsletters if n.name == "ambassadors")
    assert (after_item.format, after_item.lang) == ("T", "XX")
    assert (
        after_item.subscribed,
        after_item.source,
        after_item.unsub_reason,
        after_item.create_timestamp,
    ) == (
        before_item.subscribed,
        before_item.source,
        before_item.unsub_reason,
        before_item.create_timestamp,
    )
    assert after_item.update_timestamp > before_item.update_timestamp  # type: ignore[operator]


async def test_patch_unsubscribes_one_newsletter_with_a_reason(act: ContactActions) -> None:
    contact = (await act.post(sample("maximal"))).contact
    change = {"name": "common-voice", "subscribed": False, "unsub_reason": "Too many emails."}
    after = (await act.patch(contact, {"newsletters": [change]})).contact
    item = next(n for n in after.newsletters if n.name == "common-voice")
    assert (item.subscribed, item.unsub_reason, item.format, item.lang) == (
        False,
        "Too many emails.",
        "T",
        "fr",
    )


async def test_unsubscribing_from_an_unknown_newsletter_creates_nothing(
    act: ContactActions,
) -> None:
    contact = (await act.post(sample("minimal"))).contact
    after = (
        await act.patch(contact, {"newsletters": [{"name": "unknown", "subscribed": False}]})
    ).contact
    assert [n.name for n in after.newsletters] == [n.name for n in contact.newsletters]


async def test_naming_an_unsubscribed_newsletter_does_not_resubscribe_it(
    act: ContactActions,
) -> None:
    contact = (await act.post(sample("maximal"))).contact
    after = (await act.patch(contact, {"newsletters": [{"name": "ambassadors"}]})).contact
    assert next(n for n in after.newsletters if n.name == "ambassadors").subscribed is False
    after = (
        await act.patch(after, {"newsletters": [{"name": "ambassadors", "subscribed": True}]})
    ).contact
    assert next(n for n in after.newsletters if n.name == "ambassadors").subscribed is True


async def test_unsubscribe_all_newsletters_also_unsubscribes_waitlists_keeping_their_data(
    act: ContactActions,
) -> None:
    contact = (await act.post(sample("maximal"))).contact
    after = (await act.patch(contact, {"newsletters": "UNSUBSCRIBE"})).contact
    assert len(after.newsletters) == len(contact.newsletters)
    assert not any(n.subscribed for n in after.newsletters)
    assert not any(w.subscribed for w in after.waitlists)
    assert [(w.name, w.fields, w.source) for w in after.waitlists] == [
        (w.name, w.fields, w.source) for w in contact.waitlists
    ]
    ambassadors = next(n for n in after.newsletters if n.name == "ambassadors")
    assert ambassadors.unsub_reason == "Graduated, don't have time for FSA"


async def test_waitlist_patch_rules(act: ContactActions) -> None:
    contact = (await act.post(sample("maximal"))).contact
    added = (
        await act.patch(contact, {"waitlists": [{"name": "future-tech", "fields": {"geo": "es"}}]})
    ).contact
    future = next(w for w in added.waitlists if w.name == "future-tech")
    assert (
        future.subscribed and future.fields == {"geo": "es"} and future.create_timestamp is not None
    )

    not_added = (
        await act.patch(added, {"waitlists": [{"name": "other", "subscribed": False}]})
    ).contact
    assert "other" not in {w.name for w in not_added.waitlists}

    geo = (
        await act.patch(
            not_added, {"waitlists": [{"name": "super-product", "fields": {"geo": "de"}}]}
        )
    ).contact
    assert next(w for w in geo.waitlists if w.name == "super-product").fields == {"geo": "de"}

    unsub = {"name": "a-software", "subscribed": False, "unsub_reason": "meh"}
    left = (await act.patch(geo, {"waitlists": [unsub]})).contact
    a_software = next(w for w in left.waitlists if w.name == "a-software")
    assert (a_software.subscribed, a_software.unsub_reason, a_software.source) == (
        False,
        "meh",
        "https://a-software.mozilla.org/",
    )

    untouched = (await act.patch(left, {"email": {"first_name": "x"}})).contact
    assert untouched.waitlists == left.waitlists

    everything = (await act.patch(untouched, {"waitlists": "UNSUBSCRIBE"})).contact
    assert not any(w.subscribed for w in everything.waitlists)
    assert len(everything.waitlists) == len(untouched.waitlists)


# --- legacy waitlists (docs/contract.md §6.1, §6.2 examples, docs/contract.md §6.1, §6.2, §6.3) ---------


def _waitlists(contact: Contact) -> dict[str, tuple[bool, dict[str, Any], str | None]]:
    return {w.name: (w.subscribed, w.fields, w.source) for w in contact.waitlists}


async def test_legacy_vpn_object_creates_the_vpn_waitlist(act: ContactActions) -> None:
    contact = (await act.post(sample("minimal"))).contact
    result = await act.patch(contact, {"vpn_waitlist": {"geo": "fr", "platform": "win32"}})
    assert _waitlists(result.contact) == {"vpn": (True, {"geo": "fr", "platform": "win32"}, None)}
    assert result.legacy_waitlists_used
    assert vpn_waitlist_of(result.contact) == {"geo": "fr", "platform": "win32"}


async def test_legacy_vpn_update_keeps_the_source(act: ContactActions) -> None:
    body = sample("minimal")
    body["waitlists"] = [
        {
            "name": "vpn",
            "source": "https://www.example.com/vpn_signup",
            "fields": {"geo": "es", "platform": "ios"},
        }
    ]
    contact = (await act.post(body)).contact
    after = (await act.patch(contact, {"vpn_waitlist": {"geo": "it"}})).contact
    assert _waitlists(after)["vpn"] == (
        True,
        {"geo": "it", "platform": None},
        "https://www.example.com/vpn_signup",
    )


@pytest.mark.parametrize("vpn", ["DELETE", None, {"geo": None, "platform": None}])
async def test_legacy_vpn_removal_unsubscribes_without_wiping(
    act: ContactActions, vpn: Any
) -> None:
    contact = (await act.post(sample("maximal"))).contact
    after = (await act.patch(contact, {"vpn_waitlist": vpn})).contact
    assert _waitlists(after)["vpn"] == (False, {"geo": "ca", "platform": "windows,android"}, None)
    assert vpn_waitlist_of(after) == {"geo": None, "platform": None}


async def test_legacy_relay_bundle_signup_and_unsubscription(act: ContactActions) -> None:
    contact = (await act.post(sample("minimal"))).contact
    signup = {
        "relay_waitlist": {"geo": "ru"},
        "newsletters": [{"name": "relay-vpn-bundle-waitlist"}],
    }
    contact = (await act.patch(contact, signup)).contact
    assert _waitlists(contact) == {"relay-vpn-bundle": (True, {"geo": "ru"}, None)}
    assert relay_waitlist_of(contact) == {"geo": "ru"}
    unsubscribe = {"newsletters": [{"name": "relay-vpn-bundle-waitlist", "subscribed": False}]}
    contact = (await act.patch(contact, unsubscribe)).contact
    assert _waitlists(contact) == {"relay-vpn-bundle": (False, {"geo": "ru"}, None)}


async def test_legacy_relay_geo_updates_subscribed_relay_waitlists_keeping_sources(
    act: ContactActions,
) -> None:
    body = sample("minimal")
    body["waitlists"] = [
        {"name": "relay", "source": "https://relay.example/a", "fields": {"geo": "fr"}},
        {"name": "relay-vpn-bundle", "source": "https://relay.example/b", "fields": {"geo": "fr"}},
    ]
    contact = (await act.post(body)).contact
    after = (await act.patch(contact, {"relay_waitlist": {"geo": "it"}})).contact
    assert _waitlists(after) == {
        "relay": (True, {"geo": "it"}, "https://relay.example/a"),
        "relay-vpn-bundle": (True, {"geo": "it"}, "https://relay.example/b"),
    }


async def test_legacy_relay_geo_never_resubscribes_as_a_side_effect(act: ContactActions) -> None:
    body = sample("minimal")
    body["waitlists"] = [
        {"name": "relay", "fields": {"geo": "fr"}},
        {"name": "relay-phone", "fields": {"geo": "fr"}, "subscribed": False, "unsub_reason": "no"},
    ]
    contact = (await act.post(body)).contact
    after = (await act.patch(contact, {"relay_waitlist": {"geo": "it"}})).contact
    phone = next(w for w in after.waitlists if w.name == "relay-phone")
    assert (phone.subscribed, phone.fields, phone.unsub_reason) == (False, {"geo": "fr"}, "no")


async def test_guardian_vpn_newsletter_unsubscription_unsubscribes_vpn(act: ContactActions) -> None:
    contact = (await act.post(sample("maximal"))).contact
    after = (
        await act.patch(
            contact, {"newsletters": [{"name": "guardian-vpn-waitlist", "subscribed": False}]}
        )
    ).contact
    assert _waitlists(after)["vpn"][0] is False
    assert not (await act.patch(after, {})).legacy_waitlists_used


async def test_modern_waitlists_win_over_legacy_keys(act: ContactActions) -> None:
    contact = (await act.post(sample("minimal"))).contact
    body = {"waitlists": [{"name": "vpn", "fields": {"geo": "de"}}], "vpn_waitlist": {"geo": "fr"}}
    result = await act.patch(contact, body)
    assert _waitlists(result.contact) == {"vpn": (True, {"geo": "de"}, None)}
    assert not result.legacy_waitlists_used


async def test_post_with_legacy_objects_creates_waitlists(act: ContactActions) -> None:
    body = sample("to_add")
    body["vpn_waitlist"] = {"geo": "fr", "platform": "mac"}
    body["relay_waitlist"] = {"geo": "fr"}
    result = await act.post(body)
    assert _waitlists(result.contact) == {
        "relay": (True, {"geo": "fr"}, None),
        "vpn": (True, {"geo": "fr", "platform": "mac"}, None),
    }
    assert result.legacy_waitlists_used


async def test_post_without_legacy_keys_is_not_counted_as_legacy(act: ContactActions) -> None:
    assert not (await act.post(sample("minimal"))).legacy_waitlists_used


# --- DELETE, reads -------------------------------------------------------------------------------------


async def test_delete_matches_case_insensitively_and_returns_identities(
    act: ContactActions,
) -> None:
    maximal = (await act.post(sample("maximal"))).contact
    other = (await act.post(sample("minimal"))).contact
    identities = await act.service.delete("MOZILLA-FAN@EXAMPLE.COM")
    assert identities == [identity_of(maximal)]
    with pytest.raises(ContactNotFoundError):
        await act.get(maximal)
    assert await act.get(other) == other
    with pytest.raises(EmailNotFoundError) as raised:
        await act.service.delete("MOZILLA-FAN@EXAMPLE.COM")
    assert raised.value.detail == "email MOZILLA-FAN@EXAMPLE.COM not found!"


async def test_contact_without_basket_token_can_be_deleted(act: ContactActions) -> None:
    await act.post(sample("most_minimal"))
    [identity] = await act.service.delete("ctms-most-minimal-user@example.com")
    assert identity.basket_token is None


async def test_identity_of_the_maximal_contact(act: ContactActions) -> None:
    contact = (await act.post(sample("maximal"))).contact
    identity = await act.service.identity(contact.email_id)
    assert (
        identity.amo_user_id,
        identity.fxa_id,
        identity.mofo_contact_id,
        identity.fxa_primary_email,
    ) == (
        "123",
        "611b6788-2bba-42a6-98c9-9ce6eb9cbd34",
        "5e499cc0-eeb5-4f0e-aae6-a101721874b8",
        "fxa-firefox-fan@example.com",
    )
    assert await act.service.identities(LookupCriteria(amo_user_id="123")) == [identity]


async def test_get_unknown_contact_is_not_found(contacts: ContactService) -> None:
    with pytest.raises(ContactNotFoundError):
        await contacts.get(uuid.uuid4())


async def test_computed_legacy_fields_of_the_maximal_contact(act: ContactActions) -> None:
    contact = (await act.post(sample("maximal"))).contact
    assert vpn_waitlist_of(contact) == {"geo": "ca", "platform": "windows,android"}
    assert relay_waitlist_of(contact) == {"geo": "cn"}


async def test_computed_fields_tolerate_empty_fields(act: ContactActions) -> None:
    body = sample("minimal")
    body["waitlists"] = [{"name": "vpn"}, {"name": "relay"}]
    contact = (await act.post(body)).contact
    assert vpn_waitlist_of(contact) == {"geo": None, "platform": None}
    assert relay_waitlist_of(contact) == {"geo": None}


# --- /updates ------------------------------------------------------------------------------------------


async def test_updates_pages_hand_out_a_cursor_only_when_full(
    act: ContactActions, clock: ManualClock
) -> None:
    for name in ("minimal", "maximal", "example"):
        await act.post(sample(name))
    start = datetime(2000, 1, 1, tzinfo=UTC)
    clock.advance(timedelta(seconds=1))
    now = clock.now()
    first = await act.service.updates(
        UpdatesQuery(start=start, end=None, limit=2, after=None, mofo_relevant=None)
    )
    assert len(first.items) == 2 and first.after is not None
    assert first.end == now  # `end` defaults to the current time
    second = await act.service.updates(
        UpdatesQuery(
            start=start, end=None, limit=2, after=Cursor.decode(first.after), mofo_relevant=None
        )
    )
    assert len(second.items) == 1 and second.after is None
    assert {c.email_id for c in first.items + second.items} == {
        uuid.UUID(sample(n)["email"]["email_id"]) for n in ("minimal", "maximal", "example")
    }


async def test_put_of_a_get_document_with_all_null_legacy_objects_creates_no_waitlist(
    act: ContactActions,
) -> None:
    """GET documents echo `vpn_waitlist: {geo: null, platform: null}`; putting one back is lossless."""
    await act.post(sample("minimal"))
    body = sample("minimal")
    body["vpn_waitlist"] = {"geo": None, "platform": None}
    body["relay_waitlist"] = {"geo": None}
    result = await act.put(body)
    assert result.contact.waitlists == ()
    assert not result.legacy_waitlists_used
