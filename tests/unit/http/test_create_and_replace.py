"""Creating and replacing contacts: `POST /ctms` and `PUT /ctms/{email_id}` (docs/contract.md §4.2, §4.3)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.http_harness import Api, RunApi, make_settings
from tests.samples import sample, sample_names

# What Basket leaves out when it sends a contact it read back: the computed legacy fields and `status`.
PUT_SKIPS = ("vpn_waitlist", "relay_waitlist", "status")
SERVER_SET = ("create_timestamp", "update_timestamp", "vpn_waitlist", "relay_waitlist", "status")


def client_fields(document: Any) -> Any:
    """The client-controlled part of a contact document: without timestamps and computed fields."""
    if isinstance(document, dict):
        return {
            key: client_fields(value) for key, value in document.items() if key not in SERVER_SET
        }
    if isinstance(document, list):
        return [client_fields(item) for item in document]
    return document


def expected_id(body: dict[str, Any]) -> str:
    return str(body["email"]["email_id"]).lower()


# --- POST /ctms --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sample_names())
@pytest.mark.parametrize("id_mode", ["given", "absent", "null"])
async def test_each_sample_is_created_with_location_and_reads_back_identically(
    api: Api, name: str, id_mode: str
) -> None:
    body = sample(name)
    if id_mode == "absent":
        del body["email"]["email_id"]
    elif id_mode == "null":
        body["email"]["email_id"] = None
    response = await api.post("/ctms", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    email_id = created["email"]["email_id"]
    if id_mode == "given":
        assert email_id == expected_id(sample(name))
    assert response.headers["Location"] == f"/ctms/{email_id}"
    assert created["status"] == "ok"
    assert await api.read(email_id) == created


@pytest.mark.parametrize("name", sample_names())
async def test_posting_the_same_contact_again_is_200_with_location(api: Api, name: str) -> None:
    first = await api.post("/ctms", json=sample(name))
    again = await api.post("/ctms", json=sample(name))
    assert again.status_code == 200
    assert again.headers["Location"] == first.headers["Location"]
    assert again.json() == first.json()


async def test_reposting_what_get_returned_is_an_idempotent_replay(api: Api) -> None:
    created = await api.create(sample("maximal"))
    response = await api.post("/ctms", json=created)
    assert response.status_code == 200


async def test_default_sections_are_not_stored(api: Api) -> None:
    await api.create(sample("simple_default"))
    await api.create(sample("default_newsletter"))
    await api.create(sample("default_waitlist"))
    stored = {str(email_id): c for email_id, c in (await api.stored_contacts()).items()}
    assert stored["4f98b303-8863-421f-95d3-847cd4d83c9f"].amo is None
    assert stored["dd2bc52c-49e4-4df9-95a8-197d3a7794cd"].newsletters == ()
    assert stored["0a6ecca3-d007-4bd4-b596-c09da94f0fef"].waitlists == ()
    read = await api.read("4f98b303-8863-421f-95d3-847cd4d83c9f")
    assert read["amo"]["create_timestamp"] is None


async def test_upper_case_ids_are_stored_lower_case(api: Api) -> None:
    created = await api.create(sample("default_waitlist"))
    assert created["email"]["email_id"] == "0a6ecca3-d007-4bd4-b596-c09da94f0fef"
    assert created["email"]["basket_token"] == "6d9a4e1b-52a6-4c8e-9d7b-31d3c7b5e0a2"


async def test_same_id_with_other_data_is_409_and_changes_nothing(api: Api) -> None:
    created = await api.create(sample("minimal"))
    changed = sample("minimal")
    changed["email"]["mailing_country"] = "fr"
    response = await api.post("/ctms", json=changed)
    assert response.status_code == 409
    assert response.json() == {"detail": "Contact already exists", "conflicts": ["email_id"]}
    assert await api.read(created["email"]["email_id"]) == created


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("primary_email", "CTMS-USER@example.com"),
        ("basket_token", "142e20b6-1ef5-43d8-b5f4-597430e956d7"),
    ],
)
async def test_other_id_with_a_taken_identifier_is_409_naming_it(
    api: Api, field: str, value: str
) -> None:
    await api.create(sample("minimal"))
    other = sample("to_add")
    other["email"][field] = value
    response = await api.post("/ctms", json=other)
    assert response.status_code == 409
    assert response.json() == {"detail": "Contact already exists", "conflicts": [field]}
    assert len(await api.stored_contacts()) == 1


async def test_malformed_json_is_422_even_without_credentials(api: Api) -> None:
    response = await api.post("/ctms", content=b"not json", headers={})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["body", 0],
                "msg": "Expecting value: line 1 column 1 (char 0)",
                "type": "value_error.jsondecode",
            }
        ]
    }
    assert "trace" not in api.log_fields()


async def test_invalid_body_without_credentials_is_401(api: Api) -> None:
    response = await api.post("/ctms", json={"email": {"primary_email": None}}, headers={})
    assert response.status_code == 401


async def test_body_of_another_content_type_is_422_not_a_dict(api: Api) -> None:
    response = await api.post(
        "/ctms", content=b'{"email": {}}', headers={**api.auth(), "Content-Type": "text/plain"}
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}]
    }


async def test_json_suffix_content_types_are_json(api: Api) -> None:
    response = await api.post(
        "/ctms",
        content=b'{"email": {"primary_email": "suffix@example.com"}}',
        headers={**api.auth(), "Content-Type": "application/vnd.api+json; charset=utf-8"},
    )
    assert response.status_code == 201


async def test_body_without_content_type_is_parsed_as_json(api: Api) -> None:
    response = await api.post("/ctms", content=b'{"email": {"primary_email": "a@example.com"}}')
    assert response.status_code == 201


async def test_empty_body_is_422_field_required(api: Api) -> None:
    response = await api.post("/ctms", content=b"")
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"loc": ["body"], "msg": "field required", "type": "value_error.missing"}
    ]


async def test_json_that_is_not_an_object_is_422(api: Api) -> None:
    response = await api.post("/ctms", json=["a list"])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]


async def test_every_invalid_value_of_a_body_is_reported(api: Api) -> None:
    body = sample("maximal")
    body["email"]["primary_email"] = "not an address"
    body["fxa"]["created_date"] = "x" * 51
    body["newsletters"][0]["format"] = "X"
    response = await api.post("/ctms", json=body)
    assert response.status_code == 422
    locations = [item["loc"] for item in response.json()["detail"]]
    assert ["body", "email", "primary_email"] in locations
    assert ["body", "fxa", "created_date"] in locations
    assert ["body", "newsletters", 0, "format"] in locations


@pytest.mark.parametrize("group", ["newsletters", "waitlists"])
async def test_duplicate_item_names_are_422(api: Api, group: str) -> None:
    body = sample("minimal")
    body[group] = [{"name": "twice"}, {"name": "twice"}]
    response = await api.post("/ctms", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", group, 1, "name"]


@pytest.mark.parametrize(
    "address",
    [
        "no-at-sign",
        "two@@example.com",
        "@example.com",
        "a b@example.com",
        "x" * 250 + "@example.com",
    ],
)
async def test_primary_email_must_look_like_an_address(api: Api, address: str) -> None:
    response = await api.post("/ctms", json={"email": {"primary_email": address}})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "email", "primary_email"]


@pytest.mark.parametrize(
    ("path", "size"),
    [
        (("email", "first_name"), 256),
        (("email", "email_lang"), 6),
        (("amo", "add_on_ids"), 501),
        (("amo", "profile_url"), 41),
        (("fxa", "created_date"), 51),
        (("fxa", "primary_email"), 256),
        (("mofo", "mofo_email_id"), 256),
        (("newsletters", 0, "name"), 256),
        (("waitlists", 0, "fields", "geo"), 101),
    ],
)
async def test_strings_longer_than_their_column_are_422(
    api: Api, path: tuple[str | int, ...], size: int
) -> None:
    """docs/contract.md §5.2: every string is checked against its column size, never a database error."""
    body = sample("maximal")
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = "x" * size
    response = await api.post("/ctms", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", *path]


async def test_email_id_must_be_a_version_4_uuid(api: Api) -> None:
    body = sample("minimal")
    body["email"]["email_id"] = "a4d3d3a5-1d3c-1c8b-a0b0-0f1e2d3c4b5a"
    response = await api.post("/ctms", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "email", "email_id"]


async def test_relay_newsletter_without_a_country_is_422(api: Api) -> None:
    body = sample("minimal")
    body["newsletters"] = [{"name": "relay-phone-masking-waitlist"}]
    response = await api.post("/ctms", json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"loc": ["body", "__root__"], "msg": "Relay country missing", "type": "value_error"}
    ]


async def test_creating_a_traced_contact_logs_trace_and_the_body(api: Api) -> None:
    body = sample("minimal")
    body["email"]["primary_email"] = "fan+trace-me-mozilla-1@example.com"
    await api.create(body)
    fields = api.log_fields()
    assert fields["trace"] == "fan+trace-me-mozilla-1@example.com"
    assert fields["trace_json"] == body
    replay = await api.post("/ctms", json=body)
    assert replay.status_code == 200
    assert api.log_fields()["trace_json"] == body


async def test_oversized_body_is_413_before_authentication(
    running_api: RunApi,
) -> None:
    async with running_api(make_settings(max_body_bytes=300)) as small:
        response = await small.post("/ctms", json=sample("maximal"), headers={})
        assert response.status_code == 413
        assert response.json() == {"detail": "Request Entity Too Large"}
        assert (await small.post("/ctms", json=sample("most_minimal"))).status_code == 201


# --- PUT /ctms/{email_id} ----------------------------------------------------------------------------------


async def test_put_creates_then_replaces_always_201_without_location(api: Api) -> None:
    body = sample("maximal")
    url = f"/ctms/{body['email']['email_id']}"
    first = await api.put(url, json=body)
    assert first.status_code == 201
    assert "Location" not in first.headers
    again = await api.put(url, json=body)
    assert again.status_code == 201
    assert client_fields(again.json()) == client_fields(first.json())
    replay = await api.post("/ctms", json=sample("maximal"))
    assert replay.status_code == 200  # what PUT stored equals the input


async def test_put_with_another_id_in_the_body_is_422(api: Api) -> None:
    response = await api.put("/ctms/d1da1c99-fe09-44db-9c68-78a75752574d", json=sample("minimal"))
    assert response.status_code == 422
    assert response.json() == {"detail": "email_id in path must match email_id in contact"}


@pytest.mark.parametrize("email_id", [None, "absent"])
async def test_put_without_an_email_id_in_the_body_is_422_and_stores_nothing(
    api: Api, email_id: str | None
) -> None:
    body = sample("minimal")
    url = f"/ctms/{body['email']['email_id']}"
    if email_id is None:
        body["email"]["email_id"] = None
    else:
        del body["email"]["email_id"]
    response = await api.put(url, json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "email", "email_id"]
    assert await api.stored_contacts() == {}


async def test_put_reports_path_and_body_problems_together(api: Api) -> None:
    response = await api.put("/ctms/not-a-uuid", json={"email": {}})
    assert response.status_code == 422
    locations = [item["loc"] for item in response.json()["detail"]]
    assert locations[0] == ["path", "email_id"]
    assert ["body", "email", "primary_email"] in locations


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("primary_email", "new-address@example.com"),
        ("basket_token", "a4d3d3a5-1d3c-4c8b-a0b0-0f1e2d3c4b5a"),
    ],
)
async def test_put_changes_an_identifier(api: Api, field: str, value: str) -> None:
    body = sample("minimal")
    await api.create(body)
    body["email"][field] = value
    response = await api.put(f"/ctms/{body['email']['email_id']}", json=body)
    assert response.status_code == 201
    assert response.json()["email"][field] == value


@pytest.mark.parametrize("field", ["primary_email", "basket_token"])
async def test_put_with_another_contacts_identifier_is_409(api: Api, field: str) -> None:
    original = await api.create(sample("minimal"))
    other = sample("to_add")
    other["email"][field] = sample("minimal")["email"][field]
    response = await api.put(f"/ctms/{other['email']['email_id']}", json=other)
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Contact with primary_email or basket_token already exists",
        "conflicts": [field],
    }
    assert await api.read(original["email"]["email_id"]) == original


async def test_put_of_a_traced_contact_logs_trace_and_the_body(api: Api) -> None:
    body = sample("to_add")
    body["email"]["primary_email"] = "x+trace_me_mozilla_7@example.com"
    await api.put(f"/ctms/{body['email']['email_id']}", json=body)
    assert api.log_fields()["trace"] == "x+trace_me_mozilla_7@example.com"
    assert api.log_fields()["trace_json"] == body


def add_newsletter(document: dict[str, Any]) -> None:
    document["newsletters"].append(
        {
            "name": "zzz-added",
            "subscribed": True,
            "format": "H",
            "lang": "en",
            "source": None,
            "unsub_reason": None,
        }
    )


def drop_last_newsletter(document: dict[str, Any]) -> None:
    document["newsletters"] = document["newsletters"][:-1]


def drop_amo(document: dict[str, Any]) -> None:
    del document["amo"]


def change_email(document: dict[str, Any]) -> None:
    document["email"]["primary_email"] = "changed-address@example.com"


def flip_and_add_newsletters(document: dict[str, Any]) -> None:
    if document["newsletters"]:
        last = document["newsletters"][-1]
        last["subscribed"] = not last["subscribed"]
    for name, subscribed in (("zzz-one", True), ("zzz-two", False)):
        document["newsletters"].append(
            {
                "name": name,
                "subscribed": subscribed,
                "format": "T",
                "lang": "fr",
                "source": "https://www.example.com/",
                "unsub_reason": None,
            }
        )


def flip_and_add_waitlists(document: dict[str, Any]) -> None:
    if document["waitlists"]:
        last = document["waitlists"][-1]
        last["subscribed"] = not last["subscribed"]
    for name, subscribed in (("zzz-one", True), ("zzz-two", False)):
        document["waitlists"].append(
            {
                "name": name,
                "source": None,
                "fields": {"geo": "fr"},
                "subscribed": subscribed,
                "unsub_reason": None,
            }
        )


MODIFIERS: dict[str, Callable[[dict[str, Any]], None]] = {
    "add_newsletter": add_newsletter,
    "drop_last_newsletter": drop_last_newsletter,
    "drop_amo": drop_amo,
    "change_email": change_email,
    "flip_and_add_newsletters": flip_and_add_newsletters,
    "flip_and_add_waitlists": flip_and_add_waitlists,
}


@pytest.mark.parametrize("modifier", MODIFIERS)
@pytest.mark.parametrize("name", sample_names())
async def test_basket_round_trip_get_modify_put_is_lossless(
    api: Api, name: str, modifier: str
) -> None:
    created = await api.create(sample(name))
    email_id = created["email"]["email_id"]
    document = await api.read(email_id)
    modified = {
        key: value for key, value in copy.deepcopy(document).items() if key not in PUT_SKIPS
    }
    MODIFIERS[modifier](modified)
    response = await api.put(f"/ctms/{email_id}", json=modified)
    assert response.status_code == 201, response.text
    stored = await api.read(email_id)
    expected = client_fields(modified)
    if modifier == "drop_amo":
        expected["amo"] = client_fields(created)["amo"] | dict(DEFAULT_AMO.items())
    assert client_fields(stored) == expected
    assert stored == response.json()


DEFAULT_AMO = {
    "add_on_ids": None,
    "display_name": None,
    "email_opt_in": False,
    "language": None,
    "last_login": None,
    "location": None,
    "profile_url": None,
    "user": False,
    "user_id": None,
    "username": None,
}


async def test_putting_back_a_get_document_with_its_computed_fields_changes_nothing(
    api: Api,
) -> None:
    created = await api.create(sample("minimal"))
    email_id = created["email"]["email_id"]
    document = await api.read(email_id)
    response = await api.put(f"/ctms/{email_id}", json=document)
    assert response.status_code == 201
    assert client_fields(response.json()) == client_fields(document)
