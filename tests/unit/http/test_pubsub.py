"""`POST /stripe_from_pubsub` (docs/contract.md §8.2).

Tokens are signed with a locally generated RSA key whose key set a local HTTP server publishes (real
HTTP in both tiers): the application's own JWKS fetcher and verifier are exercised, not a stand-in.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from ctms_core.domain.contact import Fxa
from tests.builders import make_contact
from tests.http_harness import Api, RunApi, make_settings
from tests.support.jwks_server import serving_jwks
from tests.unit.http.test_stripe import pending_sync_total
from tests.unit.stripe.payloads import CUSTOMER_ID, FXA_ID, customer, subscription

AUDIENCE = "https://ctms.example.com/stripe_from_pubsub"
EMAIL = "pubsub@project.iam.gserviceaccount.com"
CLIENT = "a-shared-pubsub-secret"
KID = "local-key-1"

_KEY = RSAKey.generate_key(2048, parameters={"kid": KID})
_OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": KID})


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    with serving_jwks(_KEY) as url:
        yield url


@pytest.fixture
async def pubsub_api(running_api: RunApi, jwks_url: str) -> AsyncIterator[Api]:
    settings = make_settings(
        pubsub_audience=AUDIENCE, pubsub_email=EMAIL, pubsub_client=CLIENT, pubsub_jwks_url=jwks_url
    )
    async with running_api(settings) as api:
        yield api


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "email": EMAIL,
        "email_verified": True,
        "iat": now,
        "exp": now + 3600,
        "sub": "1234567890",
        **overrides,
    }
    return {name: value for name, value in values.items() if value is not None}


def token(key: Any = _KEY, header: dict[str, Any] | None = None, **overrides: Any) -> str:
    return jwt.encode(header or {"alg": "RS256", "kid": KID}, claims(**overrides), key)


def _b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def envelope(payload: Any) -> dict[str, Any]:
    return {
        "message": {
            "data": base64.b64encode(json.dumps(payload).encode()).decode(),
            "attributes": {"key": "value"},
            "messageId": "2070443601311540",
            "publishTime": "2021-02-26T19:13:55.749Z",
        },
        "subscription": "projects/myproject/subscriptions/mysubscription",
    }


async def push(
    api: Api, body: Any, *, bearer: str | None = None, client: str | None = CLIENT
) -> Any:
    url = "/stripe_from_pubsub" + ("" if client is None else f"?pubsub_client={client}")
    headers = {"Authorization": f"Bearer {bearer or token()}"}
    return await api.post(url, json=body, headers=headers)


async def test_a_good_push_ingests_its_object(pubsub_api: Api) -> None:
    response = await push(pubsub_api, envelope(customer()))
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "OK", "count": 1}
    fields = pubsub_api.log_fields()
    assert fields["ingest_actions"] == {"created": [f"customer:{CUSTOMER_ID}"]}
    assert fields["pubsub_email"] == EMAIL
    assert fields["pubsub_email_verified"] is True
    assert fields["pubsub_aud"] == AUDIENCE
    assert fields["client_allowed"] is True
    assert "query" not in fields or CLIENT not in json.dumps(fields["query"])


async def test_queueing_the_contact_of_a_pushed_object_is_counted(pubsub_api: Api) -> None:
    """A push that queues a contact for Acoustic counts it in `ctms_pending_acoustic_sync_total`."""
    await pubsub_api.seed_contact(make_contact(fxa=Fxa(fxa_id=FXA_ID)))
    before = pending_sync_total((await pubsub_api.get("/metrics", headers={})).text)
    response = await push(pubsub_api, envelope(customer()))
    assert response.status_code == 200, response.text
    assert pending_sync_total((await pubsub_api.get("/metrics", headers={})).text) == before + 1


async def test_a_replayed_message_is_idempotent(pubsub_api: Api) -> None:
    body = envelope({"firestore:sub": subscription(), "firestore:cus": customer()})
    first = await push(pubsub_api, body)
    second = await push(pubsub_api, body)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() == {"status": "OK", "count": 2}
    assert set(pubsub_api.log_fields()["ingest_actions"]) == {"no_change"}
    async with pubsub_api.unit_of_work() as uow:
        account = (await uow.stripe.accounts_for_fxa_ids([FXA_ID]))[FXA_ID]
    assert len(account.subscriptions) <= 1


async def test_an_item_dictionary_skips_unknown_types_and_empty_values(pubsub_api: Api) -> None:
    body = envelope(
        {
            "firestore_table:cus": customer(),
            "firestore_table:pm": {"object": "payment_method", "id": "pm_ABC123"},
            "firestore_table:empty": None,
        }
    )
    response = await push(pubsub_api, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "OK", "count": 1}
    actions = pubsub_api.log_fields()["ingest_actions"]
    assert actions["skipped"] == ["payment_method:pm_ABC123"]


async def test_an_empty_item_dictionary_counts_zero(pubsub_api: Api) -> None:
    response = await push(pubsub_api, envelope({}))
    assert response.json() == {"status": "OK", "count": 0}


async def test_invalid_items_make_a_do_not_send_again_202(pubsub_api: Api) -> None:
    body = envelope({"t:bad": customer(created="yesterday"), "t:good": customer(id="cus_good")})
    response = await push(pubsub_api, body)
    assert response.status_code == 202
    assert response.json() == {
        "status": "Accepted but not processed",
        "message": "Errors processing the data, do not send again.",
    }
    async with pubsub_api.unit_of_work() as uow:
        assert await uow.stripe.get_customer("cus_good") is not None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"message": {}}, "Message does not appear to be from pubsub, do not send again."),
        ([1, 2], "Message does not appear to be from pubsub, do not send again."),
        (envelope([1, 2]), "Unknown payload type, do not send again."),
        (envelope("text"), "Unknown payload type, do not send again."),
        (
            {"message": {"data": "***not base64***"}, "subscription": "s"},
            "Message data is not base64-encoded JSON, do not send again.",
        ),
        (
            {"message": {"data": base64.b64encode(b"{nope").decode()}, "subscription": "s"},
            "Message data is not base64-encoded JSON, do not send again.",
        ),
    ],
)
async def test_unprocessable_pushes_are_accepted_never_to_be_sent_again(
    pubsub_api: Api, body: Any, message: str
) -> None:
    response = await push(pubsub_api, body)
    assert response.status_code == 202
    assert response.json() == {"status": "Accepted but not processed", "message": message}


def _alg_none() -> str:
    return f"{_b64url({'alg': 'none', 'kid': KID})}.{_b64url(claims())}."


@pytest.mark.parametrize(
    ("make_token", "auth_fail"),
    [
        (lambda: token(aud="https://elsewhere.example.com"), "Unknown key"),
        (lambda: token(iss="https://issuer.example.com"), "Unknown key"),
        (lambda: token(exp=int(time.time()) - 600, iat=int(time.time()) - 4000), "Unknown key"),
        (lambda: token(iat=int(time.time()) + 3000), "Unknown key"),
        (lambda: token(header={"alg": "RS256", "kid": "unknown-kid"}), "Unknown key"),
        (lambda: token(_OTHER_KEY), "Unknown key"),
        (_alg_none, "Unknown key"),
        (
            lambda: token(OctKey.import_key(b"0" * 32), header={"alg": "HS256", "kid": KID}),
            "Unknown key",
        ),
        (lambda: "not-a-jwt", "Unknown key"),
        (lambda: token(email="someone@example.com"), "Wrong email"),
        (lambda: token(email_verified=False), "Email not verified"),
        (lambda: token(email_verified=None), "Email not verified"),
    ],
)
async def test_bad_tokens_are_401(pubsub_api: Api, make_token: Any, auth_fail: str) -> None:
    response = await push(pubsub_api, envelope(customer()), bearer=make_token())
    assert response.status_code == 401
    assert response.json() == {"detail": "Could not validate credentials"}
    assert pubsub_api.log_fields()["auth_fail"] == auth_fail
    async with pubsub_api.unit_of_work() as uow:
        assert await uow.stripe.get_customer(CUSTOMER_ID) is None


async def test_claims_of_a_refused_verified_token_are_logged(pubsub_api: Api) -> None:
    await push(pubsub_api, envelope(customer()), bearer=token(email="someone@example.com"))
    assert pubsub_api.log_fields()["pubsub_email"] == "someone@example.com"


@pytest.mark.parametrize("client", [None, "wrong-secret"])
async def test_a_missing_or_wrong_pubsub_client_is_401(pubsub_api: Api, client: Any) -> None:
    response = await push(pubsub_api, envelope(customer()), client=client)
    assert response.status_code == 401
    assert pubsub_api.log_fields()["auth_fail"] == "Verification mismatch"


async def test_a_bearer_token_is_required(pubsub_api: Api) -> None:
    response = await pubsub_api.post(
        f"/stripe_from_pubsub?pubsub_client={CLIENT}", json=envelope(customer()), headers={}
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


async def test_without_its_settings_the_endpoint_answers_as_an_unknown_route(
    running_api: RunApi,
) -> None:
    """A feature switched off is not an outage: 404 with the body of an unknown route (not a 5xx an
    operator's alerting reads as one), before authentication, and the access log names the setting."""
    async with running_api(make_settings(pubsub_client=CLIENT)) as api:
        unknown = await api.post("/no_such_route", json={})
        for headers in (None, {}):  # with a token, and anonymous
            response = await api.post(
                f"/stripe_from_pubsub?pubsub_client={CLIENT}",
                json=envelope(customer()),
                headers=headers if headers is not None else {"Authorization": f"Bearer {token()}"},
            )
            assert response.status_code == 404
            assert response.json() == unknown.json() == {"detail": "Not Found"}
            assert api.log_fields()["pubsub_config_error"] == "CTMS_PUBSUB_EMAIL unset"


async def test_concurrent_pushes_for_one_customer_never_fail_with_500(pubsub_api: Api) -> None:
    """Subscription and customer pushes for one FxA id at once: each 200 or 409, never 500."""
    bodies = [
        envelope({"t:sub": subscription(customer=CUSTOMER_ID), "t:cus": customer()})
        for _ in range(10)
    ]
    responses = await asyncio.gather(*(push(pubsub_api, body) for body in bodies))
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {200, 409}, [r.text for r in responses]
    assert 200 in statuses
    for response in responses:
        if response.status_code == 409:
            assert response.json()["detail"] in {
                "Write conflict, try again",
                "Deadlock or other issue, try again",
            }
    async with pubsub_api.unit_of_work() as uow:
        account = (await uow.stripe.accounts_for_fxa_ids([FXA_ID]))[FXA_ID]
    assert account.customer.stripe_id == CUSTOMER_ID
    assert len(account.subscriptions) == 1
    assert len(account.items) == 1
