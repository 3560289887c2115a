"""Regression cases of the schemathesis findings on the Stripe endpoints (issue #9): an integer outside
PostgreSQL's INTEGER range (amounts, totals, interval counts) or an id holding U+0000 reached the
database and failed there with a 500. Both are invalid Stripe data: `/stripe` answers 400 `Unable to
process Stripe object.` and a push marks the object as an error (202, do not send again).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.integration.schemathesis.conftest import PUBSUB_CLIENT, LiveServer
from tests.unit.stripe import payloads

INTEGER_MAX = 2**31 - 1
UNABLE = {"detail": "Unable to process Stripe object."}

INVALID = [
    payloads.invoice(id="in_total_high", total=INTEGER_MAX + 1),
    payloads.invoice(
        id="in_amount_low",
        with_lines=[payloads.line_item(amount=-(2**31) - 1)],
    ),
    payloads.price(price_id="price_unit_amount", unit_amount=2**63),
    payloads.price(
        price_id="price_interval_count", recurring={"interval": "month", "interval_count": 2**40}
    ),
    payloads.customer(id="cus_nul", description="fxa\x00id"),
    payloads.customer(id="cus_\x00"),
    payloads.subscription(
        id="sub_nul", customer="cus_\x00", with_items=[payloads.subscription_item("si_nul")]
    ),
]


def _post(live_server: LiveServer, url: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{live_server.base_url}{url}", json=body, headers=headers, timeout=10)


@pytest.mark.parametrize("body", INVALID, ids=[str(body["id"]) for body in INVALID])
def test_stripe_data_the_database_cannot_hold_is_a_400(
    live_server: LiveServer, body: dict[str, Any]
) -> None:
    response = _post(live_server, "/stripe", body, live_server.auth)
    assert (response.status_code, response.json()) == (400, UNABLE)


@pytest.mark.parametrize("body", INVALID, ids=[str(body["id"]) for body in INVALID])
def test_a_push_of_such_data_is_accepted_and_not_processed(
    live_server: LiveServer, body: dict[str, Any]
) -> None:
    envelope = {
        "message": {"data": base64.b64encode(json.dumps({"table:1": body}).encode()).decode()},
        "subscription": "projects/p/subscriptions/s",
    }
    response = _post(
        live_server,
        f"/stripe_from_pubsub?pubsub_client={PUBSUB_CLIENT}",
        envelope,
        live_server.pubsub_auth,
    )
    assert response.status_code == 202, response.text
    assert response.json()["message"] == "Errors processing the data, do not send again."


def test_the_largest_integer_is_stored(live_server: LiveServer) -> None:
    body = payloads.invoice(id="in_total_max", total=INTEGER_MAX)
    response = _post(live_server, "/stripe", body, live_server.auth)
    assert (response.status_code, response.json()) == (200, {"status": "OK"})
