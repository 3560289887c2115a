"""`POST /stripe` (docs/contract.md §8): one Stripe object per request."""

from __future__ import annotations

from typing import Any

from ctms_core.domain.contact import Fxa
from tests.builders import make_contact
from tests.http_harness import Api, RunApi, make_settings
from tests.unit.stripe.payloads import (
    CUSTOMER_ID,
    FXA_ID,
    SUBSCRIPTION_CUSTOMER_ID,
    customer,
    subscription,
)


async def _post(api: Api, body: Any) -> Any:
    return await api.post("/stripe", json=body)


async def test_a_new_customer_is_created_and_logged(api: Api) -> None:
    response = await _post(api, customer())
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "OK"}
    assert api.log_fields()["ingest_actions"] == {"created": [f"customer:{CUSTOMER_ID}"]}
    async with api.unit_of_work() as uow:
        stored = await uow.stripe.get_customer(CUSTOMER_ID)
    assert stored is not None and stored.fxa_id == FXA_ID


async def test_a_replay_changes_nothing(api: Api) -> None:
    assert (await _post(api, customer())).status_code == 200
    response = await _post(api, customer())
    assert response.status_code == 200
    assert api.log_fields()["ingest_actions"] == {"no_change": [f"customer:{CUSTOMER_ID}"]}


async def test_a_subscription_creates_its_item_and_price(api: Api) -> None:
    response = await _post(api, subscription())
    assert response.status_code == 200, response.text
    actions = api.log_fields()["ingest_actions"]
    assert sorted(label.split(":")[0] for label in actions["created"]) == [
        "price",
        "subscription",
        "subscription_item",
    ]


async def test_the_contact_of_the_customer_is_queued_for_sync(api: Api) -> None:
    await api.seed_contact(make_contact(fxa=Fxa(fxa_id=FXA_ID)))
    await api.seed_contact(make_contact())
    assert (await _post(api, customer())).status_code == 200
    async with api.unit_of_work() as uow:
        counts = await uow.sync_queue.counts("acoustic")
    assert counts.backlog == 1


def pending_sync_total(metrics_text: str) -> float:
    (line,) = [
        line
        for line in metrics_text.splitlines()
        if line.startswith("ctms_pending_acoustic_sync_total")
    ]
    return float(line.split()[-1])


async def test_queueing_the_contact_of_the_customer_is_counted(api: Api) -> None:
    """Every contact a Stripe object queues for Acoustic counts in `ctms_pending_acoustic_sync_total`,
    as contact writes do; an object that reaches no contact counts nothing."""
    before = pending_sync_total((await api.get("/metrics", headers={})).text)
    assert (await _post(api, customer())).status_code == 200  # no contact has the FxA id yet
    assert pending_sync_total((await api.get("/metrics", headers={})).text) == before
    await api.seed_contact(make_contact(fxa=Fxa(fxa_id=FXA_ID)))
    assert (await _post(api, customer(name="Changed"))).status_code == 200
    assert pending_sync_total((await api.get("/metrics", headers={})).text) == before + 1


async def test_an_fxa_id_conflict_deletes_the_other_customer(api: Api) -> None:
    assert (await _post(api, customer(id="cus_old"))).status_code == 200
    response = await _post(api, customer())
    assert response.status_code == 200
    fields = api.log_fields()
    assert fields["fxa_id_conflict"] == FXA_ID
    assert "customer:cus_old" in fields["ingest_actions"]["deleted"]
    async with api.unit_of_work() as uow:
        assert await uow.stripe.get_customer("cus_old") is None


async def test_traced_customer_emails_are_logged_with_the_body(api: Api) -> None:
    body = customer(email="someone+trace-me-mozilla-1@example.com")
    assert (await _post(api, body)).status_code == 200
    fields = api.log_fields()
    assert fields["trace"] == "someone+trace-me-mozilla-1@example.com"
    assert fields["trace_json"] == body


async def test_bodies_that_are_not_stripe_objects_are_not_recognized(api: Api) -> None:
    for body in ([], "customer", 3, {"object": "customer"}, {"id": "cus_1"}, {}):
        response = await _post(api, body)
        assert response.status_code == 400, body
        assert response.json() == {"detail": "Request JSON is not recognized."}


async def test_invalid_objects_cannot_be_processed(api: Api) -> None:
    response = await _post(api, customer(created="yesterday"))
    assert response.status_code == 400
    assert response.json() == {"detail": "Unable to process Stripe object."}


async def test_an_unsupported_object_type_is_a_clear_400_not_a_500(api: Api) -> None:
    response = await _post(api, {"object": "payment_method", "id": "pm_ABC123"})
    assert response.status_code == 400
    assert "payment_method" in response.json()["detail"]


async def test_a_body_that_is_not_json_is_a_clear_400(api: Api) -> None:
    response = await api.post(
        "/stripe", content=b"{not json", headers={**api.auth(), "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Request body is not valid JSON."}


async def test_a_bearer_token_is_required(api: Api) -> None:
    response = await api.post("/stripe", json=customer(), headers={})
    assert response.status_code == 401
    async with api.unit_of_work() as uow:
        assert await uow.stripe.get_customer(CUSTOMER_ID) is None


async def test_the_stripe_ingest_permission_is_enforced(running_api: RunApi) -> None:
    async with running_api(make_settings(enforce_permissions=True)) as api:
        response = await api.post("/stripe", json=customer())
        assert response.status_code == 403
        assert "stripe:ingest" in response.json()["detail"]


async def test_a_customer_of_another_subscription_is_independent(api: Api) -> None:
    assert (await _post(api, subscription())).status_code == 200
    assert (await _post(api, customer())).status_code == 200
    async with api.unit_of_work() as uow:
        subscriptions = await uow.stripe.subscription_ids_of_customer(SUBSCRIPTION_CUSTOMER_ID)
    assert subscriptions
