"""Reading contacts: `GET /ctms/{email_id}` and `GET /ctms?<identifier>` (docs/contract.md §4.1, §4.6)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from msgspec.structs import replace

from tests.builders import contact_from_body
from tests.http_harness import Api
from tests.samples import sample

MAXIMAL_ID = "67e52c77-950f-4f28-accb-bb3ea1a2c51a"
CREATED = datetime(2010, 1, 1, 8, 4, tzinfo=UTC)
UPDATED = datetime(2020, 12, 5, 19, 21, 50, 908000, tzinfo=UTC)

NULL_AMO = {
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
    "create_timestamp": None,
    "update_timestamp": None,
}
NULL_FXA = {
    "fxa_id": None,
    "primary_email": None,
    "created_date": None,
    "lang": None,
    "first_service": None,
    "account_deleted": False,
}
NULL_MOFO = {"mofo_email_id": None, "mofo_contact_id": None, "mofo_relevant": False}


def timestamps(created: str, updated: str) -> dict[str, str]:
    return {"create_timestamp": created, "update_timestamp": updated}


MAXIMAL_BODY: dict[str, Any] = {
    "amo": {
        "add_on_ids": "fanfox,foxfan",
        "display_name": "#1 Mozilla Fan",
        "email_opt_in": True,
        "language": "fr,en",
        "last_login": "2020-01-27",
        "location": "The Inter",
        "profile_url": "firefox/user/14508209",
        "user": True,
        "user_id": "123",
        "username": "Mozilla1Fan",
        **timestamps("2017-05-12T15:16:00+00:00", "2020-01-27T14:25:43+00:00"),
    },
    "email": {
        "primary_email": "mozilla-fan@example.com",
        "basket_token": "d9ba6182-f5dd-4728-a477-2cc11bf62b69",
        "double_opt_in": True,
        "sfdc_id": "001A000001aMozFan",
        "first_name": "Fan",
        "last_name": "of Mozilla",
        "mailing_country": "ca",
        "email_format": "H",
        "email_lang": "fr",
        "has_opted_out_of_email": False,
        "unsubscribe_reason": "done with this mailing list",
        "email_id": MAXIMAL_ID,
        **timestamps("2010-01-01T08:04:00+00:00", "2020-12-05T19:21:50.908000+00:00"),
    },
    "fxa": {
        "fxa_id": "611b6788-2bba-42a6-98c9-9ce6eb9cbd34",
        "primary_email": "fxa-firefox-fan@example.com",
        "created_date": "2019-05-22T08:29:31.906094+00:00",
        "lang": "fr,fr-CA",
        "first_service": "monitor",
        "account_deleted": False,
    },
    "mofo": {
        "mofo_email_id": "195207d2-63f2-4c9f-b149-80e9c408477a",
        "mofo_contact_id": "5e499cc0-eeb5-4f0e-aae6-a101721874b8",
        "mofo_relevant": True,
    },
    "newsletters": [
        {
            "name": "ambassadors",
            "subscribed": False,
            "format": "H",
            "lang": "en",
            "source": "https://www.mozilla.org/en-US/contribute/studentambassadors/",
            "unsub_reason": "Graduated, don't have time for FSA",
            **timestamps("2010-01-01T08:04:00+00:00", "2020-12-05T19:21:50.908000+00:00"),
        },
        {
            "name": "common-voice",
            "subscribed": True,
            "format": "T",
            "lang": "fr",
            "source": "https://commonvoice.mozilla.org/fr",
            "unsub_reason": None,
            **timestamps("2010-01-01T08:04:00+00:00", "2020-12-05T19:21:50.908000+00:00"),
        },
        {
            "name": "firefox-accounts-journey",
            "subscribed": False,
            "format": "H",
            "lang": "fr",
            "source": None,
            "unsub_reason": None,
            **timestamps("2010-01-01T08:04:00+00:00", "2020-12-05T19:21:50.908000+00:00"),
        },
        {
            "name": "firefox-os",
            "subscribed": True,
            "format": "H",
            "lang": "en",
            "source": None,
            "unsub_reason": None,
            **timestamps("2010-01-01T08:04:00+00:00", "2020-12-05T19:21:50.908000+00:00"),
        },
        {
            "name": "hubs",
            "subscribed": True,
            "format": "H",
            "lang": "fr",
            "source": None,
            "unsub_reason": None,
            **timestamps("2010-01-01T08:04:00+00:00", "2020-12-05T19:21:50.908000+00:00"),
        },
        {
            "name": "mozilla-festival",
            "subscribed": True,
            "format": "H",
            "lang": "en",
            "source": None,
            "unsub_reason": None,
            **timestamps("2010-01-01T08:04:00+00:00", "2020-12-05T19:21:50.908000+00:00"),
        },
        {
            "name": "mozilla-foundation",
            "subscribed": True,
            "format": "H",
            "lang": "fr",
            "source": None,
            "unsub_reason": None,
            **timestamps("2010-01-01T08:04:00+00:00", "2020-12-05T19:21:50.908000+00:00"),
        },
    ],
    "waitlists": [
        {
            "name": "a-software",
            "source": "https://a-software.mozilla.org/",
            "fields": {"geo": "fr"},
            "subscribed": True,
            "unsub_reason": None,
            **timestamps("2010-01-01T08:04:00+00:00", "2020-12-05T19:21:50.908000+00:00"),
        },
        {
            "name": "relay",
            "source": None,
            "fields": {"geo": "cn"},
            "subscribed": True,
            "unsub_reason": None,
            **timestamps("2010-01-01T08:04:00+00:00", "2020-12-05T19:21:50.908000+00:00"),
        },
        {
            "name": "super-product",
            "source": None,
            "fields": {"geo": "fr", "platform": "win64"},
            "subscribed": True,
            "unsub_reason": None,
            **timestamps("2010-01-01T08:04:00+00:00", "2020-12-05T19:21:50.908000+00:00"),
        },
        {
            "name": "vpn",
            "source": None,
            "fields": {"geo": "ca", "platform": "windows,android"},
            "subscribed": True,
            "unsub_reason": None,
            **timestamps("2010-01-01T08:04:00+00:00", "2020-12-05T19:21:50.908000+00:00"),
        },
    ],
    "vpn_waitlist": {"geo": "ca", "platform": "windows,android"},
    "relay_waitlist": {"geo": "cn"},
    "status": "ok",
}


async def seed_maximal(api: Api) -> None:
    contact = contact_from_body(sample("maximal"), at=UPDATED)
    assert contact.amo is not None
    await api.seed_contact(
        replace(
            contact,
            email=replace(contact.email, create_timestamp=CREATED),
            amo=replace(
                contact.amo,
                create_timestamp=datetime(2017, 5, 12, 15, 16, tzinfo=UTC),
                update_timestamp=datetime(2020, 1, 27, 14, 25, 43, tzinfo=UTC),
            ),
            newsletters=tuple(replace(n, create_timestamp=CREATED) for n in contact.newsletters),
            waitlists=tuple(replace(w, create_timestamp=CREATED) for w in contact.waitlists),
        )
    )


# --- GET /ctms/{email_id} ----------------------------------------------------------------------------------


async def test_maximal_contact_reads_exactly_as_v3_in_key_order(api: Api) -> None:
    await seed_maximal(api)
    response = await api.get(f"/ctms/{MAXIMAL_ID}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body == MAXIMAL_BODY
    assert list(body) == list(MAXIMAL_BODY)
    for group in ("amo", "email", "fxa", "mofo"):
        assert list(body[group]) == list(MAXIMAL_BODY[group])
    assert list(body["newsletters"][0]) == list(MAXIMAL_BODY["newsletters"][0])
    assert list(body["waitlists"][0]) == list(MAXIMAL_BODY["waitlists"][0])
    assert "products" not in response.text


async def test_contact_without_satellites_reads_with_default_objects(api: Api) -> None:
    contact = await api.seed(
        {
            "email": {
                "email_id": "62d8d3c6-95f3-4ed6-b176-7f69acff22f6",
                "primary_email": "one@example.com",
            },
            "newsletters": [
                {
                    "name": "newsletter-0",
                    "format": "T",
                    "lang": "fr",
                    "source": "https://www.example.com/",
                }
            ],
        },
        at=CREATED,
    )
    body = await api.read(contact.email_id)
    assert body["amo"] == NULL_AMO
    assert body["fxa"] == NULL_FXA
    assert body["mofo"] == NULL_MOFO
    assert body["newsletters"] == [
        {
            "name": "newsletter-0",
            "subscribed": True,
            "format": "T",
            "lang": "fr",
            "source": "https://www.example.com/",
            "unsub_reason": None,
            **timestamps("2010-01-01T08:04:00+00:00", "2010-01-01T08:04:00+00:00"),
        }
    ]
    assert body["waitlists"] == []
    assert body["vpn_waitlist"] == {"geo": None, "platform": None}
    assert body["relay_waitlist"] == {"geo": None}
    assert body["email"]["basket_token"] is None
    assert list(body)[-1] == "status"


async def test_unknown_email_id_is_404(api: Api) -> None:
    response = await api.get(f"/ctms/{MAXIMAL_ID}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Unknown email_id"}


async def test_email_id_that_is_not_a_uuid_is_422_at_the_path(api: Api) -> None:
    response = await api.get("/ctms/not-a-uuid")
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["path", "email_id"],
                "msg": "value is not a valid uuid",
                "type": "type_error.uuid",
            }
        ]
    }


async def test_upper_case_email_id_in_the_path_reads_the_contact(api: Api) -> None:
    await seed_maximal(api)
    response = await api.get(f"/ctms/{MAXIMAL_ID.upper()}")
    assert response.status_code == 200
    assert response.json()["email"]["email_id"] == MAXIMAL_ID


@pytest.mark.parametrize("name", ["vpn", "relay"])
async def test_legacy_waitlist_without_fields_reads_as_nulls(api: Api, name: str) -> None:
    body = sample("minimal")
    body["waitlists"] = [{"name": name}]
    contact = await api.seed(body)
    read = await api.read(contact.email_id)
    assert read["vpn_waitlist"] == {"geo": None, "platform": None}
    assert read["relay_waitlist"] == {"geo": None}


async def test_reading_a_traced_contact_logs_trace_without_the_body(api: Api) -> None:
    body = sample("minimal")
    body["email"]["primary_email"] = "fan+trace-me-mozilla-123@example.com"
    contact = await api.seed(body)
    await api.read(contact.email_id)
    fields = api.log_fields()
    assert fields["trace"] == "fan+trace-me-mozilla-123@example.com"
    assert "trace_json" not in fields


async def test_reading_an_ordinary_contact_logs_no_trace(api: Api) -> None:
    await seed_maximal(api)
    await api.read(MAXIMAL_ID)
    assert "trace" not in api.log_fields()


# --- GET /ctms?<identifier> --------------------------------------------------------------------------------

IDENTIFIERS = {
    "email_id": MAXIMAL_ID,
    "primary_email": "MOZILLA-FAN@example.com",
    "basket_token": "d9ba6182-f5dd-4728-a477-2cc11bf62b69",
    "sfdc_id": "001A000001aMozFan",
    "mofo_contact_id": "5e499cc0-eeb5-4f0e-aae6-a101721874b8",
    "mofo_email_id": "195207d2-63f2-4c9f-b149-80e9c408477a",
    "amo_user_id": "123",
    "fxa_id": "611b6788-2bba-42a6-98c9-9ce6eb9cbd34",
    "fxa_primary_email": "FXA-firefox-fan@example.com",
}
MISSING_IDENTIFIERS = (
    "No identifiers provided, at least one is needed: email_id, primary_email, basket_token, "
    "sfdc_id, mofo_contact_id, mofo_email_id, amo_user_id, fxa_id, fxa_primary_email"
)


@pytest.mark.parametrize(("name", "value"), IDENTIFIERS.items())
async def test_each_alternate_identifier_finds_the_contact(api: Api, name: str, value: str) -> None:
    await seed_maximal(api)
    response = await api.get("/ctms", params={name: value})
    assert response.status_code == 200
    expected = {key: value for key, value in MAXIMAL_BODY.items() if key != "status"}
    assert response.json() == [expected]


async def test_amo_user_id_may_be_given_as_a_number(api: Api) -> None:
    await seed_maximal(api)
    response = await api.get("/ctms", params={"amo_user_id": 123})
    assert [c["email"]["email_id"] for c in response.json()] == [MAXIMAL_ID]


UNKNOWN_UUID = "a4d3d3a5-1d3c-4c8b-a0b0-0f1e2d3c4b5a"


@pytest.mark.parametrize("name", IDENTIFIERS)
async def test_unknown_identifier_value_finds_nothing(api: Api, name: str) -> None:
    await seed_maximal(api)
    unknown = {"email_id": UNKNOWN_UUID, "basket_token": UNKNOWN_UUID}.get(name, "nobody@x.org")
    response = await api.get("/ctms", params={name: unknown})
    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.parametrize("query", [{}, {"primary_email": ""}, {"unknown": "x"}])
async def test_lookup_without_an_identifier_is_400(api: Api, query: dict[str, str]) -> None:
    response = await api.get("/ctms", params=query)
    assert response.status_code == 400
    assert response.json() == {"detail": MISSING_IDENTIFIERS}


async def test_lookup_ignores_unknown_query_keys(api: Api) -> None:
    await seed_maximal(api)
    response = await api.get("/ctms", params={"sfdc_id": "001A000001aMozFan", "waitlist": "x"})
    assert len(response.json()) == 1


async def test_lookup_with_an_invalid_uuid_is_422_at_the_query(api: Api) -> None:
    response = await api.get("/ctms", params={"basket_token": "nope"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "basket_token"]


async def test_lookup_returns_every_contact_sharing_an_identifier(api: Api) -> None:
    first = sample("maximal")
    second = sample("example")
    second["amo"]["user_id"] = "123"
    second["newsletters"] = [{"name": "zeta"}, {"name": "Alpha"}, {"name": "beta"}]
    await api.seed(first)
    await api.seed(second)
    response = await api.get("/ctms", params={"amo_user_id": "123"})
    found = {c["email"]["email_id"]: c for c in response.json()}
    assert set(found) == {MAXIMAL_ID, "332de237-cab7-4461-bcc3-48e68f42bd5c"}
    names = [n["name"] for n in found["332de237-cab7-4461-bcc3-48e68f42bd5c"]["newsletters"]]
    assert names == ["Alpha", "beta", "zeta"]  # code-point order (docs/contract.md §5.8)


async def test_lookup_traces_the_traced_addresses_sorted(api: Api) -> None:
    for address, basket in (
        ("b+trace-me-mozilla-1@example.com", None),
        ("a+trace_me_mozilla_2@example.com", None),
        ("c@example.com", None),
    ):
        body = sample("most_minimal")
        body["email"] = {
            "primary_email": address,
            "sfdc_id": "shared",
            "basket_token": basket,
            "email_id": None,
        }
        await api.create(body)
    await api.get("/ctms", params={"sfdc_id": "shared"})
    assert api.log_fields()["trace"] == (
        "a+trace_me_mozilla_2@example.com,b+trace-me-mozilla-1@example.com"
    )
