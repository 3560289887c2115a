"""Hostile request bodies (issue #16, defects 1–4): JSON nested too deep, lone UTF-16 surrogates, and
numbers PostgreSQL cannot store get a 4xx on every body-taking route (422 for contact bodies, 400 for
`/stripe`, 202 "do not send again" for a Pub/Sub push), never a 500; nothing is written and no address
reaches the logs. The input policy is `ctms_core.domain.json_documents`.

The examples pin each reported case; the property test generates the class: every hazard, at every
place of every body-taking route.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.http_harness import Api, RunApi, make_settings
from tests.support.log_capture import CapturedLogs, captured_logs
from tests.unit.http.test_pubsub import AUDIENCE, CLIENT, EMAIL, jwks_url, token  # noqa: F401
from tests.unit.stripe.payloads import CUSTOMER_ID, customer

ADDRESS = "hostile-body-person@example.com"
SLOT = "\x01slot\x01"  # where a template takes the hazard (as a value, or as an object key)
JSON_HEADERS = {"content-type": "application/json"}


def nested(depth: int, *, objects: bool = False) -> str:
    if objects:
        return '{"a":' * depth + "1" + "}" * depth
    return "[" * depth + "]" * depth


def fill(template: Any, hazard: str, *, as_key: bool = False) -> bytes:
    """`template` as JSON with the slot replaced by the raw JSON text `hazard` (a value) or by an object
    key holding it (`as_key`: `{<hazard>: 1}`, `hazard` being a JSON string)."""
    text = json.dumps(template)
    slot = json.dumps(SLOT)
    replacement = f"{{{hazard}: 1}}" if as_key else hazard
    assert slot in text
    return text.replace(slot, replacement).encode()


async def post_json(api: Api, url: str, body: bytes | str, method: str = "POST") -> Any:
    """`body` as JSON, authenticated as the enabled client."""
    return await api.request(method, url, content=body, headers={**api.auth(), **JSON_HEADERS})


@pytest.fixture
def logs() -> Iterator[CapturedLogs]:
    with captured_logs() as captured:
        yield captured


@pytest.fixture
async def pubsub_api(running_api: RunApi, jwks_url: str) -> AsyncIterator[Api]:  # noqa: F811
    settings = make_settings(
        pubsub_audience=AUDIENCE, pubsub_email=EMAIL, pubsub_client=CLIENT, pubsub_jwks_url=jwks_url
    )
    async with running_api(settings) as api:
        yield api


async def _assert_untouched(api: Api, logs: CapturedLogs) -> None:
    assert await api.stored_contacts() == {}
    async with api.unit_of_work() as uow:
        assert await uow.stripe.get_customer(CUSTOMER_ID) is None
    for line in logs.lines():
        assert ADDRESS not in line, f"the address was logged: {line[:300]}"
        assert "Traceback" not in line


# --- the reported cases ---


@pytest.mark.parametrize("url", ["/ctms", "/stripe"])
async def test_an_anonymous_deeply_nested_body_is_refused_by_authentication(
    api: Api, logs: CapturedLogs, url: str
) -> None:
    response = await api.http.post(url, content=nested(2000), headers=JSON_HEADERS)
    assert response.status_code == 401
    await _assert_untouched(api, logs)


@pytest.mark.parametrize("depth", [65, 500, 2000, 100_000])
async def test_a_deeply_nested_contact_body_is_a_422(
    api: Api, logs: CapturedLogs, depth: int
) -> None:
    response = await post_json(api, "/ctms", nested(depth))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["msg"] == "JSON nested deeper than 64 levels"
    await _assert_untouched(api, logs)


async def test_deep_but_valid_json_in_waitlist_fields_is_a_422(
    api: Api, logs: CapturedLogs
) -> None:
    body = {
        "email": {"primary_email": ADDRESS},
        "waitlists": [{"name": "guardian", "fields": SLOT}],
    }
    for objects in (False, True):
        response = await post_json(api, "/ctms", fill(body, nested(500, objects=objects)))
        assert response.status_code == 422, response.text
    await _assert_untouched(api, logs)


async def test_nesting_up_to_the_limit_is_accepted(api: Api) -> None:
    fields = {"deep": SLOT}  # the body, waitlists, the item, fields: 4 levels above the slot
    body = {
        "email": {"primary_email": ADDRESS},
        "waitlists": [{"name": "guardian", "fields": fields}],
    }
    response = await post_json(api, "/ctms", fill(body, nested(60)))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("where", "template"),
    [
        ("primary_email", {"email": {"primary_email": SLOT}}),
        ("first_name", {"email": {"primary_email": ADDRESS, "first_name": SLOT}}),
        (
            "waitlist fields",
            {"email": {"primary_email": ADDRESS}, "waitlists": [{"name": "g", "fields": SLOT}]},
        ),
    ],
)
@pytest.mark.parametrize("as_key", [False, True])
async def test_a_lone_surrogate_is_a_422(
    api: Api, logs: CapturedLogs, where: str, template: Any, as_key: bool
) -> None:
    hazard = '"hostile-body-person\\ud800@example.com"'
    response = await post_json(api, "/ctms", fill(template, hazard, as_key=as_key))
    assert response.status_code == 422, response.text
    assert "surrogate" in response.json()["detail"][0]["msg"]
    await _assert_untouched(api, logs)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
async def test_a_number_postgresql_cannot_store_is_a_422(
    api: Api, logs: CapturedLogs, number: str
) -> None:
    body = {
        "email": {"primary_email": ADDRESS},
        "waitlists": [{"name": "g", "fields": {"n": SLOT}}],
    }
    response = await post_json(api, "/ctms", fill(body, number))
    assert response.status_code == 422, response.text
    await _assert_untouched(api, logs)


async def test_a_deeply_nested_stripe_object_is_a_400(api: Api, logs: CapturedLogs) -> None:
    for body in (nested(2000).encode(), fill(customer(metadata={"x": SLOT}), nested(2000))):
        response = await post_json(api, "/stripe", body)
        assert response.status_code == 400, response.text
        assert "nested deeper" in response.json()["detail"]
    await _assert_untouched(api, logs)


async def test_a_push_of_deeply_nested_data_is_accepted_and_never_processed(
    pubsub_api: Api, logs: CapturedLogs
) -> None:
    response = await _push(pubsub_api, nested(2000).encode(), in_data=True)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "Accepted but not processed"
    await _assert_untouched(pubsub_api, logs)


# --- the class: every hazard at every place of every body-taking route ---


@dataclass(frozen=True)
class Place:
    """A route and a body template with one slot, and the status a hazard in it must get."""

    method: str
    url: str
    template: Any
    status: int
    pubsub_data: bool = False  # the template is the Stripe document inside `message.data`


_EMAIL_ID = "c4a7d759-bb52-457b-896b-90f1d3ef8433"
_CONTACT = {"email": {"primary_email": ADDRESS, "first_name": SLOT}}


def _contact_places() -> list[Place]:
    templates = [
        SLOT,
        {"email": SLOT},
        {"email": {"primary_email": SLOT}},
        _CONTACT,
        {"email": {"primary_email": ADDRESS}, "newsletters": [{"name": SLOT}]},
        {"email": {"primary_email": ADDRESS}, "waitlists": [{"name": "g", "fields": SLOT}]},
        {"email": {"primary_email": ADDRESS}, "waitlists": [{"name": "g", "fields": {"k": SLOT}}]},
        {"email": {"primary_email": ADDRESS}, "amo": {"user_id": SLOT}},
    ]
    return [
        Place(method, url, template, 422)
        for method, url in (
            ("POST", "/ctms"),
            ("PUT", f"/ctms/{_EMAIL_ID}"),
            ("PATCH", f"/ctms/{_EMAIL_ID}"),
        )
        for template in templates
    ]


def _stripe_templates() -> list[Any]:
    return [
        SLOT,
        customer(metadata={"x": SLOT}),
        customer(email=SLOT),
        customer(description=SLOT),
        {"object": "customer", "id": SLOT},
    ]


PLACES = [
    *_contact_places(),
    *(Place("POST", "/stripe", template, 400) for template in _stripe_templates()),
    *(
        Place("POST", "/stripe_from_pubsub", template, 202, pubsub_data=True)
        for template in _stripe_templates()
    ),
    Place("POST", "/stripe_from_pubsub", {"message": SLOT, "subscription": "s"}, 202),
]

_SURROGATES = st.integers(0xD800, 0xDFFF).map(lambda code: f'"{ADDRESS}\\u{code:04x}"')
HAZARDS = st.one_of(
    st.builds(nested, st.integers(65, 3000), objects=st.booleans()),
    _SURROGATES.map(lambda text: ("key", text)),
    _SURROGATES,
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e999999", "[1E+309]"]),
)


async def _push(api: Api, document: bytes, *, in_data: bool) -> Any:
    if in_data:
        data = base64.b64encode(document).decode()
        body = json.dumps({"message": {"data": data}, "subscription": "s"}).encode()
    else:
        body = document
    headers = {"Authorization": f"Bearer {token()}", **JSON_HEADERS}
    return await api.post(
        f"/stripe_from_pubsub?pubsub_client={CLIENT}", content=body, headers=headers
    )


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(place=st.sampled_from(PLACES), hazard=HAZARDS)
async def test_no_hostile_body_gets_a_5xx_writes_or_logs_an_address(
    pubsub_api: Api, logs: CapturedLogs, place: Place, hazard: str | tuple[str, str]
) -> None:
    await pubsub_api.reset()
    logs.clear()
    if isinstance(hazard, tuple):
        body = fill(place.template, hazard[1], as_key=True)
    else:
        body = fill(place.template, hazard)
    if place.url == "/stripe_from_pubsub":
        response = await _push(pubsub_api, body, in_data=place.pubsub_data)
    else:
        response = await post_json(pubsub_api, place.url, body, place.method)
    assert response.status_code == place.status, (place, hazard[:80], response.text)
    assert isinstance(response.json(), dict)
    await _assert_untouched(pubsub_api, logs)
    assert str(uuid.UUID(_EMAIL_ID)) not in {str(key) for key in await pubsub_api.stored_contacts()}


async def test_bodies_in_other_unicode_encodings_are_still_read(api: Api) -> None:
    """v3.3 read UTF-16 and UTF-32 JSON bodies; the input policy keeps that."""
    body = json.dumps({"email": {"primary_email": ADDRESS, "first_name": "Zoë 😀"}})
    response = await post_json(api, "/ctms", body.encode("utf-16"))
    assert response.status_code == 201, response.text
    assert response.json()["email"]["first_name"] == "Zoë 😀"


_FORM_FIELDS = ["client_id", "client_secret", "grant_type"]


def _multipart(fields: dict[str, bytes], charset: str | None) -> bytes:
    parts = []
    for name, value in fields.items():
        content_type = f"Content-Type: text/plain; charset={charset}\r\n" if charset else ""
        parts.append(
            f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n{content_type}\r\n'.encode()
            + value
            + b"\r\n"
        )
    return b"".join(parts) + b"--b--\r\n"


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    values=st.fixed_dictionaries(
        {},
        optional={
            name: st.one_of(
                st.binary(max_size=40),
                st.sampled_from([b"\x00", b"\xed\xa0\x80", ADDRESS.encode(), b"x" * 100_000]),
            )
            for name in _FORM_FIELDS
        },
    ),
    multipart=st.booleans(),
    charset=st.sampled_from([None, "utf-8", "latin-1", "utf-16", "no-such-charset"]),
)
async def test_no_token_form_gets_a_5xx_or_logs_an_address(
    api: Api, logs: CapturedLogs, values: dict[str, bytes], multipart: bool, charset: str | None
) -> None:
    """`POST /token` bodies of any bytes, URL-encoded or multipart: a 4xx, never a 5xx."""
    logs.clear()
    if multipart:
        content = _multipart(values, charset)
        content_type = "multipart/form-data; boundary=b"
    else:
        content = "&".join(f"{name}={quote(value)}" for name, value in values.items()).encode()
        content_type = "application/x-www-form-urlencoded"
    response = await api.http.post(
        "/token", content=content, headers={"content-type": content_type}
    )
    assert 400 <= response.status_code < 500, response.text
    assert "detail" in response.json()
    for line in logs.lines():
        assert ADDRESS not in line
        assert "Traceback" not in line
