"""Bulk export and the private identity API: `GET /updates`, `GET /identities`, `GET /identity/{id}`
(docs/contract.md §2.6, §4.7, §7)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.http_harness import Api
from tests.samples import sample

START = datetime(2020, 1, 1, tzinfo=UTC)
CURSOR_OF_MINIMAL = (
    "OTNkYjgzZDQtNDExOS00ZTBjLWFmODctYTcxMzc4NmZhODFkLDIwMjAtMDEtMjIgMTU6MjQ6MDArMDA6MDA="
)


def cursor(email_id: str, timestamp: str) -> str:
    return base64.urlsafe_b64encode(f"{email_id},{timestamp}".encode()).decode()


async def seed_three(api: Api) -> list[str]:
    """minimal (2020-01-22 15:24), example (2021-01-28), maximal (2022-01-01); ids in that order."""
    ids = []
    for name, at in (
        ("minimal", datetime(2020, 1, 22, 15, 24, tzinfo=UTC)),
        ("example", datetime(2021, 1, 28, 21, 26, 57, 511000, tzinfo=UTC)),
        ("maximal", datetime(2022, 1, 1, tzinfo=UTC)),
    ):
        ids.append(str((await api.seed(sample(name), at=at)).email_id))
    return ids


def next_query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


@pytest.mark.parametrize(
    ("query", "location"),
    [
        ({"limit": "-11", "after": CURSOR_OF_MINIMAL}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "-3"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "null"}, "limit"),
        ({"after": "null"}, "after"),
        ({"after": "hello"}, "after"),
        ({"after": base64.urlsafe_b64encode(b"no comma here").decode()}, "after"),
        ({"after": cursor("not-a-uuid", "2020-01-01 00:00:00+00:00")}, "after"),
        ({"after": cursor(str(uuid.uuid4()), "yesterday")}, "after"),
        ({"mofo_relevant": "nah"}, "mofo_relevant"),
        ({"end": "never"}, "end"),
    ],
)
async def test_invalid_parameters_are_422_in_the_standard_shape(
    api: Api, query: dict[str, str], location: str
) -> None:
    response = await api.get("/updates", params={"start": "2020-01-01", **query})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert detail[0]["loc"] == ["query", location]
    assert set(detail[0]) == {"loc", "msg", "type"}


async def test_limit_messages_are_the_v3_ones(api: Api) -> None:
    low = await api.get("/updates", params={"start": "2020-01-01", "limit": "0"})
    high = await api.get("/updates", params={"start": "2020-01-01", "limit": "1001"})
    assert low.json()["detail"][0]["msg"] == '"limit" should be greater than 0'
    assert high.json()["detail"][0]["msg"] == '"limit" should be less than or equal to 1000'


async def test_missing_start_is_422(api: Api) -> None:
    response = await api.get("/updates")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "start"]


@pytest.mark.parametrize(
    "query",
    [
        {
            "start": "2020-01-01T00:00:00+00:00",
            "end": "2030-01-01T00:00:00+00:00",
            "limit": "1",
            "after": CURSOR_OF_MINIMAL,
            "mofo_relevant": "true",
        },
        {"start": "2020-01-01", "end": "", "limit": "", "after": "", "mofo_relevant": ""},
        {"start": "1577836800"},
        {"start": "2020-01-01", "mofo_relevant": "yes"},
    ],
)
async def test_valid_parameter_sets_are_200(api: Api, query: dict[str, str]) -> None:
    response = await api.get("/updates", params=query)
    assert response.status_code == 200, response.text


async def test_page_after_a_cursor_holds_the_next_contact_and_a_next_link(api: Api) -> None:
    _minimal, example, maximal = await seed_three(api)
    response = await api.get(
        "/updates", params={"start": "2019-01-01", "limit": "1", "after": CURSOR_OF_MINIMAL}
    )
    body = response.json()
    assert list(body) == ["start", "end", "limit", "after", "next", "items"]
    assert body["start"] == "2019-01-01T00:00:00+00:00"
    assert [item["email"]["email_id"] for item in body["items"]] == [example]
    item = body["items"][0]
    assert list(item) == [
        "amo",
        "email",
        "fxa",
        "mofo",
        "newsletters",
        "waitlists",
        "vpn_waitlist",
        "relay_waitlist",
    ]
    assert item["email"]["update_timestamp"] == "2021-01-28T21:26:57.511000+00:00"
    assert body["after"] == cursor(example, "2021-01-28 21:26:57.511000+00:00")
    assert body["next"] is not None
    last = await api.get(
        "/updates",
        params={"start": "2019-01-01", "after": cursor(maximal, "2022-01-01 00:00:00+00:00")},
    )
    assert last.json()["items"] == []
    assert last.json()["next"] is None
    assert last.json()["after"] is None


async def test_next_link_is_url_encoded_and_keeps_every_parameter(api: Api) -> None:
    await seed_three(api)
    response = await api.get(
        "/updates",
        params={
            "start": "2019-01-01T00:00:00+00:00",
            "end": "2030-01-01T00:00:00+00:00",
            "limit": "1",
            "mofo_relevant": "false",
        },
    )
    link = response.json()["next"]
    assert link.startswith("http://localhost:8000/updates?")
    assert "+" not in link.partition("?")[2]
    assert next_query(link) == {
        "start": ["2019-01-01T00:00:00+00:00"],
        "end": ["2030-01-01T00:00:00+00:00"],
        "limit": ["1"],
        "after": [response.json()["after"]],
        "mofo_relevant": ["false"],
    }


async def test_following_next_links_visits_every_contact_once_even_with_shared_timestamps(
    api: Api,
) -> None:
    """Strict keyset paging (docs/contract.md §7.2): v3 looped forever when more than `limit` contacts
    shared one update timestamp."""
    shared = datetime(2021, 6, 1, tzinfo=UTC)
    expected = set()
    for index in range(7):
        body = {"email": {"email_id": str(uuid.uuid4()), "primary_email": f"c{index}@example.com"}}
        expected.add(str((await api.seed(body, at=shared)).email_id))
    seen: list[str] = []
    url: str | None = "/updates?" + "start=2021-01-01&limit=2"
    for _ in range(10):
        assert url is not None
        response = await api.get(url.removeprefix("http://localhost:8000"))
        assert response.status_code == 200
        seen += [item["email"]["email_id"] for item in response.json()["items"]]
        url = response.json()["next"]
        if url is None:
            break
    assert url is None
    assert sorted(seen) == sorted(expected)


async def test_time_bounds_include_start_and_exclude_end(api: Api) -> None:
    minimal, example, _ = await seed_three(api)
    response = await api.get(
        "/updates",
        params={"start": "2020-01-22T15:24:00+00:00", "end": "2022-01-01T00:00:00+00:00"},
    )
    assert [item["email"]["email_id"] for item in response.json()["items"]] == [minimal, example]


@pytest.mark.parametrize(("flag", "expected"), [(None, 4), ("true", 1), ("false", 3)])
async def test_mofo_relevant_filters_contacts(api: Api, flag: str | None, expected: int) -> None:
    await seed_three(api)  # minimal and example: no mofo; maximal: relevant
    not_relevant = sample("to_add")
    not_relevant["mofo"] = {"mofo_contact_id": "x", "mofo_relevant": False}
    await api.seed(not_relevant, at=datetime(2022, 2, 1, tzinfo=UTC))
    query: dict[str, Any] = {"start": "2019-01-01"}
    if flag is not None:
        query["mofo_relevant"] = flag
    response = await api.get("/updates", params=query)
    assert len(response.json()["items"]) == expected


async def test_end_defaults_to_now(api: Api) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = await api.get("/updates", params={"start": "2019-01-01"})
    end = datetime.fromisoformat(response.json()["end"])
    assert end >= before
    assert response.json()["limit"] == 100


# --- identities --------------------------------------------------------------------------------------------

MAXIMAL_IDENTITY = {
    "email_id": "67e52c77-950f-4f28-accb-bb3ea1a2c51a",
    "primary_email": "mozilla-fan@example.com",
    "basket_token": "d9ba6182-f5dd-4728-a477-2cc11bf62b69",
    "sfdc_id": "001A000001aMozFan",
    "mofo_contact_id": "5e499cc0-eeb5-4f0e-aae6-a101721874b8",
    "mofo_email_id": "195207d2-63f2-4c9f-b149-80e9c408477a",
    "amo_user_id": "123",
    "fxa_id": "611b6788-2bba-42a6-98c9-9ce6eb9cbd34",
    "fxa_primary_email": "fxa-firefox-fan@example.com",
}
MINIMAL_IDENTITY = {
    "email_id": "93db83d4-4119-4e0c-af87-a713786fa81d",
    "primary_email": "ctms-user@example.com",
    "basket_token": "142e20b6-1ef5-43d8-b5f4-597430e956d7",
    "sfdc_id": "001A000001aABcDEFG",
    "mofo_contact_id": None,
    "mofo_email_id": None,
    "amo_user_id": None,
    "fxa_id": None,
    "fxa_primary_email": None,
}


@pytest.mark.parametrize(
    ("name", "identity"), [("maximal", MAXIMAL_IDENTITY), ("minimal", MINIMAL_IDENTITY)]
)
async def test_identity_by_id_lists_every_identifier_in_order(
    api: Api, name: str, identity: dict[str, Any]
) -> None:
    await api.seed(sample(name))
    response = await api.get(f"/identity/{identity['email_id']}")
    assert response.status_code == 200
    assert response.json() == identity
    assert list(response.json()) == list(MAXIMAL_IDENTITY)


async def test_identity_of_an_unknown_id_is_404(api: Api) -> None:
    response = await api.get(f"/identity/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Unknown email_id"}


async def test_identity_with_a_bad_id_is_422(api: Api) -> None:
    response = await api.get("/identity/123")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "email_id"]


@pytest.mark.parametrize(("name", "value"), list(MAXIMAL_IDENTITY.items()))
async def test_identities_by_each_identifier(api: Api, name: str, value: str) -> None:
    await api.seed(sample("maximal"))
    await api.seed(sample("minimal"))
    response = await api.get("/identities", params={name: value})
    assert response.status_code == 200
    assert response.json() == [MAXIMAL_IDENTITY]


async def test_identities_combine_identifiers_with_and(api: Api) -> None:
    await api.seed(sample("maximal"))
    await api.seed(sample("minimal"))
    same = await api.get(
        "/identities", params={"sfdc_id": "001A000001aMozFan", "amo_user_id": "123"}
    )
    different = await api.get(
        "/identities",
        params={"sfdc_id": "001A000001aMozFan", "primary_email": "ctms-user@example.com"},
    )
    with_empty = await api.get(
        "/identities", params={"sfdc_id": "001A000001aMozFan", "amo_user_id": ""}
    )
    unknown = await api.get("/identities", params={"sfdc_id": "nobody"})
    none = await api.get("/identities")
    assert same.json() == [MAXIMAL_IDENTITY]
    assert different.json() == []
    assert with_empty.json() == []
    assert unknown.json() == []
    assert none.status_code == 400
